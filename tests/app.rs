//! The default command end to end: vardr-init (no `--`) finds a FastAPI app and runs the real
//! uvicorn of the test venv, as PID 1 of a PID namespace where the test is about PID 1. Also the
//! `health` probe, `--dry-run`, and the failures that must stop start-up before anything runs.
//!
//! Tests that serve need the venv (`common::venv_python`); the others use a fake `python3` that
//! only records that it was started, so "nothing was started" is checked, not assumed.

mod common;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    Finished, Mode, PATIENCE, Running, assert_logged, finish, pid_namespaces, pki, start,
};
use serde_json::Value;
use tempfile::TempDir;

/// The issue's bound: from SIGTERM to PID 1 until vardr-init has exited, uvicorn included.
const GRACEFUL_STOP: Duration = Duration::from_secs(2);

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn test_app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apps")
        .join(name)
}

/// PID 1 of a namespace where possible: the tests that need nothing more work either way.
fn any_mode() -> Mode {
    if pid_namespaces() {
        Mode::Pid1
    } else {
        Mode::Subreaper
    }
}

/// A free TCP port on the loopback address (free when asked; nothing else here takes ports).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// One vardr-init's surroundings: a port, certificate paths in a temporary directory (the
/// certificates directory missing unless a test adds a CA), and a `PATH` choosing the Python.
struct World {
    tmp: TempDir,
    port: u16,
    path: OsString,
}

impl World {
    fn new(path: OsString, tmp: TempDir) -> World {
        std::fs::create_dir(tmp.path().join("out")).expect("mkdir out");
        World {
            tmp,
            port: free_port(),
            path,
        }
    }

    /// The test venv's Python first on `PATH`; `None` means skip (no venv).
    fn venv() -> Option<World> {
        let python = common::venv_python()?;
        let bin = python.parent().expect("venv bin dir");
        let path =
            std::env::join_paths([bin, Path::new("/usr/bin"), Path::new("/bin")]).expect("PATH");
        Some(World::new(path, tempfile::tempdir().expect("tempdir")))
    }

    /// A `python3` that records being started and fails: for runs that must start nothing.
    fn fake_python() -> World {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir bin");
        let python = bin.join("python3");
        let marker = tmp.path().join("python-started");
        // Shell built-ins only: nothing else is on this PATH.
        std::fs::write(
            &python,
            format!("#!/bin/sh\n: > '{}'\nexit 3\n", marker.display()),
        )
        .expect("write fake python3");
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        World::new(bin.into_os_string(), tmp)
    }

    /// No Python anywhere on `PATH`.
    fn no_python() -> World {
        let tmp = tempfile::tempdir().expect("tempdir");
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        World::new(empty.into_os_string(), tmp)
    }

    fn fake_python_path(&self) -> PathBuf {
        self.tmp.path().join("bin/python3")
    }

    fn python_started(&self) -> bool {
        self.tmp.path().join("python-started").exists()
    }

    fn certs_dir(&self) -> PathBuf {
        self.tmp.path().join("certs")
    }

    /// The bundle goes in a directory of its own, which must stay empty when nothing is written.
    fn out_dir(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    fn bundle(&self) -> PathBuf {
        self.out_dir().join("ca_bundle.pem")
    }

    fn out_dir_is_empty(&self) -> bool {
        std::fs::read_dir(self.out_dir())
            .expect("read out dir")
            .next()
            .is_none()
    }

    /// Puts a fresh test CA in the certificates directory.
    fn add_ca(&self) {
        std::fs::create_dir_all(self.certs_dir()).expect("mkdir certs");
        let ca = pki::Ca::new("vardr app test CA");
        std::fs::write(self.certs_dir().join("test-ca.pem"), ca.cert.pem()).expect("write CA");
    }

    /// `vardr-init ARGS...` with this world's environment, the app directory `app_dir`, and
    /// nothing of the test machine's certificate, app or uvicorn settings.
    fn command(&self, mode: Mode, app_dir: &Path, args: &[&str]) -> Command {
        let mut command = match mode {
            Mode::Pid1 => {
                let mut c = Command::new("unshare");
                c.args(["-p", "-f", "--mount-proc"]).arg(common::bin());
                c
            }
            Mode::Subreaper => Command::new(common::bin()),
        };
        command.args(args);
        pki::scrub(&mut command);
        let settings = [
            "APP_MODULE",
            "MODULE_NAME",
            "VARIABLE_NAME",
            "WORKERS",
            "WEB_CONCURRENCY",
            "VARDR_STOP_TIMEOUT",
            "VARDR_EXTRA_CA_VARS",
            "PYTHONPATH",
            "PYTHONHOME",
            "VIRTUAL_ENV",
        ];
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if settings.contains(&&*text) || text.starts_with("UVICORN_") {
                command.env_remove(&name);
            }
        }
        command
            .env("PATH", &self.path)
            .env("VARDR_APP_DIR", app_dir)
            .env("VARDR_CERTS_DIR", self.certs_dir())
            .env("VARDR_CA_BUNDLE", self.bundle())
            .env("HOST", "127.0.0.1")
            .env("PORT", self.port.to_string());
        command
    }

