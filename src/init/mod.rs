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
//! 4. [`run`] turns the child's end into the exit status through the launch's [`ExitPolicy`]:
//!    its own status, or 128+N; for a server (the app side says which child is one), a re-raised
//!    stop signal after a graceful shutdown is 0, exit 0 nobody asked for is 1, and uvicorn's
//!    exit 3 is named a start-up failure.
//! 5. `clean_up`: what the child left running in vardr-init's tree gets SIGTERM, then SIGKILL.
//!
//! A pre-start task goes through steps 2 and 3 as a launch of its own before the main one; the
//! main one starts only if it exited 0 and no stop was asked for meanwhile.
//!
//! With [`Reloads`] (a watcher of the certificates runs), step 3 also waits on its pipe: a
//! rebuilt bundle gets the child SIGHUP, or a restart: SIGTERM, and once it has ended (SIGKILL at
//! the stop timeout), the same launch again. A stop asked for meanwhile turns the restart into
//! the stop. A watcher that dies is started again after a backoff. Before step 5 the watcher and
//! its process group are stopped: they are ours, not something the child left.
//!
//! The supervisor takes only what it must launch ([`Launch`]): it knows nothing of certificates,
//! plans or uvicorn.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Read as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::{debug, error, info, warn};

use crate::config::Reload;
use crate::exit;
use crate::sys::{self, Pid, Reaped, SigSet, signal_name};

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

/// Starts a certificate watcher: its pipe (a byte per rebuilt bundle, end of file when it ends)
/// and its pid. Called again to restart it.
pub type StartWatcher = Box<dyn FnMut() -> io::Result<(std::io::PipeReader, Pid)>>;

/// Requests to reload the child, from a watcher process: one byte each on a pipe. A watcher that
/// dies is started again after a [`Backoff`]; one that keeps dying is said by PID 1's name
/// ([`sys::TRUST_DOWN_NAME`]), which `vardr-init health` reads.
pub struct Reloads {
    requests: std::io::PipeReader,
    /// The watcher: stopped at the end with its process group (its pass worker), never counted
    /// as something the child left.
    watcher: Pid,
    /// Its pidfd, taken while it cannot have been reaped: the kill at the end reaches it and
    /// nothing else.
    watcher_fd: Option<OwnedFd>,
    reload: Reload,
    /// Readable when a signal we take is pending: polled beside `requests`.
    signals: OwnedFd,
    /// The watcher's pipe reached end of file: no more requests from this watcher.
    ended: bool,
    /// Requests are left on the pipe (a pre-start task runs: it is not the app).
    held: bool,
    start: StartWatcher,
    /// When the watcher was started; `None` once it has been reaped.
    alive_since: Option<Instant>,
    /// Its wait status, reaped and not yet dealt with.
    exited: Option<ExitStatus>,
    /// When to start it again.
    restart_at: Option<Instant>,
    backoff: Backoff,
    /// PID 1's name before [`sys::TRUST_DOWN_NAME`], while that one is shown.
    shown_down: Option<[u8; 16]>,
    /// A death or restart was dealt with: the code that took is dropped again before the sleep.
    release: bool,
}

/// The watcher's restarts: 1 s after its first death, doubling to 60 s; live trust is down after
/// [`Backoff::DOWN_AFTER`] deaths in a row, each within [`Backoff::STABLE`] of its start. A
/// watcher that stays up that long starts the count again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Backoff {
    deaths: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);
    const STABLE: Duration = Duration::from_secs(600);
    const DOWN_AFTER: u32 = 5;

    /// A death after `lived`: how long until the restart.
    fn died(&mut self, lived: Duration) -> Duration {
        if lived >= Self::STABLE {
            self.deaths = 0;
        }
        self.deaths = self.deaths.saturating_add(1);
        let doublings = self.deaths.saturating_sub(1).min(6);
        (Self::FIRST * (1 << doublings)).min(Self::MAX)
    }

    fn down(self) -> bool {
        self.deaths >= Self::DOWN_AFTER
    }
}

