//! The few system calls an init needs, each behind a safe function. Every `unsafe` block of the
//! crate is in this file.
//!
//! Plain `libc` rather than `nix`: the supervisor needs `sigtimedwait` (to wake at the stop
//! deadline without a timer thread) and real-time signals, and nix models neither (its `Signal`
//! is an enum of the standard 31). Wrapping a dozen calls here is smaller than bridging the two.

use std::io;
use std::mem::MaybeUninit;
use std::num::NonZeroU32;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::ptr;
use std::time::{Duration, Instant};

pub type Pid = libc::pid_t;

/// A set of signal numbers (`sigset_t`).
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl SigSet {
    pub fn empty() -> SigSet {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the whole set; it cannot fail for a valid pointer.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            SigSet(set.assume_init())
        }
    }

    pub fn add(&mut self, signal: i32) {
        // SAFETY: the set is initialised; an invalid number only returns EINVAL.
        unsafe { libc::sigaddset(&mut self.0, signal) };
    }

    pub fn contains(&self, signal: i32) -> bool {
        // SAFETY: the set is initialised.
        unsafe { libc::sigismember(&self.0, signal) == 1 }
    }

    /// Adds `signal`s to this process's blocked mask.
    pub fn block(&self) -> io::Result<()> {
        // SAFETY: valid set pointer; vardr-init is single-threaded, so the process mask is this
        // thread's mask.
        check(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &self.0, ptr::null_mut()) })
    }

    /// The signals sent to this process that are blocked and not yet taken.
    pub fn pending() -> io::Result<SigSet> {
        let mut set = SigSet::empty();
        // SAFETY: valid set pointer, written by the kernel.
        check(unsafe { libc::sigpending(&mut set.0) })?;
        Ok(set)
    }

    /// Waits until one of these (blocked) signals is pending and takes it, or until `timeout`.
    /// `None` means the timeout passed or the wait was interrupted: the caller re-checks its state.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<i32>> {
        // SAFETY: valid set pointer; siginfo may be null; the timespec outlives the call.
        let signal = unsafe {
            match timeout {
                None => libc::sigwaitinfo(&self.0, ptr::null_mut()),
                Some(timeout) => libc::sigtimedwait(&self.0, ptr::null_mut(), &timespec(timeout)),
            }
        };
        taken(signal.into())
    }

    /// [`SigSet::wait`] right after [`release_code_pages`], in one function of raw system calls:
    /// what runs between the release and the sleep is what stays resident in an idle PID 1 (a
    /// fault maps a whole window of neighbouring pages), so neither goes through libc's
    /// wrappers, which lie elsewhere in the binary.
    pub fn wait_released(&self, timeout: Option<Duration>) -> io::Result<Option<i32>> {
        let (ranges, count) = code_ranges();
        let timespec = timeout.map(timespec);
        let timespec = timespec
            .as_ref()
            .map_or(ptr::null(), |t| t as *const libc::timespec);
        for &(start, len) in &ranges[..count] {
            madvise_dontneed(start, len);
        }
        // SAFETY: valid set pointer; siginfo may be null; the timespec (or null: no timeout)
        // outlives the call; 8 is the kernel's sigset size (_NSIG / 8) on Linux.
        let signal = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &self.0 as *const libc::sigset_t,
                ptr::null_mut::<libc::siginfo_t>(),
                timespec,
                8usize,
            )
        };
        taken(signal)
    }
}

/// A signal wait's timeout, clamped to a year so the cast fits any time_t (the caller re-waits).
fn timespec(timeout: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: timeout.as_secs().min(365 * 24 * 3600) as _,
        tv_nsec: timeout.subsec_nanos().into(),
    }
}

/// What a signal wait returned: the signal taken, or `None` for a timeout or an interruption.
fn taken(signal: libc::c_long) -> io::Result<Option<i32>> {
    if signal > 0 {
        return Ok(i32::try_from(signal).ok());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EAGAIN | libc::EINTR) => Ok(None),
        _ => Err(error),
    }
}

/// The highest signal number (SIGRTMAX, 64 on Linux).
pub fn max_signal() -> i32 {
    libc::SIGRTMAX()
}

