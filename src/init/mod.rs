//! The init: spawn the child, forward signals to it, reap every zombie, exit with its status.
//!
//! The lifecycle, in the order of this file:
//! 1. [`Signals::block`]: as soon as the command line is parsed, block every signal we forward
//!    plus SIGCHLD, so they queue instead of being lost (as PID 1 the kernel drops a signal whose
//!    disposition is the default) and are taken one by one with `sigtimedwait`: no handlers, no
//!    async code.
//! 2. [`run`] registers as child subreaper when not PID 1, then `spawn`s the child in its own
//!    process group with a clean signal state and, on a foreground TTY, the terminal.
//! 3. `supervise` loops: take a signal, forward it (or reap on SIGCHLD), and hard-kill the
//!    child's group once the stop deadline passes, until the child itself has been reaped.
//! 4. [`run`] turns the child's end into the exit status: its own, or 128+N; for uvicorn, a
//!    re-raised stop signal after a graceful shutdown is 0, and exit 0 nobody asked for is 1.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

use crate::exit;
use crate::plan::Plan;
use crate::sys::{self, Pid, Reaped, SigSet, signal_name};

/// Proof that the supervised signals are blocked; created once, before anything else runs.
pub struct Signals {
    /// What `sigtimedwait` takes: the forwarded signals plus SIGCHLD.
    waited: SigSet,
}

impl Signals {
    /// Blocks every signal the child should receive, and SIGCHLD.
    ///
    /// Forwarded: every catchable signal, real-time ones included, except
    /// - SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS: synchronous faults of vardr-init itself;
    ///   blocking them would turn a crash into a hang;
    /// - SIGPIPE, SIGXFSZ: raised by our own writes (a closed stderr); they are ignored here, as
    ///   Python ignores them, and must not be mistaken for a request to pass on;
    /// - SIGCHLD: ours, it means "reap now".
    pub fn block() -> io::Result<Signals> {
        let not_forwarded = [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGSYS,
            libc::SIGPIPE,
            libc::SIGXFSZ,
            libc::SIGCHLD,
        ];
        // 1..=31; 32 up to SIGRTMIN belong to the C library (thread cancellation, setxid).
        let standard = 1..=libc::SIGSYS;
        let realtime = sys::first_realtime_signal()..=sys::max_signal();
        let mut waited = SigSet::empty();
        for signal in standard.chain(realtime) {
            if !not_forwarded.contains(&signal) {
                waited.add(signal);
            }
        }
        waited.add(libc::SIGCHLD);
        waited.block()?;
        // Dispositions inherited from whoever started us: SIGCHLD ignored would make the kernel
        // auto-reap and hide the child's status; the others only matter while blocked, but a
        // known state is cheaper to reason about than an inherited one.
        for signal in 1..=sys::max_signal() {
            if waited.contains(signal) {
                let _ = sys::set_disposition(signal, false);
            }
        }
        let _ = sys::set_disposition(libc::SIGPIPE, true);
        let _ = sys::set_disposition(libc::SIGXFSZ, true);
        Ok(Signals { waited })
    }

    /// A stop signal, if one was sent and is still waiting to be taken.
    fn stop_pending(&self) -> Option<i32> {
        let pending = SigSet::pending().ok()?;
        STOP_SIGNALS
            .into_iter()
            .find(|&signal| pending.contains(signal))
    }
}

/// The signals that ask the child to stop: forwarding one starts the stop deadline, and one
/// arriving before the child started means it is not started.
const STOP_SIGNALS: [i32; 2] = [libc::SIGTERM, libc::SIGINT];

