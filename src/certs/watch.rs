//! Live trust (`VARDR_CERTS_WATCH=true`): after start, the bundle follows the certificates.
//!
//! A process of its own, forked once the app's launch is decided, does the watching, so PID 1's
//! loop gains one descriptor and nothing else: it learns of a rebuilt bundle by a byte on a
//! pipe, and applies `VARDR_CERTS_RELOAD` (see [`crate::init::Reloads`]). The watcher:
//! 1. watches with inotify the directories the last pass read ([`super::Report::watch`]: the
//!    certificates tree, where its symlinks lead, the system bundle's directory), so a Kubernetes
//!    `..data` swap, a file replaced by rename and one written in place are all seen;
//! 2. waits for the events to settle (`VARDR_CERTS_DEBOUNCE`: a swap is several events), for the
//!    next CA to expire or become valid, or for the periodic re-check (`VARDR_CERTS_RECHECK`),
//!    all in one `poll`: idle, it takes no CPU;
//! 3. runs the same pass as at start in a short-lived worker ([`super::worker`]), which replaces
//!    the bundle only if its bytes change, and logs what it did;
//! 4. tells PID 1 when the bundle was replaced, and re-aims its watches at what this pass read.
//!
//! It sets its watches first and then runs a pass of its own (`trigger: start`), so a change
//! made after the start's pass read the certificates is never lost; the same on a restart by
//! PID 1 after the watcher died (`crate::init::Reloads`).
//!
//! Its state is a handful of watch descriptors and instants, replaced, never accumulated; the
//! passes' memory goes with their workers. It dies with PID 1 (`PR_SET_PDEATHSIG`); PID 1
//! starts it again if it dies first.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, PipeWriter, Read as _, Write as _};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::rules::Profile;
use super::summary::{self, Outcome, Trigger};
use super::worker::{self, Reporting};
use super::{Mode, store};
use crate::config::{CertSettings, WatchSettings};
use crate::sys::{self, Forked, Pid};
use crate::{debug, error, info, warn};

/// The watcher's process name (`ps`, `/proc/PID/comm`).
pub const NAME: &str = "vardr-watch";

/// A burst of events that never settles still gets a pass this long after its first event.
const MAX_SETTLE_FACTOR: u32 = 5;

/// A wait for a CA's validity is cut to this, so a clock set during the wait is caught up on.
const MAX_CLOCK_WAIT: Duration = Duration::from_secs(3600);

/// What inotify reports about a watched directory: an entry created, deleted, renamed in or out,
/// written and closed, its metadata changed; the directory itself deleted or moved.
const MASK: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_CLOSE_WRITE
    | libc::IN_ATTRIB
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_ONLYDIR;

/// The running watcher, as PID 1 holds it.
pub struct Watcher {
    pub pid: Pid,
    /// One byte per rebuilt bundle; end of file when the watcher has ended.
    pub rebuilt: io::PipeReader,
}

/// Forks the watcher, in a process group of its own (its pass worker joins it). `points` are
/// where the start's pass read: watched first, before the watcher's own pass, so that no change
/// falls between the start's pass and the first watch (or, on a restart, while it was down).
pub fn start(
    settings: &CertSettings,
    profile: Profile,
    watch: WatchSettings,
    points: &[PathBuf],
) -> io::Result<Watcher> {
    let (reader, writer) = io::pipe()?;
    let parent = sys::getpid();
    match sys::fork()? {
        Forked::Child => {
            drop(reader);
            if !sys::die_with_parent(parent) {
                sys::exit_now(0);
            }
            sys::own_process_group();
            sys::set_process_name(NAME);
            let code = match Watch::new(settings, profile, watch, points) {
                Ok(mut state) => state.run(writer),
                Err(e) => {
                    error!(
                        "cannot watch {} (inotify: {e}): the bundle does not follow changes \
                         until vardr-init's next try; raise fs.inotify.max_user_instances",
                        settings.dir.display()
                    );
                    1
                }
            };
            sys::exit_now(code)
        }
        Forked::Parent(pid) => {
            drop(writer);
            Ok(Watcher {
                pid,
                rebuilt: reader,
            })
        }
    }
}

