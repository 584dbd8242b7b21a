//! One JSON stream (`VARDR_JSON_LOGS=true`): the real uvicorn of the test venv serving
//! `tests/apps/json_logs` under vardr-init as PID 1, with one worker, two, and `--reload`: every
//! non-empty line of stdout and stderr is a JSON object with `type` and `timestamp`; the access
//! line of a 500 carries its request as fields; a traceback is inside one object; the app's own
//! warning (quotes, a newline) is one valid object. A logging configuration of the user's own
//! wins and is said to; `LOG_LEVEL` and `ACCESS_LOG=` keep their meaning; the dry run shows the
//! app's logs; an uncaught exception outside uvicorn is one object, and `print()` stays as
//! written (PID 1 is not in the app's output path).
//!
//! These tests need the venv (`common::venv_python`) and skip without it outside CI.

mod common;

use serde_json::{Map, Value};

use common::app::{World, exit_code, get, test_app, wait_until_serving};
use common::{Mode, assert_logged, finish, pid_namespaces, start};

/// One event of the stream.
type Event = Map<String, Value>;

/// Each line as a JSON object with `type` and an RFC 3339 UTC `timestamp`, or a failure naming
/// every line that is not one.
fn objects(lines: &[String], stream: &str) -> Vec<Event> {
    let mut bad = Vec::new();
    let mut objects = Vec::new();
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object))
                if object.get("type").is_some_and(Value::is_string)
                    && object
                        .get("timestamp")
                        .and_then(Value::as_str)
                        .is_some_and(rfc3339_utc) =>
            {
                objects.push(object);
            }
            _ => bad.push(line.clone()),
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} {stream} lines are not JSON events: {bad:#?}",
        bad.len(),
        lines.len()
    );
    objects
}

/// `2024-01-15T10:30:00Z` or `2024-01-15T10:30:00.123Z`.
fn rfc3339_utc(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && t.ends_with('Z')
        && (b.len() == 20 || (b[19] == b'.' && digits(20..b.len() - 1)))
}