    /// `vardr-init --dry-run --json` for `app_dir` with `env`: the exit code and the plan.
    fn plan(&self, app_dir: &Path, env: &[(&str, &str)]) -> (i32, Value) {
        let mut command = self.command(Mode::Subreaper, app_dir, &["--dry-run", "--json"]);
        command.envs(env.iter().copied());
        let done = finish(command);
        let plan = serde_json::from_str(&done.stdout)
            .unwrap_or_else(|e| panic!("dry-run JSON: {e}; {}", done.describe()));
        (done.status.code().expect("exit code"), plan)
    }
}

/// A dry-run plan's `argv`.
fn argv_of(plan: &Value) -> Vec<&str> {
    plan["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|a| a.as_str().expect("string"))
        .collect()
}

/// One HTTP/1.1 GET to 127.0.0.1:`port`: the status code and the body.
fn get(port: u16, path: &str) -> io::Result<(u16, String)> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP response: {response:?}")))?;
    Ok((code, body.to_owned()))
}

/// Polls `GET /health` until the app answers 200.
fn wait_until_serving(port: u16) {
    let start = Instant::now();
    loop {
        match get(port, "/health") {
            Ok((200, _)) => return,
            result => assert!(
                start.elapsed() < PATIENCE,
                "the app on port {port} never became healthy: {result:?}"
            ),
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the service app (`tests/apps/service`) and waits for `workers` lifespan startups.
fn start_service(world: &World, mode: Mode, env: &[(&str, &str)], workers: usize) -> Running {
    let mut command = world.command(mode, &test_app("service"), &[]);
    command.envs(env.iter().copied());
    let running = start(command, mode);
    for _ in 0..workers {
        running.expect_line("ready ");
    }
    running
}

/// `vardr-init health ARGS...` with `PORT=port`.
fn health(port: u16, args: &[&str]) -> Finished {
    let mut command = Command::new(common::bin());
    command
        .arg("health")
        .args(args)
        .env("PORT", port.to_string());
    pki::scrub(&mut command);
    finish(command)
}

fn health_url(port: u16, args: &[&str]) -> Finished {
    let url = format!("http://127.0.0.1:{port}/health");
    let mut all = vec!["--url", &url];
    all.extend(args);
    health(port, &all)
}

/// Every process: (pid, parent pid, state letter).
fn processes() -> Vec<(i32, i32, char)> {
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

/// Every descendant of `root`: (pid, state).
fn descendants(root: i32) -> Vec<(i32, char)> {
    let all = processes();
    let mut found = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for &(pid, ppid, state) in &all {
            if ppid == parent {
                found.push((pid, state));
                parents.push(pid);
            }
        }
    }
    found.sort_unstable();
    found
}

fn exit_code(status: std::process::ExitStatus, stderr: &[String]) -> i32 {
    status
        .code()
        .unwrap_or_else(|| panic!("vardr-init died of a signal: {status:?}; {stderr:#?}"))
}

#[test]
fn basic_example_is_served_by_vardr_init_as_pid1() {
    if !pid_namespaces() {
        return;
    }
    let Some(world) = World::venv() else { return };
    let running = start(
        world.command(Mode::Pid1, &example("basic"), &[]),
        Mode::Pid1,
    );
    wait_until_serving(world.port);
    let (code, body) = get(world.port, "/health").expect("GET /health");
    assert_eq!((code, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (code, body) = get(world.port, "/").expect("GET /");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Hello"), "{body}");
    // The probe's default URL: http://127.0.0.1:$PORT/health.
    health(world.port, &[]).assert_code(0, "health against the example");

    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status, &stderr), 0, "{stderr:#?}");
    assert_logged(&stderr, "-m uvicorn main:app", "the example was discovered");
    assert_logged(&stderr, "(pid 2)", "uvicorn is PID 2, vardr-init PID 1");
}

/// SIGTERM to PID 1, as `docker stop` sends it: every worker's lifespan shutdown runs and
/// vardr-init exits 0, within the issue's bound.
fn sigterm_stops_uvicorn_gracefully(workers: usize) {
    if !pid_namespaces() {
        return;
    }
    let Some(world) = World::venv() else { return };
    let running = start_service(
        &world,
        Mode::Pid1,
        &[("WORKERS", &workers.to_string())],
        workers,
    );
    let sent = Instant::now();
    running.signal(libc::SIGTERM);
    for _ in 0..workers {
        running.expect_line("stopped ");
    }
    let (status, stderr) = running.wait();
    let took = sent.elapsed();
    assert_eq!(exit_code(status, &stderr), 0, "{stderr:#?}");
    assert!(
        took < GRACEFUL_STOP,
        "{workers} workers: exit {took:?} after SIGTERM; {stderr:#?}"
    );
    assert_logged(
        &stderr,
        "Forwarding SIGTERM to pid 2",
        "SIGTERM reached uvicorn",
    );
    let completed = stderr
        .iter()
        .filter(|line| line.contains("Application shutdown complete"))
        .count();
    assert_eq!(completed, workers, "uvicorn's own shutdown: {stderr:#?}");
}

#[test]
fn sigterm_to_pid1_stops_one_uvicorn_worker_gracefully_within_2s() {
    sigterm_stops_uvicorn_gracefully(1);
}

#[test]
fn sigterm_to_pid1_stops_two_uvicorn_workers_gracefully_within_2s() {
    sigterm_stops_uvicorn_gracefully(2);
}

#[test]
fn orphans_double_forked_by_an_endpoint_leave_no_zombies() {
    if !pid_namespaces() {
        return;
    }
    let Some(world) = World::venv() else { return };
    let running = start_service(&world, Mode::Pid1, &[("VARDR_LOG_LEVEL", "debug")], 1);
    wait_until_serving(world.port);
    let vardr = running.vardr_pid();
    let pids = |processes: &[(i32, char)]| processes.iter().map(|p| p.0).collect::<Vec<_>>();
    let before = pids(&descendants(vardr));
    let calls = 20;
    for _ in 0..calls {
        let (code, body) = get(world.port, "/double-fork").expect("GET /double-fork");
        assert_eq!(code, 200, "{body}");
    }
    // Each grandchild lives 0.1 s; settled means back to uvicorn alone, nothing dead left over.
    let start = Instant::now();
    let mut now = descendants(vardr);
    while pids(&now) != before && start.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(50));
        now = descendants(vardr);
    }
    let zombies: Vec<_> = now.iter().filter(|(_, state)| *state == 'Z').collect();
    assert!(zombies.is_empty(), "zombies under PID 1: {zombies:?}");
    assert_eq!(pids(&now), before, "processes left in the namespace");

    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status, &stderr), 0, "{stderr:#?}");
    let reaped = stderr
        .iter()
        .filter(|line| line.contains("reaped orphan pid"))
        .count();
    assert!(
        reaped >= calls,
        "every grandchild was re-parented to vardr-init and reaped there: {reaped} of {calls}"
    );
}

