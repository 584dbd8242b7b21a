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
