//! The certificate pass in a short-lived worker process, so that PID 1 never parses untrusted
//! bytes (the privilege separation of OpenSSH's pre-authentication child, on a small scale).
//!
//! vardr-init forks; the child runs [`super::pass`], writes its [`Report`] as one JSON value into
//! a pipe, and exits. The parent reads the pipe until end of file, then reaps the child. A
//! parser defect (`panic = "abort"`), a crash, a kill or a hang past [`DEADLINE`] ends the worker,
//! never PID 1: the parent gets a [`WorkerError`] that says which, and the service starts on the
//! system trust. Whatever the pass allocated goes with the worker's address space.

use std::fmt;
use std::io::PipeReader;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime};

use super::rules::Profile;
use super::summary::{self, BundleStatus, Outcome, Report, Trigger};
use super::{Mode, pass};
use crate::config::CertSettings;
use crate::sys::{self, Forked, Pid, signal_name};

/// How long a pass may take: 10,000 files or 64 MiB take a few seconds; a minute means a hang
/// (a stalled network file system, a defect), and the service must not wait for ever.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A report lists at most 10,001 files with short reasons: far below this.
const MAX_REPORT_BYTES: usize = 64 * 1024 * 1024;

/// Why no report came back.
#[derive(Debug)]
pub enum WorkerError {
    /// The worker could not be started.
    Start(io::Error),
    /// It died of a signal (a crash: SIGSEGV, SIGABRT from a panic; or killed from outside).
    Killed { pid: Pid, signal: i32 },
    /// It exited with a failure status.
    Failed { pid: Pid, code: i32 },
    /// It ran past [`DEADLINE`] and was killed.
    TimedOut { pid: Pid },
    /// What it sent is not a report.
    Garbled { pid: Pid, error: String },
    /// The pipe failed.
    Read { pid: Pid, error: io::Error },
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Start(e) => write!(f, "cannot start the certificate worker: {e}"),
            WorkerError::Killed { pid, signal } => write!(
                f,
                "the certificate worker (pid {pid}) died of {}: a defect or a kill, not the \
                 certificates' fault as such; please report it with the files in the certs \
                 directory",
                signal_name(*signal)
            ),
            WorkerError::Failed { pid, code } => write!(
                f,
                "the certificate worker (pid {pid}) exited with status {code} before sending its \
                 report"
            ),
            WorkerError::TimedOut { pid } => write!(
                f,
                "the certificate worker (pid {pid}) ran past its {}s deadline and was killed: is \
                 the certs directory on a stalled file system?",
                DEADLINE.as_secs()
            ),
            WorkerError::Garbled { pid, error } => write!(
                f,
                "the certificate worker (pid {pid}) sent a report that does not parse: {error}"
            ),
            WorkerError::Read { pid, error } => write!(
                f,
                "cannot read the certificate worker's (pid {pid}) report: {error}"
            ),
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
    // std's pipe is close-on-exec at both ends: the app never inherits either.
    let (reader, mut writer) = io::pipe().map_err(WorkerError::Start)?;
    let parent = sys::getpid();
    match sys::fork().map_err(WorkerError::Start)? {
        Forked::Child => {
            drop(reader);
            // A worker whose parent is gone has nobody to report to (and must not write on).
            if !sys::die_with_parent(parent) {
                sys::exit_now(1);
            }
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
                    if starts || !report.results.is_empty() {
                        summary::log_summary(Some(&report), outcome, &settings.bundle, None);
                    }
                }
                Reporting::Refresh { trigger } => log_refresh(&report, settings, trigger),
            }
            if reporting != Reporting::Full {
                report.results = Vec::new();
                report.warnings = Vec::new();
            }
            // One serialiser for every JSON in the binary: into a Vec, then written.
            let sent = serde_json::to_vec(&report)
                .map_err(io::Error::from)
                .and_then(|bytes| writer.write_all(&bytes));
            sys::exit_now(if sent.is_ok() { 0 } else { 1 })
        }
        Forked::Parent(pid) => {
            drop(writer);
            let until = Instant::now() + DEADLINE;
            let read = collect(reader, pid, until);
            if read.is_err() {
                let _ = sys::kill(pid, libc::SIGKILL);
            }
            // A whole report is the worker's last act: it is exiting, and is reaped with the
            // other zombies (the supervisor reaps every child; a command's exit leaves it to
            // init). Not waiting for its teardown keeps that off the start-up time. Anything less
            // than a whole report is judged by how the worker ended.
            if let Ok(bytes) = &read
                && let Ok(report) = serde_json::from_slice::<Report>(bytes)
            {
                // After start the watcher forks the worker, and nobody else would reap it.
                if matches!(reporting, Reporting::Refresh { .. }) {
                    let _ = sys::reap_within(pid, until);
                }
                return Ok(report);
            }
            let status = sys::reap_within(pid, until);
            let bytes = read?;
            match status {
                Some(status) => judge(pid, status, &bytes),
                None => {
                    // Sent its report, then hung instead of exiting: killed, and reaped.
                    let _ = sys::kill(pid, libc::SIGKILL);
                    let _ = sys::wait_pid(pid, true);
                    Err(WorkerError::TimedOut { pid })
                }
            }
        }
    }
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

/// The worker's output, read until end of file.
fn collect(mut reader: PipeReader, pid: Pid, until: Instant) -> Result<Vec<u8>, WorkerError> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(WorkerError::TimedOut { pid });
        }
        match sys::wait_readable(reader.as_fd(), left) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(error) => return Err(WorkerError::Read { pid, error }),
        }
        match reader.read(&mut chunk) {
            Ok(0) => return Ok(bytes),
            Ok(n) if bytes.len() + n <= MAX_REPORT_BYTES => bytes.extend_from_slice(&chunk[..n]),
            Ok(_) => {
                return Err(WorkerError::Garbled {
                    pid,
                    error: format!("over {MAX_REPORT_BYTES} bytes"),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(WorkerError::Read { pid, error }),
        }
    }
}

fn judge(pid: Pid, status: ExitStatus, bytes: &[u8]) -> Result<Report, WorkerError> {
    match (status.code(), status.signal()) {
        (Some(0), _) => serde_json::from_slice(bytes).map_err(|e| WorkerError::Garbled {
            pid,
            error: e.to_string(),
        }),
        (Some(code), _) => Err(WorkerError::Failed { pid, code }),
        (None, signal) => Err(WorkerError::Killed {
            pid,
            signal: signal.unwrap_or(0),
        }),
    }
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
