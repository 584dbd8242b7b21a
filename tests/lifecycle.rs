//! The lifecycle around the app, on the real binary with real processes: the pre-start task
//! (`VARDR_PRESTART`, `PRE_START_PATH`, `VARDR_PRESTART_TIMEOUT`), the drain (`VARDR_STOP_DELAY`
//! and `vardr-init health` saying `draining`), and the whole-tree clean-up when the child ends.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::app::{World, get, start_service, test_app};
use common::pki::{self, Ca};
use common::{Finished, Mode, Running, assert_logged, bin, finish, pid_namespaces, python};

/// `VARDR_PRESTART` for `python -c CODE ARGS...`: words quoted for the shell-like split.
fn prestart(code: &str, args: &[&str]) -> String {
    assert!(!code.contains('\''), "the code is single-quoted");
    let mut words = format!("{} -c '{code}'", python().display());
    for arg in args {
        words.push_str(&format!(" '{arg}'"));
    }
    words
}

/// `vardr-init -- PYTHON -c CODE` with nothing of the machine's certificates.
fn supervise(code: &str) -> Command {
    let mut command = Command::new(bin());
    command.arg("--").arg(python()).args(["-c", code]);
    pki::scrub(&mut command)
        .env("VARDR_CERTS_DIR", "/nonexistent/vardr-test-certs")
        .env("VARDR_CA_BUNDLE", "/nonexistent/vardr-test-bundle.pem");
    command
}

/// The app in these tests: prints the marker the pre-start task wrote, or says there is none.
fn show_marker(marker: &Path) -> String {
    format!(
        "import os; p = {:?}; print('marker: ' + (open(p).read() if os.path.exists(p) else 'none'))",
        marker.display().to_string()
    )
}

/// A local HTTPS server with a certificate for 127.0.0.1 issued by `ca`.
fn https_server(ca: &Ca, dir: &Path) -> (Running, String) {
    let (cert, key) = ca.server();
    let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
    fs::write(&cert_path, cert.pem()).expect("write the server certificate");
    fs::write(&key_path, key).expect("write the server key");
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/https_server.py");
    let mut command = Command::new(python());
    command.arg(helper).arg(&cert_path).arg(&key_path);
    pki::scrub(&mut command);
    let running = common::start(command, Mode::Subreaper);
    let ready = running.expect_line("ready ");
    let port = ready.trim_start_matches("ready ").trim().to_owned();
    (running, format!("https://127.0.0.1:{port}/"))
}

#[test]
fn the_pre_start_task_gets_the_bundle_and_runs_before_the_app() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new("vardr pre-start test CA");
    let (_server, url) = https_server(&ca, dir.path());
    let certs = dir.path().join("certs");
    fs::create_dir(&certs).expect("mkdir certs");
    let marker = dir.path().join("marker");
    let marker_text = marker.display().to_string();
    // A migration's shape: a TLS call (urllib trusts SSL_CERT_FILE), then a file written.
    let task = prestart(
        "import sys, urllib.request; body = urllib.request.urlopen(sys.argv[1]).read(); \
         open(sys.argv[2], \"wb\").write(body)",
        &[&url, &marker_text],
    );
    let run = |with_ca: bool| -> Finished {
        if with_ca {
            fs::write(certs.join("ca.pem"), ca.cert.pem()).expect("write the CA");
        }
        let mut command = supervise(&show_marker(&marker));
        command
            .env("VARDR_CERTS_DIR", &certs)
            .env("VARDR_CA_BUNDLE", dir.path().join("bundle.pem"))
            .env("VARDR_PRESTART", &task);
        if Path::new("/etc/ssl/certs/ca-certificates.crt").is_file() {
            command.env(
                "VARDR_SYSTEM_CA_BUNDLE",
                "/etc/ssl/certs/ca-certificates.crt",
            );
        }
        finish(command)
    };

    // Without the CA the call fails: the task exits 1 and the app never starts.
    let untrusted = run(false);
    untrusted.assert_code(1, "pre-start without the CA");
    assert!(
        untrusted.stderr.contains("CERTIFICATE_VERIFY_FAILED"),
        "{}",
        untrusted.describe()
    );
    assert!(
        !untrusted.stdout.contains("marker:"),
        "{}",
        untrusted.describe()
    );
    assert!(
        untrusted
            .stderr
            .contains("pre-start task ended ( exit 1): app not started"),
        "{}",
        untrusted.describe()
    );

    let trusted = run(true);
    trusted.assert_code(0, "pre-start with the CA in the certs dir");
    assert!(
        trusted.stdout.contains("marker: hello over tls"),
        "the task ran first, over TLS trusting the CA, and the app saw its work: {}",
        trusted.describe()
    );
}