#[test]
fn a_lifespan_shutdown_that_never_returns_is_ended_by_the_stop_timeout() {
    let Some(world) = World::venv() else { return };
    let mode = any_mode();
    let mut command = world.command(mode, &test_app("stuck_shutdown"), &[]);
    command.env("VARDR_STOP_TIMEOUT", "2");
    let running = start(command, mode);
    running.expect_line("ready");
    let sent = Instant::now();
    running.signal(libc::SIGTERM);
    running.expect_line("stopping");
    let (status, stderr) = running.wait();
    let took = sent.elapsed();
    assert_eq!(exit_code(status, &stderr), 137, "{stderr:#?}");
    assert!(
        took >= Duration::from_secs(2),
        "killed before the deadline: {took:?}"
    );
    assert_logged(
        &stderr,
        "sending SIGKILL to its process group",
        "the kill is vardr-init's, and logged",
    );
}

const ROOT_PATH_OPTS: &str = r#"--root-path "/my api" --log-level debug"#;

#[test]
fn uvicorn_opts_are_split_like_a_shell_and_appended_last() {
    let world = World::fake_python();
    let (code, plan) = world.plan(&example("basic"), &[("UVICORN_OPTS", ROOT_PATH_OPTS)]);
    assert_eq!(code, 0, "{plan:#}");
    let argv = argv_of(&plan);
    assert!(
        argv.ends_with(&["--root-path", "/my api", "--log-level", "debug"]),
        "{argv:?}"
    );
}