fn text<'a>(object: &'a Event, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// vardr-init serving the app with `env`; three requests as the user made them, then
/// SIGTERM. Every line of both streams, as JSON objects: (stdout, stderr).
fn serve(world: &World, env: &[(&str, &str)]) -> (Vec<Event>, Vec<Event>) {
    let mut command = world.command(Mode::Pid1, &test_app("json_logs"), &[]);
    command
        .env("VARDR_JSON_LOGS", "true")
        .envs(env.iter().copied());
    let running = start(command, Mode::Pid1);
    wait_until_serving(world.port);
    for (path, status) in [("/warn", 200), ("/info", 200), ("/boom", 500)] {
        let (code, body) = get(world.port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(code, status, "GET {path}: {body}");
    }
    running.signal(libc::SIGTERM);
    let (status, stderr, stdout) = running.wait_with_stdout();
    assert_eq!(exit_code(status, &stderr), 0, "{stderr:#?}");
    (objects(&stdout, "stdout"), objects(&stderr, "stderr"))
}

fn one_json_stream(env: &[(&str, &str)], servers: usize) {
    if !pid_namespaces() {
        return;
    }
    let Some(world) = World::venv() else { return };
    let (stdout, stderr) = serve(&world, env);
    let all: Vec<_> = stdout.iter().chain(&stderr).collect();
    let started = stderr
        .iter()
        .filter(|o| text(o, "message").starts_with("Started server process"))
        .count();
    assert_eq!(
        started, servers,
        "uvicorn's own lines are JSON: {stderr:#?}"
    );
    // The access line of the 500: its request as fields of their own.
    let boom = stdout
        .iter()
        .find(|o| text(o, "type") == "access" && text(o, "path") == "/boom")
        .unwrap_or_else(|| panic!("no access event for /boom: {stdout:#?}"));
    assert_eq!(boom.get("status"), Some(&Value::from(500)), "{boom:?}");
    assert_eq!(text(boom, "method"), "GET");
    assert_eq!(text(boom, "http_version"), "1.1");
    assert_eq!(text(boom, "logger"), "uvicorn.access");
    assert!(text(boom, "client").starts_with("127.0.0.1:"), "{boom:?}");
    assert_eq!(text(boom, "level"), "INFO");
    // The traceback: whole, in one object.
    let failed: Vec<_> = all.iter().filter(|o| o.contains_key("exception")).collect();
    assert_eq!(failed.len(), 1, "one record with an exception: {failed:#?}");
    let traceback = text(failed[0], "exception");
    assert!(
        traceback.starts_with("Traceback (most recent call last):")
            && traceback.ends_with("RuntimeError: boom")
            && traceback.contains("in boom"),
        "{traceback}"
    );
    assert_eq!(text(failed[0], "level"), "ERROR");
    // The app's warning, quotes and newline in one valid object.
    let warning = all
        .iter()
        .find(|o| text(o, "logger") == "app" && text(o, "level") == "WARNING")
        .unwrap_or_else(|| panic!("no warning of the app's: {all:#?}"));
    assert_eq!(text(warning, "message"), "he said \"hi\"\nand left");
    // basicConfig(level=INFO) of the app still applies; `extra=` fields are fields.
    let order = all
        .iter()
        .find(|o| text(o, "message") == "order 42 placed")
        .unwrap_or_else(|| panic!("the app's info line is gone: {all:#?}"));
    assert_eq!(order.get("order_id"), Some(&Value::from(42)), "{order:?}");
    assert_eq!(order.get("tags"), Some(&serde_json::json!(["a", "b"])));
    // A warnings.warn() is a record too.
    assert!(
        all.iter().any(|o| text(o, "logger") == "py.warnings"
            && text(o, "message").contains("this endpoint is deprecated")),
        "{all:#?}"
    );
    // vardr-init's own lines are in the same stream, in the same schema.
    assert!(
        stderr
            .iter()
            .any(|o| text(o, "message").starts_with("Python hook: the app's logging writes JSON")),
        "{stderr:#?}"
    );
}

#[test]
fn every_line_is_json_with_one_worker() {
    one_json_stream(&[], 1);
}

#[test]
fn every_line_is_json_with_two_workers() {
    one_json_stream(&[("WORKERS", "2")], 2);
}

#[test]
fn every_line_is_json_under_reload() {
    let app = test_app("json_logs");
    let opts = format!("--reload --reload-dir {}", app.display());
    one_json_stream(&[("UVICORN_OPTS", &opts)], 1);
}

/// A `--log-config` of the user's wins over `VARDR_JSON_LOGS` in the app, and an info line says
/// so; vardr-init's own lines stay JSON.
#[test]
fn the_users_logging_configuration_wins_and_is_said_to() {
    if !pid_namespaces() {
        return;
    }
    let Some(world) = World::venv() else { return };
    let config = world.tmp.path().join("logging.json");
    let theirs = serde_json::json!({
        "version": 1,
        "disable_existing_loggers": false,
        "formatters": {"mine": {"format": "MINE %(levelname)s %(name)s %(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "mine",
                             "stream": "ext://sys.stderr"}},
        "loggers": {"uvicorn": {"handlers": ["out"], "level": "INFO", "propagate": false},
                    "uvicorn.access": {"handlers": ["out"], "level": "INFO", "propagate": false}},
    });
    std::fs::write(&config, theirs.to_string()).expect("write logging.json");
    let mut command = world.command(Mode::Pid1, &test_app("json_logs"), &[]);
    let opts = format!("--log-config {}", config.display());
    command
        .env("VARDR_JSON_LOGS", "true")
        .env("UVICORN_OPTS", &opts);
    let running = start(command, Mode::Pid1);
    wait_until_serving(world.port);
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status, &stderr), 0, "{stderr:#?}");
    let (ours, rest): (Vec<_>, Vec<_>) = stderr.iter().partition(|l| l.starts_with('{'));
    let ours: Vec<String> = ours.into_iter().cloned().collect();
    let ours = objects(&ours, "vardr-init's");
    let said = format!(
        "App logs: your logging configuration (--log-config {} in UVICORN_OPTS) wins",
        config.display()
    );
    assert!(
        ours.iter()
            .any(|o| text(o, "message").starts_with(&said) && text(o, "level") == "INFO"),
        "{ours:#?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.starts_with("MINE INFO uvicorn.error Started server process")),
        "uvicorn's lines are as the user's configuration writes them: {rest:#?}"
    );
    assert!(
        ours.iter().all(|o| !o.contains_key("logger")),
        "no record of the app's was made JSON: {ours:#?}"
    );
}

