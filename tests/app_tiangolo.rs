//! A home for the users of tiangolo's `uvicorn-gunicorn-fastapi` image: each of its variables
//! becomes the uvicorn flag or worker count it meant there (its `gunicorn_conf.py` and
//! `start-reload.sh`), checked in the argv of `--dry-run --json`; our own variables and
//! `UVICORN_OPTS` win; gunicorn-only variables get a warning. And `[tool.fastapi] entrypoint` in
//! `pyproject.toml`, as fastapi-cli reads it, between `APP_MODULE` and discovery.

mod common;

use std::fs;
use std::path::Path;

use serde_json::Value;

use common::app::{World, example};
use common::{Mode, finish};

/// The argv after `PYTHON -m uvicorn MODULE:VAR`, as strings.
fn uvicorn_options(plan: &Value) -> Vec<String> {
    let argv = plan["argv"]
        .as_array()
        .unwrap_or_else(|| panic!("argv: {plan:#}"));
    argv.iter()
        .skip(4)
        .map(|a| a.as_str().expect("string").to_owned())
        .collect()
}

/// The source the plan names for `option`.
fn source(plan: &Value, option: &str) -> String {
    let flags = plan["app"]["flags"].as_array().expect("flags");
    let flag = flags.iter().find(|f| f["option"] == option);
    let flag = flag.unwrap_or_else(|| panic!("no {option}: {plan:#}"));
    flag["source"].as_str().expect("source").to_owned()
}

/// The plan for the basic example with `env`, `HOST` and `PORT` unset unless `env` sets them.
fn plan_for(env: &[(&str, &str)]) -> Value {
    let world = World::fake_python();
    let mut command = world.command(Mode::Subreaper, &example("basic"), &["--dry-run", "--json"]);
    command.env_remove("HOST").env_remove("PORT");
    command.envs(env.iter().copied());
    let done = finish(command);
    done.assert_code(0, &format!("{env:?}"));
    serde_json::from_str(done.stdout.trim()).expect("the plan is JSON")
}

fn after<'a>(options: &'a [String], option: &str) -> Option<&'a str> {
    let at = options.iter().position(|o| o == option)?;
    options.get(at + 1).map(String::as_str)
}

#[test]
fn every_tiangolo_variable_becomes_its_uvicorn_flag() {
    let plan = plan_for(&[
        ("LOG_LEVEL", "DEBUG"),
        ("ACCESS_LOG", ""),
        ("KEEP_ALIVE", "7"),
        ("GRACEFUL_TIMEOUT", "20"),
        ("BIND", "127.0.0.1:9001"),
        ("WORKERS_PER_CORE", "8"),
        ("MAX_WORKERS", "3"),
    ]);
    let options = uvicorn_options(&plan);
    for (option, value, from) in [
        ("--host", Some("127.0.0.1"), "BIND"),
        ("--port", Some("9001"), "BIND"),
        ("--workers", Some("3"), "MAX_WORKERS"),
        ("--log-level", Some("debug"), "LOG_LEVEL"),
        ("--timeout-keep-alive", Some("7"), "KEEP_ALIVE"),
        (
            "--timeout-graceful-shutdown",
            Some("20"),
            "GRACEFUL_TIMEOUT",
        ),
        ("--no-access-log", None, "ACCESS_LOG"),
    ] {
        assert!(options.iter().any(|o| o == option), "{option}: {options:?}");
        if let Some(value) = value {
            assert_eq!(
                after(&options, option),
                Some(value),
                "{option}: {options:?}"
            );
        }
        assert!(source(&plan, option).contains(from), "{option}: {plan:#}");
    }
    assert_eq!(plan["app"]["workers"], 3, "{plan:#}");

    // tiangolo's formula: max(int(per_core * CPUs), 2), here below 2 on any machine.
    let few = plan_for(&[("WORKERS_PER_CORE", "0.01")]);
    assert_eq!(
        after(&uvicorn_options(&few), "--workers"),
        Some("2"),
        "{few:#}"
    );
    // WEB_CONCURRENCY is taken as is, and MAX_WORKERS does not cap it (as there).
    let web = plan_for(&[("WEB_CONCURRENCY", "5"), ("MAX_WORKERS", "2")]);
    assert_eq!(
        after(&uvicorn_options(&web), "--workers"),
        Some("5"),
        "{web:#}"
    );
    assert_eq!(source(&web, "--workers"), "WEB_CONCURRENCY", "{web:#}");
    // ACCESS_LOG="-" is the access log on stdout: uvicorn's default, nothing passed.
    let dash = plan_for(&[("ACCESS_LOG", "-")]);
    assert!(
        !uvicorn_options(&dash)
            .iter()
            .any(|o| o.contains("access-log")),
        "{dash:#}"
    );
    // A unix socket.
    let uds = plan_for(&[("BIND", "unix:/tmp/app.sock")]);
    assert_eq!(
        uvicorn_options(&uds)[..2],
        ["--uds", "/tmp/app.sock"],
        "{uds:#}"
    );
    assert!(
        !uvicorn_options(&uds).iter().any(|o| o == "--host"),
        "{uds:#}"
    );
    // IPv6 in brackets, no port: the port stays ours (8000).
    let v6 = plan_for(&[("BIND", "[::1]")]);
    assert_eq!(
        uvicorn_options(&v6)[..4],
        ["--host", "::1", "--port", "8000"],
        "{v6:#}"
    );
}

