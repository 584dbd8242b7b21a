//! The import summary: the text summary of `vardr-init certs` without `--json`, and with JSON logs
//! one `certificate_import_summary` object per pass among the log lines.
//! The behaviour pinned here is the Certificates section of the contract (docs/contract.md).

mod common;

use std::fs;
use std::process::Command;

use common::certs::Env;
use common::pki::{self, Ca};
use common::{bin, finish};
use serde_json::Value;

#[test]
fn text_summary_without_json() {
    let env = Env::new();
    fs::write(env.certs.join("ca.pem"), Ca::new("text summary").cert.pem()).expect("write");
    let mut command = Command::new(bin());
    command.arg("certs");
    pki::scrub(&mut command)
        .env("VARDR_CERTS_DIR", &env.certs)
        .env("VARDR_CA_BUNDLE", &env.bundle)
        .env("VARDR_SYSTEM_CA_BUNDLE", &env.system);
    let run = finish(command);
    run.assert_code(0, "certs without --json");
    assert!(
        !run.stdout.trim().is_empty(),
        "the summary goes to stdout: {}",
        run.describe()
    );
    assert!(env.bundle.is_file(), "the bundle was built");
}

/// With JSON logs, a supervised run logs one certificate_import_summary object among its lines.
#[test]
fn json_logs_carry_one_import_summary_per_pass() {
    let env = Env::new();
    fs::write(env.certs.join("good.pem"), Ca::new("json good").cert.pem()).expect("write");
    fs::write(env.certs.join("bad.pem"), "not a certificate\n").expect("write");
    let mut command = Command::new(bin());
    command.args(["--", "true"]);
    pki::scrub(&mut command)
        .env("VARDR_CERTS_DIR", &env.certs)
        .env("VARDR_CA_BUNDLE", &env.bundle)
        .env("VARDR_SYSTEM_CA_BUNDLE", &env.system)
        .env("VARDR_JSON_LOGS", "true");
    let run = finish(command);
    run.assert_code(0, "supervised run with JSON logs");
    let values: Vec<Value> = run
        .stderr_lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    let summaries: Vec<&Value> = values
        .iter()
        .filter(|v| v["type"] == "certificate_import_summary")
        .collect();
    assert_eq!(summaries.len(), 1, "{}", run.stderr);
    let summary = summaries[0];
    assert_eq!(summary["successful_imports"], 1, "{summary}");
    assert_eq!(summary["failed_imports"], 1, "{summary}");
    assert_eq!(summary["total_certificates"], 1, "{summary}");
    assert_eq!(summary["results"]["good.pem"], "SUCCESS", "{summary}");
    assert!(
        summary["results"]["bad.pem"]
            .as_str()
            .is_some_and(|r| r.starts_with("FAILED: ")),
        "{summary}"
    );
    for value in &values {
        assert!(
            value["type"] == "log" || value["type"] == "certificate_import_summary",
            "{value}"
        );
    }
}
