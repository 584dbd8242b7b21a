//! The default command serving for real: vardr-init (no `--`) finds a FastAPI app and runs the
//! real uvicorn of the test venv, as PID 1 of a PID namespace where the test is about PID 1:
//! serving the example, a graceful stop on SIGTERM with one and two workers, orphans reaped, and
//! a lifespan shutdown that never returns ended by the stop timeout. Also that the examples pin
//! the versions these tests run.
//!
//! Tests that serve need the venv (`common::venv_python`) and skip without it outside CI.

mod common;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::app::{
    World, any_mode, example, exit_code, get, health, start_service, test_app, wait_until_serving,
};
use common::{Mode, assert_logged, descendants, namespace_app_pid, pid_namespaces, start};

/// The issue's bound: from SIGTERM to PID 1 until vardr-init has exited, uvicorn included.
const GRACEFUL_STOP: Duration = Duration::from_secs(2);

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
    assert_logged(
        &stderr,
        &format!("(pid {})", namespace_app_pid(&stderr)),
        "uvicorn is PID 4, vardr-init PID 1 (the app discovery worker was PID 2, the certificate \
         worker PID 3)",
    );
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
        &format!("Forwarding SIGTERM to pid {}", namespace_app_pid(&stderr)),
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
    let pids = |processes: &[(i32, i32, char)]| processes.iter().map(|p| p.0).collect::<Vec<_>>();
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
    let zombies: Vec<_> = now.iter().filter(|(.., state)| *state == 'Z').collect();
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

/// `docker run -it`, then Ctrl-C: the terminal sends SIGINT to uvicorn's foreground group
/// directly, not through vardr-init; uvicorn shuts down gracefully. That is a stop typed at the
/// terminal, not "exit 0 although nobody asked it to stop": exit 0 (or 130), no error. With one
/// worker and with two.
#[test]
fn ctrl_c_at_the_terminal_stops_uvicorn_without_an_error() {
    let Some(world) = World::venv() else { return };
    for workers in ["1", "2"] {
        let (mut master, slave) = common::pty::open();
        let mut command = world.command(Mode::Subreaper, &example("basic"), &[]);
        command
            .env("WORKERS", workers)
            .stdin(slave.try_clone().expect("dup"))
            .stdout(slave.try_clone().expect("dup"))
            .stderr(slave.try_clone().expect("dup"));
        common::pty::controlling_terminal(&mut command);
        let mut vardr = command.spawn().expect("spawn on pty");
        drop(slave);
        let output = common::pty::read_until(&mut master, "Application startup complete");
        common::pty::write(&mut master, b"\x03");
        // vardr-init's last line says "exiting N" whichever way the child ended.
        let output = output + &common::pty::read_until(&mut master, "exiting");
        let status = common::wait_for_exit(&mut vardr, || format!("pty output: {output}"));
        assert!(
            matches!(status.code(), Some(0 | 130)),
            "WORKERS={workers}: {status:?}: {output}"
        );
        assert!(
            !output.contains("ERROR") && !output.contains("nobody asked"),
            "WORKERS={workers}: a stop at the terminal is not an error: {output}"
        );
    }
}
