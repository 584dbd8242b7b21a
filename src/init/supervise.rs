//! The main loop, as tini's: reap every zombie, wait for one event, dispatch it to its handler,
//! then tick the timers, until the child has been reaped.
//!
//! The events and their handlers, in the order of this file:
//! - the child's exit ([`Supervisor::child_exited`]): its end, or its restart when one is under
//!   way;
//! - a signal ([`Supervisor::signal`]): SIGCHLD reaps, SIGTERM/SIGINT stop (or drain), the rest
//!   pass through;
//! - a reload request from the certificate watcher ([`Supervisor::reload_requested`]):
//!   `VARDR_CERTS_RELOAD`'s SIGHUP or restart;
//! - a timer ([`Supervisor::tick`]): the drain's end, the pre-start task's time limit, the
//!   SIGKILL deadline.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crate::config::Reload;
use crate::exit;
use crate::sys::{self, Pid, Reaped, signal_name};
use crate::{debug, error, info, warn};

use super::reloads::{self, Reloads, Wake};
use super::signals::STOP_SIGNALS;
use super::spawn::spawn;
use super::{Ended, Launch, SHORT_STOP, Signals};

/// The main loop: returns once the child has been reaped, or the exit code if it was lost.
pub(super) fn supervise(
    child: Pid,
    launch: &Launch,
    signals: &Signals,
    terminal: bool,
    reloads: Option<&mut Reloads>,
) -> Result<Ended, u8> {
    let mut supervisor = Supervisor::new(child, launch, signals, terminal, reloads);
    loop {
        if let Some(status) = supervisor.reap()? {
            match supervisor.child_exited(status)? {
                Some(ended) => return Ok(ended),
                None => continue, // started again: reap before waiting
            }
        }
        let then = match supervisor.wait()? {
            Wake::Signal(signal) => supervisor.signal(signal),
            Wake::Reload => supervisor.reload_requested(),
            Wake::Nothing => Then::Tick, // timed out (a deadline) or interrupted
        };
        if then == Then::Tick {
            supervisor.tick();
        }
    }
}

/// What the loop does after a handler: tick the timers, or go straight back to reaping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    Tick,
    /// A drain has just begun: its end is later, the next wake-up ticks.
    Reap,
}

/// Everything the loop changes while it supervises one launch, and what it was given.
struct Supervisor<'a> {
    launch: &'a Launch,
    signals: &'a Signals,
    reloads: Option<&'a mut Reloads>,
    /// The child was given the terminal's foreground (a restarted one is too).
    terminal: bool,
    /// The child's pid: a new one after each restart.
    child: Pid,
    /// Where the child is in being stopped.
    stop: Stop,
    /// The stop signal the child got, once a stop is requested: the first SIGTERM or SIGINT
    /// forwarded, or vardr-init's SIGTERM (a drain's end, a time limit, a restart turned stop).
    stop_signal: Option<i32>,
    /// The deadline passed and SIGKILL was sent.
    killed: bool,
    /// A restart under way (`VARDR_CERTS_RELOAD=restart`): when the child was sent SIGTERM. Its
    /// deadline is the stop's (`stop`), and its end is not reported.
    restart: Option<Instant>,
    /// When to drop the start-up code's pages ([`SETTLE`] after the start); `None` once done.
    settled: Option<Instant>,
    /// `VARDR_PRESTART_TIMEOUT`'s end; `None` without one, or once it has passed.
    expires: Option<Instant>,
}

impl<'a> Supervisor<'a> {
    fn new(
        child: Pid,
        launch: &'a Launch,
        signals: &'a Signals,
        terminal: bool,
        reloads: Option<&'a mut Reloads>,
    ) -> Self {
        let started = Instant::now();
        Supervisor {
            launch,
            signals,
            reloads,
            terminal,
            child,
            stop: Stop::NotRequested,
            stop_signal: None,
            killed: false,
            restart: None,
            settled: started.checked_add(SETTLE),
            expires: launch.run_timeout.and_then(|t| started.checked_add(t)),
        }
    }

