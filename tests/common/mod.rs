//! Shared harness: run the real vardr-init binary, as PID 1 of a new PID namespace or as a plain
//! child, talk to its child over stdout, send it real signals, and never hang.
//! Fixtures by kind: `pki` (certificates and bundles), `certs` (a tree for `vardr-init certs`),
//! `app` (the default command's surroundings).
#![allow(dead_code)] // each test file uses a different part of the harness

pub mod app;
pub mod certs;
pub mod der;
pub mod pki;
pub mod pty;
pub mod shapes;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// Nothing in these tests legitimately takes this long; past it, the test fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The binary under test: `VARDR_TEST_BIN` (the static musl release build, set by scripts/test.sh)
/// or the one cargo built for this test run.
pub fn bin() -> PathBuf {
    std::env::var_os("VARDR_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vardr-init")))
}

/// The child's PID in a new PID namespace: 3 (vardr-init is 1, the certificate worker was 2).
/// Under qemu-user (`VARDR_TEST_EMULATOR`, set by scripts/test-arm64.sh) the emulator's own
/// threads take PIDs of the namespace too, so there it is the PID vardr-init logged on starting
/// the child.
pub fn namespace_child_pid(stderr: &[String]) -> String {
    if std::env::var_os("VARDR_TEST_EMULATOR").is_none() {
        return "3".to_owned();
    }
    stderr
        .iter()
        .filter(|line| line.contains("Running "))
        .find_map(|line| line.rsplit_once("(pid ")?.1.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no `Running ... (pid N)` line: {stderr:#?}"))
        .to_owned()
}

/// The child's PID in a new PID namespace when vardr-init found the app itself (no
/// `APP_MODULE`): 4 (vardr-init is 1, the app discovery worker was 2, the certificate worker 3).
/// Under qemu-user, as [`namespace_child_pid`]: the PID logged on starting the child.
pub fn namespace_app_pid(stderr: &[String]) -> String {
    if std::env::var_os("VARDR_TEST_EMULATOR").is_some() {
        return namespace_child_pid(stderr);
    }
    "4".to_owned()
}

/// `[PYTHON, tests/helpers/SCRIPT]`: the start of a command line that runs a helper child.
pub fn python_script(script: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/helpers")
        .join(script);
    vec![
        python().to_string_lossy().into_owned(),
        path.to_string_lossy().into_owned(),
    ]
}

/// Asserts that some line of vardr-init's stderr contains `needle`.
pub fn assert_logged(stderr: &[String], needle: &str, why: &str) {
    assert!(
        stderr.iter().any(|line| line.contains(needle)),
        "expected a log line with {needle:?} ({why}): {stderr:#?}"
    );
}

/// An absolute path to a real Python interpreter (`python3` may be a pyenv shim that rewrites
/// PATH for whatever it runs; the interpreter itself does not).
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Some(path) = std::env::var_os("VARDR_TEST_PYTHON") {
            return PathBuf::from(path);
        }
        let output = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 must be installed to run the tests");
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// The Python of the test venv (FastAPI, uvicorn, requests, httpx from PyPI) that scripts/test.sh
/// makes and names in `VARDR_TEST_VENV`. `None` means skip; in CI (`CI=true`) a missing venv fails.
pub fn venv_python() -> Option<PathBuf> {
    let python = std::env::var_os("VARDR_TEST_VENV")
        .map(|venv| PathBuf::from(venv).join("bin/python"))
        .filter(|python| python.exists());
    if python.is_none() {
        skip_outside_ci("VARDR_TEST_VENV names no venv: run the tests with scripts/test.sh");
    }
    python
}

/// The CPython builds to compare with: `VARDR_TEST_RUNTIMES` (colon-separated interpreters), or
/// pyenv's 3.12 and 3.13 builds.
pub fn cpython_runtimes() -> Vec<PathBuf> {
    if let Some(list) = std::env::var_os("VARDR_TEST_RUNTIMES") {
        return std::env::split_paths(&list).collect();
    }
    let root = Command::new("pyenv")
        .arg("root")
        .output()
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    let mut found = Vec::new();
    for minor in ["3.12", "3.13"] {
        let python = std::fs::read_dir(root.join("versions"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{minor}.")))
            })
            .map(|path| path.join("bin").join(format!("python{minor}")))
            .find(|python| python.exists());
        match python {
            Some(python) => found.push(python),
            None => skip_outside_ci(&format!("no CPython {minor} under $(pyenv root)/versions")),
        }
    }
    found
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A test needs something this machine lacks: outside CI it skips (this says why); in CI
/// (`CI=true`) that is a failure, never a skip.
pub fn skip_outside_ci(missing: &str) {
    assert!(!in_ci(), "CI=true but {missing}");
    eprintln!("SKIPPED: {missing}");
}

/// Whether strace runs here (the fault-injection tests); outside CI a test may skip without it.
pub fn strace_available() -> bool {
    let available = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        skip_outside_ci("strace is not installed (apt-get install strace)");
    }
    available
}

/// Whether `unshare -p -f --mount-proc` works here. Outside CI a test may skip without it; in CI
/// (`CI=true`) its absence is a failure, never a skip.
pub fn pid_namespaces() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    let available = *AVAILABLE.get_or_init(|| {
        Command::new("unshare")
            .args(["-p", "-f", "--mount-proc", "true"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !available {
        skip_outside_ci("`unshare -p -f --mount-proc` fails: PID namespaces need root");
    }
    available
}

/// Where vardr-init runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// PID 1 of a new PID namespace (`unshare -p -f --mount-proc`).
    Pid1,
    /// A plain child of the test: vardr-init must register as child subreaper.
    Subreaper,
}

/// vardr-init as PID 1 of a new PID namespace, or as a plain child: arguments still to add.
pub fn launcher(mode: Mode) -> Command {
    match mode {
        Mode::Pid1 => {
            let mut c = Command::new("unshare");
            c.args(["-p", "-f", "--mount-proc"]).arg(bin());
            c
        }
        Mode::Subreaper => Command::new(bin()),
    }
}

/// `vardr-init -- ARGS...` as a command, ready for environment tweaks.
pub fn command<S: AsRef<OsStr>>(mode: Mode, args: &[S]) -> Command {
    let mut command = launcher(mode);
    command.arg("--").args(args);
    // Hermetic: no /certs of the machine's, and no bundle written to the shared /tmp.
    command
        .env("VARDR_CERTS_DIR", "/nonexistent/vardr-test-certs")
        .env("VARDR_CA_BUNDLE", "/nonexistent/vardr-test-bundle.pem");
    command
}

/// A running vardr-init with its stdout lines and stderr lines flowing into channels.
pub struct Running {
    process: Child,
    mode: Mode,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// PIDs (outside any namespace) to SIGKILL if the test fails half-way.
    pub cleanup: Vec<i32>,
}

pub fn start(mut command: Command, mode: Mode) -> Running {
    let mut process = spawn_piped(&mut command);
    let stdout = lines(process.stdout.take().expect("piped"));
    let stderr = lines(process.stderr.take().expect("piped"));
    Running {
        process,
        mode,
        stdout,
        stderr,
        cleanup: Vec::new(),
    }
}

/// Each line `stream` gives, as it comes, on a channel (read on a thread of its own).
pub fn lines(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

impl Running {
    /// The next stdout line of the child, which must start with `prefix`.
    pub fn expect_line(&self, prefix: &str) -> String {
        match self.stdout.recv_timeout(PATIENCE) {
            Ok(line) if line.starts_with(prefix) => line,
            Ok(line) => panic!("expected a line starting {prefix:?}, got {line:?}"),
            Err(e) => panic!("no line starting {prefix:?} within {PATIENCE:?}: {e}"),
        }
    }

    /// vardr-init's PID as seen from the test (in `Pid1` mode, unshare's forked child).
    pub fn vardr_pid(&self) -> i32 {
        let own = i32::try_from(self.process.id()).expect("pid fits");
        if self.mode == Mode::Subreaper {
            return own;
        }
        let children = format!("/proc/{own}/task/{own}/children");
        let start = Instant::now();
        loop {
            let listed = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = listed.split_whitespace().next() {
                return pid.parse().expect("numeric pid");
            }
            assert!(
                start.elapsed() < PATIENCE,
                "unshare never forked vardr-init"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn signal(&self, signal: i32) {
        let pid = self.vardr_pid();
        // SAFETY: plain kill(2).
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal})");
    }

    /// Waits for vardr-init to exit; returns its status, what it (and the child) wrote to stderr,
    /// and the stdout lines not taken yet.
    pub fn wait_with_stdout(mut self) -> (ExitStatus, Vec<String>, Vec<String>) {
        let stdout = std::mem::replace(&mut self.stdout, mpsc::channel().1);
        let (status, stderr) = self.wait();
        let mut lines = Vec::new();
        loop {
            match stdout.recv_timeout(Duration::from_secs(5)) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("stdout still open 5 s after exit: {lines:?}")
                }
            }
        }
        (status, stderr, lines)
    }

    /// Waits for vardr-init to exit; returns its status and everything it wrote to stderr.
    pub fn wait(mut self) -> (ExitStatus, Vec<String>) {
        let status = wait_for_exit(&mut self.process, || {
            format!(
                "stderr so far: {:?}",
                self.stderr.try_iter().collect::<Vec<_>>()
            )
        });
        let mut stderr = Vec::new();
        loop {
            match self.stderr.recv_timeout(Duration::from_secs(5)) {
                Ok(line) => stderr.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("stderr still open 5 s after exit: {stderr:?}")
                }
            }
        }
        (status, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.process.try_wait().ok().flatten().is_none() {
            let group = i32::try_from(self.process.id()).unwrap_or(0);
            // SAFETY: plain kill(2) on the group this harness created, and on registered PIDs.
            unsafe { libc::killpg(group, libc::SIGKILL) };
            let _ = self.process.wait();
        }
        for &pid in &self.cleanup {
            // SAFETY: plain kill(2).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Starts a command running `tests/helpers/ignore_term.py` (a child that ignores SIGTERM and keeps
/// a grandchild in its process group); returns once it is ready, with the child's and grandchild's
/// PIDs, both registered for clean-up.
pub fn start_ignoring_term(command: Command, mode: Mode) -> (Running, i32, i32) {
    let mut running = start(command, mode);
    let ready = running.expect_line("ready ");
    let pids: Vec<i32> = ready
        .split_whitespace()
        .skip(1)
        .map(|p| p.parse().expect("pid"))
        .collect();
    running.cleanup.extend(&pids);
    (running, pids[0], pids[1])
}

/// Waits for `process` to exit, failing the test after [`PATIENCE`] with `context()` in the message.
pub fn wait_for_exit(process: &mut Child, context: impl Fn() -> String) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = process.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "vardr-init still running after {PATIENCE:?}; {}",
            context()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `vardr-init -- ARGS...` to completion with extra environment.
pub fn run(mode: Mode, args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, Vec<String>) {
    let mut command = command(mode, args);
    command.envs(env.iter().copied());
    start(command, mode).wait()
}

/// Polls [`is_dead`] until it holds or `limit` passes.
pub fn dies_within(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    while !is_dead(pid) {
        if start.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Whether `pid` is gone or a zombie (dead, waiting to be reaped).
pub fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "PID (comm) STATE ...": comm may contain spaces or ')', so split at the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Every process: (pid, parent pid, state letter).
pub fn processes() -> Vec<(i32, i32, char)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue; // gone meanwhile
        };
        // "PID (comm) STATE PPID ...": comm may hold spaces and ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        all.push((pid, ppid, state));
    }
    all
}

/// Every descendant of `root`: (pid, parent pid, state letter), sorted.
pub fn descendants(root: i32) -> Vec<(i32, i32, char)> {
    let all = processes();
    let mut found = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for &(pid, ppid, state) in &all {
            if ppid == parent {
                found.push((pid, ppid, state));
                parents.push(pid);
            }
        }
    }
    found.sort_unstable();
    found
}

/// What a process left when it finished: its status and everything it wrote.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lines().map(str::to_owned).collect()
    }

    /// Status, stdout and stderr, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// Asserts a clean finish with `code`: no panic message on stderr.
    pub fn assert_code(&self, code: i32, context: &str) {
        assert_eq!(
            self.status.code(),
            Some(code),
            "{context}: exit status; {}",
            self.describe()
        );
        assert!(
            !self.stderr.contains("panicked"),
            "{context}: a panic; {}",
            self.describe()
        );
    }
}

/// Spawns `command` with stdin closed, stdout and stderr piped, in a process group of its own
/// (so a failed test can kill all it started).
pub fn spawn_piped(command: &mut Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"))
}

/// Runs `command` to the end (stdin closed, stdout and stderr captured, its own process group);
/// past [`PATIENCE`] the whole group gets SIGKILL and the test fails instead of hanging.
pub fn finish(mut command: Command) -> Finished {
    let mut process = spawn_piped(&mut command);
    let collect = |mut stream: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = collect(Box::new(process.stdout.take().expect("piped")));
    let stderr = collect(Box::new(process.stderr.take().expect("piped")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = process.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > PATIENCE {
            let group = i32::try_from(process.id()).unwrap_or(0);
            // SAFETY: plain kill(2) on the process group this function created.
            unsafe { libc::killpg(group, libc::SIGKILL) };
            let _ = process.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!("{command:?} still running after {PATIENCE:?}; stderr: {stderr}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    // A grandchild holding the pipes open must not hang the test either.
    let joined = |handle: thread::JoinHandle<String>| {
        let limit = Instant::now() + Duration::from_secs(5);
        while !handle.is_finished() {
            assert!(
                Instant::now() < limit,
                "{command:?} exited but its output stayed open"
            );
            thread::sleep(Duration::from_millis(5));
        }
        handle.join().expect("reader thread")
    };
    Finished {
        status,
        stdout: joined(stdout),
        stderr: joined(stderr),
    }
}

/// The unprivileged user tests switch to (distroless "nonroot").
pub const NONROOT: u32 = 65532;

/// Whether this process can run commands as another user (root, and `setpriv` works). Outside CI
/// a test may skip without it; in CI (`CI=true`) its absence is a failure.
pub fn switch_users() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    let available = *AVAILABLE.get_or_init(|| {
        let root = vardr_init::sys::geteuid() == 0;
        root && as_nonroot("true")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !available {
        skip_outside_ci(&format!(
            "this process cannot switch to uid {NONROOT} (root and setpriv needed)"
        ));
    }
    available
}

/// `setpriv ... PROGRAM`: runs PROGRAM as uid and gid [`NONROOT`] with no supplementary groups.
pub fn as_nonroot(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={NONROOT}"))
        .arg(format!("--regid={NONROOT}"))
        .arg("--clear-groups")
        .arg(program);
    command
}

/// The `bwrap` arguments for a read-only root with the host directory `tmp` as the only writable
/// place (mounted at /tmp), running as uid and gid [`NONROOT`] in a new user namespace.
pub fn bwrap_read_only_root(tmp: &Path) -> Command {
    let mut command = Command::new("bwrap");
    command
        .args(["--unshare-user", "--uid", "65532", "--gid", "65532"])
        .args(["--ro-bind", "/", "/", "--bind"])
        .arg(tmp)
        .arg("/tmp");
    // What the test needs to see is bound again, read-only, on top: the checkout, the test's
    // files (CARGO_TARGET_TMPDIR, outside the checkout when CARGO_TARGET_DIR is set) and the
    // binary. One that lives under /tmp would otherwise vanish under the new /tmp.
    let mut bound: Vec<PathBuf> = Vec::new();
    let needed = [
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
        Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR"))),
        std::env::var_os("VARDR_TEST_BIN").map(PathBuf::from),
    ];
    for path in needed.into_iter().flatten() {
        if !bound.iter().any(|outer| path.starts_with(outer)) {
            command.arg("--ro-bind").args([&path, &path]);
            bound.push(path);
        }
    }
    command.args(["--proc", "/proc", "--dev", "/dev", "--die-with-parent"]);
    command
}

/// Whether `bwrap` can make that sandbox here. Outside CI a test may skip without it; in CI
/// (`CI=true`) its absence is a failure.
pub fn bwrap_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    let available = *AVAILABLE.get_or_init(|| {
        let Ok(tmp) = tempfile::tempdir() else {
            return false;
        };
        bwrap_read_only_root(tmp.path())
            .arg("true")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !available {
        skip_outside_ci("bwrap cannot make a user namespace with a read-only root here");
    }
    available
}

/// The one JSON object `certs --json` prints on stdout.
pub fn summary(run: &Finished, context: &str) -> serde_json::Value {
    let lines: Vec<&str> = run.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{context}: stdout is exactly one JSON line; {}",
        run.describe()
    );
    let value: serde_json::Value = serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("{context}: stdout is not JSON ({e}): {}", run.describe()));
    assert_eq!(
        value["type"], "certificate_import_summary",
        "{context}: {value}"
    );
    let timestamp = value["timestamp"].as_str().unwrap_or_default();
    assert!(
        timestamp.len() == 20 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
        "{context}: RFC 3339 UTC timestamp: {value}"
    );
    value
}