/// The first real-time signal the C library leaves to applications (it keeps a few for itself).
pub fn first_realtime_signal() -> i32 {
    libc::SIGRTMIN()
}

/// Sets `signal`'s disposition in this process to its default (`SIG_DFL`) or to ignored.
pub fn set_disposition(signal: i32, ignore: bool) -> io::Result<()> {
    let handler = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: SIG_DFL / SIG_IGN are not functions; nothing runs in signal context.
    check(unsafe { set_handler(signal, handler) })
}

/// `sigaction(signal, handler)` with an empty mask. Async-signal-safe (used between fork and exec).
unsafe fn set_handler(signal: i32, handler: libc::sighandler_t) -> libc::c_int {
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the pointer is valid.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigaction(signal, &action, ptr::null_mut())
    }
}

pub fn kill(pid: Pid, signal: i32) -> io::Result<()> {
    // SAFETY: plain system call.
    check(unsafe { libc::kill(pid, signal) })
}

pub fn kill_group(pgid: Pid, signal: i32) -> io::Result<()> {
    // SAFETY: plain system call.
    check(unsafe { libc::killpg(pgid, signal) })
}

/// What `waitpid(-1, WNOHANG)` found.
pub enum Reaped {
    /// A child ended with this raw wait status.
    Child(Pid, i32),
    /// Children exist, none has ended.
    NoneReady,
    /// No children at all.
    NoChildren,
}

pub fn reap_one() -> io::Result<Reaped> {
    loop {
        let mut status = 0;
        // SAFETY: valid pointer to status.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match pid {
            0 => return Ok(Reaped::NoneReady),
            pid if pid > 0 => return Ok(Reaped::Child(pid, status)),
            _ => {
                let error = io::Error::last_os_error();
                match error.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::ECHILD) => return Ok(Reaped::NoChildren),
                    _ => return Err(error),
                }
            }
        }
    }
}

pub fn getpid() -> Pid {
    // SAFETY: cannot fail.
    unsafe { libc::getpid() }
}

/// `waitpid(pid)` for one child: its raw wait status once it has ended; `None` if `block` is
/// false and it is still running.
pub fn wait_pid(pid: Pid, block: bool) -> io::Result<Option<i32>> {
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        let mut status = 0;
        // SAFETY: valid pointer to status.
        let found = unsafe { libc::waitpid(pid, &mut status, flags) };
        match found {
            0 => return Ok(None),
            found if found == pid => return Ok(Some(status)),
            _ => {
                let error = io::Error::last_os_error();
                if error.raw_os_error() != Some(libc::EINTR) {
                    return Err(error);
                }
            }
        }
    }
}

/// A descriptor that becomes readable when process `pid` (our child) ends (`pidfd_open`, Linux
/// 5.3): a wait for a child with a timeout, no polling.
pub fn pidfd_open(pid: Pid) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    owned_fd(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })
}

