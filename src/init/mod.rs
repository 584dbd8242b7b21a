//! The init: spawn the child, forward signals to it, reap every zombie, exit with its status.
//!
//! The lifecycle, and where each step lives:
//! 1. [`Signals::block`] (`signals.rs`): as soon as the command line is parsed, block every
//!    signal we forward plus SIGCHLD, so they queue instead of being lost (as PID 1 the kernel
//!    drops a signal whose disposition is the default) and are taken one by one with
//!    `sigtimedwait`: no handlers, no async code.
//! 2. [`run`] (here) registers as child subreaper when not PID 1, then `spawn` (`spawn.rs`)
//!    starts the child in its own process group with a clean signal state and, on a foreground
//!    TTY, the terminal.
//! 3. `supervise` (`supervise.rs`) loops: reap, wait, dispatch the event to its handler (a
//!    signal, the child's exit, a reload request), tick the timers (the drain's end, the
//!    pre-start time limit, the SIGKILL deadline), until the child itself has been reaped.
//! 4. [`run`] turns the child's end into the exit status through the launch's [`ExitPolicy`]:
//!    its own status, or 128+N; for a server (the app side says which child is one), a re-raised
//!    stop signal after a graceful shutdown is 0, exit 0 nobody asked for is 1, and uvicorn's
//!    exit 3 is named a start-up failure.
//! 5. `clean_up` (here): what the child left running in vardr-init's tree gets SIGTERM, then
//!    SIGKILL.
//!
//! A pre-start task goes through steps 2 and 3 as a launch of its own before the main one; the
//! main one starts only if it exited 0 and no stop was asked for meanwhile.
//!
//! With [`Reloads`] (`reloads.rs`: a watcher of the certificates runs), step 3 also waits on its
//! pipe: a rebuilt bundle gets the child SIGHUP, or a restart: SIGTERM, and once it has ended
//! (SIGKILL at the stop timeout), the same launch again. A stop asked for meanwhile turns the
//! restart into the stop. A watcher that dies is started again after a backoff. Before step 5
//! the watcher and its process group are stopped: they are ours, not something the child left.
//!
//! The supervisor takes only what it must launch ([`Launch`]): it knows nothing of certificates,
//! plans or uvicorn.

mod reloads;
mod signals;
mod spawn;
mod supervise;

pub use reloads::{Reloads, StartWatcher};
pub use signals::Signals;
pub use spawn::foresee;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crate::{debug, error, info, warn};

use crate::exit;
use crate::sys::{self, Pid, Reaped, signal_name};

use spawn::spawn;
use supervise::supervise;

/// What to start and how to judge its end: all the supervisor is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Looked up on `PATH` when it has no `/`.
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Variables set for the child, on top of vardr-init's own environment.
    pub set_env: Vec<(&'static str, OsString)>,
    /// Variables removed from the child's environment.
    pub unset_env: Vec<&'static str>,
    /// Hard-kill deadline after the first forwarded SIGTERM/SIGINT.
    pub stop_timeout: Option<Duration>,
    /// `VARDR_STOP_DELAY`: the first SIGTERM is held this long (the child keeps serving) before
    /// it is forwarded; a second SIGTERM or a SIGINT goes through at once.
    pub stop_delay: Option<Duration>,
    /// `VARDR_PRESTART_TIMEOUT`: after this long the child gets SIGTERM as if one had been sent,
    /// then SIGKILL at the stop timeout (or [`SHORT_STOP`] without one).
    pub run_timeout: Option<Duration>,
    pub policy: ExitPolicy,
}

/// How long leftovers, and a task past its `VARDR_PRESTART_TIMEOUT`, get between SIGTERM and
/// SIGKILL when `VARDR_STOP_TIMEOUT` is off.
pub const SHORT_STOP: Duration = Duration::from_secs(5);

/// How the child's end becomes vardr-init's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitPolicy {
    /// The child's own status (128+N for signal N): any command after `--`.
    Status,
    /// A server that runs until it is asked to stop, named for the logs. After a graceful stop it
    /// re-raises the stop signal (that is 0), and it exits 0 when the app exits at import or
    /// cannot be found (that is a failure, unless the stop was typed at its terminal).
    Server { name: &'static str },
}
impl Launch {
    /// The command line as a user could paste it into a shell.
    pub fn command_line(&self) -> CommandLine<'_> {
        CommandLine(self)
    }
}
/// Runs the pre-start task, if any, then the launch, to completion; cleans up what they left
/// running; returns vardr-init's exit code.
pub fn run(
    prestart: Option<&Launch>,
    launch: &Launch,
    signals: &Signals,
    mut reloads: Option<Reloads>,
) -> u8 {
    let reaper = become_reaper();
    let code = run_in_turn(prestart, launch, signals, reloads.as_mut());
    if let Some(reloads) = &reloads {
        reloads.stop(signals);
    }
    if reaper {
        // What is left of the watcher's group (stuck in the kernel past the wait) is ours.
        let own = reloads.as_ref().map_or(0, |r| r.watcher);
        clean_up(launch.stop_timeout, signals, own);
    }
    code
}