#[test]
fn our_variables_and_uvicorn_opts_win_over_tiangolos() {
    let plan = plan_for(&[
        ("HOST", "0.0.0.0"),
        ("PORT", "8080"),
        ("BIND", "127.0.0.1:9001"),
        ("WORKERS", "2"),
        ("WEB_CONCURRENCY", "6"),
        ("VARDR_STOP_TIMEOUT", "10"),
        ("GRACEFUL_TIMEOUT", "120"),
        ("LOG_LEVEL", "debug"),
        ("UVICORN_OPTS", "--log-level warning"),
    ]);
    let options = uvicorn_options(&plan);
    assert_eq!(after(&options, "--host"), Some("0.0.0.0"), "{options:?}");
    assert_eq!(after(&options, "--port"), Some("8080"), "{options:?}");
    assert_eq!(after(&options, "--workers"), Some("2"), "{options:?}");
    assert_eq!(source(&plan, "--workers"), "WORKERS", "{plan:#}");
    assert_eq!(
        after(&options, "--timeout-graceful-shutdown"),
        Some("9"),
        "{options:?}"
    );
    // UVICORN_OPTS repeats --log-level: vardr-init leaves it out, so the argv says it once.
    let levels: Vec<_> = options.iter().filter(|o| *o == "--log-level").collect();
    assert_eq!(levels.len(), 1, "{options:?}");
    assert_eq!(
        options.last().map(String::as_str),
        Some("warning"),
        "{options:?}"
    );
    let warnings = plan["warnings"].to_string();
    for needle in [
        "BIND ignored: HOST or PORT is set",
        "GRACEFUL_TIMEOUT ignored: VARDR_STOP_TIMEOUT wins",
    ] {
        assert!(warnings.contains(needle), "{needle}: {warnings}");
    }
}

#[test]
fn with_web_concurrency_set_the_worker_count_is_always_passed() {
    // uvicorn reads WEB_CONCURRENCY itself when --workers is absent: WORKERS=1 must say so.
    let plan = plan_for(&[("WORKERS", "1"), ("WEB_CONCURRENCY", "4")]);
    assert_eq!(
        after(&uvicorn_options(&plan), "--workers"),
        Some("1"),
        "{plan:#}"
    );
}

/// tiangolo's variables that only gunicorn read.
const GUNICORN_ONLY: [&str; 5] = [
    "TIMEOUT",
    "WORKER_CLASS",
    "GUNICORN_CONF",
    "GUNICORN_CMD_ARGS",
    "ERROR_LOG",
];

#[test]
fn gunicorn_only_variables_are_warned_about_and_bad_values_stop_the_run() {
    let world = World::fake_python();
    let mut command = world.command(Mode::Subreaper, &example("basic"), &["--dry-run"]);
    for name in GUNICORN_ONLY {
        command.env(name, "x");
    }
    command.env("ACCESS_LOG", "/var/log/access.log");
    let done = finish(command);
    done.assert_code(0, "warnings only");
    for name in GUNICORN_ONLY {
        let needle = format!("warning: {name} is gunicorn's, ignored: ");
        assert!(
            done.stdout.contains(&needle),
            "{needle}: {}",
            done.describe()
        );
    }
    assert!(
        done.stdout
            .contains("ACCESS_LOG=\"/var/log/access.log\" ignored")
    );

    for (name, value) in [
        ("LOG_LEVEL", "loud"),
        ("KEEP_ALIVE", "-1"),
        ("GRACEFUL_TIMEOUT", "soon"),
        ("BIND", "a:b:c"),
        ("BIND", "0.0.0.0:80 0.0.0.0:81"),
        ("MAX_WORKERS", "0"),
        ("WORKERS_PER_CORE", "0"),
        ("WEB_CONCURRENCY", "many"),
    ] {
        let mut command = world.command(Mode::Subreaper, &example("basic"), &["--dry-run"]);
        command.env(name, value);
        let done = finish(command);
        done.assert_code(2, &format!("{name}={value}"));
        assert!(
            done.stderr.contains(&format!("invalid {name}=")),
            "{name}={value}: {}",
            done.describe()
        );
    }
}

/// An app directory with a `pyproject.toml` naming `pkg.server:api`, and a `main.py` that
/// discovery alone would pick.
fn project(dir: &Path, pyproject: &str) {
    fs::create_dir_all(dir.join("pkg")).expect("mkdir pkg");
    fs::write(dir.join("pkg/__init__.py"), "").expect("write");
    fs::write(
        dir.join("pkg/server.py"),
        "from fastapi import FastAPI\napi = FastAPI()\n\n@api.get('/health')\ndef health():\n    return {'from': 'pyproject'}\n",
    )
    .expect("write");
    fs::write(
        dir.join("main.py"),
        "from fastapi import FastAPI\napp = FastAPI()\n",
    )
    .expect("write");
    fs::write(dir.join("pyproject.toml"), pyproject).expect("write");
}

