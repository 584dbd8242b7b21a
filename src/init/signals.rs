//! The signals PID 1 takes: blocked before anything else runs, so they queue, then taken one by
//! one with `sigtimedwait` (no handlers, no async code).

use std::io;

use crate::sys::{self, SigSet};

/// Proof that the supervised signals are blocked; created once, before anything else runs.
pub struct Signals {
    /// What `sigtimedwait` takes: the forwarded signals plus SIGCHLD.
    pub(super) waited: SigSet,
    /// The signals not at their default disposition here, as a `SigIgn`-style mask: the child
    /// gets them reset before exec.
    pub(super) non_default: u64,
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
pub(super) const STOP_SIGNALS: [i32; 2] = [libc::SIGTERM, libc::SIGINT];
