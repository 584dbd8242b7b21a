//! Short-lived forked workers, so that PID 1 never parses what a volume or the app provides (the
//! privilege separation of OpenSSH's pre-authentication child, on a small scale).
//!
//! [`run`] forks; the child runs a job, sends its result serialised with `serde_json` on a pipe,
//! and exits. The parent reads the pipe until end of file or the [`Worker::deadline`], then
//! judges how the child ended. A parser defect (`panic = "abort"`), a stack overflow, an
//! allocation past [`Worker::memory_limit`], a kill or a hang ends the worker, never PID 1: the
//! parent gets a [`Failure`] that says which, and what the job said it was doing last
//! ([`Progress::doing`]), so the message can name the file it was reading. Whatever the job
//! allocated goes with the worker's address space.
//!
//! On the pipe, one JSON value a line: any number of `{"Doing":"..."}`, then `{"Done":RESULT}`.
//! `serde_json` writes no raw newline inside a value, so a line is a message.

use std::fmt;
use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::sys::{self, Forked, Pid, signal_name};

/// What a worker is called in messages, and its bounds.
#[derive(Clone, Copy, Debug)]
pub struct Worker {
    /// For messages: `the certificate worker`, `the app discovery worker`.
    pub name: &'static str,
    /// Past it the worker is killed and the run is told it timed out.
    pub deadline: Duration,
    /// The most the worker may send; more is refused as not a result.
    pub max_result_bytes: usize,
    /// The worker's address space (`RLIMIT_AS`), if bounded: an allocation past it aborts the
    /// worker (SIGABRT).
    pub memory_limit: Option<u64>,
    /// Whether [`run`] waits for the worker's exit once the whole result has come.
    pub reap: Reap,
}

/// Who reaps a worker that sent its whole result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reap {
    /// [`run`] waits for its exit: the caller is the only one who would reap it (the watcher).
    Now,
    /// Its exit is its last act: it is reaped with the other zombies (the supervisor reaps every
    /// child; a command's exit leaves it to init). Not waiting for its teardown keeps that off
    /// the start-up time.
    Later,
}

/// How a worker failed to deliver its result.
#[derive(Debug)]
pub enum Error {
    /// The worker could not be started.
    Start(io::Error),
    /// It died of a signal (a crash: SIGSEGV, SIGABRT from a panic, a stack overflow or the
    /// memory bound; or killed from outside).
    Killed { pid: Pid, signal: i32 },
    /// It exited with a failure status.
    Failed { pid: Pid, code: i32 },
    /// It ran past its deadline and was killed.
    TimedOut { pid: Pid },
    /// What it sent is not a result.
    Garbled { pid: Pid, error: String },
    /// The pipe failed.
    Read { pid: Pid, error: io::Error },
}

/// A worker's failure, with what it was doing (its last [`Progress::doing`]) and its bounds.
#[derive(Debug)]
pub struct Failure {
    pub worker: Worker,
    pub error: Error,
    /// What the job said last that it was doing, such as `reading /app/pyproject.toml`.
    pub doing: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.worker.name;
        let doing = match &self.doing {
            Some(what) => format!(" while {what}"),
            None => String::new(),
        };
        match &self.error {
            Error::Start(e) => write!(f, "cannot start {name}: {e}"),
            Error::Killed { pid, signal } => {
                write!(
                    f,
                    "{name} (pid {pid}) died of {}{doing}",
                    signal_name(*signal)
                )?;
                if *signal == libc::SIGABRT {
                    write!(f, " (a defect, a stack overflow")?;
                    if let Some(bytes) = self.worker.memory_limit {
                        write!(f, ", or its memory bound of {} MiB reached", bytes >> 20)?;
                    }
                    write!(f, ")")?;
                }
                Ok(())
            }
            Error::Failed { pid, code } => write!(
                f,
                "{name} (pid {pid}) exited with status {code}{doing} before sending its result"
            ),
            Error::TimedOut { pid } => write!(
                f,
                "{name} (pid {pid}) ran past its {}s deadline{doing} and was killed",
                self.worker.deadline.as_secs()
            ),
            Error::Garbled { pid, error } => write!(
                f,
                "{name} (pid {pid}) sent a result that does not parse: {error}"
            ),
            Error::Read { pid, error } => {
                write!(f, "cannot read the result of {name} (pid {pid}): {error}")
            }
        }
    }
}

/// The job's line to its parent before its result: what it is doing now, so that a crash or a
/// hang there is said with it.
pub struct Progress {
    writer: PipeWriter,
}