impl Reloads {
    /// Starts the watcher; on failure there is none (the error says why).
    pub fn new(mut start: StartWatcher, reload: Reload, signals: &Signals) -> io::Result<Reloads> {
        let (requests, watcher) = start()?;
        let signals = sys::signalfd(&signals.waited).inspect_err(|_| {
            // It would have nobody to tell.
            let _ = sys::kill(watcher, libc::SIGKILL);
        })?;
        Ok(Reloads {
            requests,
            watcher,
            watcher_fd: sys::pidfd_open(watcher).ok(),
            reload,
            signals,
            ended: false,
            held: false,
            start,
            alive_since: Some(Instant::now()),
            exited: None,
            restart_at: None,
            backoff: Backoff::default(),
            shown_down: None,
            release: false,
        })
    }

    /// Takes every request waiting: whether there was one. Many become one (the child reads
    /// the newest bundle anyway).
    fn take(&mut self) -> bool {
        let mut buffer = [0u8; 64];
        let mut any = false;
        while !self.ended {
            match sys::wait_readable(self.requests.as_fd(), Duration::ZERO) {
                Ok(true) => {}
                _ => break,
            }
            match self.requests.read(&mut buffer) {
                // Its death is said when it is reaped, with how it ended.
                Ok(0) | Err(_) => self.ended = true,
                Ok(_) => any = true,
            }
        }
        any
    }

    /// Called for every process reaped that is not the child: whether it was the watcher.
    fn reaped(&mut self, pid: Pid, status: ExitStatus) -> bool {
        let ours = pid == self.watcher && self.alive_since.is_some();
        if ours {
            self.exited = Some(status);
        }
        ours
    }

    /// The next instant [`Reloads::tend`] has something to do, if any. Nothing while the child
    /// is stopping: the watcher is not needed any more.
    fn due(&self, stopping: bool) -> Option<Instant> {
        if stopping {
            return None;
        }
        let stable = self.alive_since.filter(|_| self.backoff.deaths > 0);
        let stable = stable.and_then(|at| at.checked_add(Backoff::STABLE));
        [self.restart_at, stable].into_iter().flatten().min()
    }

