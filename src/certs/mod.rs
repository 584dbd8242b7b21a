//! Custom CAs: `/certs` in, a verified merged bundle out.
//!
//! The pass runs in a short-lived worker process ([`worker`]): PID 1 never opens the certificates
//! directory nor parses a certificate byte, and receives a [`Report`]. [`pass`] is the worker's
//! whole job, a pipeline whose stages are entered once each, in order: scan (read the directory,
//! the system bundle and the cache record), judge (the cached verdicts, or each file's), merge
//! (the bundle's bytes and record), compare (strict mode, the target on disk), write. The first
//! three are [`prepare`], which writes nothing; a dry run stops before the write, so what it
//! shows is what a run does.
//!
//! One job per module: reading the directory is [`scan`], judging one file [`verdict`], the
//! system bundle [`system`], the merge [`bundle`] (pure), the cache key and record [`cache`], the
//! only writes [`store`], the report's types and renderings [`summary`], and what the child gets
//! [`exports`].

pub mod bundle;
pub mod cache;
pub mod chain;
pub mod der;
pub mod exports;
pub mod hook;
pub mod rules;
pub mod scan;
pub mod store;
pub mod summary;
pub mod system;
pub mod verdict;
pub mod watch;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use data_encoding::HEXLOWER;
use sha2::{Digest, Sha256};

use crate::config::CertSettings;
use rules::Profile;
use scan::Content;
pub use summary::{BundleStatus, FileResult, FileVerdict, Outcome, Planned, Report, Summary};
use verdict::{Reason, Verdict};

/// Whether the worker may write: a run and `vardr-init certs` write, a dry run only checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Check,
    Write,
    /// A re-check while the app runs: a bundle that already holds the new bytes is left alone
    /// (only its cache record is written), so nothing is replaced and nothing reloaded.
    Refresh,
}

/// At most this many directories are watched: beyond, the periodic re-check covers the rest.
pub const MAX_WATCHED: usize = 256;

/// What [`prepare`] read and decided, bundle bytes included: this stays in the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pass {
    pub bundle: PathBuf,
    pub system: Option<PathBuf>,
    /// Problems with the system bundle, to log as warnings.
    pub warnings: Vec<String>,
    /// The verdicts and the counts: the report's, and the cache record's.
    pub summary: Summary,
    pub action: Action,
    /// Whose verifier the verdicts match.
    pub profile: Profile,
    /// Where what was read lives, for a run that watches it (empty otherwise).
    pub watch: Vec<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// No accepted custom CA: no bundle, nothing exported, the system trust applies as is.
    Nothing,
    /// The bundle beside its cache record matches the inputs and is intact.
    Reuse,
    /// Write these bytes, then the cache record.
    Build { bytes: Vec<u8>, record: String },
    /// The bundle already holds what a build makes (a re-check after start): write only the
    /// cache record.
    Record(String),
}

/// The worker's job, stage by stage: [`scan`] reads, [`judge`] takes the cached verdicts or
/// judges each file, [`merge`] makes the bundle's bytes, [`compare`] holds them against strict
/// mode and the target on disk, [`write`] writes what was decided (in [`Mode::Write`] and
/// [`Mode::Refresh`]). A dry run stops before the write, so what it shows is what a run does.
pub fn pass(settings: &CertSettings, profile: Profile, now: SystemTime, mode: Mode) -> Report {
    let merged = prepare(settings, profile, now);
    let decided = compare(merged, settings, mode);
    write(decided, settings, mode)
}

/// Reads and judges everything for the runtime `profile`, and makes the bundle; writes nothing.
pub fn prepare(settings: &CertSettings, profile: Profile, now: SystemTime) -> Pass {
    let now = unix_seconds(now);
    let scanned = scan(settings, profile, now);
    let judged = judge(scanned, profile, now);
    merge(judged, settings)
}

