//! What a certificate pass ends with, as types: each file's verdict, the counts, what became of
//! the bundle. The worker sends a [`Report`] to PID 1 over a pipe; the logs, the
//! `certificate_import_summary` event and the dry-run plan are all rendered from it.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use std::time::SystemTime;

use crate::{events, info, log, warn};

use super::verdict::Reason;

/// One file of the certificates directory and its verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileResult {
    /// Its path under the directory, escaped so that it is one line and distinct from every
    /// other name (see [`super::scan::Input::display_name`]).
    pub name: String,
    pub verdict: FileVerdict,
    /// Rules an accepted file's CAs break that the runtime does not apply (another runtime
    /// would refuse them): logged as warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A file is accepted or rejected whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileVerdict {
    /// Every certificate in it is a CA that may enter the bundle: their subjects, in order.
    Accepted(Vec<String>),
    Rejected(Reason),
}

impl FileVerdict {
    pub fn is_accepted(&self) -> bool {
        matches!(self, FileVerdict::Accepted(_))
    }
}

/// The contract's `SUCCESS` / `FAILED: reason`.
impl fmt::Display for FileVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileVerdict::Accepted(_) => f.write_str("SUCCESS"),
            FileVerdict::Rejected(reason) => write!(f, "FAILED: {reason}"),
        }
    }
}

impl FileResult {
    /// The log line's and the plan's detail: the CAs accepted, or why the file was not.
    pub fn detail(&self) -> String {
        match &self.verdict {
            FileVerdict::Accepted(subjects) => match &subjects[..] {
                [one] => format!("1 CA certificate: {one}"),
                many => format!("{} CA certificates: {}", many.len(), many.join(", ")),
            },
            FileVerdict::Rejected(reason) => reason.to_string(),
        }
    }
}

/// What the pass decided to do with the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Planned {
    /// No accepted custom CA: no bundle, nothing exported, the system trust applies as is.
    Nothing,
    /// The bundle beside its cache record matches the inputs and is intact.
    Reuse,
    /// A new bundle (and cache record).
    Build,
    /// A re-check after start found new inputs, but the bundle on disk already holds what they
    /// make: only the cache record was written.
    Same,
}

impl Planned {
    /// As the dry-run plan says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Planned::Nothing => "none",
            Planned::Reuse => "reuse",
            Planned::Build => "build",
            Planned::Same => "unchanged",
        }
    }
}

/// What became of the bundle: whether the child gets it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BundleStatus {
    /// No accepted custom CA: nothing to export.
    NotNeeded,
    /// Reused, or written and verified (a dry run: would be): exported to the child.
    Ready,
    /// Strict mode refused the inputs ([`Report::refusals`]): nothing written, nothing started.
    Withheld,
    /// The bundle path cannot take it, or the write failed: the service starts on the system
    /// trust only (strict mode: not at all).
    Problem(String),
}

/// What a pass ended with, as the summary's `action` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Built,
    Reused,
    /// No accepted custom CA: nothing written, nothing exported.
    None,
    /// The bundle could not be written or verified, strict mode refused the inputs, or the
    /// worker failed.
    Failed,
    /// After start: the bundle was replaced by one built from changed inputs.
    Rebuilt,
    /// After start: the inputs changed, the bundle they make did not; nothing replaced.
    Unchanged,
    /// After start: the new inputs were refused (strict mode), the bundle could not be written,
    /// or the worker failed: the previous bundle stays.
    Kept,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Built => "built",
            Outcome::Reused => "reused",
            Outcome::None => "none",
            Outcome::Failed => "failed",
            Outcome::Rebuilt => "rebuilt",
            Outcome::Unchanged => "unchanged",
            Outcome::Kept => "kept",
        }
    }
}

/// Why a pass ran after start: the summary's `trigger`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// inotify saw a watched directory change.
    Change,
    /// The periodic re-check (`VARDR_CERTS_RECHECK`).
    Recheck,
    /// An accepted CA expired, or a rejected one became valid.
    Validity,
    /// The watcher's own pass once its watches are set (at start, and when restarted).
    Start,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Change => "change",
            Trigger::Recheck => "recheck",
            Trigger::Validity => "validity",
            Trigger::Start => "start",
        }
    }
}

/// What a pass found: each file's verdict and what the bundle holds. The one copy of it: the
/// pass fills it, the cache record keeps it (a reuse reports what the build found), the
/// [`Report`] carries it to PID 1.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub results: Vec<FileResult>,
    pub system_certificates: usize,
    pub custom_certificates: usize,
    pub duplicates: usize,
    /// When a verdict changes by itself (Unix seconds): the next accepted CA to expire or
    /// rejected one to become valid. The cache record holds until then.
    pub next_change: Option<i64>,
}