/// Runs the plan's command to completion and returns vardr-init's exit code.
pub fn run(plan: &Plan, signals: &Signals) -> u8 {
    let pid = sys::getpid();
    if pid != 1 {
        // Without this, orphans re-parent to the real init and nobody here reaps them.
        match sys::become_child_subreaper() {
            Ok(()) => debug!("not PID 1 (pid {pid}): registered as child subreaper"),
            Err(e) => warn!(
                "not PID 1 and cannot become child subreaper ({e}): orphans of the child will be reaped by the host's init, not vardr-init"
            ),
        }
    }
    // A stop requested while the certificates were handled: the command has not started, so
    // there is nothing to stop gracefully. Starting it only to kill it mid-import is not better.
    if let Some(signal) = signals.stop_pending() {
        let code = 128 + signal;
        warn!(
            "{} arrived during start-up: not starting {}; exiting {code}",
            signal_name(signal),
            plan.command_line()
        );
        return u8::try_from(code).unwrap_or(exit::FAILURE);
    }
    let child = match spawn(plan) {
        Ok(child) => child,
        Err(code) => return code,
    };
    info!("Running {} (pid {child})", plan.command_line());
    let ended = match supervise(child, plan.stop_timeout, signals) {
        Ok(ended) => ended,
        Err(code) => return code,
    };
    if plan.uvicorn.is_some() {
        // uvicorn's own conventions, which would otherwise read as the wrong verdict:
        match (ended.status.code(), ended.status.signal()) {
            (Some(0), _) if ended.stop_signal.is_none() => {
                // uvicorn exits 0 when the app exits at import, and with --workers when the app
                // cannot be found: never a success for a server nobody stopped.
                error!(
                    "uvicorn exited with status 0 although nobody asked it to stop (the app \
                     exited at import, or with --workers it could not be found): exiting 1"
                );
                return exit::FAILURE;
            }
            (None, Some(signal)) if Some(signal) == ended.stop_signal && !ended.killed => {
                // After a graceful shutdown uvicorn re-raises the signal it caught.
                info!(
                    "uvicorn shut down gracefully on {} (and re-raised it, as it does): exiting 0",
                    signal_name(signal)
                );
                return 0;
            }
            _ => {}
        }
    }
    exit_code(child, ended.status)
}

/// Starts the child. On failure, logs why and returns the exit code (127, 126 or 1).
fn spawn(plan: &Plan) -> Result<Pid, u8> {
    let take_terminal = sys::stdin_is_foreground_tty();
    let mut command = Command::new(&plan.program);
    command.args(&plan.args).envs(plan.child_env());
    for name in &plan.unset {
        command.env_remove(name);
    }
    // SAFETY: prepare_child makes only async-signal-safe calls, as pre_exec requires.
    unsafe { command.pre_exec(move || sys::prepare_child(take_terminal)) };
    match command.spawn() {
        // The `Child` handle is dropped unused: all waiting goes through `reap_zombies`.
        Ok(child) => Pid::try_from(child.id()).map_err(|_| exit::FAILURE),
        Err(e) => Err(report_spawn_error(plan, &e)),
    }
}

fn report_spawn_error(plan: &Plan, e: &io::Error) -> u8 {
    let program = plan.program.to_string_lossy();
    let looked_up = !program.contains('/');
    match (e.kind(), e.raw_os_error()) {
        (io::ErrorKind::NotFound, _) if looked_up => {
            error!(
                "command not found: {program:?} is not in any directory of PATH; give its full path or fix PATH"
            );
            exit::NOT_FOUND
        }
        (io::ErrorKind::NotFound, _) => {
            error!(
                "command not found: {program:?} does not exist (or it is a script whose #! interpreter does not exist)"
            );
            exit::NOT_FOUND
        }
        (io::ErrorKind::PermissionDenied, _) => {
            error!(
                "command not executable: {program:?}: {e}; check that it is a file, has the execute bit, and is not on a noexec mount"
            );
            exit::NOT_EXECUTABLE
        }
        (_, Some(libc::ENOEXEC)) => {
            error!(
                "command not executable: {program:?} is neither a binary for this machine nor a script starting with #!"
            );
            exit::NOT_EXECUTABLE
        }
        _ => {
            error!("cannot start {program:?}: {e}");
            exit::FAILURE
        }
    }
}

/// Where the child is in being stopped.
enum Stop {
    /// No SIGTERM/SIGINT forwarded yet.
    NotRequested,
    /// Forwarded; SIGKILL the group at this instant (only with a stop timeout).
    Deadline(Instant),
    /// Forwarded, and either there is no deadline or SIGKILL has been sent.
    Requested,
}

/// How the child ended, and what vardr-init had done to it by then.
struct Ended {
    status: ExitStatus,
    /// The first SIGTERM or SIGINT forwarded, if any: a stop was requested.
    stop_signal: Option<i32>,
    /// The deadline passed and SIGKILL was sent.
    killed: bool,
}

