//! Custom CAs: `/certs` in, a verified merged bundle out.
//!
//! Two steps, so that `--dry-run` shows exactly what a run does: [`prepare`] reads everything and
//! decides (verdicts, reuse or rebuild, the bundle's bytes) without writing; [`Pass::apply`]
//! writes what was decided. Reading is [`scan`], judging one file is [`verdict`], the merge is
//! [`bundle`], and the only writes are in [`store`].

pub mod bundle;
pub mod scan;
pub mod store;
pub mod verdict;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::config::{CA_VARS, CertSettings, DEFAULT_CA_VARS};
use scan::Content;
use verdict::{Reason, Verdict};

/// Where distributions keep the PEM bundle of their trusted roots, most common first.
pub const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Wolfi
    "/etc/pki/tls/certs/ca-bundle.crt",   // RHEL, Fedora, Amazon Linux
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL 7+ (the file behind the above)
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/ssl/cert.pem",                  // Alpine (LibreSSL), BSDs
];

/// One file's outcome, as the summary's `results` and the logs show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileResult {
    pub name: String,
    pub accepted: bool,
    /// Accepted: the CAs it holds; rejected: why.
    pub detail: String,
}

impl FileResult {
    /// The contract's `SUCCESS` / `FAILED: reason`.
    pub fn verdict(&self) -> String {
        if self.accepted {
            "SUCCESS".to_owned()
        } else {
            format!("FAILED: {}", self.detail)
        }
    }
}

/// What the certificate step decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pass {
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub system: Option<PathBuf>,
    /// Problems with the system bundle, to log as warnings.
    pub warnings: Vec<String>,
    pub results: Vec<FileResult>,
    pub system_certificates: usize,
    pub custom_certificates: usize,
    pub duplicates: usize,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// No accepted custom CA: no bundle, nothing exported, the system trust applies as is.
    Nothing,
    /// The bundle beside its cache record matches the inputs and is intact.
    Reuse,
    /// Write these bytes, then the cache record.
    Build { bytes: Vec<u8>, record: String },
}

/// What a pass ended with, as the summary's `action` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Built,
    Reused,
    /// No accepted custom CA: nothing written, nothing exported.
    None,
    /// The bundle could not be written or verified, or strict mode refused the inputs.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Built => "built",
            Outcome::Reused => "reused",
            Outcome::None => "none",
            Outcome::Failed => "failed",
        }
    }
}

impl Pass {
    /// A pass over no inputs: nothing to do.
    pub fn empty(settings: &CertSettings) -> Pass {
        Pass {
            dir: settings.dir.clone(),
            bundle: settings.bundle.clone(),
            system: None,
            warnings: Vec::new(),
            results: Vec::new(),
            system_certificates: 0,
            custom_certificates: 0,
            duplicates: 0,
            action: Action::Nothing,
        }
    }

    /// What applying the plan ends with when it succeeds.
    pub fn success(&self) -> Outcome {
        match self.action {
            Action::Nothing => Outcome::None,
            Action::Reuse => Outcome::Reused,
            Action::Build { .. } => Outcome::Built,
        }
    }

    pub fn successful(&self) -> usize {
        self.results.iter().filter(|r| r.accepted).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.successful()
    }