/// No shell anywhere: shell syntax in `UVICORN_OPTS` stays literal words of python's argv, and
/// a real start (the fake python) runs none of it.
#[test]
fn shell_syntax_in_uvicorn_opts_is_never_run() {
    let world = World::fake_python();
    let pwned = world.tmp.path().join("pwned");
    let opts = format!(
        "--root-path '$(touch {p}1)' `touch {p}2` ; touch {p}3 | touch {p}4 && touch {p}5",
        p = pwned.display()
    );
    let (code, plan) = world.plan(&example("basic"), &[("UVICORN_OPTS", &opts)]);
    assert_eq!(code, 0, "{plan:#}");
    let argv = argv_of(&plan);
    let p = pwned.display();
    let literal = [
        "--root-path".to_owned(),
        format!("$(touch {p}1)"),
        "`touch".to_owned(),
        format!("{p}2`"),
        ";".to_owned(),
    ];
    assert!(
        argv.windows(literal.len()).any(|w| w == literal),
        "{argv:?}"
    );
    let mut command = world.command(Mode::Subreaper, &example("basic"), &[]);
    command.env("UVICORN_OPTS", &opts);
    let done = finish(command);
    done.assert_code(3, "the fake python's own exit status");
    assert!(world.python_started(), "{}", done.describe());
    for n in 1..=5 {
        assert!(
            !world.tmp.path().join(format!("pwned{n}")).exists(),
            "pwned{n}: something ran a shell; {}",
            done.describe()
        );
    }
}

#[test]
fn uvicorn_opts_reach_the_running_uvicorn() {
    let Some(world) = World::venv() else { return };
    let mode = any_mode();
    let running = start_service(&world, mode, &[("UVICORN_OPTS", ROOT_PATH_OPTS)], 1);
    wait_until_serving(world.port);
    assert_eq!(
        get(world.port, "/root-path").expect("GET /root-path"),
        (200, r#""/my api""#.to_owned()),
        "--root-path with its quoted space"
    );
    assert_eq!(
        get(world.port, "/log-level").expect("GET /log-level"),
        (200, r#""DEBUG""#.to_owned()),
        "--log-level debug"
    );
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status, &stderr), 0, "{stderr:#?}");
}

#[test]
fn health_answers_for_the_running_app() {
    let Some(world) = World::venv() else { return };
    let running = start_service(&world, any_mode(), &[], 1);
    wait_until_serving(world.port);
    let port = world.port;
    health(port, &[]).assert_code(0, "default URL, PORT from the environment");
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    for (path, code) in [
        ("/health", 0),
        ("/status/204", 0),
        ("/status/500", 1),
        ("/status/503", 1),
        ("/status/404", 1),
        ("/status/307", 1),
    ] {
        health(port, &["--url", &url(path)]).assert_code(code, path);
    }
    let done = health(port, &["--url", &url("/status/500")]);
    assert!(done.stderr.contains("500"), "{}", done.describe());
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status, &stderr), 0, "{stderr:#?}");
}

#[test]
fn health_fails_on_a_closed_port() {
    let port = free_port();
    let done = health(port, &[]);
    done.assert_code(1, "nothing listens");
    assert!(done.stderr.contains("refused"), "{}", done.describe());
}