    /// A death is told and its restart scheduled; a restart or a recovery due is done. True when
    /// the ended watcher's last requests are still to apply.
    fn tend(&mut self, stopping: bool) -> bool {
        let now = Instant::now();
        if let Some(status) = self.exited.take() {
            self.release = true;
            let lived = self
                .alive_since
                .take()
                .map_or(Duration::ZERO, |at| now - at);
            let how = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exited with status {code}"),
                (_, signal) => format!("was killed by {}", signal_name(signal.unwrap_or(0))),
            };
            let what = format!("the certificate watcher (pid {}) {how}", self.watcher);
            self.died(now, lived, &what, stopping);
        }
        let Some(due) = self.due(stopping).filter(|&at| now >= at) else {
            return false;
        };
        self.release = true;
        if self.restart_at.is_some_and(|at| at <= due) {
            self.restart_at = None;
            let pending = self.take();
            match (self.start)() {
                Ok((requests, pid)) => {
                    info!("certificate watcher restarted (pid {pid})");
                    self.requests = requests;
                    self.watcher = pid;
                    self.watcher_fd = sys::pidfd_open(pid).ok();
                    self.ended = false;
                    self.alive_since = Some(Instant::now());
                }
                Err(e) => {
                    let what = format!("cannot restart the certificate watcher: {e}");
                    self.died(now, Duration::ZERO, &what, stopping);
                }
            }
            return pending;
        }
        // It stayed up: the count starts again, and live trust is back.
        self.backoff = Backoff::default();
        if let Some(name) = self.shown_down.take() {
            sys::set_process_name(name);
            info!(
                "the certificate watcher (pid {}) has run {}s: live trust is back",
                self.watcher,
                Backoff::STABLE.as_secs()
            );
        }
        false
    }

    /// A watcher died after `lived` (or could not be started): said, its restart scheduled, and
    /// live trust shown down if it keeps dying.
    fn died(&mut self, now: Instant, lived: Duration, what: &str, stopping: bool) {
        let delay = self.backoff.died(lived);
        self.restart_at = now.checked_add(delay);
        error!(
            "{what}: restarting it in {}s, with a pass that catches up on what changed \
             meanwhile; until then the CA bundle does not follow changes",
            delay.as_secs()
        );
        if self.backoff.down() && self.shown_down.is_none() && !stopping {
            error!(
                "live trust is down: the certificate watcher died {} times in a row, each within \
                 {}s of its start; `vardr-init health` reports unhealthy until one runs that \
                 long (restarts go on, at most {}s apart)",
                self.backoff.deaths,
                Backoff::STABLE.as_secs(),
                Backoff::MAX.as_secs()
            );
            self.shown_down = Some(sys::own_process_name());
            sys::set_process_name(sys::TRUST_DOWN_NAME);
        }
    }

    /// Stops the watcher and its pass worker (they hold nothing that needs a graceful end), and
    /// waits until its process group is gone: the clean-up after it must not find them.
    fn stop(&self, signals: &Signals) {
        if self.alive_since.is_some() {
            // Its group while it lives (then the number cannot be another's); the pidfd, or
            // without pidfds (Linux before 5.3) the pid while its pipe is open.
            let _ = sys::kill_group(self.watcher, libc::SIGKILL);
            let _ = match &self.watcher_fd {
                Some(fd) => sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL),
                None if !self.ended => sys::kill(self.watcher, libc::SIGKILL),
                None => Ok(()),
            };
        }
        // A worker it left dies with it (PR_SET_PDEATHSIG); until reaped it is in the group.
        let until = Instant::now() + Duration::from_secs(1);
        loop {
            while let Ok(Reaped::Child(..)) = sys::reap_one() {}
            let now = Instant::now();
            if sys::kill_group(self.watcher, 0).is_err() || now >= until {
                return;
            }
            let _ = signals
                .waited
                .wait(Some((until - now).min(Duration::from_millis(10))));
        }
    }
}

/// What woke the supervisor.
enum Wake {
    Signal(i32),
    /// A reload request from the watcher.
    Reload,
    /// A timeout, an interruption, or a request already dealt with.
    Nothing,
}

/// Waits for a signal, or (with a live watcher) a reload request, at most `timeout`; with a
/// watcher, tends it (its death, restart, recovery: [`Reloads::tend`]) unless `stopping`.
fn wait(
    signals: &Signals,
    reloads: Option<&mut Reloads>,
    timeout: Option<Duration>,
    stopping: bool,
) -> io::Result<Wake> {
    let Some(reloads) = reloads else {
        return Ok(signals
            .waited
            .wait(timeout)?
            .map_or(Wake::Nothing, Wake::Signal));
    };
    if reloads.tend(stopping) && !reloads.held {
        return Ok(Wake::Reload);
    }
    let due = reloads.due(stopping);
    let due = due.map(|at| at.saturating_duration_since(Instant::now()));
    let timeout = [timeout, due].into_iter().flatten().min();
    let listen = !reloads.ended && !reloads.held;
    let fds = [reloads.signals.as_fd(), reloads.requests.as_fd()];
    // PID 1's resident size stays what it was before the watcher died.
    if std::mem::take(&mut reloads.release) {
        sys::release_code_pages();
    }
    let ready = sys::poll_readable(&fds[..if listen { 2 } else { 1 }], timeout)?;
    // Signals first: a stop must never wait behind a reload.
    if ready & 1 != 0
        && let Some(signal) = signals.waited.wait(Some(Duration::ZERO))?
    {
        return Ok(Wake::Signal(signal));
    }
    if listen && ready & 2 != 0 && reloads.take() {
        return Ok(Wake::Reload);
    }
    Ok(Wake::Nothing)
}