/// `LOG_LEVEL` and `ACCESS_LOG=` keep their meaning: uvicorn's info lines and its access log go,
/// the app's warning stays, JSON.
#[test]
fn log_level_and_access_log_keep_their_meaning() {
    if !pid_namespaces() {
        return;
    }
    let Some(world) = World::venv() else { return };
    let (stdout, stderr) = serve(&world, &[("LOG_LEVEL", "warning"), ("ACCESS_LOG", "")]);
    assert!(stdout.is_empty(), "no access log: {stdout:#?}");
    assert!(
        !stderr
            .iter()
            .any(|o| text(o, "logger") == "uvicorn.error" && text(o, "level") == "INFO"),
        "LOG_LEVEL=warning: {stderr:#?}"
    );
    assert!(
        stderr.iter().any(|o| text(o, "logger") == "app"),
        "{stderr:#?}"
    );
}

/// Outside uvicorn too (any command after `--`): an uncaught exception is one object, a warning
/// is one; `print()` stays as written, since PID 1 is not in the app's output path.
#[test]
fn a_python_command_logs_json_and_its_prints_stay_as_written() {
    let Some(world) = World::venv() else { return };
    let script = "import logging, warnings\n\
                  print('plain words')\n\
                  logging.getLogger('job').error('job %s failed', 7)\n\
                  warnings.warn('old api')\n\
                  raise ValueError('bad input')\n";
    let mut command = world.command(Mode::Subreaper, &test_app("json_logs"), &[]);
    command
        .args(["--", "python3", "-c", script])
        .env("VARDR_JSON_LOGS", "true");
    let done = finish(command);
    assert_eq!(done.status.code(), Some(1), "{}", done.describe());
    assert_eq!(done.stdout, "plain words\n", "{}", done.describe());
    let stderr = objects(&done.stderr_lines(), "stderr");
    let job = stderr
        .iter()
        .find(|o| text(o, "logger") == "job")
        .unwrap_or_else(|| panic!("{stderr:#?}"));
    assert_eq!(
        (text(job, "level"), text(job, "message")),
        ("ERROR", "job 7 failed")
    );
    let crash = stderr
        .iter()
        .find(|o| text(o, "exception").ends_with("ValueError: bad input"))
        .unwrap_or_else(|| panic!("the uncaught exception is one object: {stderr:#?}"));
    assert_eq!(text(crash, "level"), "CRITICAL");
    assert!(
        stderr
            .iter()
            .any(|o| text(o, "message").contains("old api"))
    );
}

/// The dry run says what logging the app would get, in text and JSON, and the hook is put in
/// place for JSON logs with no custom CA.
#[test]
fn the_dry_run_shows_the_apps_logs() {
    let world = World::fake_python();
    let app = test_app("json_logs");
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "text"),
        (&[("VARDR_JSON_LOGS", "true")], "json"),
        (
            &[
                ("VARDR_JSON_LOGS", "true"),
                ("UVICORN_LOG_CONFIG", "/etc/log.yaml"),
            ],
            "yours",
        ),
        (
            &[("VARDR_JSON_LOGS", "true"), ("VARDR_PYTHON_HOOK", "false")],
            "not_reached",
        ),
    ];
    for (env, format) in cases {
        let (code, plan) = world.plan(&app, env);
        assert_eq!(code, 0, "{plan}");
        assert_eq!(plan["app_logs"]["format"], format, "{env:?}: {plan}");
        let hook = if format == "json" { "on" } else { "off" };
        assert_eq!(plan["python_hook"]["status"], hook, "{env:?}: {plan}");
    }
    let (_, plan) = world.plan(
        &app,
        &[
            ("VARDR_JSON_LOGS", "true"),
            ("UVICORN_LOG_CONFIG", "/etc/log.yaml"),
        ],
    );
    assert!(
        plan["app_logs"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("UVICORN_LOG_CONFIG=/etc/log.yaml")),
        "{plan}"
    );
    let mut command = world.command(Mode::Subreaper, &app, &["--dry-run"]);
    command.env("VARDR_JSON_LOGS", "true");
    let done = finish(command);
    assert_logged(
        &done.stdout.lines().map(str::to_owned).collect::<Vec<_>>(),
        "App logs: JSON: uvicorn's and the app's logging records",
        "the text plan",
    );
    assert!(world.out_dir_is_empty(), "a dry run writes nothing");
}