/// Sends `signal` to the process behind `pidfd`: never to another process that took its PID
/// after it was reaped.
pub fn pidfd_send_signal(pidfd: std::os::fd::BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor, a null siginfo (the kernel fills in a kill()'s), no flags.
    let result = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The descriptor a raw `syscall` returned, owned; or its error.
fn owned_fd(result: libc::c_long) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd =
        libc::c_int::try_from(result).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Reaps child `pid`: its status, or `None` if it is still running at `until` (or a short grace
/// after a kill, which takes effect at once).
pub fn reap_within(pid: Pid, until: Instant) -> Option<ExitStatus> {
    let until = until.max(Instant::now() + Duration::from_secs(1));
    // A worker exits right after closing its pipe. Its pidfd says when, without polling; on a
    // kernel without pidfds (before 5.3), waits that start short and double.
    let pidfd = pidfd_open(pid).ok();
    let mut pause = Duration::from_micros(50);
    loop {
        match wait_pid(pid, false) {
            Ok(Some(raw)) => return Some(ExitStatus::from_raw(raw)),
            Ok(None) if Instant::now() < until => {
                let left = until.saturating_duration_since(Instant::now());
                match &pidfd {
                    Some(fd) => {
                        let _ = wait_readable(fd.as_fd(), left);
                    }
                    None => {
                        std::thread::sleep(pause.min(left));
                        pause = (pause * 2).min(Duration::from_millis(10));
                    }
                }
            }
            // Still running at the deadline, or lost (reaped elsewhere): nothing more to wait for.
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Which side of a [`fork`] this is.
pub enum Forked {
    Child,
    Parent(Pid),
}

/// `fork()`: a copy of this process, for a worker (`crate::worker`).
///
/// Sound because vardr-init forks only while it has a single thread (app discovery and the
/// certificate pass run before the app starts; the only threads it ever makes are in `health`,
/// which never forks): the child can go on running ordinary Rust code, with no lock held by a
/// thread that does not exist in it.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: single-threaded caller (see above); the child inherits a consistent heap.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Ends this process at once with `code`: no destructors, no atexit handlers, nothing flushed
/// twice. What a forked worker does when its job is done.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Bounds this process's address space (`setrlimit(RLIMIT_AS)`, soft and hard limit) to `bytes`,
/// or to the bound it already has if that is lower: an allocation past it fails, and Rust aborts
/// the process. What a forked worker sets first, so a file that makes a parser allocate without
/// end costs the worker, never the container's memory. The hard limit goes down too: the worker
/// cannot raise it again. (Under qemu-user the call succeeds without effect: the emulator keeps
/// the address space for itself.)
pub fn limit_address_space(bytes: libc::rlim_t) -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid pointer to an rlimit, written by the kernel.
    check(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) })?;
    let bytes = bytes.min(limit.rlim_max);
    limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: a valid pointer to an initialised rlimit, for the duration of the call.
    check(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) })
}

/// Waits up to `timeout` for `fd` to be readable (data, end of file or an error); `false` when
/// the time passed first or a signal interrupted the wait.
pub fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    Ok(poll_readable(&[fd], Some(timeout))? != 0)
}

/// Waits up to `timeout` (`None`: for ever) until one of `fds` is readable (data, end of file,
/// an error). Returns a bit per descriptor, in order (at most 8); 0 when the time passed or a
/// signal interrupted the wait.
pub fn poll_readable(
    fds: &[std::os::fd::BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> io::Result<u8> {
    use std::os::fd::AsRawFd;
    let mut polls = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; 8];
    let count = fds.len().min(polls.len());
    for (poll, fd) in polls.iter_mut().zip(fds) {
        poll.fd = fd.as_raw_fd();
    }
    // Rounded up: a wait that ends a millisecond early only to wait again is a busy loop.
    let millis = timeout.map_or(-1, |t| {
        let ms = t.as_nanos().div_ceil(1_000_000);
        libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
    });
    // SAFETY: `count` valid pollfds in a live array, for the duration of the call.
    let ready = unsafe { libc::poll(polls.as_mut_ptr(), count as libc::nfds_t, millis) };
    if ready < 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::EINTR) => Ok(0),
            _ => Err(error),
        };
    }
    let mut bits = 0;
    for (i, poll) in polls[..count].iter().enumerate() {
        if poll.revents != 0 {
            bits |= 1 << i;
        }
    }
    Ok(bits)
}

/// A descriptor that is readable while one of `set`'s (blocked) signals is pending: the
/// supervisor polls it beside other descriptors, then takes the signal with [`SigSet::wait`].
pub fn signalfd(set: &SigSet) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: a valid set pointer; -1 asks for a new descriptor.
    let fd = unsafe { libc::signalfd(-1, &set.0, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    owned_fd(fd.into())
}

/// An inotify instance (close-on-exec, non-blocking).
pub fn inotify_init() -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: plain system call with flag arguments.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    owned_fd(fd.into())
}

/// Watches `path` (a directory, followed if a symlink) for `mask`; the watch descriptor.
pub fn inotify_add_watch(
    inotify: std::os::fd::BorrowedFd<'_>,
    path: &std::path::Path,
    mask: u32,
) -> io::Result<i32> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid descriptor and a NUL-terminated path that outlives the call.
    let wd = unsafe { libc::inotify_add_watch(inotify.as_raw_fd(), path.as_ptr(), mask) };
    if wd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(wd)
}