impl Launch {
    /// The command line as a user could paste it into a shell.
    pub fn command_line(&self) -> CommandLine<'_> {
        CommandLine(self)
    }
}

/// Proof that the supervised signals are blocked; created once, before anything else runs.
pub struct Signals {
    /// What `sigtimedwait` takes: the forwarded signals plus SIGCHLD.
    waited: SigSet,
    /// The signals not at their default disposition here, as a `SigIgn`-style mask: the child
    /// gets them reset before exec.
    non_default: u64,
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
        // Dispositions inherited from whoever started us: only an ignored one survives exec, and
        // an ignored signal is discarded when sent, never queued: it must be reset to be
        // forwarded (SIGCHLD ignored would also make the kernel auto-reap and hide the child's
        // status). Only those, not all 60: a system call each, on every start.
        let inherited = sys::ignored_signals();
        for signal in 1..=sys::max_signal() {
            if waited.contains(signal) && inherited & sys::bit(signal) != 0 {
                let _ = sys::set_disposition(signal, false);
            }
        }
        let _ = sys::set_disposition(libc::SIGPIPE, true);
        let _ = sys::set_disposition(libc::SIGXFSZ, true);
        // What the child must have reset to the default: our two, and whatever we inherited as
        // ignored (the reset above skips the signals we do not forward).
        let non_default = inherited | sys::bit(libc::SIGPIPE) | sys::bit(libc::SIGXFSZ);
        Ok(Signals {
            waited,
            non_default,
        })
    }

    /// A stop signal, if one was sent and is still waiting to be taken.
    pub fn stop_pending(&self) -> Option<i32> {
        let pending = SigSet::pending().ok()?;
        STOP_SIGNALS
            .into_iter()
            .find(|&signal| pending.contains(signal))
    }
}

/// The signals that ask the child to stop: forwarding one starts the stop deadline, and one
/// arriving before the child started means it is not started.
const STOP_SIGNALS: [i32; 2] = [libc::SIGTERM, libc::SIGINT];

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

/// Starts the child. On failure, logs why and returns the exit code (127, 126 or 1).
fn spawn(launch: &Launch, take_terminal: bool, non_default: u64) -> Result<Pid, u8> {
    let mut command = Command::new(&launch.program);
    command.args(&launch.args).envs(
        launch
            .set_env
            .iter()
            .map(|(name, value)| (name, value.as_os_str())),
    );
    for name in &launch.unset_env {
        command.env_remove(name);
    }
    // SAFETY: prepare_child makes only async-signal-safe calls, as pre_exec requires.
    unsafe { command.pre_exec(move || sys::prepare_child(take_terminal, non_default)) };
    match command.spawn() {
        // The `Child` handle is dropped unused: all waiting goes through `reap_zombies`.
        Ok(child) => Pid::try_from(child.id()).map_err(|_| exit::FAILURE),
        Err(e) => {
            let (code, message) = not_started(&launch.program, &e);
            error!("{message}");
            Err(code)
        }
    }
}

/// Why `program` could not be started, as an exit code (127 not found, 126 not executable, 1
/// otherwise) and a message that says what to do.
fn not_started(program: &OsStr, e: &io::Error) -> (u8, String) {
    let program = program.to_string_lossy();
    let looked_up = !program.contains('/');
    match (e.kind(), e.raw_os_error()) {
        (io::ErrorKind::NotFound, _) if looked_up => (
            exit::NOT_FOUND,
            format!(
                "command not found: {program:?} is not in any directory of PATH; give its full path or fix PATH"
            ),
        ),
        (io::ErrorKind::NotFound, _) => (
            exit::NOT_FOUND,
            format!(
                "command not found: {program:?} does not exist (or it is a script whose #! interpreter does not exist)"
            ),
        ),
        (io::ErrorKind::PermissionDenied, _) => (
            exit::NOT_EXECUTABLE,
            format!(
                "command not executable: {program:?}: {e}; check that it is a file, has the execute bit, and is not on a noexec mount"
            ),
        ),
        (_, Some(libc::ENOEXEC)) => (
            exit::NOT_EXECUTABLE,
            format!(
                "command not executable: {program:?} is neither a binary for this machine nor a script starting with #!"
            ),
        ),
        _ => (exit::FAILURE, format!("cannot start {program:?}: {e}")),
    }
}