impl Summary {
    /// The summary's `successful_imports`.
    pub fn successful(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.verdict.is_accepted())
            .count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.successful()
    }
}

/// Everything PID 1 learns of a pass: no certificate bytes, no bundle bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The system bundle merged (or that would be), if one was found and usable.
    #[serde(with = "os_path")]
    pub system: Option<PathBuf>,
    /// Problems to log as warnings (the system bundle, the bundle's directory, the cache record).
    pub warnings: Vec<String>,
    pub summary: Summary,
    pub planned: Planned,
    pub bundle: BundleStatus,
    /// Why strict mode (`VARDR_CERTS_STRICT=true`) stops start-up; empty when it does not.
    pub refusals: Vec<String>,
    /// Whose verifier the verdicts match.
    pub profile: crate::config::TlsProfile,
    /// For a run that watches: the directories to watch (see `certs::watch`).
    #[serde(with = "os_paths")]
    pub watch: Vec<PathBuf>,
    /// The Python hook beside the bundle (`certifi.where()`), when the bundle is exported.
    pub hook: super::hook::HookStatus,
}

impl Report {
    pub fn successful(&self) -> usize {
        self.summary.successful()
    }

    pub fn failed(&self) -> usize {
        self.summary.failed()
    }

    /// The summary's `action`.
    pub fn outcome(&self) -> Outcome {
        match (&self.bundle, self.planned) {
            (BundleStatus::NotNeeded, _) => Outcome::None,
            (BundleStatus::Ready, Planned::Reuse | Planned::Same) => Outcome::Reused,
            (BundleStatus::Ready, Planned::Build) => Outcome::Built,
            (BundleStatus::Ready, Planned::Nothing) => Outcome::None,
            (BundleStatus::Withheld | BundleStatus::Problem(_), _) => Outcome::Failed,
        }
    }

    /// The summary's `action` for a pass after start; `Reused` means nothing changed at all.
    pub fn refresh_outcome(&self) -> Outcome {
        match (&self.bundle, self.planned) {
            (BundleStatus::Ready, Planned::Build) => Outcome::Rebuilt,
            (BundleStatus::Ready, Planned::Same) => Outcome::Unchanged,
            (BundleStatus::Ready, Planned::Reuse) => Outcome::Reused,
            _ => Outcome::Kept,
        }
    }

    /// Whether the child gets the bundle.
    pub fn exported(&self) -> bool {
        self.bundle == BundleStatus::Ready && self.planned != Planned::Nothing
    }
}

/// The summary for people: `vardr-init certs` without `--json`, and the run's text log.
/// `report` is `None` when the worker failed; `trigger` is `Some` after start.
pub fn text(
    report: Option<&Report>,
    outcome: Outcome,
    bundle: &Path,
    trigger: Option<Trigger>,
) -> String {
    let Some(report) = report else {
        let kept = match trigger {
            Some(_) => "the previous bundle is kept",
            None => "no bundle written",
        };
        return format!(
            "Certificate import: failed (the certificate worker did not finish); {kept}"
        );
    };
    let bundle = bundle.display();
    let mut what = match outcome {
        Outcome::Built => format!("built {bundle}"),
        Outcome::Reused => format!("reused {bundle} (unchanged)"),
        Outcome::Failed => "no bundle written".to_owned(),
        Outcome::None => "no bundle needed (no accepted custom CA)".to_owned(),
        Outcome::Rebuilt => format!("rebuilt {bundle}"),
        Outcome::Unchanged => format!("{bundle} unchanged (the same certificates)"),
        Outcome::Kept => format!("kept the previous bundle {bundle}"),
    };
    if let Some(trigger) = trigger {
        what = format!("{what} (trigger: {})", trigger.as_str());
    }
    format!(
        "Certificate import (judged for {}): {} accepted, {} rejected; {what}: {} system + {} \
         custom certificates, {} duplicates dropped",
        report.profile,
        report.successful(),
        report.failed(),
        report.summary.system_certificates,
        report.summary.custom_certificates,
        report.summary.duplicates
    )
}

/// The contract's `certificate_import_summary` event, keys in the contract's order.
#[derive(Serialize)]
#[serde(tag = "type", rename = "certificate_import_summary")]
pub struct SummaryEvent<'a> {
    pub timestamp: String,
    pub successful_imports: usize,
    pub failed_imports: usize,
    pub total_certificates: usize,
    #[serde(serialize_with = "verdict_map")]
    pub results: &'a [FileResult],
    pub action: &'static str,
    /// Why a pass after start ran (`change`, `recheck`, `validity`); absent at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<&'static str>,
    #[serde(serialize_with = "lossy")]
    pub bundle: Option<&'a Path>,
    #[serde(serialize_with = "lossy")]
    pub system_bundle: Option<&'a Path>,
    pub system_certificates: usize,
    pub duplicates: usize,
    /// Whose verifier the verdicts match (`python3.13`, `openssl`); absent when the worker failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_profile: Option<String>,
}