pub fn inotify_rm_watch(inotify: std::os::fd::BorrowedFd<'_>, wd: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain system call; a stale watch descriptor only returns EINVAL.
    unsafe { libc::inotify_rm_watch(inotify.as_raw_fd(), wd) };
}

/// Makes the kernel send this process SIGKILL when its parent ends: a watcher or worker never
/// outlives the vardr-init that started it. Returns false if the parent has already gone.
pub fn die_with_parent(parent: Pid) -> bool {
    // SAFETY: plain prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    // SAFETY: cannot fail.
    unsafe { libc::getppid() == parent }
}

/// Whether this process may create files in `dir` (`faccessat` with the effective ids): what a
/// dry run can check of a write without making one.
pub fn can_write(dir: &std::path::Path) -> io::Result<()> {
    access(dir, libc::W_OK | libc::X_OK)
}

/// Whether this process may execute `file` (`faccessat` with the effective ids): what a dry run
/// can check of an `exec` without making one.
pub fn can_execute(file: &std::path::Path) -> io::Result<()> {
    access(file, libc::X_OK)
}

/// `faccessat(path, mode, AT_EACCESS)`: the effective ids, as the real operation would use.
fn access(path: &std::path::Path, mode: libc::c_int) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    check(unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), mode, libc::AT_EACCESS) })
}

/// Opens `path` read-only, non-blocking (a FIFO cannot hang us), without making it our terminal,
/// close-on-exec. The raw `openat` system call: musl's `open` follows an `O_CLOEXEC` open with a
/// redundant `fcntl(F_SETFD)` (for kernels older than 2.6.23), one extra system call per file
/// of the certificates directory.
pub fn open_nonblocking(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    let fd = unsafe { libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), flags) };
    owned_fd(fd).map(std::fs::File::from)
}

/// A stream connection to the Unix socket at `path` (the health probe of `BIND=unix:PATH`), as
/// a `File`: std's `UnixStream` costs some 8 KiB of binary for what `read` and `write` do here.
pub fn connect_unix(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: all-zero is a valid `sockaddr_un` (an empty path of family 0).
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    // One byte stays 0: the kernel reads the path up to a NUL or the end of `sun_path`.
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (to, &from) in addr.sun_path.iter_mut().zip(bytes) {
        *to = from as libc::c_char;
    }
    // SAFETY: plain system call; the descriptor it returns is owned at once.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    let socket = owned_fd(fd.into())?;
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `addr` is an initialised `sockaddr_un` and `len` its size; `socket` is open.
    check(unsafe {
        libc::connect(
            socket.as_raw_fd(),
            (&raw const addr).cast::<libc::sockaddr>(),
            len,
        )
    })?;
    Ok(std::fs::File::from(socket))
}

/// The effective user id: files vardr-init reuses from a shared directory must be its own.
pub fn geteuid() -> u32 {
    // SAFETY: cannot fail.
    unsafe { libc::geteuid() }
}

/// The number of CPUs in this process's affinity mask (`sched_getaffinity`), `None` on failure
/// (more than 1024 CPUs, where `cpu_set_t` is too small).
pub fn affinity_cpus() -> Option<NonZeroU32> {
    // SAFETY: cpu_set_t is a plain bit array, so all-zero is a valid empty set; the kernel writes
    // at most `size_of::<cpu_set_t>()` bytes into it; CPU_COUNT only reads the set.
    let count = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        libc::CPU_COUNT(&set)
    };
    NonZeroU32::new(u32::try_from(count).ok()?)
}

/// Unmaps from this process the code pages it has touched so far (the executable's `r-xp`
/// mappings, found in `/proc/self/maps`), with `MADV_DONTNEED`: once the child runs, PID 1 keeps
/// mapped only the code it goes on running. Code is clean, never-written file memory: a page
/// run again faults back in from the page cache, unchanged. Writable or read-only data is never
/// touched (a private page there may hold our own writes). Best effort: without `/proc`, nothing.
///
/// Call it right before PID 1 sleeps: a page fault maps a whole window of neighbouring pages (the
/// kernel's fault-around, 64 KiB), so every function run between the release and the sleep costs
/// a window; with the `/proc` parsing still running after the first `madvise`, and the loop's
/// bookkeeping after the release, that was eight to nine windows (about 540 KiB) back at once.
pub fn release_code_pages() {
    let (ranges, count) = code_ranges();
    for &(start, len) in &ranges[..count] {
        madvise_dontneed(start, len);
    }
}