    /// Reaps every zombie there is: the child's wait status, once it was among them.
    fn reap(&mut self) -> Result<Option<ExitStatus>, u8> {
        reap_zombies(self.child, self.reloads.as_deref_mut()).map_err(|e| {
            error!("lost track of child pid {}: {e}", self.child);
            exit::FAILURE
        })
    }

    /// Waits for the next event, at most until the next timer is due.
    fn wait(&mut self) -> Result<Wake, u8> {
        // Once the child has run for a moment, start-up is long over: keep mapped only the code
        // the supervisor runs (a child that ends at once, like `true`, never pays for it).
        let release = self.settled.is_some_and(|at| Instant::now() >= at);
        if release {
            self.settled = None;
        }
        // The next moment to wake without a signal: a deadline, the drain's end, the task's
        // time limit, or the release.
        let wake = [self.stop.due(), self.settled, self.expires];
        let wake = wake.into_iter().flatten().min();
        let timeout = wake.map(|at| at.saturating_duration_since(Instant::now()));
        // Once a stop is under way (not a restart's), the watcher is left as it is.
        let stopping = !matches!(self.stop, Stop::NotRequested) && self.restart.is_none();
        // The release happens right before the wait: what runs between it and the sleep
        // faults back in.
        let reloads = self.reloads.as_deref_mut();
        let woke = reloads::wait(self.signals, reloads, timeout, stopping, release);
        woke.map_err(|e| {
            error!("cannot wait for signals: {e}");
            exit::FAILURE
        })
    }

    /// The child has been reaped: how it ended, or `None` when it was started again.
    fn child_exited(&mut self, status: ExitStatus) -> Result<Option<Ended>, u8> {
        if self.restart.take().is_none() {
            return Ok(Some(Ended {
                pid: self.child,
                status,
                stop_signal: self.stop_signal,
                killed: self.killed,
                terminal: self.terminal,
            }));
        }
        // Stopped for a restart: its end is not ours to report, its successor's will be.
        self.stop = Stop::NotRequested;
        let child = self.child;
        info!(
            "child pid {child} stopped ({status}): starting it again (VARDR_CERTS_RELOAD=restart)"
        );
        // What it left in its process group goes too (uvicorn's workers are gone with it).
        let _ = sys::kill_group(child, libc::SIGTERM);
        let launch = self.launch;
        self.child = spawn(launch, self.terminal, self.signals.non_default)?;
        info!("Running {} (pid {})", launch.command_line(), self.child);
        self.killed = false;
        Ok(None)
    }

    /// A signal taken: SIGCHLD is for the reaping, a stop signal stops, the rest pass through.
    fn signal(&mut self, signal: i32) -> Then {
        match signal {
            libc::SIGCHLD => {} // reaped at the top of the loop
            _ if STOP_SIGNALS.contains(&signal) => return self.stop_signal_taken(signal),
            // SIGHUP, SIGUSR1, SIGWINCH...: the child's business.
            _ => forward(self.child, signal),
        }
        Then::Tick
    }