/// Whether orphans come to vardr-init: as PID 1, or once registered as child subreaper.
fn become_reaper() -> bool {
    let pid = sys::getpid();
    if pid == 1 {
        return true;
    }
    // Without this, orphans re-parent to the real init and nobody here reaps them.
    match sys::become_child_subreaper() {
        Ok(()) => {
            debug!("not PID 1 (pid {pid}): registered as child subreaper");
            true
        }
        Err(e) => {
            warn!(
                "not PID 1 and cannot become child subreaper ({e}): orphans of the child will be reaped by the host's init, not vardr-init"
            );
            false
        }
    }
}

fn run_in_turn(
    prestart: Option<&Launch>,
    launch: &Launch,
    signals: &Signals,
    mut reloads: Option<&mut Reloads>,
) -> u8 {
    if let Some(task) = prestart {
        info!("pre-start task first: {}", task.command_line());
        // The watcher is tended meanwhile; its requests wait for the app.
        if let Some(reloads) = reloads.as_deref_mut() {
            reloads.held = true;
        }
        let ended = match supervise_child(task, signals, reloads.as_deref_mut()) {
            Ok(ended) => ended,
            Err(code) => {
                error!("pre-start task not run: app not started; exiting {code}");
                return code;
            }
        };
        let code = task.policy.exit_code(&ended);
        if code != 0 || ended.stop_signal.is_some() {
            // A stop asked for meanwhile ends the run too, whatever the task made of it.
            let stop = ended.stop_signal.map(signal_name).unwrap_or_default();
            error!("pre-start task ended ({stop} exit {code}): app not started; exiting {code}");
            return code;
        }
        info!("pre-start task done: starting {}", launch.command_line());
    }
    // A bundle rebuilt before the app starts is read by it at start: nothing to reload.
    if let Some(reloads) = reloads.as_deref_mut() {
        reloads.held = false;
        reloads.take();
    }
    match supervise_child(launch, signals, reloads) {
        Ok(ended) => launch.policy.exit_code(&ended),
        Err(code) => code,
    }
}

/// Starts the child and supervises it until it has been reaped: how it ended, or the exit code
/// when it could not be started (or was not, a stop having arrived first).
pub fn supervise_child(
    launch: &Launch,
    signals: &Signals,
    reloads: Option<&mut Reloads>,
) -> Result<Ended, u8> {
    // A stop requested while the certificates were handled: the command has not started, so
    // there is nothing to stop gracefully. Starting it only to kill it mid-import is not better.
    if let Some(signal) = signals.stop_pending() {
        let code = 128 + signal;
        warn!(
            "{} arrived during start-up: not starting {}; exiting {code}",
            signal_name(signal),
            launch.command_line()
        );
        return Err(u8::try_from(code).unwrap_or(exit::FAILURE));
    }
    let terminal = sys::stdin_is_foreground_tty();
    let child = spawn(launch, terminal, signals.non_default)?;
    info!("Running {} (pid {child})", launch.command_line());
    supervise(child, launch, signals, terminal, reloads)
}