    /// The planned action in a word, as dry-run shows it (`build`, `reuse`, `none`).
    pub fn action_word(&self) -> &'static str {
        match self.action {
            Action::Nothing => "none",
            Action::Reuse => "reuse",
            Action::Build { .. } => "build",
        }
    }

    /// Executes the decision. `Ok(Some(path))`: a verified bundle to export; `Ok(None)`: none
    /// needed; `Err`: why the bundle could not be written or failed its check.
    pub fn apply(&self) -> Result<Option<&Path>, String> {
        match &self.action {
            Action::Nothing => Ok(None),
            Action::Reuse => Ok(Some(&self.bundle)),
            Action::Build { bytes, record } => {
                store::write_atomic(&self.bundle, bytes, |read| self.verify(read, bytes))?;
                // Without the record the next start rebuilds: slower, never wrong.
                let cache = store::cache_path(&self.bundle);
                if let Err(e) = store::write_atomic(&cache, record.as_bytes(), |_| Ok(())) {
                    tracing::warn!("bundle written, but its cache record was not: {e}");
                }
                Ok(Some(&self.bundle))
            }
        }
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

    /// The contract's `certificate_import_summary` object, keys in the contract's order.
    pub fn summary_json(&self, outcome: Outcome, now: SystemTime) -> String {
        let mut out = format!(
            "{{\"type\":\"certificate_import_summary\",\"timestamp\":\"{}\",\
             \"successful_imports\":{},\"failed_imports\":{},\"total_certificates\":{},\
             \"results\":{{",
            humantime::format_rfc3339_seconds(now),
            self.successful(),
            self.failed(),
            self.custom_certificates,
        );
        for (i, result) in self.results.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(
                out,
                "{comma}{}:{}",
                json_string(&result.name),
                json_string(&result.verdict())
            );
        }
        let bundle = match outcome {
            Outcome::Built | Outcome::Reused => json_path(&self.bundle),
            Outcome::None | Outcome::Failed => "null".to_owned(),
        };
        let system = self.system.as_deref().map_or("null".to_owned(), json_path);
        let _ = write!(
            out,
            "}},\"action\":{},\"bundle\":{bundle},\"system_bundle\":{system},\
             \"system_certificates\":{},\"duplicates\":{}}}",
            json_string(outcome.as_str()),
            self.system_certificates,
            self.duplicates,
        );
        out
    }
}

/// Reads and judges everything; writes nothing.
pub fn prepare(settings: &CertSettings, now: SystemTime) -> Pass {
    let now_secs = unix_seconds(now);
    // Our own outputs are never inputs, should the bundle be pointed into the certs directory.
    let outputs = [settings.bundle.clone(), store::cache_path(&settings.bundle)];
    let inputs = scan::scan(&settings.dir, &outputs);
    let mut pass = Pass::empty(settings);
    if inputs.is_empty() {
        // No custom CAs: the system bundle is not even read (the common case, kept cheap).
        return pass;
    }
    let mut system = find_system_bundle(settings, &mut pass.warnings);
    pass.system = system.as_ref().map(|(path, _)| path.clone());

    let key = cache_key(settings, system.as_ref(), &inputs);
    let system_bytes = system
        .as_ref()
        .map_or(&[][..], |(_, bytes)| bytes.as_slice());
    if let Some(record) = Record::load(&settings.bundle, &key, now_secs, system_bytes) {
        pass.results = record.results;
        pass.system_certificates = record.system_certificates;
        pass.custom_certificates = record.custom_certificates;
        pass.duplicates = record.duplicates;
        pass.action = Action::Reuse;
        // A used system bundle holds at least one certificate. None, with a system bundle the
        // bundle begins with, can only be an empty one: left out when it was built, and still.
        if record.system_certificates == 0
            && let Some(path) = pass.system.take()
        {
            pass.warnings.push(format!(
                "system bundle {} holds no PEM certificate (found when this bundle was built): \
                 not used",
                path.display()
            ));
        }
        return pass;
    }

    let mut accepted = Vec::new();
    // The first moment a verdict could change: an accepted CA expires, a rejected one starts.
    let mut valid_until = i64::MAX;
    for input in &inputs {
        let name = input.display_name();
        let verdict = match &input.content {
            Content::Bytes(bytes) => verdict::judge(bytes, now_secs),
            Content::Unusable(reason) => Verdict::Rejected(reason.clone()),
        };
        let result = match verdict {
            Verdict::Accepted(cas) => {
                let subjects: Vec<&str> = cas.iter().map(|ca| ca.subject.as_str()).collect();
                let detail = match subjects.len() {
                    1 => format!("1 CA certificate: {}", subjects[0]),
                    n => format!("{n} CA certificates: {}", subjects.join(", ")),
                };
                for ca in &cas {
                    valid_until = valid_until.min(ca.not_after.saturating_add(1));
                }
                accepted.extend(cas);
                FileResult {
                    name,
                    accepted: true,
                    detail,
                }
            }
            Verdict::Rejected(reason) => {
                if let Reason::NotYetValid { starts, .. } = reason {
                    valid_until = valid_until.min(starts);
                }
                FileResult {
                    name,
                    accepted: false,
                    detail: reason.to_string(),
                }
            }
        };
        pass.results.push(result);
    }
    if accepted.is_empty() {
        if let Some((_, bytes)) = &system {
            pass.system_certificates = bundle::certificates(bytes).count();
        }
        return pass;
    }
    let mut merged = bundle::merge(
        system.as_ref().map(|(_, bytes)| bytes.as_slice()),
        &accepted,
    );
    // Copied byte for byte, the system bundle must be PEM that parses, with a certificate in it.
    // The merge is where it is parsed (a cache hit never gets here); if it fails, it is left out.
    let problem = match (&merged.system_error, merged.system_certificates) {
        (Some(e), _) => Some(format!("does not parse as PEM ({e})")),
        (None, 0) => Some("holds no PEM certificate".to_owned()),
        (None, _) => None,
    };
    if let Some(problem) = problem
        && let Some((path, _)) = system.take()
    {
        pass.warnings.push(format!(
            "system bundle {} {problem}: not used",
            path.display()
        ));
        pass.system = None;
        merged = bundle::merge(None, &accepted);
    }
    // What the bundle begins with: the system bundle, unless it was left out just now.
    let system_len = system.as_ref().map_or(0, |(_, bytes)| bytes.len());
    pass.system_certificates = merged.system_certificates;
    pass.custom_certificates = merged.custom_certificates;
    pass.duplicates = merged.duplicates;
    let record = Record {
        key,
        custom_sha256: hex(&Sha256::digest(&merged.bytes[system_len..])),
        valid_until,
        system_certificates: pass.system_certificates,
        custom_certificates: pass.custom_certificates,
        duplicates: pass.duplicates,
        results: pass.results.clone(),
    }
    .to_text();
    pass.action = Action::Build {
        bytes: merged.bytes,
        record,
    };
    pass
}