impl<'a> SummaryEvent<'a> {
    /// `report` is `None` when the worker failed: no results, action `failed`.
    pub fn new(
        report: Option<&'a Report>,
        outcome: Outcome,
        bundle: &'a Path,
        trigger: Option<Trigger>,
        timestamp: String,
    ) -> Self {
        SummaryEvent {
            timestamp,
            successful_imports: report.map_or(0, Report::successful),
            failed_imports: report.map_or(0, Report::failed),
            total_certificates: report.map_or(0, |r| r.summary.custom_certificates),
            results: report.map_or(&[], |r| &r.summary.results),
            action: outcome.as_str(),
            trigger: trigger.map(Trigger::as_str),
            bundle: (!matches!(outcome, Outcome::None | Outcome::Failed)).then_some(bundle),
            system_bundle: report.and_then(|r| r.system.as_deref()),
            system_certificates: report.map_or(0, |r| r.summary.system_certificates),
            duplicates: report.map_or(0, |r| r.summary.duplicates),
            tls_profile: report.map(|r| r.profile.to_string()),
        }
    }
}

/// `results` as the contract has it: `{"name": "SUCCESS" | "FAILED: reason", ...}`, in the
/// pass's (sorted) order. Names are distinct by construction, so no key hides another.
pub fn verdict_map<S: serde::Serializer>(
    results: &&[FileResult],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(results.iter().map(|r| (&r.name, r.verdict.to_string())))
}

/// A path for people and programs reading JSON: lossy UTF-8 (serde refuses non-UTF-8 paths).
pub fn lossy<S: serde::Serializer>(path: &Option<&Path>, serializer: S) -> Result<S::Ok, S::Error> {
    match path {
        Some(path) => serializer.serialize_str(&path.to_string_lossy()),
        None => serializer.serialize_none(),
    }
}

/// An optional path as its exact bytes, for the pipe: paths need not be UTF-8.
mod os_path {
    use super::*;

    pub fn serialize<S: serde::Serializer>(
        path: &Option<PathBuf>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        path.as_ref()
            .map(|p| p.as_os_str().as_bytes())
            .serialize(serializer)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<PathBuf>, D::Error> {
        let bytes: Option<Vec<u8>> = Option::deserialize(deserializer)?;
        Ok(bytes.map(|b| PathBuf::from(OsString::from_vec(b))))
    }
}

/// Paths as their exact bytes, for the pipe: one byte string, NUL between paths (no path holds
/// one), so it shares the byte-string code of [`os_path`].
mod os_paths {
    use super::*;

    pub fn serialize<S: serde::Serializer>(
        paths: &[PathBuf],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let joined = paths
            .iter()
            .map(|p| p.as_os_str().as_bytes())
            .collect::<Vec<_>>();
        Some(joined.join(&0)).serialize(serializer)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<PathBuf>, D::Error> {
        let joined: Option<Vec<u8>> = Option::deserialize(deserializer)?;
        let joined = joined.unwrap_or_default();
        Ok(joined
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(OsString::from_vec(p.to_vec())))
            .collect())
    }
}

/// The pass's one summary, logged: the contract's JSON event in JSON mode, a text line otherwise.
pub fn log_summary(
    report: Option<&Report>,
    outcome: Outcome,
    bundle: &Path,
    trigger: Option<Trigger>,
) {
    if log::json() {
        let event = SummaryEvent::new(
            report,
            outcome,
            bundle,
            trigger,
            events::timestamp(SystemTime::now()),
        );
        log::write_line(&events::line(&event));
    } else {
        info!("{}", text(report, outcome, bundle, trigger));
    }
}

pub fn log_verdicts(report: &Report) {
    for warning in &report.warnings {
        warn!("{warning}");
    }
    let reused = report.planned == Planned::Reuse;
    if reused {
        info!("Certificates unchanged, skipping import");
    }
    for result in &report.summary.results {
        if !reused {
            if result.verdict.is_accepted() {
                info!("Accepted {}: {}", result.name, result.detail());
            } else {
                warn!("Rejected {}: {}", result.name, result.detail());
            }
        }
        for warning in &result.warnings {
            warn!(
                "{}: {warning} (accepted: the verdicts are for {})",
                result.name, report.profile
            );
        }
    }
}