/// What starting `program` would end with, found without starting it (for `--dry-run`, and
/// before a run): `Err` with the exit code and message [`spawn`] would give, for what can be
/// known from the file system: not found, not executable, not a binary or script, a script whose
/// `#!` interpreter is missing. `path` is the `PATH` the child is looked up in.
pub fn foresee(program: &OsStr, path: Option<&OsStr>) -> Result<(), (u8, String)> {
    let fail = |errno: i32| Err(not_started(program, &io::Error::from_raw_os_error(errno)));
    if program.is_empty() {
        return fail(libc::ENOENT);
    }
    if program.as_encoded_bytes().contains(&b'/') {
        return check_file(Path::new(program)).or_else(fail);
    }
    // execvp's rule: the first directory where it can be run; else EACCES if one refused, else
    // ENOENT.
    let path = path.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    let mut refused = false;
    for dir in std::env::split_paths(path) {
        match check_file(&dir.join(program)) {
            Ok(()) => return Ok(()),
            Err(libc::EACCES) | Err(libc::ENOEXEC) => refused = true,
            Err(_) => {}
        }
    }
    fail(if refused { libc::EACCES } else { libc::ENOENT })
}

/// Whether `exec` of this file can get as far as running it; else the errno it would fail with.
fn check_file(file: &Path) -> Result<(), i32> {
    let meta = std::fs::metadata(file).map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
    if meta.is_dir() || sys::can_execute(file).is_err() {
        return Err(libc::EACCES);
    }
    let mut head = [0u8; 256];
    let read = std::fs::File::open(file)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..read];
    if head.starts_with(b"\x7fELF") {
        return Ok(());
    }
    let Some(line) = head.strip_prefix(b"#!") else {
        return Err(libc::ENOEXEC);
    };
    // The interpreter: the first word of the #! line.
    let interpreter = line
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default()
        .trim_ascii()
        .split(|b| b.is_ascii_whitespace())
        .next()
        .unwrap_or_default();
    let interpreter = Path::new(OsStr::from_bytes(interpreter));
    match std::fs::metadata(interpreter) {
        Ok(_) => Ok(()),
        Err(_) => Err(libc::ENOENT),
    }
}

/// The variable a stop deadline comes from, for the logs.
const STOP_TIMEOUT: &str = "VARDR_STOP_TIMEOUT";

/// How long after the start PID 1 drops the mappings of its start-up code
/// ([`sys::release_code_pages`]).
const SETTLE: Duration = Duration::from_millis(100);

/// Where the child is in being stopped.
#[derive(Clone, Copy)]
enum Stop {
    /// No SIGTERM/SIGINT forwarded yet.
    NotRequested,
    /// A SIGTERM came and is held until this instant (`VARDR_STOP_DELAY`): the child serves on.
    Draining(Instant),
    /// Forwarded; SIGKILL the group at this instant, this long after the signal, as the
    /// variable named says.
    Deadline(Instant, Duration, &'static str),
    /// Forwarded, and either there is no deadline or SIGKILL has been sent.
    Requested,
}

impl Stop {
    /// After a stop signal is forwarded at `sent`: a deadline `timeout` later, if there is one.
    fn forwarded(child: Pid, timeout: Option<Duration>, sent: Instant, why: &'static str) -> Stop {
        // Config caps the timeout at a day; checked_add keeps PID 1 panic-free anyway.
        match timeout.and_then(|timeout| Some((timeout, sent.checked_add(timeout)?))) {
            Some((timeout, at)) => {
                info!(
                    "child pid {child} has {}s to exit before SIGKILL ({why})",
                    crate::events::seconds(timeout)
                );
                Stop::Deadline(at, timeout, why)
            }
            None => Stop::Requested,
        }
    }