/// The executable's code mappings (`r-xp`, from `/proc/self/maps`): every range first, the
/// strings freed, so that only the `madvise` calls run after the first one (the code that runs
/// after it is all that faults back in: a fault maps a whole window of neighbouring pages).
fn code_ranges() -> ([(usize, usize); 4], usize) {
    let mut ranges = [(0usize, 0usize); 4];
    let mut count = 0;
    if let (Ok(maps), Ok(exe)) = (
        std::fs::read_to_string("/proc/self/maps"),
        std::fs::read_link("/proc/self/exe"),
    ) {
        for line in maps.lines() {
            let mut fields = line.split_ascii_whitespace();
            let (Some(range), Some("r-xp")) = (fields.next(), fields.next()) else {
                continue;
            };
            if fields.nth(3).map(std::path::Path::new) != Some(exe.as_path()) {
                continue;
            }
            let Some((start, end)) = range.split_once('-') else {
                continue;
            };
            if let (Ok(start), Ok(end), Some(slot)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
                ranges.get_mut(count),
            ) {
                *slot = (start, end.saturating_sub(start));
                count += 1;
            }
        }
    }
    (ranges, count)
}

/// `madvise(MADV_DONTNEED)` on a range [`code_ranges`] found, by the raw system call (libc's
/// wrapper lies elsewhere in the binary: one more window to fault back in).
#[inline(always)]
fn madvise_dontneed(start: usize, len: usize) {
    // SAFETY: the range is a whole mapping of our executable's code, read-only and executable,
    // never written: MADV_DONTNEED only drops its page-table entries, and the next instruction
    // fetched from it faults the same bytes back in from the file.
    unsafe {
        libc::syscall(libc::SYS_madvise, start, len, libc::MADV_DONTNEED);
    }
}

/// PID 1's name (`/proc/1/comm`) while it drains: `vardr-init health` reads it. A process name
/// needs no writable file system, dies with the process (nothing stale after a restart) and is
/// seen by every process of the container's PID namespace, a `docker exec` probe included.
pub const DRAINING_NAME: &str = "vardr-draining";

/// PID 1's name while live trust is down: its certificate watcher keeps dying (see
/// `crate::init::Reloads`). Draining takes precedence: it is the name PID 1 ends with.
pub const TRUST_DOWN_NAME: &str = "vardr-trustdown";