/// One variable the child gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    pub name: &'static str,
    pub value: OsString,
    /// The user had set it: their value is kept and this says so in the logs.
    pub user_value: bool,
    /// The user's value that pointed at the system bundle (or ours) and was replaced.
    pub replaced: Option<OsString>,
}

/// The CA variables for the child when `bundle` is exported. A value the user set wins, unless
/// it names the system bundle merged into ours (images often point `REQUESTS_CA_BUNDLE` at the
/// distro bundle): the merged bundle holds all of that file and the custom CAs besides.
pub fn exports(settings: &CertSettings, system: Option<&Path>, bundle: &Path) -> Vec<Export> {
    let count = if settings.extra_vars {
        CA_VARS.len()
    } else {
        DEFAULT_CA_VARS
    };
    CA_VARS[..count]
        .iter()
        .map(|&name| {
            let user = settings
                .inherited
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, value)| Path::new(value));
            let superseded = |value: &Path| {
                same_file(value, bundle) || system.is_some_and(|system| same_file(value, system))
            };
            match user {
                Some(value) if !superseded(value) => Export {
                    name,
                    value: value.as_os_str().to_owned(),
                    user_value: true,
                    replaced: None,
                },
                _ => Export {
                    name,
                    value: bundle.as_os_str().to_owned(),
                    user_value: false,
                    replaced: user
                        .filter(|value| *value != bundle)
                        .map(|value| value.as_os_str().to_owned()),
                },
            }
        })
        .collect()
}

/// The inherited CA variables that name our bundle path: when no bundle is exported this time
/// (no custom CA any more, or the write failed), they would keep the child reading an old
/// bundle, with CAs since removed from the certs directory, so they are removed from its
/// environment.
pub fn stale_variables(settings: &CertSettings) -> Vec<&'static str> {
    settings
        .inherited
        .iter()
        .filter(|(_, value)| same_file(Path::new(value), &settings.bundle))
        .map(|(name, _)| *name)
        .collect()
}

