//! Strict mode (`VARDR_CERTS_STRICT=true`): a rejected file or an unwritable bundle directory is
//! exit 2 with nothing written and nothing started, the dry run foresees the refusal, and without
//! strict mode the same unwritable directory is a warning and a start on the system trust.
//! The behaviour pinned here is the Certificates section of the contract (docs/contract.md).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::certs::{Env, vardr_on};
use common::pki::{self, Ca};
use common::{bin, finish, summary};
use serde_json::Value;

#[test]
fn strict_mode_exits_2_and_writes_nothing() {
    let env = Env::new();
    fs::write(
        env.certs.join("good.pem"),
        Ca::new("strict good").cert.pem(),
    )
    .expect("write");
    fs::write(
        env.certs.join("bad.pem"),
        Ca::new("strict").leaf("strict leaf").pem(),
    )
    .expect("write");
    let strict = |value: &str| {
        let mut command = env.command(false);
        command.env("VARDR_CERTS_STRICT", value);
        finish(command)
    };

    let run = strict("true");
    run.assert_code(2, "strict mode with a rejected file");
    assert!(
        run.stderr.contains("bad.pem"),
        "the rejected file is named: {}",
        run.describe()
    );
    assert!(!env.bundle.exists(), "strict failure wrote a bundle");
    assert!(!env.cache().exists(), "strict failure wrote the cache");

    // An earlier bundle stays as it was.
    fs::write(&env.bundle, "old bundle\n").expect("write");
    strict("true").assert_code(2, "strict mode, existing bundle");
    assert_eq!(fs::read(&env.bundle).expect("read"), b"old bundle\n");
    assert!(!env.cache().exists(), "strict failure wrote the cache");

    // Without the bad file, strict mode builds.
    fs::remove_file(env.certs.join("bad.pem")).expect("rm");
    let run = strict("true");
    run.assert_code(0, "strict mode, all accepted");
    assert_eq!(summary(&run, "strict ok")["action"], "built");
}

#[test]
fn strict_mode_stops_a_supervised_run_before_the_command() {
    let env = Env::new();
    fs::write(env.certs.join("empty.pem"), "").expect("write");
    let marker = env.root.join("started");
    let mut command = Command::new(bin());
    command.args(["--", "touch"]).arg(&marker);
    pki::scrub(&mut command)
        .env("VARDR_CERTS_DIR", &env.certs)
        .env("VARDR_CA_BUNDLE", &env.bundle)
        .env("VARDR_SYSTEM_CA_BUNDLE", &env.system)
        .env("VARDR_CERTS_STRICT", "true");
    finish(command).assert_code(2, "supervised run, strict, rejected file");
    assert!(!marker.exists(), "the command ran despite strict mode");
    assert!(!env.bundle.exists());
}

/// Strict mode and an unwritable bundle directory: the dry run foresees the refusal the run
/// makes, and the run reports its summary as failed before stopping.
#[test]
fn strict_mode_with_an_unwritable_bundle_dir_is_refused_by_dry_run_and_run_alike() {
    let env = Env::new();
    fs::write(
        env.certs.join("ca.pem"),
        Ca::new("strict unwritable").cert.pem(),
    )
    .expect("write");
    let bundle = Path::new("/proc/nonexistent/bundle.pem");
    let strict = [
        ("VARDR_CERTS_STRICT", Path::new("true")),
        ("VARDR_CA_BUNDLE", bundle),
    ];
    let dry = vardr_on(&env, &["--dry-run", "--json", "--", "true"], &strict);
    dry.assert_code(2, "dry run in strict mode");
    let plan: Value = serde_json::from_str(&dry.stdout).expect("plan JSON");
    assert_eq!(plan["would_start"], false, "{plan}");
    assert!(
        plan["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("/proc/nonexistent")),
        "{plan}"
    );

    let json = [("VARDR_JSON_LOGS", Path::new("true"))];
    let vars: Vec<_> = strict.iter().chain(&json).copied().collect();
    let run = vardr_on(&env, &["--", "sh", "-c", "echo started"], &vars);
    run.assert_code(2, "strict run");
    assert!(!run.stdout.contains("started"), "{}", run.describe());
    let summaries: Vec<Value> = run
        .stderr
        .lines()
        .filter(|l| l.contains("certificate_import_summary"))
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(summaries.len(), 1, "{}", run.describe());
    assert_eq!(summaries[0]["action"], "failed");

    // Without strict mode: a warning in the plan, and the service starts on the system trust.
    let lax = [("VARDR_CA_BUNDLE", bundle)];
    let dry = vardr_on(&env, &["--dry-run", "--json", "--", "true"], &lax);
    dry.assert_code(0, "dry run, not strict");
    let plan: Value = serde_json::from_str(&dry.stdout).expect("plan JSON");
    assert!(plan["bundle_problem"].is_string(), "{plan}");
    assert_eq!(plan["environment"], serde_json::json!({}), "{plan}");
    let run = vardr_on(
        &env,
        &["--", "sh", "-c", "echo ${SSL_CERT_FILE-unset}"],
        &lax,
    );
    run.assert_code(0, "run, not strict");
    assert_eq!(run.stdout.trim(), "unset", "{}", run.describe());
}

/// A system bundle that cannot be used (here: a typo in `VARDR_SYSTEM_CA_BUNDLE`) would leave a
/// bundle trusting only the custom CAs, and every public TLS site failing: strict mode stops
/// there, in `certs`, a run and the dry run alike; without strict mode it is a warning.
#[test]
fn strict_mode_stops_when_the_system_bundle_cannot_be_used() {
    let env = Env::new();
    fs::write(
        env.certs.join("ca.pem"),
        Ca::new("strict, no system bundle").cert.pem(),
    )
    .expect("write");
    let typo = env.root.join("sytem.pem");
    let vars = |strict: &'static str| {
        [
            ("VARDR_SYSTEM_CA_BUNDLE", typo.clone()),
            ("VARDR_CERTS_STRICT", strict.into()),
        ]
    };
    let on = |args: &[&str], strict: &'static str| {
        let vars = vars(strict);
        let vars: Vec<(&str, &Path)> = vars.iter().map(|(n, v)| (*n, v.as_path())).collect();
        vardr_on(&env, args, &vars)
    };
    let certs = on(&["certs", "--json"], "true");
    certs.assert_code(2, "certs, strict, no system bundle");
    assert!(!env.bundle.exists(), "nothing written");
    assert!(
        certs.stderr.contains("system CA bundle cannot be used"),
        "{}",
        certs.describe()
    );
    on(&["--", "true"], "true").assert_code(2, "run, strict, no system bundle");
    let dry = on(&["--dry-run", "--json"], "true");
    dry.assert_code(2, "dry run, strict, no system bundle");
    let plan: Value = serde_json::from_str(dry.stdout.trim()).expect("plan");
    assert_eq!(plan["would_start"], false, "{plan:#}");
    on(&["--", "true"], "false").assert_code(0, "without strict mode: a warning");
}
