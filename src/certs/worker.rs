//! The certificate pass in a short-lived worker process, so that PID 1 never parses untrusted
//! bytes (the privilege separation of OpenSSH's pre-authentication child, on a small scale).
//!
//! A [`crate::worker`]: vardr-init forks; the child runs [`super::pass`], sends its [`Report`]
//! through a pipe, and exits. A parser defect (`panic = "abort"`), a crash, a kill or a hang past
//! [`DEADLINE`] ends the worker, never PID 1: the parent gets a [`WorkerError`] that says which,
//! and the service starts on the system trust. Whatever the pass allocated goes with the
//! worker's address space.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::rules::Profile;
use super::summary::{self, BundleStatus, Outcome, Report, Trigger};
use super::{Mode, pass};
use crate::config::CertSettings;
use crate::worker::{Error, Failure, Reap, Worker};

/// How long a pass may take: 10,000 files or 64 MiB take a few seconds; a minute means a hang
/// (a stalled network file system, a defect), and the service must not wait for ever.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The worker: a report lists at most 10,001 files with short reasons, far below 64 MiB. No
/// memory bound: a pass over 10,000 files or 64 MiB has not been measured against one, and the
/// pass already bounds what it reads (the limits in `scan.rs`).
const CERTIFICATE_WORKER: Worker = Worker {
    name: "the certificate worker",
    deadline: DEADLINE,
    max_result_bytes: 64 * 1024 * 1024,
    memory_limit: None,
    reap: Reap::Later,
};

/// Why no report came back: the worker's [`Failure`] (which worker, how it ended, its pid),
/// said with what it means for the certificates.
#[derive(Debug)]
pub struct WorkerError(pub Failure);

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        match self.0.error {
            Error::Killed { .. } => write!(
                f,
                ": not the certificates' fault as such (a defect or a kill); please report it \
                 with the files in the certs directory"
            ),
            Error::TimedOut { .. } => {
                write!(f, ": is the certs directory on a stalled file system?")
            }
            _ => Ok(()),
        }
    }
}

/// Runs the pass in a worker and returns its report. A stop signal arriving meanwhile waits
/// (blocked in PID 1 and in the worker): the pass completes, so the bundle is never left half
/// done, and the supervisor then starts nothing.
pub fn run(
    settings: &CertSettings,
    profile: Profile,
    now: SystemTime,
    mode: Mode,
) -> Result<Report, WorkerError> {
    run_as(settings, profile, now, mode, Reporting::Full)
}

/// Who logs the pass, and so how much of the report crosses the pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reporting {
    /// The whole report comes back (`certs`, `--dry-run` print it).
    Full,
    /// A run: the worker logs the warnings, each file's verdict and the summary itself, and
    /// sends only what decides the launch (no per-file results): PID 1 never holds the pass's
    /// data, not even as freed heap. `starts` is false when the run will not start whatever the
    /// pass finds (the app was not found): the summary then says `failed`.
    Logged { starts: bool },
    /// A pass after start ([`super::Mode::Refresh`]): like `Logged`, but a pass that changed
    /// nothing logs nothing (at info), and the summary says why it ran and what became of the
    /// bundle (`rebuilt`, `unchanged`, `kept`).
    Refresh { trigger: Trigger },
}

/// [`run`], with the choice of who logs the pass.
pub fn run_as(
    settings: &CertSettings,
    profile: Profile,
    now: SystemTime,
    mode: Mode,
    reporting: Reporting,
) -> Result<Report, WorkerError> {
    let worker = Worker {
        // After start the watcher forks the worker, and nobody else would reap it.
        reap: match reporting {
            Reporting::Refresh { .. } => Reap::Now,
            _ => Reap::Later,
        },
        ..CERTIFICATE_WORKER
    };
    crate::worker::run(worker, |_| {
        let mut report = pass(settings, profile, now, mode);
        match reporting {
            Reporting::Full => {}
            Reporting::Logged { starts } => {
                summary::log_verdicts(&report);
                // Strict mode's refusals already make the outcome `failed` (the bundle is
                // withheld).
                let outcome = if starts {
                    report.outcome()
                } else {
                    Outcome::Failed
                };
                if starts || !report.summary.results.is_empty() {
                    summary::log_summary(Some(&report), outcome, &settings.bundle, None);
                }
            }
            Reporting::Refresh { trigger } => log_refresh(&report, settings, trigger),
        }
        if reporting != Reporting::Full {
            report.summary.results = Vec::new();
            report.warnings = Vec::new();
        }
        report
    })
    .map_err(WorkerError)
}

/// A pass after start, logged: nothing when nothing changed; otherwise the verdicts, why the
/// previous bundle is kept if it is, and the summary.
fn log_refresh(report: &Report, settings: &CertSettings, trigger: Trigger) {
    let outcome = report.refresh_outcome();
    if outcome == Outcome::Reused {
        crate::debug!(
            "certificates re-checked ({}): nothing changed",
            trigger.as_str()
        );
        return;
    }
    summary::log_verdicts(report);
    if outcome == Outcome::Kept {
        for refusal in &report.refusals {
            crate::error!("{refusal}");
        }
        let why = match &report.bundle {
            BundleStatus::Problem(problem) => problem.clone(),
            BundleStatus::Withheld => "strict mode refused the new certificates".to_owned(),
            _ => "no accepted custom CA and no usable system bundle: the bundle would be empty"
                .to_owned(),
        };
        crate::error!(
            "{why}: kept the previous bundle {}",
            settings.bundle.display()
        );
    }
    summary::log_summary(Some(report), outcome, &settings.bundle, Some(trigger));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &std::path::Path) -> CertSettings {
        CertSettings {
            dir: dir.join("certs"),
            bundle: dir.join("bundle.pem"),
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

    /// The report that comes back through the pipe is the one the pass made in-process.
    #[test]
    fn the_report_crosses_the_pipe_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = settings(dir.path());
        std::fs::create_dir(&s.dir).expect("mkdir");
        std::fs::write(s.dir.join("junk.pem"), "not a certificate").expect("write");
        let now = SystemTime::now();
        let direct = pass(&s, Profile::OpenSsl, now, Mode::Check);
        let piped = run(&s, Profile::OpenSsl, now, Mode::Check).expect("report");
        assert_eq!(piped, direct);
        assert_eq!(piped.failed(), 1);
    }
}
