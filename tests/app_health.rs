//! `vardr-init health`, the HEALTHCHECK probe: against the running service app, a closed port, a
//! server that never answers, answers that are not HTTP, and bad arguments (exit 1, never 2).
//!
//! The test against the running app needs the venv (`common::venv_python`); the others use fake
//! servers.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::app::{
    World, any_mode, exit_code, free_port, health, start_service, test_app, wait_until_serving,
};
use common::{Finished, PATIENCE, finish, pki, start};

fn health_url(port: u16, args: &[&str]) -> Finished {
    let url = format!("http://127.0.0.1:{port}/health");
    let mut all = vec!["--url", &url];
    all.extend(args);
    health(port, &all)
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

/// `vardr-init health` with only `env` (no `HOST`, no `PORT`): where the run's uvicorn listens.
fn health_with(env: &[(&str, &str)]) -> Finished {
    let mut command = Command::new(common::bin());
    command.arg("health").env_remove("HOST").env_remove("PORT");
    command.envs(env.iter().copied());
    pki::scrub(&mut command);
    finish(command)
}

/// Issue 24, item 2: the probe follows `BIND` as the run does (it probed 127.0.0.1:8000), over
/// TCP and over the Unix socket of `BIND=unix:PATH`.
#[test]
fn health_follows_bind_as_the_run_does() {
    let Some(world) = World::venv() else { return };
    let port = free_port();
    let socket = world.tmp.path().join("app.sock");
    let binds = [
        format!("127.0.0.1:{port}"),
        format!("unix:{}", socket.display()),
    ];
    for bind in &binds {
        let mode = any_mode();
        let mut command = world.command(mode, &test_app("service"), &[]);
        command
            .env_remove("HOST")
            .env_remove("PORT")
            .env("BIND", bind);
        let running = start(command, mode);
        running.expect_line("ready ");
        // uvicorn binds after the app's start-up: wait for the listener, not for a time.
        let started = Instant::now();
        let up = || match bind.strip_prefix("unix:") {
            Some(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
            None => TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok(),
        };
        while !up() {
            assert!(started.elapsed() < PATIENCE, "BIND={bind}: nothing listens");
            thread::sleep(Duration::from_millis(50));
        }
        let done = health_with(&[("BIND", bind)]);
        done.assert_code(0, &format!("BIND={bind}"));
        let at = bind
            .strip_prefix("unix:")
            .map_or(bind.clone(), |p| format!("unix:{p}"));
        assert!(
            done.stdout.contains(&at),
            "BIND={bind}: {}",
            done.describe()
        );
        // HOST and PORT win over BIND, in the run and in the probe alike.
        if bind.starts_with("unix:") {
            let other = free_port().to_string();
            health_with(&[("BIND", bind), ("PORT", &other)]).assert_code(1, "PORT wins");
        }
        running.signal(libc::SIGTERM);
        let (status, stderr) = running.wait();
        assert_eq!(exit_code(status, &stderr), 0, "BIND={bind}: {stderr:#?}");
    }
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