#[test]
fn a_failing_pre_start_task_is_the_exit_status_and_uvicorn_never_starts() {
    let Some(world) = World::venv() else { return };
    let mut command = world.command(Mode::Subreaper, &test_app("service"), &[]);
    command.env("VARDR_PRESTART", prestart("import sys; sys.exit(3)", &[]));
    let done = finish(command);
    done.assert_code(3, "pre-start exits 3");
    assert!(!done.stdout.contains("ready"), "{}", done.describe());
    assert!(
        !done.stderr.contains("-m uvicorn service") && !done.stderr.contains("Uvicorn running"),
        "uvicorn was never started: {}",
        done.describe()
    );
    assert!(
        done.stderr
            .contains("pre-start task ended ( exit 3): app not started; exiting 3"),
        "{}",
        done.describe()
    );
}

#[test]
fn a_stop_during_a_slow_pre_start_task_reaches_it_and_the_app_never_starts() {
    let mode = if pid_namespaces() {
        Mode::Pid1
    } else {
        Mode::Subreaper
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("app-started");
    let mut command = common::command(
        mode,
        &[
            python().to_str().expect("utf8"),
            "-c",
            &format!("open({:?}, 'w')", marker.display().to_string()),
        ],
    );
    command.env(
        "VARDR_PRESTART",
        prestart(
            "import time; print(\"slow\", flush=True); time.sleep(60)",
            &[],
        ),
    );
    let running = common::start(command, mode);
    running.expect_line("slow");
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(143), "{stderr:#?}");
    assert!(!marker.exists(), "the app was started: {stderr:#?}");
    assert_logged(
        &stderr,
        "pre-start task ended (SIGTERM exit 143): app not started; exiting 143",
        "the task got the signal and ended the run",
    );
}

#[test]
fn a_pre_start_task_past_its_timeout_gets_sigterm_then_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("marker");
    let mut command = supervise(&show_marker(&marker));
    command
        .env(
            "VARDR_PRESTART",
            prestart(
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
                &[],
            ),
        )
        .env("VARDR_PRESTART_TIMEOUT", "0.5")
        .env("VARDR_STOP_TIMEOUT", "0.5");
    let done = finish(command);
    done.assert_code(137, "killed at the stop timeout");
    for needle in [
        "still running after 0.5s (VARDR_PRESTART_TIMEOUT): sent SIGTERM",
        "sending SIGKILL",
    ] {
        assert!(
            done.stderr.contains(needle),
            "{needle}: {}",
            done.describe()
        );
    }
    assert!(!done.stdout.contains("marker:"), "{}", done.describe());
}