/// What a fake server does with each connection.
type Serve = fn(TcpStream);

/// A server on a free port that runs `serve` on each connection it accepts, until the test ends.
fn fake_server(serve: Serve) -> (u16, mpsc::Sender<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (done, finished) = mpsc::channel::<()>();
    listener.set_nonblocking(true).expect("nonblocking");
    thread::spawn(move || {
        let start = Instant::now();
        while finished.try_recv() == Err(mpsc::TryRecvError::Empty) && start.elapsed() < PATIENCE {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking");
                    thread::spawn(move || serve(stream));
                }
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (port, done)
}

#[test]
fn health_gives_up_on_a_server_that_never_answers_within_the_timeout() {
    let (port, _done) = fake_server(|stream| {
        // Holds the connection open and silent.
        thread::sleep(PATIENCE);
        drop(stream);
    });
    let started = Instant::now();
    let done = health_url(port, &["--timeout", "1"]);
    let took = started.elapsed();
    done.assert_code(1, "silent server");
    assert!(done.stderr.contains("within 1s"), "{}", done.describe());
    // A hang guard, not a performance claim: the probe's deadline is 1 s.
    assert!(took < Duration::from_secs(6), "took {took:?}");
}

#[test]
fn health_rejects_responses_that_are_not_http() {
    fn answer(mut stream: TcpStream, response: &[u8]) {
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(response);
    }
    let servers: [(&str, Serve); 4] = [
        ("text", |s| answer(s, b"hello, this is not HTTP\r\n\r\n")),
        ("ssh banner", |s| answer(s, b"SSH-2.0-OpenSSH_9.2\r\n")),
        ("bad status", |s| answer(s, b"HTTP/1.1 2x0 OK\r\n\r\n")),
        ("closed at once", |s| drop(s)),
    ];
    for (what, serve) in servers {
        let (port, _done) = fake_server(serve);
        let done = health_url(port, &["--timeout", "5"]);
        done.assert_code(1, what);
        assert!(
            done.stderr.starts_with("unhealthy"),
            "{what}: {}",
            done.describe()
        );
    }
}

#[test]
fn health_with_bad_arguments_exits_1_never_2() {
    // Docker reserves exit 2 in a HEALTHCHECK.
    let port = free_port();
    for args in [
        &["--url", "ftp://127.0.0.1/health"][..],
        &["--url", "https://127.0.0.1/health"],
        &["--url", "not a url"],
        &["--url", "http://"],
        &["--url", "http://127.0.0.1:99999/health"],
        &["--url"],
        &["--timeout", "soon"],
        &["--timeout", "0"],
        &["--timeout", "-1"],
        &["--timeout", "inf"],
        &["--verbose"],
        &["extra"],
    ] {
        let done = health(port, args);
        done.assert_code(1, &format!("{args:?}"));
        assert!(!done.stderr.is_empty(), "{args:?}: says why");
    }
    // PORT only matters to the default URL, and a bad one is still a plain failure.
    let mut command = Command::new(common::bin());
    command.arg("health").env("PORT", "70000");
    pki::scrub(&mut command);
    let done = finish(command);
    done.assert_code(1, "PORT=70000");
    assert!(done.stderr.contains("PORT"), "{}", done.describe());
}

const NOT_ASKED: &str = "exited with status 0 although nobody asked it to stop";

#[test]
fn an_app_exiting_0_at_import_is_a_failure_not_a_clean_stop() {
    let Some(world) = World::venv() else { return };
    // sys.exit(0) and os._exit(0) while uvicorn imports the app: uvicorn itself exits 0.
    for how in ["sys", "os"] {
        let mut command = world.command(any_mode(), &test_app("exit_at_import"), &[]);
        command.env("EXIT_WITH", how);
        let done = finish(command);
        done.assert_code(1, how);
        assert!(
            done.stderr.contains(NOT_ASKED),
            "{how}: {}",
            done.describe()
        );
    }
}

#[test]
fn with_two_workers_an_app_uvicorn_cannot_resolve_ends_with_exit_1() {
    // uvicorn 0.54 --workers: a worker that cannot find the module or the variable exits 3, and
    // the parent stops with status 0. (It notices between worker health checks: 1 s instead of
    // 5 s for a worker still starting keeps the test quick.)
    let Some(world) = World::venv() else { return };
    let mut command = world.command(any_mode(), &test_app("service"), &[]);
    command
        .env("WORKERS", "2")
        .env("VARIABLE_NAME", "no_such_app")
        .env("UVICORN_OPTS", "--timeout-worker-healthcheck 1");
    let done = finish(command);
    done.assert_code(1, "unresolvable app, 2 workers");
    assert!(
        done.stderr
            .contains("failed to start, stopping the parent process"),
        "{}",
        done.describe()
    );
    assert!(done.stderr.contains(NOT_ASKED), "{}", done.describe());
}

#[test]
fn with_two_workers_an_app_raising_at_import_is_respawned_until_stopped() {
    // uvicorn 0.54 --workers: a worker that dies of an exception at import (not uvicorn's own
    // "cannot import" exit 3) is restarted at once, without end (720 times in 10 minutes here).
    // vardr-init cannot tell this from a worker crash; the service never serves, and a stop
    // request still ends it.
    // uvicorn's parent handles signals between worker health checks, which wait up to 5 s for a
    // worker still starting: 1 s keeps the stop quick.
    let Some(world) = World::venv() else { return };
    let mode = any_mode();
    let mut command = world.command(mode, &test_app("import_error"), &[]);
    command
        .env("WORKERS", "2")
        .env("UVICORN_OPTS", "--timeout-worker-healthcheck 1");
    let running = start(command, mode);
    let vardr = running.vardr_pid();
    // uvicorn's children: the multiprocessing resource tracker and the workers, old and new;
    // five of them means two respawns.
    let mut seen = std::collections::BTreeSet::new();
    let start = Instant::now();
    while seen.len() < 5 {
        assert!(
            start.elapsed() < PATIENCE,
            "workers not respawned: {seen:?}"
        );
        let all = processes();
        let uvicorn: Vec<i32> = all.iter().filter(|p| p.1 == vardr).map(|p| p.0).collect();
        seen.extend(all.iter().filter(|p| uvicorn.contains(&p.1)).map(|p| p.0));
        thread::sleep(Duration::from_millis(20));
    }
    assert!(!common::is_dead(vardr), "vardr-init still supervising");
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status, &stderr), 0, "{stderr:#?}");
    let died = stderr
        .iter()
        .filter(|line| line.contains("Child process") && line.contains("died"))
        .count();
    assert!(died >= 2, "uvicorn respawned the workers: {stderr:#?}");
}

