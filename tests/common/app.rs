//! The default command's surroundings for the app tests: a `World` (a free port, certificate paths
//! in a temporary directory, a `PATH` choosing the Python), the example and test apps, starting
//! the service app and waiting until it serves, one HTTP GET, and the `health` probe.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::{Finished, Mode, PATIENCE, Running, bin, finish, pid_namespaces, pki, start};

/// `examples/NAME`: one of the repository's example apps.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// `tests/apps/NAME`: an app made for these tests.
pub fn test_app(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apps")
        .join(name)
}

/// PID 1 of a namespace where possible: the tests that need nothing more work either way.
pub fn any_mode() -> Mode {
    if pid_namespaces() {
        Mode::Pid1
    } else {
        Mode::Subreaper
    }
}

/// A free TCP port on the loopback address (free when asked; nothing else here takes ports).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// One vardr-init's surroundings: a port, certificate paths in a temporary directory (the
/// certificates directory missing unless a test adds a CA), and a `PATH` choosing the Python.
pub struct World {
    pub tmp: TempDir,
    pub port: u16,
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
    pub fn venv() -> Option<World> {
        let python = super::venv_python()?;
        let bin = python.parent().expect("venv bin dir");
        let path =
            std::env::join_paths([bin, Path::new("/usr/bin"), Path::new("/bin")]).expect("PATH");
        Some(World::new(path, tempfile::tempdir().expect("tempdir")))
    }

    /// A `python3` that records being started and fails: for runs that must start nothing.
    pub fn fake_python() -> World {
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
    pub fn no_python() -> World {
        let tmp = tempfile::tempdir().expect("tempdir");
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        World::new(empty.into_os_string(), tmp)
    }

    pub fn fake_python_path(&self) -> PathBuf {
        self.tmp.path().join("bin/python3")
    }

    pub fn python_started(&self) -> bool {
        self.tmp.path().join("python-started").exists()
    }

    pub fn certs_dir(&self) -> PathBuf {
        self.tmp.path().join("certs")
    }

    /// The bundle goes in a directory of its own, which must stay empty when nothing is written.
    pub fn out_dir(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    pub fn bundle(&self) -> PathBuf {
        self.out_dir().join("ca_bundle.pem")
    }

    pub fn out_dir_is_empty(&self) -> bool {
        std::fs::read_dir(self.out_dir())
            .expect("read out dir")
            .next()
            .is_none()
    }

    /// Puts a fresh test CA in the certificates directory.
    pub fn add_ca(&self) {
        std::fs::create_dir_all(self.certs_dir()).expect("mkdir certs");
        let ca = pki::Ca::new("vardr app test CA");
        std::fs::write(self.certs_dir().join("test-ca.pem"), ca.cert.pem()).expect("write CA");
    }

    /// `vardr-init ARGS...` with this world's environment, the app directory `app_dir`, and
    /// nothing of the test machine's certificate, app or uvicorn settings.
    pub fn command(&self, mode: Mode, app_dir: &Path, args: &[&str]) -> Command {
        let mut command = super::launcher(mode);
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
            "VARDR_PRESTART",
            "VARDR_PRESTART_TIMEOUT",
            "VARDR_STOP_DELAY",
            "PRE_START_PATH",
            "LOG_LEVEL",
            "ACCESS_LOG",
            "KEEP_ALIVE",
            "GRACEFUL_TIMEOUT",
            "BIND",
            "MAX_WORKERS",
            "WORKERS_PER_CORE",
            "TIMEOUT",
            "WORKER_CLASS",
            "GUNICORN_CONF",
            "GUNICORN_CMD_ARGS",
            "ERROR_LOG",
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
    pub fn plan(&self, app_dir: &Path, env: &[(&str, &str)]) -> (i32, Value) {
        let mut command = self.command(Mode::Subreaper, app_dir, &["--dry-run", "--json"]);
        command.envs(env.iter().copied());
        let done = finish(command);
        let plan = serde_json::from_str(&done.stdout)
            .unwrap_or_else(|e| panic!("dry-run JSON: {e}; {}", done.describe()));
        (done.status.code().expect("exit code"), plan)
    }
}

/// One HTTP/1.1 GET to 127.0.0.1:`port`: the status code and the body.
pub fn get(port: u16, path: &str) -> io::Result<(u16, String)> {
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
pub fn wait_until_serving(port: u16) {
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
pub fn start_service(world: &World, mode: Mode, env: &[(&str, &str)], workers: usize) -> Running {
    let mut command = world.command(mode, &test_app("service"), &[]);
    command.envs(env.iter().copied());
    let running = start(command, mode);
    for _ in 0..workers {
        running.expect_line("ready ");
    }
    running
}

/// `vardr-init health ARGS...` with `PORT=port`.
pub fn health(port: u16, args: &[&str]) -> Finished {
    let mut command = Command::new(bin());
    command
        .arg("health")
        .args(args)
        .env("PORT", port.to_string());
    pki::scrub(&mut command);
    finish(command)
}

pub fn exit_code(status: std::process::ExitStatus, stderr: &[String]) -> i32 {
    status
        .code()
        .unwrap_or_else(|| panic!("vardr-init died of a signal: {status:?}; {stderr:#?}"))
}