#[test]
fn the_pyproject_entrypoint_comes_between_app_module_and_discovery() {
    let world = World::fake_python();
    let dir = world.tmp.path().join("project");
    project(
        &dir,
        "[project]\nname = \"x\"\ndependencies = [\n  \"fastapi\",\n]\n\n[tool.fastapi]\nentrypoint = \"pkg.server:api\"\n",
    );
    let (code, plan) = world.plan(&dir, &[]);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(plan["argv"][3], "pkg.server:api", "{plan:#}");
    let source = plan["app"]["source"].as_str().expect("source");
    assert!(source.contains("pyproject.toml"), "{plan:#}");
    assert_eq!(
        plan["app"]["app_dir"],
        dir.to_str().expect("utf8"),
        "imported from pyproject.toml's directory, as fastapi-cli does from its cwd"
    );
    // APP_MODULE wins.
    let (_, plan) = world.plan(&dir, &[("APP_MODULE", "main:app")]);
    assert_eq!(plan["argv"][3], "main:app", "{plan:#}");
    // Not module:variable: the run would not start, and says where.
    fs::write(
        dir.join("pyproject.toml"),
        "[tool.fastapi]\nentrypoint = \"pkg.server\"\n",
    )
    .expect("write");
    let (code, plan) = world.plan(&dir, &[]);
    assert_eq!(code, 2, "{plan:#}");
    assert!(
        plan["errors"].to_string().contains("pyproject.toml"),
        "{plan:#}"
    );
    // No [tool.fastapi]: discovery.
    fs::write(
        dir.join("pyproject.toml"),
        "[tool.ruff]\nline-length = 100\n",
    )
    .expect("write");
    let (_, plan) = world.plan(&dir, &[]);
    assert_eq!(plan["argv"][3], "main:app", "{plan:#}");
}

#[test]
fn uvicorn_serves_the_pyproject_entrypoint() {
    let Some(world) = World::venv() else { return };
    let dir = world.tmp.path().join("project");
    project(&dir, "[tool.fastapi]\nentrypoint = 'pkg.server:api'\n");
    let mut command = world.command(Mode::Subreaper, &dir, &[]);
    command.current_dir(world.tmp.path());
    let running = common::start(command, Mode::Subreaper);
    common::app::wait_until_serving(world.port);
    let (code, body) = common::app::get(world.port, "/health").expect("GET");
    assert_eq!((code, body.as_str()), (200, r#"{"from":"pyproject"}"#));
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr:#?}");
}

/// The reader against Python's own `tomllib`, on documents that put the key in every place TOML
/// allows and hide look-alikes where a line-by-line reader would fall for them.
#[test]
fn the_toml_reader_agrees_with_tomllib() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let world = World::fake_python();
    let dir = world.tmp.path().join("project");
    let documents = [
        "[tool.fastapi]\nentrypoint = \"pkg.server:api\"\n",
        "tool.fastapi.entrypoint = 'pkg.server:api'\n",
        "[tool]\nfastapi = { entrypoint = \"pkg.server:api\" }\n",
        "[ tool . \"fastapi\" ]\n'entrypoint' = \"\"\"pkg.server:api\"\"\"\n",
        "[tool.other]\ndoc = \"\"\"\n[tool.fastapi]\nentrypoint = \"main:app\"\n\"\"\"\n",
        "[tool.other]\nx = [\n  \"]\",\n  [1, 2], # [tool.fastapi]\n]\n[tool.fastapi]\nentrypoint = \"pkg.server:api\"\n",
        "[[tool.fastapi]]\nentrypoint = \"main:app\"\n",
        "[tool.fastapi.sub]\nentrypoint = \"main:app\"\n",
        "# [tool.fastapi]\n# entrypoint = 'pkg.server:api'\n[project]\nname = 'x'\n",
    ];
    for document in documents {
        project(&dir, document);
        let expected = std::process::Command::new(&python)
            .args([
                "-c",
                "import sys, tomllib; t = tomllib.load(open(sys.argv[1], 'rb')); \
                 print(t.get('tool', {}).get('fastapi', {}).get('entrypoint', 'main:app') \
                 if isinstance(t.get('tool', {}).get('fastapi'), dict) else 'main:app')",
            ])
            .arg(dir.join("pyproject.toml"))
            .output()
            .expect("tomllib");
        assert!(expected.status.success(), "tomllib: {document}");
        let expected = String::from_utf8_lossy(&expected.stdout).trim().to_owned();
        let (code, plan) = world.plan(&dir, &[]);
        assert_eq!(code, 0, "{document}: {plan:#}");
        assert_eq!(plan["argv"][3], expected.as_str(), "{document}: {plan:#}");
    }
}