impl Progress {
    /// Says what the job does next (`reading /app/main.py`); the last one said is in the
    /// [`Failure`] if the worker dies before its result. Best effort: a pipe that fails now fails
    /// the result too.
    pub fn doing(&mut self, what: &str) {
        let _ = self.send(&Outgoing::<()>::Doing(what));
    }

    fn send<T: Serialize>(&mut self, message: &Outgoing<'_, T>) -> io::Result<()> {
        // One serialiser for every JSON in the binary: into a Vec, then written whole.
        let mut bytes = serde_json::to_vec(message).map_err(io::Error::from)?;
        bytes.push(b'\n');
        self.writer.write_all(&bytes)
    }
}

#[derive(Serialize)]
enum Outgoing<'a, T> {
    Doing(&'a str),
    Done(&'a T),
}

#[derive(serde::Deserialize)]
enum Incoming<T> {
    Doing(String),
    Done(T),
}

/// Runs `job` in a forked worker and returns its result. A stop signal arriving meanwhile waits
/// (blocked in PID 1 and so in the worker, which inherits the mask): the job completes, and the
/// supervisor then starts nothing.
pub fn run<T, F>(worker: Worker, job: F) -> Result<T, Failure>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce(&mut Progress) -> T,
{
    let mut job = Some(job);
    // Only the serialising is generic: the fork, the reading and the judging are one function.
    let Sent {
        pid,
        until,
        bytes,
        read,
    } = fork(worker, &mut |progress| {
        let job = job.take()?;
        let result = job(progress);
        progress.send(&Outgoing::Done(&result)).ok()
    })?;
    let (doing, done) = messages::<T>(&bytes);
    let done = match done {
        Some(Ok(result)) if read.is_ok() => {
            // A whole result is the worker's last act: it is exiting.
            if worker.reap == Reap::Now {
                let _ = sys::reap_within(pid, until);
            }
            return Ok(result);
        }
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    Err(Failure {
        worker,
        error: ended(pid, until, read, done),
        doing,
    })
}

/// What a worker sent, and whether its end came in time.
struct Sent {
    pid: Pid,
    until: Instant,
    bytes: Vec<u8>,
    read: Result<(), Error>,
}

/// Forks the worker, which runs `job` (it sends its result itself) and exits; returns what it
/// sent.
fn fork(worker: Worker, job: &mut dyn FnMut(&mut Progress) -> Option<()>) -> Result<Sent, Failure> {
    let fail = |error| Failure {
        worker,
        error: Error::Start(error),
        doing: None,
    };
    // std's pipe is close-on-exec at both ends: the app never inherits either.
    let (reader, writer) = io::pipe().map_err(fail)?;
    let parent = sys::getpid();
    match sys::fork().map_err(fail)? {
        Forked::Child => {
            drop(reader);
            // A worker whose parent is gone has nobody to report to (and must not write on).
            if !sys::die_with_parent(parent) {
                sys::exit_now(1);
            }
            if let Some(bytes) = worker.memory_limit
                && sys::limit_address_space(bytes).is_err()
            {
                sys::exit_now(1);
            }
            let sent = job(&mut Progress { writer });
            sys::exit_now(if sent.is_some() { 0 } else { 1 })
        }
        Forked::Parent(pid) => {
            drop(writer);
            let until = Instant::now() + worker.deadline;
            let (bytes, read) = collect(reader, pid, worker.max_result_bytes, until);
            if read.is_err() {
                let _ = sys::kill(pid, libc::SIGKILL);
            }
            Ok(Sent {
                pid,
                until,
                bytes,
                read,
            })
        }
    }
}

/// The last `Doing` the worker sent, and its result (or why the last line is not one).
fn messages<T: DeserializeOwned>(bytes: &[u8]) -> (Option<String>, Option<serde_json::Result<T>>) {
    let mut doing = None;
    let mut done = None;
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Incoming<T>>(line) {
            Ok(Incoming::Doing(what)) => doing = Some(what),
            Ok(Incoming::Done(result)) => done = Some(Ok(result)),
            Err(e) => done = Some(Err(e)),
        }
    }
    (doing, done)
}

/// Why no result came: the failed read, else how the worker ended (`done`: why its last line
/// is not a result, if it sent one).
fn ended(pid: Pid, until: Instant, read: Result<(), Error>, done: Option<String>) -> Error {
    let status = sys::reap_within(pid, until);
    if let Err(error) = read {
        return error;
    }
    match status.map(|s| (s.code(), s.signal())) {
        Some((Some(0), _)) => Error::Garbled {
            pid,
            error: done.unwrap_or_else(|| "no result".to_owned()),
        },
        Some((Some(code), _)) => Error::Failed { pid, code },
        Some((None, signal)) => Error::Killed {
            pid,
            signal: signal.unwrap_or(0),
        },
        None => {
            // Closed its pipe, then hung instead of exiting: killed, and reaped.
            let _ = sys::kill(pid, libc::SIGKILL);
            let _ = sys::wait_pid(pid, true);
            Error::TimedOut { pid }
        }
    }
}

/// The worker's output, read until end of file, and whether that end came (within `until` and
/// `max` bytes): what came before a failure is kept, for the last `Doing`.
fn collect(
    mut reader: PipeReader,
    pid: Pid,
    max: usize,
    until: Instant,
) -> (Vec<u8>, Result<(), Error>) {
    let mut bytes = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (bytes, Err(Error::TimedOut { pid }));
        }
        match sys::wait_readable(reader.as_fd(), left) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(error) => return (bytes, Err(Error::Read { pid, error })),
        }
        match reader.read(&mut chunk) {
            Ok(0) => return (bytes, Ok(())),
            Ok(n) if bytes.len() + n <= max => bytes.extend_from_slice(&chunk[..n]),
            Ok(_) => {
                let error = format!("over {max} bytes");
                return (bytes, Err(Error::Garbled { pid, error }));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return (bytes, Err(Error::Read { pid, error })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: Worker = Worker {
        name: "the test worker",
        deadline: Duration::from_secs(5),
        max_result_bytes: 1024,
        memory_limit: None,
        reap: Reap::Now,
    };

    /// This test process's address space now, from /proc: a bound must leave room above it.
    fn address_space() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc");
        let line = status.lines().find_map(|l| l.strip_prefix("VmSize:"));
        let kib: Option<u64> = line.and_then(|l| l.trim().strip_suffix(" kB")?.trim().parse().ok());
        kib.expect("VmSize") << 10
    }

    #[test]
    fn a_result_crosses_the_pipe() {
        let got = run(TEST, |progress| {
            progress.doing("counting");
            vec!["a\nb".to_owned(), "c".to_owned()]
        });
        assert_eq!(got.expect("result"), ["a\nb", "c"]);
    }

    #[test]
    fn a_crash_is_judged_and_names_what_it_was_doing() {
        let bounded = Worker {
            memory_limit: Some(address_space() + (64 << 20)),
            ..TEST
        };
        let failure = run(bounded, |progress| -> u8 {
            progress.doing("reading /app/x.toml");
            std::process::abort()
        })
        .expect_err("aborted");
        assert!(
            matches!(
                failure.error,
                Error::Killed {
                    signal: libc::SIGABRT,
                    ..
                }
            ),
            "{failure:?}"
        );
        let message = failure.to_string();
        assert!(
            message.starts_with("the test worker (pid ")
                && message.contains("died of SIGABRT while reading /app/x.toml")
                && message.contains(", or its memory bound of "),
            "{message}"
        );
    }

    #[test]
    fn the_memory_bound_holds() {
        let bounded = Worker {
            memory_limit: Some(address_space() + (128 << 20)),
            ..TEST
        };
        let small = run(bounded, |_| vec![1u8; 16 << 20].len());
        assert_eq!(small.expect("within the bound"), 16 << 20);
        let failure = run(bounded, |_| vec![1u8; 512 << 20].len()).expect_err("over the bound");
        assert!(
            matches!(
                failure.error,
                Error::Killed {
                    signal: libc::SIGABRT,
                    ..
                }
            ),
            "{failure:?}"
        );
    }

    #[test]
    fn exits_hangs_and_oversized_results() {
        let failure = run(TEST, |_| -> u8 { sys::exit_now(3) }).expect_err("exit 3");
        assert!(
            matches!(failure.error, Error::Failed { code: 3, .. }),
            "{failure:?}"
        );
        let quick = Worker {
            deadline: Duration::from_millis(200),
            ..TEST
        };
        let failure = run(quick, |progress| -> u8 {
            progress.doing("waiting");
            std::thread::sleep(Duration::from_secs(10));
            0
        })
        .expect_err("hung");
        assert!(
            matches!(failure.error, Error::TimedOut { .. }),
            "{failure:?}"
        );
        assert_eq!(failure.doing.as_deref(), Some("waiting"));
        let failure = run(TEST, |_| "x".repeat(4096)).expect_err("too big");
        assert!(
            matches!(failure.error, Error::Garbled { .. }),
            "{failure:?}"
        );
    }
}