/// Sets this thread's name (`/proc/self/comm`, what `ps` shows), at most 15 bytes.
pub fn set_process_name(name: impl AsRef<[u8]>) {
    let name = name.as_ref();
    let mut buffer = [0u8; 16];
    let len = name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(name.len())
        .min(15);
    buffer[..len].copy_from_slice(&name[..len]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from a valid buffer.
    unsafe { libc::prctl(libc::PR_SET_NAME, buffer.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

/// This thread's name, as [`set_process_name`] takes it back (NUL-terminated).
pub fn own_process_name() -> [u8; 16] {
    let mut buffer = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into a valid buffer.
    unsafe {
        libc::prctl(
            libc::PR_GET_NAME,
            buffer.as_mut_ptr() as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    buffer
}

/// Puts this process in a process group of its own: the watcher, so that it and its pass worker
/// are killed together, and told apart from what the child left.
pub fn own_process_group() {
    // SAFETY: plain system call; it can only fail for a session leader, which a fork is not.
    unsafe { libc::setpgid(0, 0) };
}

/// The name (`comm`) of process `pid` as `/proc` shows it, without the trailing newline.
pub fn process_name(pid: Pid) -> Option<String> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(name.trim_end_matches('\n').to_owned())
}

/// Every live process whose chain of parents leads to `ancestor`, with its name, from `/proc`
/// (empty without it), except the members of process group `except` (vardr-init's own watcher,
/// when not 0). Zombies are left out: they are dead, and reaping takes them.
pub fn descendants(ancestor: Pid, except: Pid) -> Vec<(Pid, Pid, String)> {
    // (pid, parent, name) of each process; one that ends meanwhile is simply missing.
    let mut all: Vec<(Pid, Pid, String)> = Vec::new();
    let mut path = std::path::PathBuf::from("/proc");
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        path.push(entry.file_name());
        path.push("stat");
        let stat = std::fs::read(&path).unwrap_or_default();
        path.pop();
        path.pop();
        // "PID (comm) STATE PPID ...": comm may hold spaces and ')', so split at the last ')'.
        let (Some(open), Some(close)) = (
            stat.iter().position(|&b| b == b'('),
            stat.iter().rposition(|&b| b == b')'),
        ) else {
            continue;
        };
        let number = |field: &[u8]| {
            let digits = field.iter().take_while(|b| b.is_ascii_digit());
            digits.fold(0, |n: Pid, &b| {
                n.wrapping_mul(10).wrapping_add(Pid::from(b - b'0'))
            })
        };
        // After ") ": the state letter, a space, the parent's pid, a space, the group's.
        let (Some(&state), Some(parent), Some(name)) = (
            stat.get(close + 2),
            stat.get(close + 4..),
            stat.get(open + 1..close),
        ) else {
            continue;
        };
        let group = parent
            .iter()
            .position(|&b| b == b' ')
            .and_then(|at| parent.get(at + 1..))
            .map_or(0, number);
        let pid = number(&stat);
        let ours = except != 0 && group == except;
        if state != b'Z' && state != b'X' && pid != ancestor && !ours {
            let name = String::from_utf8_lossy(name).into_owned();
            all.push((pid, number(parent), name));
        }
    }
    // Moved to the front a generation at a time: first the ancestor's children, then theirs.
    let mut found = 0;
    while let Some(at) = (found..all.len())
        .find(|&i| all[i].1 == ancestor || all[..found].iter().any(|p| p.0 == all[i].1))
    {
        all.swap(found, at);
        found += 1;
    }
    all.truncate(found);
    all
}

/// Makes orphaned descendants re-parent to this process instead of the real init.
pub fn become_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
}

/// True when stdin is a terminal whose foreground process group is ours: only then may the child
/// take the terminal (a supervisor started in the background must not steal it from the shell).
pub fn stdin_is_foreground_tty() -> bool {
    // SAFETY: plain system calls on fd 0.
    unsafe {
        libc::isatty(libc::STDIN_FILENO) == 1
            && libc::tcgetpgrp(libc::STDIN_FILENO) == libc::getpgrp()
    }
}

/// Runs in the forked child just before `exec`, so only async-signal-safe calls, no allocation.
///
/// Puts the child in a process group of its own (so the stop deadline can SIGKILL it and its
/// descendants without touching us), hands it the terminal's foreground when `take_terminal`,
/// and gives it what a freshly started program expects: every signal at its default disposition
/// and an empty mask. `std::process::Command` does not do the last two: it passes on ignored
/// signals, and our mask blocks everything we forward.
///
/// # Safety
/// Call only between fork and exec (from `CommandExt::pre_exec`).
pub unsafe fn prepare_child(take_terminal: bool, non_default: u64) -> io::Result<()> {
    // SAFETY: each call is async-signal-safe and given valid pointers.
    unsafe {
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(all.as_mut_ptr());
        // SIGTTOU must be blocked while a background group calls tcsetpgrp, or the call stops us.
        libc::sigprocmask(libc::SIG_BLOCK, all.as_ptr(), ptr::null_mut());
        if libc::setpgid(0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if take_terminal {
            // Best effort: failing here leaves the child in the background, still supervised.
            libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
        }
        // The raw system call, because sigaction() in glibc and musl refuses the C library's own
        // real-time signals (32-34), and glibc's posix_spawn sets those to SIG_IGN in children of
        // multi-threaded parents: without this, that SIG_IGN would pass through us to the app.
        // An all-zero kernel sigaction is SIG_DFL with no flags and an empty mask whatever the
        // architecture's field order.
        // Only the signals whose disposition is not the default here (`non_default`, bit N-1 for
        // signal N): handlers do not survive exec, so those are the ignored ones.
        let default_action = [0u64; 4];
        for signal in 1..=libc::SIGRTMAX() {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP && non_default & bit(signal) != 0
            {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    default_action.as_ptr(),
                    ptr::null_mut::<u64>(),
                    KERNEL_SIGSET_BYTES,
                );
            }
        }
        let mut none = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(none.as_mut_ptr());
        if libc::sigprocmask(libc::SIG_SETMASK, none.as_ptr(), ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Signal `signal`'s bit in a 64-bit mask like /proc's `SigIgn` (bit N-1 for signal N).
pub fn bit(signal: i32) -> u64 {
    u32::try_from(signal - 1)
        .ok()
        .and_then(|shift| 1u64.checked_shl(shift))
        .unwrap_or(0)
}

/// The signals this process ignores, from `/proc/self/status` (`SigIgn`, a hex mask): what it
/// inherited as ignored, since only ignored dispositions survive exec. Without `/proc`, every
/// bit: the caller then resets everything, as it would have to.
pub fn ignored_signals() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
            u64::from_str_radix(line.trim(), 16).ok()
        })
        .unwrap_or(u64::MAX)
}

/// The kernel's sigset_t is 64 bits (_NSIG / 8) on x86_64 and aarch64; libc's sigset_t is larger
/// (128 bytes in glibc) and must not be what the raw system call is told.
const KERNEL_SIGSET_BYTES: usize = 8;

/// `SIGTERM`, `SIGRTMIN+3`, ... for log lines.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSTKFLT => "SIGSTKFLT",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        n if n >= libc::SIGRTMIN() && n <= libc::SIGRTMAX() => {
            return format!("SIGRTMIN+{}", n - libc::SIGRTMIN());
        }
        n => return format!("signal {n}"),
    };
    name.to_owned()
}

