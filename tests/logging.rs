//! vardr-init's own logs on the real binary: a stderr nobody reads never stops PID 1 (lines are
//! dropped and counted instead), and text logs cannot forge lines.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::{Duration, Instant};

use common::{PATIENCE, dies_within, finish, lines, pki};

/// Far more than any step here takes; only a hang goes past it (no performance claim).
const HANG: Duration = Duration::from_secs(10);

/// The child: reports each SIGTERM and SIGUSR1 on stdout and keeps running; `sh`, so it runs as
/// any user (the tests' Python may live under a home directory uid 65532 cannot read).
const REPORTER: &str = "trap 'echo got TERM' TERM; trap 'echo got USR1' USR1; echo ready $$; while :; do sleep 0.1; done";

/// `vardr-init -- sh -c REPORTER` with stderr into a pipe that nobody reads, as uid 65532 when
/// `nonroot` (then, as under Docker with `USER`, stderr is a pipe another user made, which
/// vardr-init cannot reopen through /proc).
struct Stalled {
    vardr: Child,
    child: i32,
    stdout: Receiver<String>,
    /// The read end of vardr-init's stderr.
    stderr: File,
}

impl Stalled {
    fn start(nonroot: bool, env: &[(&str, &str)]) -> Stalled {
        let (reader, writer) = io::pipe().expect("pipe");
        let mut command = if nonroot {
            common::as_nonroot(common::bin())
        } else {
            Command::new(common::bin())
        };
        command.args(["--", "sh", "-c", REPORTER]);
        pki::scrub(&mut command)
            .env("VARDR_CERTS_DIR", "/nonexistent/vardr-test-certs")
            .env("VARDR_CA_BUNDLE", "/nonexistent/vardr-test-bundle.pem")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0);
        // A second open file description of the write end, non-blocking, to fill the pipe with:
        // O_NONBLOCK on vardr-init's own description would hide the bug.
        let filler = reopen(&format!("/proc/self/fd/{}", writer.as_raw_fd()), true);
        command.stderr(writer);
        let mut vardr = command.spawn().expect("spawn vardr-init");
        drop(command); // closes the test's copy of the write end
        let stdout = lines(vardr.stdout.take().expect("piped"));
        let ready = stdout.recv_timeout(PATIENCE).expect("the child says ready");
        let child = ready
            .strip_prefix("ready ")
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("expected `ready PID`, got {ready:?}"));
        fill(filler);
        let stderr = File::from(std::os::fd::OwnedFd::from(reader));
        Stalled {
            vardr,
            child,
            stdout,
            stderr,
        }
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.vardr.id()).expect("pid");
        // SAFETY: plain kill(2) on the process this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {pid} {signal}");
    }

    /// The next line the child prints, which must come within [`HANG`].
    fn expect(&self, line: &str, why: &str) {
        match self.stdout.recv_timeout(HANG) {
            Ok(got) => assert_eq!(got, line, "{why}"),
            Err(e) => panic!("no {line:?} from the child within {HANG:?} ({e}): {why}"),
        }
    }

    /// vardr-init's exit code, which must come within [`HANG`].
    fn exit_code(&mut self, why: &str) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.vardr.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(start.elapsed() < HANG, "vardr-init still running: {why}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Reads what the pipe holds now, without waiting for more.
    fn drain(&self) -> Vec<u8> {
        let mut reader = reopen(&format!("/proc/self/fd/{}", self.stderr.as_raw_fd()), false);
        let mut bytes = Vec::new();
        let mut chunk = [0; 65536];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) => return bytes,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return bytes,
                Err(e) => panic!("drain stderr: {e}"),
            }
        }
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on the processes this test started.
        unsafe {
            libc::kill(self.child, libc::SIGKILL);
            libc::killpg(self.child, libc::SIGKILL);
            libc::killpg(i32::try_from(self.vardr.id()).unwrap_or(0), libc::SIGKILL);
        }
        let _ = self.vardr.wait();
    }
}

fn reopen(path: &str, write: bool) -> File {
    OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap_or_else(|e| panic!("open {path}: {e}"))
}

/// Writes into the pipe until it takes no single byte more.
fn fill(mut filler: File) {
    for size in [4096, 1] {
        let chunk = vec![b'.'; size];
        loop {
            match filler.write(&chunk) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("fill the pipe: {e}"),
            }
        }
    }
}