/// What [`scan`] read: the pass begun (the system bundle's path, its warnings, the watch), the
/// inputs, the system bundle, and the cache's record if it holds for them.
struct Scanned {
    pass: Pass,
    inputs: Vec<scan::Input>,
    /// The system bundle [`system::find`] chose, as read.
    system: Option<(PathBuf, Vec<u8>)>,
    key: String,
    /// The record beside the bundle, when it was built for `key` and the bundle is intact.
    cached: Option<cache::Record>,
}

/// The I/O before any decision: the directory, the system bundle, and the cache record (the key
/// computed once, over the inputs and the system bundle's path; one reuse check, comparing the
/// bundle with the system bundle as the bundle is read).
fn scan(settings: &CertSettings, profile: Profile, now: i64) -> Scanned {
    // Our own outputs are never inputs, should the bundle be pointed into the certs directory.
    let outputs = [settings.bundle.clone(), store::cache_path(&settings.bundle)];
    let scan::Scanned {
        inputs,
        dirs,
        linked,
    } = scan::scan(&settings.dir, &outputs);
    let pass = Pass {
        bundle: settings.bundle.clone(),
        system: None,
        warnings: Vec::new(),
        summary: Summary::default(),
        action: Action::Nothing,
        profile,
        watch: Vec::new(),
    };
    let mut scanned = Scanned {
        pass,
        inputs,
        system: None,
        key: String::new(),
        cached: None,
    };
    if scanned.inputs.is_empty() && !settings.keep_bundle {
        // No custom CAs: the system bundle is not even read (the common case, kept cheap).
        return scanned;
    }
    if settings.keep_bundle {
        let first = system::first_candidate(settings);
        scanned.pass.watch = watch_points(&settings.dir, &dirs, &linked, first.as_deref());
    }
    scanned.system = system::find(settings, &mut scanned.pass.warnings);
    scanned.pass.system = scanned.system.as_ref().map(|(path, _)| path.clone());
    let (path, bytes) = match &scanned.system {
        Some((path, bytes)) => (Some(path.as_path()), bytes.as_slice()),
        None => (None, &[][..]),
    };
    scanned.key = cache::key(settings, profile, path, &scanned.inputs);
    scanned.cached = cache::Record::load(&settings.bundle, &scanned.key, now, bytes);
    scanned
}

/// What [`judge`] found: the pass so far and, unless the cache answered, what [`merge`] takes.
struct Judged {
    pass: Pass,
    fresh: Option<Fresh>,
}

/// What the bundle is made of: the system bundle as read, the CAs accepted, and the key its
/// cache record is for.
struct Fresh {
    system: Option<(PathBuf, Vec<u8>)>,
    accepted: Vec<verdict::Ca>,
    key: String,
}

/// The one reuse decision, then each file's verdict (pure: the bytes were read by [`scan`]).
fn judge(scanned: Scanned, profile: Profile, now: i64) -> Judged {
    let Scanned {
        mut pass,
        inputs,
        system,
        key,
        cached,
    } = scanned;
    if let Some(record) = cached {
        pass.summary = record.summary;
        pass.action = Action::Reuse;
        // A used system bundle holds at least one certificate. None, with a system bundle the
        // bundle begins with, can only be an empty one: left out when it was built, and still.
        if pass.summary.system_certificates == 0
            && let Some(path) = pass.system.take()
        {
            pass.warnings.push(format!(
                "system bundle {} holds no usable certificate (found when this bundle was \
                 built): not used",
                path.display()
            ));
        }
        return Judged { pass, fresh: None };
    }
    let mut verdicts: Vec<Verdict> = inputs
        .iter()
        .map(|input| match &input.content {
            Content::Bytes(bytes) => verdict::judge(bytes, now, profile),
            Content::Unusable(reason) => Verdict::Rejected(reason.clone()),
        })
        .collect();
    if profile.needs_root() {
        let system_bytes = system.as_ref().map(|(_, bytes)| bytes.as_slice());
        chain::require_roots(&mut verdicts, system_bytes, profile);
    }
    let mut accepted = Vec::new();
    let mut next_change = i64::MAX;
    for (input, verdict) in inputs.iter().zip(verdicts) {
        let mut warnings = Vec::new();
        let verdict = match verdict {
            Verdict::Accepted(cas) => {
                for (i, ca) in cas.iter().enumerate() {
                    next_change = next_change.min(ca.not_after.saturating_add(1));
                    for rule in &ca.warnings {
                        warnings.push(format!("certificate {} ({}): {rule}", i + 1, ca.subject));
                    }
                }
                let subjects = cas.iter().map(|ca| ca.subject.clone()).collect();
                accepted.extend(cas);
                FileVerdict::Accepted(subjects)
            }
            Verdict::Rejected(reason) => {
                if let Reason::NotYetValid { starts, .. } = reason {
                    next_change = next_change.min(starts);
                }
                FileVerdict::Rejected(reason)
            }
        };
        pass.summary.results.push(FileResult {
            name: input.display_name(),
            verdict,
            warnings,
        });
    }
    pass.summary.next_change = (next_change != i64::MAX).then_some(next_change);
    let fresh = Fresh {
        system,
        accepted,
        key,
    };
    Judged {
        pass,
        fresh: Some(fresh),
    }
}