/// The main loop: returns once the child has been reaped, or the exit code if it was lost.
fn supervise(child: Pid, stop_timeout: Option<Duration>, signals: &Signals) -> Result<Ended, u8> {
    let mut stop = Stop::NotRequested;
    let mut stop_signal = None;
    let mut killed = false;
    loop {
        match reap_zombies(child) {
            Ok(Some(status)) => {
                return Ok(Ended {
                    status,
                    stop_signal,
                    killed,
                });
            }
            Ok(None) => {}
            Err(e) => {
                error!("lost track of child pid {child}: {e}");
                return Err(exit::FAILURE);
            }
        }
        let timeout = match stop {
            Stop::Deadline(at) => Some(at.saturating_duration_since(Instant::now())),
            Stop::NotRequested | Stop::Requested => None,
        };
        match signals.waited.wait(timeout) {
            Ok(Some(libc::SIGCHLD)) => {} // reaped at the top of the loop
            Ok(Some(signal)) => {
                forward(child, signal);
                if STOP_SIGNALS.contains(&signal) && matches!(stop, Stop::NotRequested) {
                    stop_signal = Some(signal);
                    // Config caps the timeout at a day; checked_add keeps PID 1 panic-free anyway.
                    let deadline = stop_timeout
                        .and_then(|timeout| Some((timeout, Instant::now().checked_add(timeout)?)));
                    stop = match deadline {
                        Some((timeout, at)) => {
                            info!(
                                "child pid {child} has {}s to exit before SIGKILL (VARDR_STOP_TIMEOUT)",
                                timeout.as_secs_f64()
                            );
                            Stop::Deadline(at)
                        }
                        None => Stop::Requested,
                    };
                }
            }
            Ok(None) => {} // timed out (the deadline) or interrupted
            Err(e) => {
                error!("cannot wait for signals: {e}");
                return Err(exit::FAILURE);
            }
        }
        // After every wake-up, not only on timeout: a stream of signals (SIGCHLD from orphans,
        // SIGWINCH) must not postpone the kill.
        if let Stop::Deadline(at) = stop
            && Instant::now() >= at
        {
            kill_at_deadline(child, stop_timeout.unwrap_or_default());
            stop = Stop::Requested;
            killed = true;
        }
    }
}

/// Signals go to the child alone, not its group: uvicorn's `--workers` parent relays them to its
/// workers itself, and a second SIGINT reaching it directly would make it force-exit.
fn forward(child: Pid, signal: i32) {
    // The signal first, the log line after: a stalled stderr must never delay the child's stop.
    let sent = sys::kill(child, signal);
    let name = signal_name(signal);
    if matches!(signal, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT) {
        info!("Forwarding {name} to pid {child}");
    } else {
        debug!("Forwarding {name} to pid {child}");
    }
    if let Err(e) = sent
        && e.raw_os_error() != Some(libc::ESRCH)
    {
        warn!("cannot forward {name} to pid {child}: {e}");
    }
}

fn kill_at_deadline(child: Pid, timeout: Duration) {
    warn!(
        "child pid {child} still running {}s after the stop signal (VARDR_STOP_TIMEOUT): sending SIGKILL to its process group",
        timeout.as_secs_f64()
    );
    // The group takes the grandchildren with it; the direct kill covers a child that left the
    // group (setsid). ESRCH means it is already gone.
    let _ = sys::kill_group(child, libc::SIGKILL);
    let _ = sys::kill(child, libc::SIGKILL);
}

/// Reaps every zombie there is; returns the child's wait status once the child was among them.
fn reap_zombies(child: Pid) -> io::Result<Option<ExitStatus>> {
    let mut child_status = None;
    loop {
        match sys::reap_one()? {
            Reaped::Child(pid, raw) if pid == child => {
                child_status = Some(ExitStatus::from_raw(raw));
            }
            Reaped::Child(pid, raw) => {
                debug!("reaped orphan pid {pid} ({})", ExitStatus::from_raw(raw));
            }
            Reaped::NoneReady => return Ok(child_status),
            Reaped::NoChildren => {
                return match child_status {
                    Some(status) => Ok(Some(status)),
                    // Only possible if someone else reaped it (SIGCHLD ignored behind our back).
                    None => Err(io::Error::other("it was reaped by someone else")),
                };
            }
        }
    }
}

/// The child's exit code, or 128+N when signal N killed it (the shell's convention).
fn exit_code(child: Pid, status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        info!("child pid {child} exited with status {code}");
        return u8::try_from(code & 0xff).unwrap_or(exit::FAILURE);
    }
    let signal = status.signal().unwrap_or(0);
    let code = u8::try_from(128 + signal).unwrap_or(u8::MAX);
    info!(
        "child pid {child} was killed by {}; exiting with {code}",
        signal_name(signal)
    );
    code
}
