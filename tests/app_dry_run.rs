//! `vardr-init --dry-run`, text and `--json`: the plan (bundle action, environment, app, argv,
//! whether it would start), and that a dry run writes no bundle and starts no Python.

mod common;

use common::app::{World, example};
use common::{Mode, finish, pki};

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

/// The dry run foresees a command that cannot start, as a run would find it: not found (a run
/// exits 127), not executable (126); either way it would not start, so exit 2. And the JSON plan
/// is an event like the others: `"type"` first.
#[test]
fn dry_run_foresees_a_command_that_cannot_start() {
    let world = World::fake_python();
    let dir = world.tmp.path();
    let no_x = dir.join("not-executable.sh");
    std::fs::write(&no_x, "#!/bin/sh\n").expect("write");
    let no_x = no_x.to_str().expect("utf8");
    for (args, code) in [
        (vec!["--", "no-such-command-vardr"], 127),
        (vec!["--", no_x], 126),
    ] {
        let mut all = vec!["--dry-run", "--json"];
        all.extend(&args);
        let run = finish(world.command(Mode::Subreaper, &example("basic"), &all));
        run.assert_code(2, &format!("dry run of {args:?}"));
        assert!(
            run.stdout.starts_with(r#"{"type":"plan","#),
            "type first: {}",
            run.stdout
        );
        let plan: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("JSON");
        assert_eq!(plan["would_start"], false, "{plan:#}");
        assert_eq!(plan["exit_code"], code, "{plan:#}");
        let errors = plan["errors"].to_string();
        assert!(errors.contains(&format!("a run exits {code}")), "{errors}");
        // And the run does exit so.
        let run = finish(world.command(Mode::Subreaper, &example("basic"), &args));
        run.assert_code(code, &format!("run of {args:?}"));
    }
    let run = finish(world.command(
        Mode::Subreaper,
        &example("basic"),
        &["--dry-run", "--", "/bin/true"],
    ));
    run.assert_code(0, "a command that can start");
}