    /// The next instant something is due.
    fn due(self) -> Option<Instant> {
        match self {
            Stop::Draining(at) | Stop::Deadline(at, ..) => Some(at),
            Stop::NotRequested | Stop::Requested => None,
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

/// The main loop: returns once the child has been reaped, or the exit code if it was lost.
fn supervise(
    mut child: Pid,
    launch: &Launch,
    signals: &Signals,
    terminal: bool,
    mut reloads: Option<&mut Reloads>,
) -> Result<Ended, u8> {
    let started = Instant::now();
    let mut stop = Stop::NotRequested;
    let mut settled = started.checked_add(SETTLE);
    let mut expires = launch.run_timeout.and_then(|t| started.checked_add(t));
    let mut stop_signal = None;
    let mut killed = false;
    // A restart under way (`VARDR_CERTS_RELOAD=restart`): when the child was sent SIGTERM. Its
    // deadline is the stop's (`stop`), and its end is not reported.
    let mut restart: Option<Instant> = None;
    loop {
        match reap_zombies(child, reloads.as_deref_mut()) {
            Ok(Some(status)) if restart.is_some() => {
                // Stopped for a restart: its end is not ours to report, its successor's will be.
                restart = None;
                stop = Stop::NotRequested;
                info!(
                    "child pid {child} stopped ({status}): starting it again (VARDR_CERTS_RELOAD=restart)"
                );
                // What it left in its process group goes too (uvicorn's workers are gone with it).
                let _ = sys::kill_group(child, libc::SIGTERM);
                child = spawn(launch, terminal, signals.non_default)?;
                info!("Running {} (pid {child})", launch.command_line());
                killed = false;
                continue;
            }
            Ok(Some(status)) => {
                return Ok(Ended {
                    pid: child,
                    status,
                    stop_signal,
                    killed,
                    terminal,
                });
            }
            Ok(None) => {}
            Err(e) => {
                error!("lost track of child pid {child}: {e}");
                return Err(exit::FAILURE);
            }
        }
        // Once the child has run for a moment, start-up is long over: keep mapped only the code
        // the supervisor runs (a child that ends at once, like `true`, never pays for it).
        let release = settled.is_some_and(|at| Instant::now() >= at);
        if release {
            settled = None;
        }
        // The next moment to wake without a signal: a deadline, the drain's end, the task's
        // time limit, or the release.
        let wake = [stop.due(), settled, expires].into_iter().flatten().min();
        let timeout = wake.map(|at| at.saturating_duration_since(Instant::now()));
        // Right before the wait: what runs between the release and the sleep faults back in.
        if release {
            sys::release_code_pages();
        }
        // Once a stop is under way (not a restart's), the watcher is left as it is.
        let stopping = !matches!(stop, Stop::NotRequested) && restart.is_none();
        match wait(signals, reloads.as_deref_mut(), timeout, stopping) {
            Ok(Wake::Signal(libc::SIGCHLD)) => {} // reaped at the top of the loop
            Ok(Wake::Signal(signal)) if STOP_SIGNALS.contains(&signal) && restart.is_some() => {
                // The child is already stopping (SIGTERM, for the restart): it is not started
                // again, and a second signal would make uvicorn skip its graceful shutdown.
                let sent = restart.take().unwrap_or_else(Instant::now);
                info!(
                    "{} during the restart: pid {child} is stopping and will not be started again",
                    signal_name(signal)
                );
                stop_signal = Some(libc::SIGTERM);
                stop = Stop::forwarded(child, launch.stop_timeout, sent, STOP_TIMEOUT);
            }
            Ok(Wake::Signal(signal)) => {
                // The deadline counts from the signal, not from the end of its log line (a slow
                // stderr may hold a log write up to half a second).
                let sent = Instant::now();
                let draining = matches!(stop, Stop::Draining(_));
                let delay = launch.stop_delay.filter(|_| signal == libc::SIGTERM);
                match (stop, delay.and_then(|d| Some((d, sent.checked_add(d)?)))) {
                    (Stop::NotRequested, Some((delay, until))) => {
                        stop = Stop::Draining(until);
                        sys::set_process_name(sys::DRAINING_NAME);
                        info!(
                            "SIGTERM: draining, forwarded in {}s (VARDR_STOP_DELAY)",
                            crate::events::seconds(delay)
                        );
                        continue;
                    }
                    _ if draining && STOP_SIGNALS.contains(&signal) => {
                        forward(child, signal);
                        info!("{} while draining: forwarded now", signal_name(signal));
                        stop_signal = Some(signal);
                        stop = Stop::forwarded(child, launch.stop_timeout, sent, STOP_TIMEOUT);
                    }
                    _ => {
                        forward(child, signal);
                        if STOP_SIGNALS.contains(&signal) && matches!(stop, Stop::NotRequested) {
                            stop_signal = Some(signal);
                            stop = Stop::forwarded(child, launch.stop_timeout, sent, STOP_TIMEOUT);
                        }
                    }
                }
            }
            Ok(Wake::Reload) if matches!(stop, Stop::NotRequested) => {
                let reload = reloads.as_deref().map_or(Reload::None, |r| r.reload);
                if let Some(sent) = reload_child(reload, child) {
                    restart = Some(sent);
                    let (grace, why) = grace(launch);
                    stop = Stop::forwarded(child, Some(grace), sent, why);
                }
            }
            Ok(Wake::Reload) => {
                // Stopping, draining or restarting already: its successor, if any, reads the
                // newest bundle anyway.
                debug!("CA bundle rebuilt while pid {child} is stopping: nothing more to do");
            }
            Ok(Wake::Nothing) => {} // timed out (the deadline) or interrupted
            Err(e) => {
                error!("cannot wait for signals: {e}");
                return Err(exit::FAILURE);
            }
        }
        // After every wake-up, not only on timeout: a stream of signals (SIGCHLD from orphans,
        // SIGWINCH) must not postpone what is due.
        let now = Instant::now();
        if let Stop::Draining(until) = stop
            && now >= until
        {
            forward(child, libc::SIGTERM);
            info!("VARDR_STOP_DELAY over: SIGTERM forwarded");
            stop_signal = Some(libc::SIGTERM);
            stop = Stop::forwarded(child, launch.stop_timeout, now, STOP_TIMEOUT);
        }
        if expires.is_some_and(|at| now >= at) {
            expires = None;
            if matches!(stop, Stop::NotRequested) {
                forward(child, libc::SIGTERM);
                warn!(
                    "child pid {child} still running after {}s (VARDR_PRESTART_TIMEOUT): sent SIGTERM",
                    crate::events::seconds(launch.run_timeout.unwrap_or_default())
                );
                stop_signal = Some(libc::SIGTERM);
                let (grace, why) = grace(launch);
                stop = Stop::forwarded(child, Some(grace), now, why);
            }
        }
        if let Stop::Deadline(at, timeout, why) = stop
            && now >= at
        {
            kill_at_deadline(child, timeout, why);
            stop = Stop::Requested;
            killed = true;
        }
    }
}

/// Between SIGTERM and SIGKILL for a stop vardr-init decides itself (a task past its time
/// limit, a restart), and why: `VARDR_STOP_TIMEOUT`, or [`SHORT_STOP`] when that is off.
fn grace(launch: &Launch) -> (Duration, &'static str) {
    match launch.stop_timeout {
        Some(timeout) => (timeout, STOP_TIMEOUT),
        None => (SHORT_STOP, "5s by default"),
    }
}

/// Tells the child of a rebuilt bundle; for a restart, when it was sent SIGTERM.
fn reload_child(reload: Reload, child: Pid) -> Option<Instant> {
    match reload {
        Reload::None => {
            debug!(
                "CA bundle rebuilt: the app reads it when it next loads its trust \
                 (VARDR_CERTS_RELOAD=none)"
            );
            None
        }
        Reload::Hup => {
            // The signal first, the log line after, like every forward.
            let sent = sys::kill(child, libc::SIGHUP);
            info!(
                "Sending SIGHUP to pid {child} (VARDR_CERTS_RELOAD=hup): the CA bundle was rebuilt"
            );
            if let Err(e) = sent {
                warn!("cannot send SIGHUP to pid {child}: {e}");
            }
            None
        }
        Reload::Restart => {
            let sent = Instant::now();
            let _ = sys::kill(child, libc::SIGTERM);
            info!(
                "Restarting pid {child} (VARDR_CERTS_RELOAD=restart): the CA bundle was rebuilt; \
                 SIGTERM sent"
            );
            Some(sent)
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

fn kill_at_deadline(child: Pid, timeout: Duration, why: &str) {
    warn!(
        "child pid {child} still running {}s after the stop signal ({why}): sending SIGKILL to its process group",
        crate::events::seconds(timeout)
    );
    // The group takes the grandchildren with it; the direct kill covers a child that left the
    // group (setsid). ESRCH means it is already gone.
    let _ = sys::kill_group(child, libc::SIGKILL);
    let _ = sys::kill(child, libc::SIGKILL);
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

/// Reaps every zombie there is; returns the child's wait status once the child was among them.
fn reap_zombies(child: Pid, mut reloads: Option<&mut Reloads>) -> io::Result<Option<ExitStatus>> {
    let mut child_status = None;
    loop {
        match sys::reap_one()? {
            Reaped::Child(pid, raw) if pid == child => {
                child_status = Some(ExitStatus::from_raw(raw));
            }
            Reaped::Child(pid, raw) => {
                let status = ExitStatus::from_raw(raw);
                if !reloads
                    .as_deref_mut()
                    .is_some_and(|r| r.reaped(pid, status))
                {
                    debug!("reaped orphan pid {pid} ({status})");
                }
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

    /// 1 s, doubling to 60 s; down at the fifth quick death; a watcher that ran 10 minutes
    /// starts the count again.
    #[test]
    fn the_watcher_backs_off_and_is_down_when_it_keeps_dying() {
        let mut backoff = Backoff::default();
        let quick = Duration::from_secs(3);
        let delays: Vec<u64> = (0..9).map(|_| backoff.died(quick).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert!(backoff.down());
        let mut backoff = Backoff::default();
        for _ in 0..4 {
            backoff.died(quick);
        }
        assert!(!backoff.down(), "four deaths are not down yet");
        assert_eq!(backoff.died(Backoff::STABLE), Duration::from_secs(1));
        assert!(!backoff.down(), "after a long run, the count starts again");
    }

    /// What a run's spawn would say, foreseen: found, not found, not executable, not a program.
    #[test]
    fn foresee_agrees_with_exec() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            path.into_os_string()
        };
        let script = write("ok.sh", "#!/bin/sh\nexit 0\n", 0o755);
        let no_x = write("no-x.sh", "#!/bin/sh\n", 0o644);
        let text = write("text", "hello\n", 0o755);
        let orphan = write("orphan", "#!/nonexistent/interpreter\n", 0o755);
        let code =
            |program: &OsStr, path: Option<&OsStr>| foresee(program, path).err().map(|e| e.0);
        assert_eq!(code(&script, None), None);
        assert_eq!(code(OsStr::new("sh"), None), None);
        assert_eq!(
            code(OsStr::new("ok.sh"), Some(dir.path().as_os_str())),
            None
        );
        assert_eq!(code(OsStr::new("no-such-cmd-vardr"), None), Some(127));
        assert_eq!(code(&orphan, None), Some(127));
        assert_eq!(code(&no_x, None), Some(126));
        assert_eq!(code(&text, None), Some(126));
        assert_eq!(code(dir.path().as_os_str(), None), Some(126));
        assert_eq!(
            code(OsStr::new("no-x.sh"), Some(dir.path().as_os_str())),
            Some(126)
        );
    }
}