struct Watch<'a> {
    settings: &'a CertSettings,
    profile: Profile,
    config: WatchSettings,
    inotify: File,
    /// Watch descriptors and the directories they watch.
    watched: Vec<(i32, PathBuf)>,
    /// Unix seconds of the next expiry or start of validity among the CAs.
    next_change: Option<i64>,
    /// Names vardr-init writes itself (bundle, cache record, their temporary files): events on
    /// them are our own doing.
    own: [Vec<u8>; 2],
    own_dir: PathBuf,
    limit_warned: bool,
}

/// Events seen and not yet acted on: the first one's instant and the last one's.
struct Pending {
    first: Instant,
    last: Instant,
    what: PathBuf,
}

impl<'a> Watch<'a> {
    fn new(
        settings: &'a CertSettings,
        profile: Profile,
        config: WatchSettings,
        points: &[PathBuf],
    ) -> io::Result<Watch<'a>> {
        let name = |path: &Path| {
            path.file_name()
                .map(|n| n.as_encoded_bytes().to_vec())
                .unwrap_or_default()
        };
        let mut watch = Watch {
            settings,
            profile,
            config,
            inotify: File::from(sys::inotify_init()?),
            watched: Vec::new(),
            next_change: None,
            own: [
                name(&settings.bundle),
                name(&store::cache_path(&settings.bundle)),
            ],
            own_dir: store::parent(&settings.bundle).to_owned(),
            limit_warned: false,
        };
        // A watching run's pass always says where (the certs directory at least).
        watch.aim(points);
        Ok(watch)
    }

    /// The loop: wait for what is due first, run a pass, tell PID 1. Ends only when PID 1 can no
    /// longer be told (it is gone, and this process with it).
    fn run(&mut self, mut notify: PipeWriter) -> i32 {
        // Watching already: whatever changed since the start's pass read (or while a previous
        // watcher was down) is in this pass, and whatever changes from now on is an event. When
        // nothing did, it is a cache hit: nothing written, nothing logged at info.
        if self.pass(Trigger::Start) && notify.write_all(b"r").is_err() {
            return 0;
        }
        // Said once caught up: from this line on, every change is seen as a change.
        let mut dirs = String::new();
        for (_, dir) in &self.watched {
            let _ = write!(dirs, " {}", dir.display());
        }
        info!("Watching certificates (VARDR_CERTS_WATCH=true):{dirs}");
        let mut pending: Option<Pending> = None;
        let recheck = self.config.recheck;
        let next_recheck = || recheck.and_then(|t| Instant::now().checked_add(t));
        let mut recheck_at = next_recheck();
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let now = Instant::now();
            let settle = pending.as_ref().map(|p| {
                let quiet = p.last + self.config.debounce;
                let cap = p.first + self.config.debounce * MAX_SETTLE_FACTOR;
                quiet.min(cap)
            });
            let validity = self.validity_at(now);
            let due = [settle, validity, recheck_at].into_iter().flatten().min();
            let timeout = due.map(|at| at.saturating_duration_since(now));
            let ready = sys::poll_readable(&[self.inotify.as_fd()], timeout).unwrap_or(0);
            if ready & 1 != 0
                && let Some(what) = self.read_events(&mut buffer)
            {
                let now = Instant::now();
                match &mut pending {
                    Some(p) => p.last = now,
                    None => {
                        debug!("change in {}: re-checking soon", what.display());
                        pending = Some(Pending {
                            first: now,
                            last: now,
                            what,
                        });
                    }
                }
                continue;
            }
            let now = Instant::now();
            let trigger = if settle.is_some_and(|at| now >= at) {
                Trigger::Change
            } else if validity.is_some_and(|at| now >= at) {
                Trigger::Validity
            } else if recheck_at.is_some_and(|at| now >= at) {
                Trigger::Recheck
            } else {
                continue;
            };
            if let Some(p) = pending.take() {
                debug!("re-checking after a change in {}", p.what.display());
            }
            if self.pass(trigger) && notify.write_all(b"r").is_err() {
                // PID 1 closed its end: it is exiting, and this process goes with it.
                return 0;
            }
            recheck_at = next_recheck();
        }
    }

    /// The next validity change as an instant, a little after it (the verdict flips once the
    /// second has passed).
    fn validity_at(&self, now: Instant) -> Option<Instant> {
        let at = self.next_change?;
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        let at = Duration::from_secs(u64::try_from(at).ok()?);
        let wait = at.saturating_sub(wall) + Duration::from_millis(50);
        now.checked_add(wait.min(MAX_CLOCK_WAIT))
    }

    /// Runs a pass in a worker; true when the bundle was replaced.
    fn pass(&mut self, trigger: Trigger) -> bool {
        let now = SystemTime::now();
        let reporting = Reporting::Refresh { trigger };
        match worker::run_as(self.settings, self.profile, now, Mode::Refresh, reporting) {
            Ok(report) => {
                self.next_change = report.summary.next_change;
                if !report.watch.is_empty() {
                    self.aim(&report.watch);
                }
                report.refresh_outcome() == Outcome::Rebuilt
            }
            Err(e) => {
                error!(
                    "{e}: kept the previous bundle {}",
                    self.settings.bundle.display()
                );
                let bundle = &self.settings.bundle;
                summary::log_summary(None, Outcome::Kept, bundle, Some(trigger));
                // The same worker again at the next change or re-check, not in a loop: the
                // validity instant that may have brought it here is dropped.
                self.next_change = None;
                false
            }
        }
    }

    /// Watches exactly `points`: new ones added, those no longer read dropped.
    fn aim(&mut self, points: &[PathBuf]) {
        let inotify = self.inotify.as_fd();
        self.watched.retain(|(wd, path)| {
            let keep = points.contains(path);
            if !keep {
                sys::inotify_rm_watch(inotify, *wd);
            }
            keep
        });
        for point in points {
            if self.watched.iter().any(|(_, path)| path == point) {
                continue;
            }
            match sys::inotify_add_watch(inotify, point, MASK) {
                // The same directory under two names is one watch.
                Ok(wd) if self.watched.iter().any(|(w, _)| *w == wd) => {}
                Ok(wd) => self.watched.push((wd, point.clone())),
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    if !self.limit_warned {
                        self.limit_warned = true;
                        warn!(
                            "cannot watch {}: the inotify watch limit is reached \
                             (fs.inotify.max_user_watches); changes there are seen by the \
                             periodic re-check only (VARDR_CERTS_RECHECK)",
                            point.display()
                        );
                    }
                }
                // Gone since the pass read it, or not a directory: the next pass says.
                Err(e) => debug!("not watching {}: {e}", point.display()),
            }
        }
    }

    /// Drains the events; the directory of the first one that is not our own doing, if any.
    fn read_events(&mut self, buffer: &mut [u8]) -> Option<PathBuf> {
        let mut changed = None;
        loop {
            // Non-blocking: `WouldBlock` once drained.
            let Ok(len @ 1..) = (&self.inotify).read(buffer) else {
                return changed;
            };
            let events = &buffer[..len];
            let mut at = 0;
            while let Some(header) = events.get(at..at + 16) {
                let field = |i: usize| {
                    u32::from_ne_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]])
                };
                let wd = field(0) as i32;
                let mask = field(4);
                let name_len = field(12) as usize;
                let name = events.get(at + 16..at + 16 + name_len).unwrap_or_default();
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                at += 16 + name_len;
                let dir = self
                    .watched
                    .iter()
                    .find(|(w, _)| *w == wd)
                    .map(|(_, p)| p.clone());
                if mask & libc::IN_IGNORED != 0 {
                    // The directory is gone (a replaced Kubernetes timestamp directory).
                    self.watched.retain(|(w, _)| *w != wd);
                }
                if mask & libc::IN_Q_OVERFLOW != 0 {
                    changed.get_or_insert_with(|| self.settings.dir.clone());
                    continue;
                }
                let Some(dir) = dir else { continue };
                if self.is_own(&dir, name) {
                    continue;
                }
                changed.get_or_insert(dir);
            }
        }
    }

    /// Whether `name` in `dir` is a file vardr-init writes: the bundle, its cache record, or
    /// one of their temporary files (`.NAME.*.tmp`).
    fn is_own(&self, dir: &Path, name: &[u8]) -> bool {
        dir == self.own_dir
            && self.own.iter().any(|own| {
                name == own.as_slice()
                    || name
                        .strip_prefix(b".")
                        .and_then(|rest| rest.strip_prefix(own.as_slice()))
                        .is_some_and(|rest| rest.starts_with(b"."))
            })
    }
}
