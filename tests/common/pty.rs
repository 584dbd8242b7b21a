//! A real pseudo-terminal, as `docker run -it` gives: open one, make it a child's controlling
//! terminal, read from it with a deadline, type on it.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// Reads until `needle` appears (or the test's patience runs out); the master fd is switched to
/// non-blocking.
pub fn read_until(master: &mut std::fs::File, needle: &str) -> String {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let start = Instant::now();
    let mut text = String::new();
    let mut buffer = [0u8; 4096];
    while !text.contains(needle) {
        assert!(
            start.elapsed() < super::PATIENCE,
            "no {needle:?} on the pty: {text}"
        );
        match master.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buffer[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("pty read: {e} (so far: {text})"),
        }
    }
    text
}

/// Types `bytes` on the terminal.
pub fn write(master: &mut std::fs::File, bytes: &[u8]) {
    master.write_all(bytes).expect("pty write");
}

/// A new pty: the master (to read and type) and the slave (the child's stdin, stdout, stderr).
pub fn open() -> (std::fs::File, std::os::fd::OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty with valid out-pointers and no name/termios/winsize.
    let result = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(result, 0, "openpty");
    use std::os::fd::FromRawFd;
    // SAFETY: both fds were just opened by openpty and are owned here alone.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}

/// Makes the command a session leader whose controlling terminal is its stdin (the pty slave).
pub fn controlling_terminal(command: &mut Command) {
    // SAFETY: setsid and ioctl only, between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}
