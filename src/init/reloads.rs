//! Live trust's side of the supervisor: the certificate watcher's reload requests, its
//! restarts after a [`Backoff`], and the wait that listens to its pipe beside the signals.

use std::io::{self, Read as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crate::config::Reload;
use crate::sys::{self, Pid, Reaped, signal_name};
use crate::{error, info};

use super::Signals;

/// Starts a certificate watcher: its pipe (a byte per rebuilt bundle, end of file when it ends)
/// and its pid. Called again to restart it.
pub type StartWatcher = Box<dyn FnMut() -> io::Result<(std::io::PipeReader, Pid)>>;

/// Requests to reload the child, from a watcher process: one byte each on a pipe. A watcher that
/// dies is started again after a [`Backoff`]; one that keeps dying is said by PID 1's name
/// ([`sys::TRUST_DOWN_NAME`]), which `vardr-init health` reads.
pub struct Reloads {
    pub(super) requests: std::io::PipeReader,
    /// The watcher: stopped at the end with its process group (its pass worker), never counted
    /// as something the child left.
    pub(super) watcher: Pid,
    /// Its pidfd, taken while it cannot have been reaped: the kill at the end reaches it and
    /// nothing else.
    watcher_fd: Option<OwnedFd>,
    pub(super) reload: Reload,
    /// Readable when a signal we take is pending: polled beside `requests`.
    pub(super) signals: OwnedFd,
    /// The watcher's pipe reached end of file: no more requests from this watcher.
    pub(super) ended: bool,
    /// Requests are left on the pipe (a pre-start task runs: it is not the app).
    pub(super) held: bool,
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
    pub(super) fn take(&mut self) -> bool {
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
    pub(super) fn reaped(&mut self, pid: Pid, status: ExitStatus) -> bool {
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
    pub(super) fn stop(&self, signals: &Signals) {
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
pub(super) enum Wake {
    Signal(i32),
    /// A reload request from the watcher.
    Reload,
    /// A timeout, an interruption, or a request already dealt with.
    Nothing,
}

/// Waits for a signal, or (with a live watcher) a reload request, at most `timeout`; with a
/// watcher, tends it (its death, restart, recovery: [`Reloads::tend`]) unless `stopping`.
/// `release`: drop the start-up code's pages first ([`sys::release_code_pages`]).
pub(super) fn wait(
    signals: &Signals,
    reloads: Option<&mut Reloads>,
    timeout: Option<Duration>,
    stopping: bool,
    release: bool,
) -> io::Result<Wake> {
    let Some(reloads) = reloads else {
        // The release and the sleep in one function: nothing else runs between them.
        let signal = match release {
            true => signals.waited.wait_released(timeout)?,
            false => signals.waited.wait(timeout)?,
        };
        return Ok(signal.map_or(Wake::Nothing, Wake::Signal));
    };
    if release {
        sys::release_code_pages();
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