/// The bundle's bytes and its cache record, from the accepted CAs and the system bundle (pure).
fn merge(judged: Judged, settings: &CertSettings) -> Pass {
    let Judged {
        mut pass,
        fresh: Some(Fresh {
            system,
            accepted,
            key,
        }),
    } = judged
    else {
        return judged.pass; // reused
    };
    if accepted.is_empty() && (!settings.keep_bundle || system.is_none()) {
        if let Some((_, bytes)) = &system {
            pass.summary.system_certificates = bundle::certificates(bytes).count();
        }
        return pass;
    }
    // The system bundle as read, used or not: a reuse compares the bundle with it.
    let source = system
        .as_ref()
        .map_or(&[][..], |(_, bytes)| bytes.as_slice());
    let mut merged = bundle::merge(system.as_ref().map(|_| source), &accepted);
    // Only the system bundle's certificates that OpenSSL decodes are kept: say what was not.
    if let Some((path, _)) = &system {
        for left_out in &merged.system_left_out {
            pass.warnings
                .push(format!("system bundle {}: {left_out}", path.display()));
        }
        if merged.system_certificates == 0 {
            pass.warnings.push(format!(
                "system bundle {} holds no usable certificate: not used",
                path.display()
            ));
            pass.system = None;
            merged = bundle::merge(None, &accepted);
            if accepted.is_empty() {
                // Kept for a watching run, but nothing to keep: no bundle.
                return pass;
            }
        }
    }
    let system_len = merged.system_len;
    pass.summary.system_certificates = merged.system_certificates;
    pass.summary.custom_certificates = merged.custom_certificates;
    pass.summary.duplicates = merged.duplicates;
    let record = cache::Record {
        system: if merged.bytes[..system_len] == *source {
            cache::SystemPart::Verbatim
        } else {
            cache::SystemPart::Filtered {
                source: HEXLOWER.encode(&Sha256::digest(source)),
                bundle: HEXLOWER.encode(&Sha256::digest(&merged.bytes)),
            }
        },
        key,
        custom_sha256: HEXLOWER.encode(&Sha256::digest(&merged.bytes[system_len..])),
        summary: pass.summary.clone(),
    }
    .to_text();
    pass.action = Action::Build {
        bytes: merged.bytes,
        record,
    };
    pass
}

/// What [`compare`] decided: the pass, what it plans, strict mode's refusals, and whether the
/// bundle may be exported ([`BundleStatus::Ready`]: go ahead).
struct Decided {
    pass: Pass,
    planned: Planned,
    refusals: Vec<String>,
    bundle: BundleStatus,
}