/// Exit 2, and neither the bundle nor a Python process came of it.
fn assert_nothing_started(world: &World, done: &Finished, needles: &[&str]) {
    done.assert_code(2, "nothing may start");
    for needle in needles {
        assert!(
            done.stderr.contains(needle),
            "{needle:?} missing: {}",
            done.describe()
        );
    }
    assert!(!done.stderr.contains("Running"), "{}", done.describe());
    assert!(!world.python_started(), "python3 was started");
    assert!(world.out_dir_is_empty(), "the bundle was written");
}

#[test]
fn no_app_found_exits_2_naming_every_path_tried_and_app_module() {
    let world = World::fake_python();
    world.add_ca();
    let app_dir = world.tmp.path().join("app");
    std::fs::create_dir(&app_dir).expect("mkdir app");
    let done = finish(world.command(Mode::Subreaper, &app_dir, &[]));
    let tried: Vec<String> = vardr_init::app::discover::CANDIDATES
        .iter()
        .map(|file| app_dir.join(file).display().to_string())
        .collect();
    let mut needles: Vec<&str> = tried.iter().map(String::as_str).collect();
    needles.push("APP_MODULE");
    assert_nothing_started(&world, &done, &needles);
}

#[test]
fn no_python_on_path_exits_2() {
    let world = World::no_python();
    world.add_ca();
    let done = finish(world.command(Mode::Subreaper, &example("basic"), &[]));
    assert_nothing_started(&world, &done, &["python3", "PATH"]);
}