/// A root with Python and vardr-init but no shell, vardr-init as its PID 1 (bwrap); `dir` is its
/// `/tmp`, `app` its `/app`. `None` (skip outside CI) when bwrap cannot make it here.
fn shell_less_root(dir: &Path, app: &Path) -> Option<Command> {
    let usable = Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--unshare-pid", "--as-pid-1", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        common::skip_outside_ci("bwrap cannot make a PID namespace here");
        return None;
    }
    let real = fs::canonicalize(python()).expect("the Python interpreter");
    // Found on the test's PATH: the command's own PATH is the sandbox's.
    let bwrap = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("bwrap"))
        .find(|path| path.is_file())
        .expect("bwrap ran above");
    let mut command = Command::new(bwrap);
    command
        .args(["--unshare-pid", "--as-pid-1", "--die-with-parent"])
        .args([
            "--ro-bind",
            "/usr/lib",
            "/usr/lib",
            "--symlink",
            "usr/lib",
            "/lib",
        ])
        .args([
            "--ro-bind-try",
            "/usr/lib64",
            "/usr/lib64",
            "--symlink",
            "usr/lib64",
            "/lib64",
        ])
        .args(["--proc", "/proc", "--dev", "/dev", "--bind"])
        .arg(dir)
        .arg("/tmp")
        .arg("--ro-bind")
        .args([app, Path::new("/app")])
        .arg("--ro-bind")
        .args([bin(), bin()]);
    // The interpreter alone (a distro's /usr/bin also holds sh), or a whole pyenv-style prefix.
    let path: PathBuf = if real.starts_with("/usr/") {
        command.arg("--ro-bind").args([&real, &real]);
        command.arg("--ro-bind").arg(&real).arg("/usr/bin/python3");
        PathBuf::from("/usr/bin")
    } else {
        let prefix = real.parent().and_then(Path::parent).expect("a prefix");
        command.arg("--ro-bind").args([prefix, prefix]);
        prefix.join("bin")
    };
    command.env_clear().env("PATH", path);
    Some(command)
}

#[test]
fn pre_start_path_runs_a_python_file_with_the_apps_python_in_a_root_without_a_shell() {
    let (dir, app) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("app"),
    );
    fs::write(
        app.path().join("prestart.py"),
        "import sys\nopen('/tmp/marker', 'w').write('migrated by ' + sys.executable)\n",
    )
    .expect("write prestart.py");
    fs::write(
        app.path().join("prestart.sh"),
        "echo migrated > /tmp/marker\n",
    )
    .expect("write");
    let Some(mut probe) = shell_less_root(dir.path(), app.path()) else {
        return;
    };
    let no_shell = finish({
        probe.args([
            "python3",
            "-c",
            "import os; print(os.path.exists('/bin/sh'))",
        ]);
        probe
    });
    no_shell.assert_code(0, "probe");
    assert_eq!(no_shell.stdout.trim(), "False", "{}", no_shell.describe());

    let run = |file: &str| {
        let mut command = shell_less_root(dir.path(), app.path()).expect("checked above");
        command
            .arg(bin())
            .args(["--", "python3", "-c"])
            .arg(show_marker(Path::new("/tmp/marker")))
            .env("VARDR_CERTS_DIR", "/nonexistent")
            .env("VARDR_CA_BUNDLE", "/tmp/bundle.pem")
            .env("VARDR_APP_DIR", "/app")
            .env("PRE_START_PATH", file);
        finish(command)
    };
    let done = run("/app/prestart.py");
    done.assert_code(0, "PRE_START_PATH=/app/prestart.py");
    assert!(
        done.stdout.contains("marker: migrated by /"),
        "the .py ran with Python before the app: {}",
        done.describe()
    );
    assert!(
        done.stderr.contains("pre-start task first: /"),
        "{}",
        done.describe()
    );

    let _ = fs::remove_file(dir.path().join("marker"));
    let sh = run("/app/prestart.sh");
    sh.assert_code(2, "a .sh without /bin/sh");
    assert!(
        sh.stderr
            .contains("is a shell script and this image has no /bin/sh"),
        "{}",
        sh.describe()
    );
    assert!(!sh.stdout.contains("marker:"), "{}", sh.describe());
}

/// `vardr-init health` inside the PID namespace (and mount namespace, for its /proc) of `vardr`.
fn health_inside(vardr: i32, port: u16) -> Finished {
    let mut command = Command::new("nsenter");
    command
        .args(["-t", &vardr.to_string(), "-p", "-m", "--"])
        .arg(bin())
        .arg("health")
        .env("PORT", port.to_string());
    finish(command)
}