/// Why the bundle's directory cannot take a new file, without writing anything: what a dry run
/// can know of the write that a run would attempt.
pub fn unwritable(bundle: &Path) -> Option<String> {
    let dir = store::parent(bundle);
    crate::sys::can_write(dir).err().map(|e| {
        format!(
            "the bundle cannot be written in {}: {e}; point VARDR_CA_BUNDLE at a writable \
             directory (such as a tmpfs /tmp)",
            dir.display()
        )
    })
}

/// `VARDR_SYSTEM_CA_BUNDLE`, or the original `SSL_CERT_FILE` unless it is our own output, or
/// the first distribution path that exists. `None` (with a warning) is not an error.
fn find_system_bundle(
    settings: &CertSettings,
    warnings: &mut Vec<String>,
) -> Option<(PathBuf, Vec<u8>)> {
    let candidates: Vec<PathBuf> = match &settings.system_bundle {
        Some(path) => vec![path.clone()],
        None => {
            let ssl_cert_file = settings
                .inherited
                .iter()
                .find(|(name, _)| *name == "SSL_CERT_FILE")
                .map(|(_, value)| PathBuf::from(value))
                .filter(|path| !same_file(path, &settings.bundle));
            ssl_cert_file
                .into_iter()
                .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
                .collect()
        }
    };
    for path in &candidates {
        if settings.system_bundle.is_none() && !path.exists() {
            continue;
        }
        match scan::read_capped(path, store::MAX_BUNDLE_BYTES) {
            Ok(bytes) => match system_bundle_problem(&bytes) {
                None => return Some((path.clone(), bytes)),
                Some(problem) => warnings.push(format!(
                    "system bundle {} {problem}: not used",
                    path.display()
                )),
            },
            Err(reason) => warnings.push(format!("system bundle {}: {reason}", path.display())),
        }
    }
    warnings.push(match &settings.system_bundle {
        Some(path) => format!(
            "VARDR_SYSTEM_CA_BUNDLE={} could not be used: the bundle will hold only the custom \
             CAs, so public TLS sites will fail verification",
            path.display()
        ),
        None => format!(
            "no system CA bundle found (tried SSL_CERT_FILE and {}): the bundle will hold only \
             the custom CAs; set VARDR_SYSTEM_CA_BUNDLE if the image keeps it elsewhere",
            SYSTEM_BUNDLES.join(", ")
        ),
    });
    None
}