#[test]
fn an_unbalanced_quote_in_uvicorn_opts_exits_2_naming_it() {
    let world = World::fake_python();
    world.add_ca();
    let mut command = world.command(Mode::Subreaper, &example("basic"), &[]);
    command.env("UVICORN_OPTS", r#"--root-path "/my api"#);
    assert_nothing_started(&world, &finish(command), &["UVICORN_OPTS"]);
}

#[test]
fn port_out_of_range_exits_2_naming_it() {
    let world = World::fake_python();
    world.add_ca();
    let mut command = world.command(Mode::Subreaper, &example("basic"), &[]);
    command.env("PORT", "70000");
    assert_nothing_started(&world, &finish(command), &["PORT", "70000"]);
}

#[test]
fn dry_run_shows_the_plan_and_writes_and_starts_nothing() {
    let world = World::fake_python();
    world.add_ca();
    let (system, _) = pki::system_bundle(2);
    let system_path = world.tmp.path().join("system.pem");
    std::fs::write(&system_path, system).expect("write system bundle");
    let system_env = [(
        "VARDR_SYSTEM_CA_BUNDLE",
        system_path.to_str().expect("utf8"),
    )];
    let bundle = world.bundle().display().to_string();
    let python = world.fake_python_path().display().to_string();
    let app_dir = example("basic").canonicalize().expect("canonical app dir");
    let port = world.port.to_string();

    let mut command = world.command(Mode::Subreaper, &example("basic"), &["--dry-run"]);
    command.envs(system_env);
    let text = finish(command);
    text.assert_code(0, "dry-run");
    for needle in [
        format!("Bundle: build {bundle}"),
        format!("SSL_CERT_FILE={bundle}"),
        format!(
            "Command: {python} -m uvicorn main:app --host 127.0.0.1 --port {port} --app-dir {}",
            app_dir.display()
        ),
        "Would start: yes".to_owned(),
    ] {
        assert!(
            text.stdout.contains(&needle),
            "{needle:?}: {}",
            text.describe()
        );
    }

    let (code, plan) = world.plan(&example("basic"), &system_env);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(plan["would_start"], true, "{plan:#}");
    assert_eq!(plan["certificates"]["action"], "build", "{plan:#}");
    assert_eq!(plan["certificates"]["successful_imports"], 1, "{plan:#}");
    assert_eq!(plan["environment"]["SSL_CERT_FILE"], bundle.as_str());
    assert_eq!(plan["app"]["module"], "main", "{plan:#}");
    assert_eq!(plan["app"]["variable"], "app", "{plan:#}");
    let argv = serde_json::json!([
        python,
        "-m",
        "uvicorn",
        "main:app",
        "--host",
        "127.0.0.1",
        "--port",
        port,
        "--app-dir",
        app_dir.to_str().expect("utf8"),
    ]);
    assert_eq!(plan["argv"], argv, "{plan:#}");

    assert!(!world.python_started(), "the dry run started python3");
    assert!(world.out_dir_is_empty(), "the dry run wrote the bundle");
}

#[test]
fn dry_run_without_an_app_exits_2_and_would_not_start() {
    let world = World::fake_python();
    let app_dir = world.tmp.path().join("app");
    std::fs::create_dir(&app_dir).expect("mkdir app");
    let text = finish(world.command(Mode::Subreaper, &app_dir, &["--dry-run"]));
    text.assert_code(2, "dry-run without an app");
    assert!(
        text.stdout.contains("Would start: no"),
        "{}",
        text.describe()
    );
    let (code, plan) = world.plan(&app_dir, &[]);
    assert_eq!(code, 2, "{plan:#}");
    assert_eq!(plan["would_start"], false, "{plan:#}");
    assert_eq!(plan["argv"], serde_json::json!([]), "{plan:#}");
    let errors = plan["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.contains("APP_MODULE"))),
        "{plan:#}"
    );
    assert!(!world.python_started());
}

/// A real CPU-quota cgroup of `millicpus`, on cgroup v1's cpu controller or cgroup v2, removed
/// on drop. `None` where cgroups cannot be made (not root); a failure in CI.
struct CpuCgroup(PathBuf);

impl CpuCgroup {
    fn new(millicpus: u32) -> Option<CpuCgroup> {
        let name = format!("vardr-test-{}-{millicpus}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let v2 = Path::new("/sys/fs/cgroup");
        let made = if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(&name);
            std::fs::create_dir(&dir)
                .and_then(|()| std::fs::write(dir.join("cpu.cfs_period_us"), "100000"))
                .and_then(|()| {
                    std::fs::write(dir.join("cpu.cfs_quota_us"), format!("{}", millicpus * 100))
                })
                .map(|()| dir)
        } else if std::fs::read_to_string(v2.join("cgroup.controllers"))
            .is_ok_and(|c| c.contains("cpu"))
        {
            let dir = v2.join(&name);
            std::fs::create_dir(&dir)
                .and_then(|()| {
                    std::fs::write(dir.join("cpu.max"), format!("{} 100000", millicpus * 100))
                })
                .map(|()| dir)
        } else {
            Err(io::Error::other("no cpu cgroup controller mounted"))
        };
        match made {
            Ok(dir) => Some(CpuCgroup(dir)),
            Err(e) => {
                common::skip_outside_ci(&format!("no CPU cgroup can be made here: {e}"));
                None
            }
        }
    }

    /// `command`, run from inside this cgroup (a shell moves itself in, then execs it).
    fn wrap(&self, command: &Command) -> Command {
        let mut wrapped = Command::new("/bin/sh");
        wrapped
            .args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
            .arg(&self.0)
            .arg(command.get_program())
            .args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        wrapped
    }
}

impl Drop for CpuCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn workers_auto_is_sized_from_a_real_cgroup_cpu_limit() {
    let world = World::fake_python();
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // 1 CPU on a machine with more: not the host's count. 1.5 CPUs: rounded up, not down.
    for (millicpus, expected) in [(1000, 1), (1500, 2.min(host_cpus)), (500, 1)] {
        let Some(cgroup) = CpuCgroup::new(millicpus) else {
            return;
        };
        let mut command =
            world.command(Mode::Subreaper, &example("basic"), &["--dry-run", "--json"]);
        command.env("WORKERS", "auto");
        let done = finish(cgroup.wrap(&command));
        let plan: Value = serde_json::from_str(&done.stdout)
            .unwrap_or_else(|e| panic!("dry-run JSON: {e}; {}", done.describe()));
        assert_eq!(
            plan["app"]["workers"], expected,
            "{millicpus} millicpus: {plan:#}"
        );
        let argv = argv_of(&plan);
        let passed = argv
            .windows(2)
            .find(|pair| pair[0] == "--workers")
            .map(|pair| pair[1].to_owned());
        let wanted = (expected > 1).then(|| expected.to_string());
        assert_eq!(passed, wanted, "--workers only when more than 1: {argv:?}");
    }
}

#[test]
fn examples_pin_the_versions_the_tests_run() {
    let tested = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/requirements.txt"),
    )
    .expect("tests/requirements.txt");
    for example in ["basic", "with-deps"] {
        let path = self::example(example).join("requirements.txt");
        let pins = std::fs::read_to_string(&path).expect("requirements.txt");
        for pin in pins.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                tested.lines().any(|line| line.trim() == pin.trim()),
                "{}: {pin} is not what tests/requirements.txt installs",
                path.display()
            );
        }
    }
}

#[test]
fn stop_timeout_gives_uvicorn_a_graceful_shutdown_just_inside_it() {
    let world = World::fake_python();
    let (code, plan) = world.plan(&example("basic"), &[("VARDR_STOP_TIMEOUT", "10")]);
    assert_eq!(code, 0, "{plan:#}");
    assert!(
        argv_of(&plan).ends_with(&["--timeout-graceful-shutdown", "9"]),
        "{plan:#}"
    );
    // The user's own value wins, and is not passed twice.
    let opts = ("UVICORN_OPTS", "--timeout-graceful-shutdown=3");
    let (_, plan) = world.plan(&example("basic"), &[("VARDR_STOP_TIMEOUT", "10"), opts]);
    let argv = argv_of(&plan);
    assert_eq!(
        argv.last(),
        Some(&"--timeout-graceful-shutdown=3"),
        "{argv:?}"
    );
    assert!(!argv.contains(&"--timeout-graceful-shutdown"), "{argv:?}");
}