/// The merged pass against strict mode and the target on disk. Strict mode's refusals and a
/// bundle path that cannot take the bundle are found here, for a dry run and a run alike.
fn compare(mut pass: Pass, settings: &CertSettings, mode: Mode) -> Decided {
    let mut planned = match pass.action {
        Action::Nothing => Planned::Nothing,
        Action::Reuse => Planned::Reuse,
        Action::Build { .. } | Action::Record(_) => Planned::Build,
    };
    let mut refusals = Vec::new();
    let failed = pass.summary.failed();
    if settings.strict && failed > 0 {
        refusals.push(format!(
            "VARDR_CERTS_STRICT=true and {failed} of {} files in {} were rejected: fix or \
             remove them, or unset VARDR_CERTS_STRICT",
            pass.summary.results.len(),
            settings.dir.display()
        ));
    }
    if settings.strict && planned != Planned::Nothing && pass.system.is_none() {
        refusals.push(
            "VARDR_CERTS_STRICT=true and the system CA bundle cannot be used (see the warning \
             above): the bundle would trust only the custom CAs; fix VARDR_SYSTEM_CA_BUNDLE or \
             unset VARDR_CERTS_STRICT"
                .to_owned(),
        );
    }
    let bundle = if planned == Planned::Nothing {
        BundleStatus::NotNeeded
    } else if !refusals.is_empty() {
        BundleStatus::Withheld
    } else {
        let is_system = system::is_system_bundle(&pass.bundle, pass.system.as_deref());
        match store::check_target(&pass.bundle, is_system, planned == Planned::Reuse) {
            Err(problem) => BundleStatus::Problem(problem),
            Ok(warning) => {
                pass.warnings.extend(warning);
                // A re-check that makes the bundle already there leaves it alone.
                if mode == Mode::Refresh
                    && let Action::Build { bytes, record } = &pass.action
                    && store::holds(&pass.bundle, bytes)
                {
                    planned = Planned::Same;
                    pass.action = Action::Record(record.clone());
                }
                BundleStatus::Ready
            }
        }
    };
    Decided {
        pass,
        planned,
        refusals,
        bundle,
    }
}

/// Writes what [`compare`] let through (a dry run writes nothing), and the Python hook beside an
/// exported bundle; the report for PID 1.
fn write(decided: Decided, settings: &CertSettings, mode: Mode) -> Report {
    let Decided {
        mut pass,
        planned,
        refusals,
        mut bundle,
    } = decided;
    if bundle == BundleStatus::Ready && mode != Mode::Check {
        match pass.write() {
            Ok(warnings) => pass.warnings.extend(warnings),
            Err(problem) => bundle = BundleStatus::Problem(problem),
        }
    }
    let mut report = Report {
        hook: hook::HookStatus::Off,
        system: pass.system,
        warnings: pass.warnings,
        summary: pass.summary,
        planned,
        bundle,
        refusals,
        profile: pass.profile,
        watch: pass.watch,
    };
    // The hook names the bundle (only one the child gets), and makes the app's logs JSON.
    if hook::wanted(settings, report.exported()) {
        report.hook = hook::ensure(settings, report.exported(), mode != Mode::Check);
    }
    report
}

impl Pass {
    pub fn successful(&self) -> usize {
        self.summary.successful()
    }

    pub fn failed(&self) -> usize {
        self.summary.failed()
    }

    /// Executes the decision. `Ok(Some(path))`: a verified bundle to export; `Ok(None)`: none
    /// needed; `Err`: why the bundle could not be written or failed its check.
    pub fn apply(&self) -> Result<Option<&Path>, String> {
        match self.action {
            Action::Nothing => Ok(None),
            _ => self.write().map(|_| Some(self.bundle.as_path())),
        }
    }

    /// Writes a built bundle and its cache record, or the record alone (a reuse writes nothing).
    /// `Ok` carries warnings: a bundle whose record could not be written is still good (the next
    /// start rebuilds).
    pub fn write(&self) -> Result<Vec<String>, String> {
        let warning = match &self.action {
            Action::Nothing | Action::Reuse => return Ok(Vec::new()),
            Action::Record(record) => self
                .write_record(record)
                .err()
                .map(|e| format!("cannot update the cache record: {e}")),
            Action::Build { bytes, record } => {
                store::write_atomic(&self.bundle, bytes, |read| self.verify(read, bytes))?;
                self.write_record(record)
                    .err()
                    .map(|e| format!("bundle written, but its cache record was not: {e}"))
            }
        };
        Ok(warning.into_iter().collect())
    }