/// Why a system bundle must not be copied into ours, judged cheaply on every start that has
/// custom CAs: no private key anywhere, and text. Whether its PEM parses is checked only when a
/// bundle is built, in the merge, which a cache hit skips.
fn system_bundle_problem(bytes: &[u8]) -> Option<&'static str> {
    if verdict::has_private_key(bytes) {
        Some("contains a private key")
    } else if std::str::from_utf8(bytes).is_err() {
        Some("is not text (a PEM bundle is)")
    } else {
        None
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

/// SHA-256 over everything that decides the bundle but the system bundle's bytes. Each field is
/// length-prefixed and each input's content tagged (bytes, or a rejection found before reading),
/// so no two different input sets produce the same byte stream. The system bundle's bytes are not
/// hashed: a reused bundle must begin with them, byte for byte (see [`Record::load`]).
fn cache_key(
    settings: &CertSettings,
    system: Option<&(PathBuf, Vec<u8>)>,
    inputs: &[scan::Input],
) -> String {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field(concat!("vardr-init ", env!("CARGO_PKG_VERSION")).as_bytes());
    field(settings.bundle.as_os_str().as_encoded_bytes());
    match system {
        Some((path, _)) => field(path.as_os_str().as_encoded_bytes()),
        None => field(b"no system bundle"),
    }
    for input in inputs {
        field(&input.name);
        match &input.content {
            Content::Bytes(bytes) => {
                field(b"B");
                field(bytes);
            }
            Content::Unusable(reason) => {
                field(b"U");
                field(reason.to_string().as_bytes());
            }
        }
    }
    hex(&hash.finalize())
}

/// The cache record stored beside the bundle: the key it was built for, the hash of the bundle
/// after its system part (so a truncated or edited bundle is rebuilt), until when its verdicts
/// hold, and the summary.
struct Record {
    key: String,
    custom_sha256: String,
    valid_until: i64,
    system_certificates: usize,
    custom_certificates: usize,
    duplicates: usize,
    results: Vec<FileResult>,
}

const RECORD_MAGIC: &str = "vardr-init certificate cache 2";

impl Record {
    fn to_text(&self) -> String {
        let results: Vec<serde_json::Value> = self
            .results
            .iter()
            .map(|r| serde_json::json!([r.name, r.accepted, r.detail]))
            .collect();
        format!(
            "{RECORD_MAGIC}\nkey {}\ncustom {}\nvalid-until {}\ncounts {} {} {}\nresults {}\n",
            self.key,
            self.custom_sha256,
            self.valid_until,
            self.system_certificates,
            self.custom_certificates,
            self.duplicates,
            serde_json::Value::from(results),
        )
    }

    /// The record for `key` if it is ours, current, and its bundle is intact: the bundle begins
    /// with `system` (the system bundle as it is now) byte for byte, and the rest has the recorded
    /// hash. Comparing the system part instead of hashing it (in the key and here) is what makes
    /// a reuse cheap: no SHA-256 over the system bundle, twice, on every start.
    fn load(bundle: &Path, key: &str, now: i64, system: &[u8]) -> Option<Record> {
        let text = store::read_own(&store::cache_path(bundle), 64 * 1024 * 1024)?;
        let record = Record::parse(std::str::from_utf8(&text).ok()?)?;
        if record.key != key || now >= record.valid_until {
            return None;
        }
        let mut hash = Sha256::new();
        let mut offset = 0;
        let mut system_matches = true;
        let read = store::stream_own(bundle, store::MAX_BUNDLE_BYTES, |chunk| {
            // The part of this chunk that is still within the system part (none once past it).
            let start = offset.min(system.len());
            let split = (system.len() - start).min(chunk.len());
            let (system_part, rest) = chunk.split_at(split);
            system_matches =
                system_matches && store::same_bytes(system_part, &system[start..start + split]);
            hash.update(rest);
            offset += chunk.len();
        })?;
        let intact = system_matches
            && read >= system.len() as u64
            && hex(&hash.finalize()) == record.custom_sha256;
        intact.then_some(record)
    }

    fn parse(text: &str) -> Option<Record> {
        let mut lines = text.lines();
        if lines.next()? != RECORD_MAGIC {
            return None;
        }
        let mut field = |name: &str| lines.next()?.strip_prefix(name)?.strip_prefix(' ');
        let key = field("key")?.to_owned();
        let custom_sha256 = field("custom")?.to_owned();
        let valid_until = field("valid-until")?.parse().ok()?;
        let counts: Vec<usize> = field("counts")?
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let [system_certificates, custom_certificates, duplicates] = counts[..] else {
            return None;
        };
        let results = match serde_json::from_str(field("results")?).ok()? {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| {
                    Some(FileResult {
                        name: item.get(0)?.as_str()?.to_owned(),
                        accepted: item.get(1)?.as_bool()?,
                        detail: item.get(2)?.as_str()?.to_owned(),
                    })
                })
                .collect::<Option<Vec<_>>>()?,
            _ => return None,
        };
        Some(Record {
            key,
            custom_sha256,
            valid_until,
            system_certificates,
            custom_certificates,
            duplicates,
            results,
        })
    }
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

pub fn json_path(path: &Path) -> String {
    json_string(&path.to_string_lossy())
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
            inherited: Vec::new(),
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
        let pass = prepare(&s, before);
        assert!(matches!(pass.action, Action::Build { .. }), "{pass:?}");
        assert_eq!(pass.apply(), Ok(Some(s.bundle.as_path())));
        assert_eq!(prepare(&s, before).action, Action::Reuse);
        assert_eq!(
            prepare(&s, expiry - Duration::from_secs(1)).action,
            Action::Reuse
        );

        let after = prepare(&s, expiry + Duration::from_secs(2));
        assert_eq!(after.action, Action::Nothing, "{after:?}");
        assert!(!after.results[0].accepted);
        assert!(after.results[0].detail.contains("expired"), "{after:?}");
    }

    /// A system bundle that parses is merged; a malformed one is left out, with a warning, so it
    /// never reaches the bundle.
    #[test]
    fn a_system_bundle_that_does_not_parse_is_left_out() {
        let (dir, s) = scratch();
        let (params, key) = ca_maker();
        let system_ca = params.self_signed(&key).expect("cert").pem();
        let custom = params.self_signed(&key).expect("cert").pem();
        std::fs::write(s.dir.join("ca.pem"), &custom).expect("write");
        let now = SystemTime::now();

        let good = format!("{system_ca}{system_ca}");
        std::fs::write(dir.path().join("system.pem"), &good).expect("write");
        let pass = prepare(&s, now);
        assert!(matches!(pass.action, Action::Build { .. }), "{pass:?}");
        assert_eq!(pass.apply(), Ok(Some(s.bundle.as_path())));
        std::fs::remove_file(&s.bundle).expect("remove");

        let bad =
            format!("{system_ca}-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        std::fs::write(dir.path().join("system.pem"), bad).expect("write");
        // Found in the merge: the system bundle is left out, with a warning, and the bundle holds
        // the custom CA alone.
        let pass = prepare(&s, now);
        assert_eq!(pass.system, None, "{pass:?}");
        assert!(
            pass.warnings
                .iter()
                .any(|w| w.contains("does not parse as PEM")),
            "{pass:?}"
        );
        assert_eq!(pass.apply(), Ok(Some(s.bundle.as_path())));
        let written = std::fs::read(&s.bundle).expect("read the bundle");
        assert_eq!(bundle::count(&written), Ok(1));
        assert!(!written.windows(4).any(|w| w == b"!!!!"));
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
            let pass = prepare(&s, now);
            assert!(matches!(pass.action, Action::Build { .. }), "{pass:?}");
            assert_eq!(pass.apply(), Ok(Some(s.bundle.as_path())));
            assert_eq!(prepare(&s, now).action, Action::Reuse);
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
                prepare(&s, now).action,
                Action::Reuse,
                "system now {changed:?}"
            );
        }
        build(&original);
        let mut bundle = std::fs::read(&s.bundle).expect("read");
        bundle[10] ^= 1; // inside the system part
        std::fs::write(&s.bundle, &bundle).expect("write");
        assert_ne!(prepare(&s, now).action, Action::Reuse);
        build(&original);
        let mut bundle = std::fs::read(&s.bundle).expect("read");
        let last = bundle.len() - 40; // inside the custom part
        bundle[last] ^= 1;
        std::fs::write(&s.bundle, &bundle).expect("write");
        assert_ne!(prepare(&s, now).action, Action::Reuse);
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
            // A certificate, then text (allowed around blocks) up to `size` bytes.
            let mut system = system_ca.clone().into_bytes();
            while system.len() < size {
                system.extend_from_slice(b"# filler line of the system bundle\n");
            }
            system.truncate(size);
            std::fs::write(dir.path().join("system.pem"), &system).expect("write");
            let _ = std::fs::remove_file(store::cache_path(&s.bundle));
            let pass = prepare(&s, now);
            assert!(
                matches!(pass.action, Action::Build { .. }),
                "{size}: {pass:?}"
            );
            assert_eq!(pass.apply(), Ok(Some(s.bundle.as_path())), "{size}");
            assert_eq!(prepare(&s, now).action, Action::Reuse, "{size}");
        }
    }
}