impl ExitPolicy {
    /// vardr-init's exit code for a child that ended so.
    pub fn exit_code(self, ended: &Ended) -> u8 {
        let ExitPolicy::Server { name } = self else {
            return exit_code(ended.pid, ended.status);
        };
        match (ended.status.code(), ended.status.signal()) {
            (Some(0), _) if ended.stop_signal.is_none() && ended.terminal => {
                // Ctrl-C at the terminal reaches the child's foreground group, not us: a server
                // that held the terminal and shut down cleanly was stopped there.
                info!(
                    "{name} exited with status 0 while it held the terminal: a stop typed there \
                     (Ctrl-C); exiting 0"
                );
                0
            }
            (Some(0), _) if ended.stop_signal.is_none() => {
                // uvicorn exits 0 when the app exits at import, and with --workers when the app
                // cannot be found: never a success for a server nobody stopped.
                error!(
                    "{name} exited with status 0 although nobody asked it to stop (the app \
                     exited at import, or with --workers it could not be found): exiting 1"
                );
                exit::FAILURE
            }
            (Some(3), _) if ended.stop_signal.is_none() => {
                // uvicorn 0.50 and later exit 3 on every start-up failure: the import, the
                // lifespan start-up, binding the socket (earlier ones for some of these).
                error!("{name} exited with status 3: the app failed to start (see above)");
                3
            }
            (None, Some(signal)) if Some(signal) == ended.stop_signal && !ended.killed => {
                // After a graceful shutdown uvicorn re-raises the signal it caught.
                info!(
                    "{name} shut down gracefully on {} (and re-raised it, as it does): exiting 0",
                    signal_name(signal)
                );
                0
            }
            _ => exit_code(ended.pid, ended.status),
        }
    }
}
/// How the child ended, and what vardr-init had done to it by then.
#[derive(Clone, Copy, Debug)]
pub struct Ended {
    pub pid: Pid,
    pub status: ExitStatus,
    /// The first SIGTERM or SIGINT forwarded, if any: a stop was requested.
    pub stop_signal: Option<i32>,
    /// The deadline passed and SIGKILL was sent.
    pub killed: bool,
    /// The child was given the terminal's foreground: Ctrl-C there reaches it directly.
    pub terminal: bool,
}
/// The whole-tree clean-up once the child has ended: every process still alive in vardr-init's
/// tree (daemons the app started, orphans it left) gets SIGTERM, then SIGKILL when the stop
/// timeout (or [`SHORT_STOP`]) has passed, each logged with its pid and name. Only run as PID 1
/// or subreaper, where orphans come to vardr-init, and only for its descendants: processes that
/// entered the container from outside (`docker exec`) are not in its tree.
fn clean_up(stop_timeout: Option<Duration>, signals: &Signals, own: Pid) {
    // Nothing left to wait for: the common case costs one system call.
    if matches!(sys::reap_one(), Ok(Reaped::NoChildren) | Err(_)) {
        return;
    }
    let grace = stop_timeout.unwrap_or(SHORT_STOP);
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        let left = sys::descendants(sys::getpid(), own);
        for (pid, ..) in &left {
            let _ = sys::kill(*pid, signal);
        }
        for (pid, _, name) in &left {
            warn!(
                "pid {pid} ({name}) left running by the child: sent {}",
                signal_name(signal)
            );
        }
        // SIGKILL cannot be refused; a process stuck in the kernel is not waited for long.
        let limit = if signal == libc::SIGTERM {
            grace
        } else {
            SHORT_STOP
        };
        if wait_for_no_children(limit, signals) {
            return;
        }
    }
}

/// Reaps until vardr-init has no children left (true), or `limit` has passed (false).
fn wait_for_no_children(limit: Duration, signals: &Signals) -> bool {
    let until = Instant::now().checked_add(limit);
    loop {
        match sys::reap_one() {
            Ok(Reaped::NoChildren) | Err(_) => return true,
            Ok(Reaped::Child(..)) => continue,
            Ok(Reaped::NoneReady) => {}
        }
        let now = Instant::now();
        let Some(left) = until.filter(|&at| at > now).map(|at| at - now) else {
            return false;
        };
        // SIGCHLD wakes this; other signals change nothing now.
        let _ = signals.waited.wait(Some(left));
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

pub struct CommandLine<'a>(&'a Launch);

impl fmt::Display for CommandLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_quoted(f, &self.0.program)?;
        for arg in &self.0.args {
            f.write_str(" ")?;
            write_quoted(f, arg)?;
        }
        Ok(())
    }
}

/// POSIX shell quoting, for display only (nothing is ever run through a shell).
fn write_quoted(f: &mut fmt::Formatter<'_>, word: &OsStr) -> fmt::Result {
    let word = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        f.write_str(&word)
    } else {
        write!(f, "'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_quotes_what_a_shell_would_split() {
        let launch = Launch {
            program: "python3".into(),
            args: ["-c", "print('hi there')", "", "--port=8000"]
                .map(OsString::from)
                .into(),
            set_env: Vec::new(),
            unset_env: Vec::new(),
            stop_timeout: None,
            stop_delay: None,
            run_timeout: None,
            policy: ExitPolicy::Status,
        };
        assert_eq!(
            launch.command_line().to_string(),
            r#"python3 -c 'print('\''hi there'\'')' '' --port=8000"#
        );
    }
}