/// The incident: with stderr full, SIGTERM reached the child but the log line after it blocked
/// PID 1, so the VARDR_STOP_TIMEOUT kill never came. The child here ignores SIGTERM; with a 1 s
/// stop timeout everything must be gone soon after, the log lines about it dropped.
fn a_full_stderr_never_delays_the_stop(nonroot: bool) {
    let mut stalled = Stalled::start(nonroot, &[("VARDR_STOP_TIMEOUT", "1")]);
    stalled.signal(libc::SIGTERM);
    stalled.expect("got TERM", "SIGTERM is forwarded");
    let code = stalled.exit_code("the stop timeout must fire although stderr is full");
    assert_eq!(code, Some(128 + libc::SIGKILL), "the child was killed");
    assert!(dies_within(stalled.child, HANG), "the child is gone");
}

#[test]
fn a_full_stderr_pipe_never_delays_the_stop() {
    a_full_stderr_never_delays_the_stop(false);
}

#[test]
fn a_full_stderr_pipe_of_another_user_never_delays_the_stop() {
    if common::switch_users() {
        a_full_stderr_never_delays_the_stop(true);
    }
}

/// Lines that found stderr full are counted, and the first line that gets through says so.
#[test]
fn dropped_lines_are_reported_once_stderr_drains() {
    let stalled = Stalled::start(false, &[("VARDR_LOG_LEVEL", "debug")]);
    // Each forwarded SIGUSR1 logs a debug line that cannot be written; each must still reach
    // the child at once (one at a time: pending signals of one kind merge).
    for _ in 0..5 {
        stalled.signal(libc::SIGUSR1);
        stalled.expect("got USR1", "SIGUSR1 is forwarded while stderr is full");
    }
    let before = stalled.drain();
    assert!(
        !String::from_utf8_lossy(&before).contains("Forwarding SIGUSR1"),
        "the pipe was full: no room for these lines"
    );
    stalled.signal(libc::SIGTERM);
    stalled.expect("got TERM", "SIGTERM is forwarded");
    // Both lines are in the pipe as soon as the child has the signal: no need to wait.
    let start = Instant::now();
    let mut after = Vec::new();
    while !String::from_utf8_lossy(&after).contains("Forwarding SIGTERM") {
        assert!(
            start.elapsed() < HANG,
            "{:?}",
            String::from_utf8_lossy(&after)
        );
        thread::sleep(Duration::from_millis(10));
        after.extend(stalled.drain());
    }
    let after = String::from_utf8_lossy(&after);
    let mut lines = after.lines();
    let notice = lines.next().unwrap_or_default();
    let count: u32 = notice
        .strip_prefix("[Vardr] WARN: ")
        .and_then(|rest| rest.strip_suffix(" log lines were dropped: stderr was full"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("expected the dropped-lines notice first: {after:?}"));
    assert!(count >= 5, "five SIGUSR1 lines at least: {notice}");
    let forwarding = lines.next().unwrap_or_default();
    assert!(
        forwarding.starts_with("[Vardr] Forwarding SIGTERM to pid "),
        "{after:?}"
    );
}

/// A file name made to forge log lines on a terminal: ESC sequences that erase the line and
/// return the cursor, then VT, FF, NEL, LINE SEPARATOR and a newline.
#[test]
fn text_logs_escape_control_characters_in_file_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    let name = "esc\u{1b}[2K\u{1b}[1G[Vardr] forged\u{b}vt\u{c}ff\u{85}nel\u{2028}ls\nnl";
    std::fs::write(certs.join(name), "not a certificate\n").expect("write");
    let system = dir.path().join("system.pem");
    std::fs::write(&system, pki::system_bundle(1).0).expect("write");
    let mut command = Command::new(common::bin());
    command.arg("certs");
    pki::scrub(&mut command)
        .env("VARDR_CERTS_DIR", &certs)
        .env("VARDR_CA_BUNDLE", dir.path().join("bundle.pem"))
        .env("VARDR_SYSTEM_CA_BUNDLE", &system)
        .env("VARDR_JSON_LOGS", "false");
    let done = finish(command);
    done.assert_code(0, "a rejected file is not fatal");
    let raw = done
        .stderr
        .chars()
        .find(|&c| (c.is_control() && c != '\n') || matches!(c, '\u{2028}' | '\u{2029}'));
    assert_eq!(raw, None, "a raw control character: {:?}", done.stderr);
    let shown = r"esc\x1b[2K\x1b[1G[Vardr] forged\x0bvt\x0cff\u{85}nel\u{2028}ls\nnl";
    let line = done
        .stderr
        .lines()
        .find(|line| line.contains(shown))
        .unwrap_or_else(|| panic!("{shown} not in {:?}", done.stderr));
    assert!(line.starts_with("[Vardr] WARN: Rejected "), "{line}");
    for line in done.stderr.lines() {
        assert!(
            line.starts_with("[Vardr] "),
            "every line is one of ours: {line:?}"
        );
    }
}