/// Probes from inside until the probe says `draining` (vardr-init takes the signal a moment
/// after it is sent); that probe's result.
fn until_draining(vardr: i32, port: u16) -> Finished {
    let start = Instant::now();
    loop {
        let probe = health_inside(vardr, port);
        if probe.stderr.contains("draining") || start.elapsed() > common::PATIENCE {
            return probe;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_drain_keeps_serving_says_draining_then_forwards_sigterm() {
    if !pid_namespaces() {
        return;
    }
    let Some(world) = World::venv() else { return };
    let delay = Duration::from_secs(2);
    // No access log (tiangolo's ACCESS_LOG set to empty): stdout carries the lifespan lines only.
    let env = [("VARDR_STOP_DELAY", "2"), ("ACCESS_LOG", "")];
    let running = start_service(&world, Mode::Pid1, &env, 1);
    let vardr = running.vardr_pid();
    common::app::wait_until_serving(world.port);
    health_inside(vardr, world.port).assert_code(0, "healthy before the stop");

    let sent = Instant::now();
    running.signal(libc::SIGTERM);
    let probe = until_draining(vardr, world.port);
    probe.assert_code(1, "health while draining");
    assert!(
        probe.stderr.contains("unhealthy: draining"),
        "{}",
        probe.describe()
    );
    // Requests keep succeeding meanwhile (the probe above proves the drain has begun).
    for _ in 0..5 {
        assert_eq!(
            get(world.port, "/health").expect("served while draining").0,
            200
        );
    }
    // The app's lifespan shutdown: it got SIGTERM, and not before the delay.
    running.expect_line("stopped ");
    let stopped = sent.elapsed();
    assert!(
        stopped >= delay,
        "SIGTERM reached the app after {stopped:?}"
    );
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr:#?}");
    assert_logged(&stderr, "SIGTERM: draining", "the drain is logged");
    assert_logged(
        &stderr,
        "VARDR_STOP_DELAY over: SIGTERM forwarded",
        "then forwarded",
    );
}

#[test]
fn a_second_sigterm_while_draining_forwards_at_once() {
    if !pid_namespaces() {
        return;
    }
    let Some(world) = World::venv() else { return };
    // Ten minutes: the run can only end within the test's patience through the second SIGTERM.
    let running = start_service(&world, Mode::Pid1, &[("VARDR_STOP_DELAY", "600")], 1);
    let vardr = running.vardr_pid();
    running.signal(libc::SIGTERM);
    let probe = until_draining(vardr, world.port);
    assert!(probe.stderr.contains("draining"), "{}", probe.describe());
    running.signal(libc::SIGTERM);
    running.expect_line("stopped ");
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr:#?}");
    assert_logged(
        &stderr,
        "SIGTERM while draining: forwarded now",
        "the second SIGTERM skips the wait",
    );
}

#[test]
fn what_the_child_left_running_is_stopped_and_the_status_is_the_childs() {
    // As subreaper the test sees the leftovers' PIDs; as PID 1 the logs say the same. Under
    // qemu-user (scripts/test-arm64.sh) prctl(PR_SET_CHILD_SUBREAPER) fails with EINVAL: there
    // only PID 1 can clean up, and only PID 1 is tested.
    let mut modes = Vec::new();
    if std::env::var_os("VARDR_TEST_EMULATOR").is_none() {
        modes.push(Mode::Subreaper);
    }
    if pid_namespaces() {
        modes.push(Mode::Pid1);
    }
    for mode in modes {
        let mut args = common::python_script("leave_daemons.py");
        args.push("7".to_owned());
        let mut command = common::command(mode, &args);
        command.env("VARDR_STOP_TIMEOUT", "1");
        let running = common::start(command, mode);
        let left = running.expect_line("left ");
        let pids: Vec<i32> = left
            .split_whitespace()
            .skip(1)
            .map(|p| p.parse().expect("pid"))
            .collect();
        let (status, stderr) = running.wait();
        assert_eq!(status.code(), Some(7), "{mode:?}: {stderr:#?}");
        let termed = stderr
            .iter()
            .filter(|l| l.contains("left running by the child: sent SIGTERM"))
            .count();
        assert_eq!(
            termed, 2,
            "{mode:?}: both leftovers got SIGTERM: {stderr:#?}"
        );
        assert_logged(
            &stderr,
            "left running by the child: sent SIGKILL",
            "the one ignoring SIGTERM",
        );
        if mode == Mode::Subreaper {
            for pid in &pids {
                assert!(common::is_dead(*pid), "pid {pid} survived: {stderr:#?}");
                assert_logged(&stderr, &format!("pid {pid} (python"), "named with its pid");
            }
        }
    }
}