    /// The cache record beside the bundle.
    fn write_record(&self, record: &str) -> Result<(), String> {
        store::write_atomic(&store::cache_path(&self.bundle), record.as_bytes(), |_| {
            Ok(())
        })
    }

    /// The check of a bundle read back from disk before it replaces the target.
    ///
    /// `read` is `Ok` when it is `written`, byte for byte: the system bundle verbatim, all of whose
    /// PEM the merge parsed (one that did not parse is left out), then blocks encoded here from
    /// DER. So it parses and holds the counted certificates by construction, and is not parsed
    /// again.
    fn verify(&self, read: Result<&[u8], u64>, written: &[u8]) -> Result<(), String> {
        match read {
            Ok(_) => Ok(()),
            Err(length) if length != written.len() as u64 => Err(format!(
                "the new bundle for {} reads back shorter or longer than what was written \
                 ({length} of {} bytes): is the disk full?",
                self.bundle.display(),
                written.len()
            )),
            Err(_) => Err(format!(
                "the new bundle for {} reads back different from what was written (same \
                 length): the file was changed after it was written, or the disk is failing",
                self.bundle.display()
            )),
        }
    }
}

/// The directories to watch for a change of what the pass read: the certificates directory and
/// every directory under it (a missing one: its nearest existing ancestor, where it would
/// appear), the directories the symlinked inputs resolve into, and the system bundle's, as named
/// and as resolved. inotify reports renames and writes of a directory's entries, so a watched
/// directory also sees a file replaced by rename and a Kubernetes `..data` swap.
fn watch_points(
    dir: &Path,
    dirs: &[PathBuf],
    linked: &[PathBuf],
    system: Option<&Path>,
) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = Vec::new();
    let mut add = |path: &Path| {
        if points.len() < MAX_WATCHED && !points.iter().any(|p| p == path) {
            points.push(path.to_owned());
        }
    };
    if dirs.is_empty() {
        let existing = dir.ancestors().find(|d| d.is_dir());
        add(existing.unwrap_or(dir));
    }
    for walked in dirs {
        add(walked);
    }
    let resolved = |path: &Path| std::fs::canonicalize(path).ok();
    for file in linked.iter().map(PathBuf::as_path).chain(system) {
        for path in [Some(file.to_owned()), resolved(file)]
            .into_iter()
            .flatten()
        {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                add(parent);
            }
        }
    }
    points
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use std::time::Duration;

    fn settings(dir: &Path) -> CertSettings {
        CertSettings {
            dir: dir.join("certs"),
            bundle: dir.join("out/bundle.pem"),
            system_bundle: Some(dir.join("system.pem")),
            strict: false,
            extra_vars: false,
            python_hook: false,
            python_logs: Default::default(),
            python_path: None,
            inherited: Vec::new(),
            tls_profile: None,
            keep_bundle: false,
        }
    }

    /// A scratch tree for `prepare`: `certs/` and `out/` made, `system.pem` not yet written.
    fn scratch() -> (tempfile::TempDir, CertSettings) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = settings(dir.path());
        for sub in ["certs", "out"] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        (dir, s)
    }

    /// CA parameters and a key: each `params.self_signed(&key)` is a distinct CA certificate.
    fn ca_maker() -> (CertificateParams, KeyPair) {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        (params, KeyPair::generate().expect("key"))
    }

    /// A watching run keeps a bundle with no custom CA (the system part alone); a re-check
    /// replaces it only when its bytes change, and strict mode keeps it on a rejected file.
    #[test]
    fn a_watching_run_keeps_its_bundle_and_a_refresh_replaces_only_what_changed() {
        use std::os::unix::fs::MetadataExt;
        let (dir, mut s) = scratch();
        s.keep_bundle = true;
        let (params, key) = ca_maker();
        let system_ca = params.self_signed(&key).expect("cert").pem();
        std::fs::write(dir.path().join("system.pem"), &system_ca).expect("write");
        let now = SystemTime::now();
        let refresh = |s: &CertSettings| pass(s, Profile::OpenSsl, now, Mode::Refresh);
        let report = pass(&s, Profile::OpenSsl, now, Mode::Write);
        assert_eq!(report.planned, Planned::Build, "{report:?}");
        assert!(report.exported(), "{report:?}");
        assert!(report.watch.contains(&s.dir), "{report:?}");
        let inode = || std::fs::metadata(&s.bundle).expect("bundle").ino();
        let first = inode();

        assert_eq!(refresh(&s).refresh_outcome(), Outcome::Reused);
        std::fs::write(s.dir.join("junk.pem"), "not a certificate").expect("write");
        let report = refresh(&s);
        assert_eq!(report.refresh_outcome(), Outcome::Unchanged, "{report:?}");
        assert_eq!(inode(), first, "an identical bundle is not replaced");
        assert_eq!(refresh(&s).refresh_outcome(), Outcome::Reused);

        let custom = params.self_signed(&key).expect("cert").pem();
        std::fs::write(s.dir.join("ca.pem"), &custom).expect("write");
        let report = refresh(&s);
        assert_eq!(report.refresh_outcome(), Outcome::Rebuilt, "{report:?}");
        assert_ne!(inode(), first);
        let rebuilt = std::fs::read(&s.bundle).expect("read");

        s.strict = true;
        std::fs::write(s.dir.join("junk2.pem"), "still not one").expect("write");
        let report = refresh(&s);
        assert_eq!(report.refresh_outcome(), Outcome::Kept, "{report:?}");
        assert_eq!(std::fs::read(&s.bundle).expect("read"), rebuilt);
    }

    /// The cache holds only until the first verdict could change: here, an accepted CA expiring.
    #[test]
    fn a_cached_pass_is_not_reused_once_a_ca_has_expired() {
        let (dir, s) = scratch();
        std::fs::write(dir.path().join("system.pem"), "").expect("write");
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let cert = params
            .self_signed(&KeyPair::generate().expect("key"))
            .expect("cert");
        std::fs::write(s.dir.join("ca.pem"), cert.pem()).expect("write");
        let expiry = UNIX_EPOCH + Duration::from_secs(1_893_456_000); // 2030-01-01T00:00:00Z

        let before = expiry - Duration::from_secs(3600);
        let pass = prepare(&s, Profile::OpenSsl, before);
        assert!(matches!(pass.action, Action::Build { .. }), "{pass:?}");
        assert_eq!(pass.apply(), Ok(Some(s.bundle.as_path())));
        assert_eq!(prepare(&s, Profile::OpenSsl, before).action, Action::Reuse);
        assert_eq!(
            prepare(&s, Profile::OpenSsl, expiry - Duration::from_secs(1)).action,
            Action::Reuse
        );

        let after = prepare(&s, Profile::OpenSsl, expiry + Duration::from_secs(2));
        assert_eq!(after.action, Action::Nothing, "{after:?}");
        assert!(!after.summary.results[0].verdict.is_accepted());
        assert!(
            after.summary.results[0].detail().contains("expired"),
            "{after:?}"
        );
    }

    /// A system bundle that parses is merged; a malformed one is left out, with a warning, so it
    /// never reaches the bundle.
    #[test]
    fn a_system_block_that_does_not_parse_is_left_out() {
        let (dir, s) = scratch();
        let (params, key) = ca_maker();
        let system_ca = params.self_signed(&key).expect("cert").pem();
        let custom = params.self_signed(&key).expect("cert").pem();
        std::fs::write(s.dir.join("ca.pem"), &custom).expect("write");
        let now = SystemTime::now();

        let good = format!("{system_ca}{system_ca}");
        std::fs::write(dir.path().join("system.pem"), &good).expect("write");
        let pass = prepare(&s, Profile::OpenSsl, now);
        assert!(matches!(pass.action, Action::Build { .. }), "{pass:?}");
        assert_eq!(pass.apply(), Ok(Some(s.bundle.as_path())));
        std::fs::remove_file(&s.bundle).expect("remove");

        let bad =
            format!("{system_ca}-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        std::fs::write(dir.path().join("system.pem"), bad).expect("write");
        // Found in the merge: the block is left out, with a warning; the certificate before it
        // and the custom CA are in.
        let pass = prepare(&s, Profile::OpenSsl, now);
        assert!(pass.system.is_some(), "{pass:?}");
        assert!(
            pass.warnings.iter().any(|w| w.contains("does not parse")),
            "{pass:?}"
        );
        assert_eq!(pass.apply(), Ok(Some(s.bundle.as_path())));
        let written = std::fs::read(&s.bundle).expect("read the bundle");
        assert_eq!(bundle::count(&written), Ok(2));
        assert!(!written.windows(4).any(|w| w == b"!!!!"));
        // Nothing usable at all: the system bundle is not used, and the bundle holds the custom
        // CA alone.
        std::fs::write(dir.path().join("system.pem"), "# only text\n").expect("write");
        let pass = prepare(&s, Profile::OpenSsl, now);
        assert_eq!(pass.system, None, "{pass:?}");
        assert!(
            pass.warnings
                .iter()
                .any(|w| w.contains("no usable certificate"))
        );
    }

    /// For Python 3.12 an intermediate needs its root in the bundle: found in the system bundle
    /// (read for it), or mounted beside it; alone, it is refused saying so. 3.13 takes it alone.
    #[test]
    fn an_intermediate_is_trusted_by_python_3_12_only_with_its_root() {
        use rcgen::{DistinguishedName, DnType, Issuer, KeyUsagePurpose};
        let named = |name: &str| {
            let mut params = CertificateParams::default();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, name);
            params
        };
        let root_key = KeyPair::generate().expect("key");
        let root_params = named("chain root");
        let root = root_params.self_signed(&root_key).expect("root");
        let issuer = Issuer::new(root_params, root_key);
        let inter_key = KeyPair::generate().expect("key");
        let inter = named("chain intermediate")
            .signed_by(&inter_key, &issuer)
            .expect("inter");
        let (dir, s) = scratch();
        let system = dir.path().join("system.pem");
        std::fs::write(s.dir.join("inter.pem"), inter.pem()).expect("write");
        let now = SystemTime::now();
        let accepted = |profile| prepare(&s, profile, now).successful() == 1;
        let p12 = Profile::Python { minor: 12 };
        std::fs::write(&system, "").expect("write");
        let alone = prepare(&s, p12, now);
        assert!(
            matches!(&alone.summary.results[0].verdict, FileVerdict::Rejected(r) if r.to_string().contains("mount its root CA")),
            "{alone:?}"
        );
        assert!(accepted(Profile::Python { minor: 13 }));
        std::fs::write(&system, root.pem()).expect("write");
        assert!(accepted(p12), "the root in the system bundle");
        std::fs::write(&system, "").expect("write");
        std::fs::write(s.dir.join("root.pem"), root.pem()).expect("write");
        assert_eq!(
            prepare(&s, p12, now).successful(),
            2,
            "the root mounted beside it"
        );
    }

    /// The verdicts are a runtime's: another runtime means another pass, not a reuse.
    #[test]
    fn another_runtime_profile_rebuilds() {
        let (dir, s) = scratch();
        let (params, key) = ca_maker();
        std::fs::write(
            s.dir.join("ca.pem"),
            params.self_signed(&key).expect("cert").pem(),
        )
        .expect("write");
        std::fs::write(dir.path().join("system.pem"), "").expect("write");
        let now = SystemTime::now();
        let pass = prepare(&s, Profile::OpenSsl, now);
        assert_eq!(pass.apply(), Ok(Some(s.bundle.as_path())));
        assert_eq!(prepare(&s, Profile::OpenSsl, now).action, Action::Reuse);
        // rcgen's CA has no keyUsage: Python 3.13 rejects it, so nothing is reused or built.
        let strict = prepare(&s, Profile::Python { minor: 13 }, now);
        assert_eq!(strict.action, Action::Nothing, "{strict:?}");
        assert!(matches!(
            prepare(&s, Profile::Python { minor: 12 }, now).action,
            Action::Build { .. }
        ));
    }

    /// A reuse compares the bundle's system part with the system bundle as it is now, byte for
    /// byte, instead of hashing it: any edit of either, growing or shrinking, means a rebuild.
    #[test]
    fn a_bundle_is_reused_only_while_it_begins_with_the_current_system_bundle() {
        let (dir, s) = scratch();
        let (params, key) = ca_maker();
        let [one, two, custom] = [0; 3].map(|_| params.self_signed(&key).expect("cert").pem());
        std::fs::write(s.dir.join("ca.pem"), &custom).expect("write");
        let system_path = dir.path().join("system.pem");
        let now = SystemTime::now();
        let build = |system: &str| {
            std::fs::write(&system_path, system).expect("write");
            let _ = std::fs::remove_file(store::cache_path(&s.bundle)); // a fresh build
            let pass = prepare(&s, Profile::OpenSsl, now);
            assert!(matches!(pass.action, Action::Build { .. }), "{pass:?}");
            assert_eq!(pass.apply(), Ok(Some(s.bundle.as_path())));
            assert_eq!(prepare(&s, Profile::OpenSsl, now).action, Action::Reuse);
        };
        let original = format!("{one}{two}");
        for changed in [
            one.clone(),
            format!("{one}{two}{one}"),
            original.replacen('M', "N", 1),
            original.trim_end().to_owned(),
        ] {
            build(&original);
            std::fs::write(&system_path, &changed).expect("write");
            assert_ne!(
                prepare(&s, Profile::OpenSsl, now).action,
                Action::Reuse,
                "system now {changed:?}"
            );
        }
        build(&original);
        let mut bundle = std::fs::read(&s.bundle).expect("read");
        bundle[10] ^= 1; // inside the system part
        std::fs::write(&s.bundle, &bundle).expect("write");
        assert_ne!(prepare(&s, Profile::OpenSsl, now).action, Action::Reuse);
        build(&original);
        let mut bundle = std::fs::read(&s.bundle).expect("read");
        let last = bundle.len() - 40; // inside the custom part
        bundle[last] ^= 1;
        std::fs::write(&s.bundle, &bundle).expect("write");
        assert_ne!(prepare(&s, Profile::OpenSsl, now).action, Action::Reuse);
    }

    /// The bundle is streamed in 64 KiB chunks: the system part may end anywhere in one, and
    /// chunks may start past it. Reuse must work at every such size (this once panicked).
    #[test]
    fn reuse_works_whatever_the_size_of_the_system_bundle() {
        let (dir, s) = scratch();
        let (params, key) = ca_maker();
        let [system_ca, custom] = [0; 2].map(|_| params.self_signed(&key).expect("cert").pem());
        std::fs::write(s.dir.join("ca.pem"), &custom).expect("write");
        let now = SystemTime::now();
        for size in [
            65_000, 65_535, 65_536, 65_537, 131_000, 131_072, 200_000, 300_000,
        ] {
            // Certificates (duplicates are kept as they are) up to about `size` bytes: the reuse
            // check compares in pieces, and these sizes straddle the pieces' boundaries.
            let mut system = Vec::new();
            while system.len() < size {
                system.extend_from_slice(system_ca.as_bytes());
            }
            std::fs::write(dir.path().join("system.pem"), &system).expect("write");
            let _ = std::fs::remove_file(store::cache_path(&s.bundle));
            let pass = prepare(&s, Profile::OpenSsl, now);
            assert!(
                matches!(pass.action, Action::Build { .. }),
                "{size}: {pass:?}"
            );
            assert_eq!(pass.apply(), Ok(Some(s.bundle.as_path())), "{size}");
            assert_eq!(
                prepare(&s, Profile::OpenSsl, now).action,
                Action::Reuse,
                "{size}"
            );
        }
    }
}