/// Moves up to `len` bytes from the pipe `from` into the pipe `to` (`splice`), never waiting:
/// `SPLICE_F_NONBLOCK` makes both pipe ends non-blocking for this call alone, whatever the flags
/// of their open file descriptions. A buffer of at most a page moves whole or not at all.
pub fn splice_nonblocking(
    from: std::os::fd::BorrowedFd<'_>,
    to: std::os::fd::BorrowedFd<'_>,
    len: usize,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: both descriptors are open for the call (borrowed); null offsets, as pipes require.
    let moved = unsafe {
        libc::splice(
            from.as_raw_fd(),
            ptr::null_mut(),
            to.as_raw_fd(),
            ptr::null_mut(),
            len,
            libc::SPLICE_F_NONBLOCK,
        )
    };
    usize::try_from(moved).map_err(|_| io::Error::last_os_error())
}

/// `send` on a connected socket without waiting (`MSG_DONTWAIT`) and without SIGPIPE.
pub fn send_nonblocking(socket: std::os::fd::BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // SAFETY: the descriptor is open for the call; the buffer is valid for `bytes.len()` bytes.
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            flags,
        )
    };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

/// Waits at most `timeout` (whole milliseconds) for `fd` to accept a write (`poll` for
/// `POLLOUT`): false when it did not, or on any error.
pub fn wait_writable(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, its count 1; the descriptor is open for the call.
    let ready = unsafe { libc::poll(&mut poll, 1, ms) };
    ready == 1 && poll.revents & libc::POLLOUT != 0
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_bits_follow_proc_sigign() {
        assert_eq!(bit(1), 1);
        assert_eq!(bit(libc::SIGPIPE), 1 << 12);
        assert_eq!(bit(64), 1 << 63);
        assert_eq!(bit(0), 0);
        assert_eq!(bit(65), 0);
        // The Rust runtime ignores SIGPIPE in every program it starts, this test's included.
        assert_ne!(ignored_signals() & bit(libc::SIGPIPE), 0);
        assert_eq!(ignored_signals() & bit(libc::SIGTERM), 0);
    }
}