    /// SIGTERM or SIGINT: the child is stopped, or (`VARDR_STOP_DELAY`) drained first.
    fn stop_signal_taken(&mut self, signal: i32) -> Then {
        let child = self.child;
        if let Some(sent) = self.restart.take() {
            // The child is already stopping (SIGTERM, for the restart): it is not started
            // again, and a second signal would make uvicorn skip its graceful shutdown.
            info!(
                "{} during the restart: pid {child} is stopping and will not be started again",
                signal_name(signal)
            );
            self.stopping(libc::SIGTERM, self.launch.stop_timeout, sent, STOP_TIMEOUT);
            return Then::Tick;
        }
        // The deadline counts from the signal, not from the end of its log line (a slow
        // stderr may hold a log write up to half a second).
        let sent = Instant::now();
        let delay = self.launch.stop_delay.filter(|_| signal == libc::SIGTERM);
        let drain = delay.and_then(|d| Some((d, sent.checked_add(d)?)));
        match (self.stop, drain) {
            (Stop::NotRequested, Some((delay, until))) => {
                // The first SIGTERM is held: the child serves on while the load balancer
                // notices.
                self.stop = Stop::Draining(until);
                sys::set_process_name(sys::DRAINING_NAME);
                info!(
                    "SIGTERM: draining, forwarded in {}s (VARDR_STOP_DELAY)",
                    crate::events::seconds(delay)
                );
                return Then::Reap;
            }
            (Stop::Draining(_), _) => {
                // A second SIGTERM, or a SIGINT: the drain is cut short.
                forward(child, signal);
                info!("{} while draining: forwarded now", signal_name(signal));
                self.stopping(signal, self.launch.stop_timeout, sent, STOP_TIMEOUT);
            }
            (Stop::NotRequested, None) => {
                // The first stop: it goes at once, and the deadline starts.
                forward(child, signal);
                self.stopping(signal, self.launch.stop_timeout, sent, STOP_TIMEOUT);
            }
            // Stopping already: passed on, and the first signal's deadline stands.
            (Stop::Deadline(..) | Stop::Requested, _) => forward(child, signal),
        }
        Then::Tick
    }

    /// The watcher rebuilt the bundle: the child is told (`VARDR_CERTS_RELOAD`), unless it is
    /// stopping.
    fn reload_requested(&mut self) -> Then {
        if !matches!(self.stop, Stop::NotRequested) {
            // Stopping, draining or restarting already: its successor, if any, reads the
            // newest bundle anyway.
            debug!(
                "CA bundle rebuilt while pid {} is stopping: nothing more to do",
                self.child
            );
            return Then::Tick;
        }
        let reload = self.reloads.as_deref().map_or(Reload::None, |r| r.reload);
        if let Some(sent) = reload_child(reload, self.child) {
            // A restart is a stop that is not reported: the same deadline, then a new child.
            self.restart = Some(sent);
            let (grace, why) = grace(self.launch);
            self.stop = Stop::forwarded(self.child, Some(grace), sent, why);
        }
        Then::Tick
    }

    /// The timers, after every wake-up, not only on timeout: a stream of signals (SIGCHLD from
    /// orphans, SIGWINCH) must not postpone what is due.
    fn tick(&mut self) {
        let now = Instant::now();
        let child = self.child;
        if let Stop::Draining(until) = self.stop
            && now >= until
        {
            // The drain is over: the held SIGTERM goes.
            forward(child, libc::SIGTERM);
            info!("VARDR_STOP_DELAY over: SIGTERM forwarded");
            self.stopping(libc::SIGTERM, self.launch.stop_timeout, now, STOP_TIMEOUT);
        }
        if self.expires.is_some_and(|at| now >= at) {
            self.expires = None;
            // The task is past its time limit: stopped as if SIGTERM had been sent, unless a
            // stop is under way already.
            if matches!(self.stop, Stop::NotRequested) {
                forward(child, libc::SIGTERM);
                warn!(
                    "child pid {child} still running after {}s (VARDR_PRESTART_TIMEOUT): sent SIGTERM",
                    crate::events::seconds(self.launch.run_timeout.unwrap_or_default())
                );
                let (grace, why) = grace(self.launch);
                self.stopping(libc::SIGTERM, Some(grace), now, why);
            }
        }
        if let Stop::Deadline(at, timeout, why) = self.stop
            && now >= at
        {
            // It had its time: SIGKILL, and the exit policy knows it was killed.
            kill_at_deadline(child, timeout, why);
            self.stop = Stop::Requested;
            self.killed = true;
        }
    }

    /// A stop signal went to the child at `sent`: a stop is requested, and its deadline set.
    fn stopping(
        &mut self,
        signal: i32,
        timeout: Option<Duration>,
        sent: Instant,
        why: &'static str,
    ) {
        self.stop_signal = Some(signal);
        self.stop = Stop::forwarded(self.child, timeout, sent, why);
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
