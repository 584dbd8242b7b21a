//! The contract's surface on the real binary: command line, configuration errors, log formats.

mod common;

use std::process::{Command, Output};

use common::{Mode, bin, command, python_script, run};

fn vardr(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run vardr-init")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_and_version_go_to_stdout_with_exit_0_even_with_a_bad_environment() {
    let bad_env = [("WORKERS", "abc")];
    let help = vardr(&["--help"], &bad_env);
    assert_eq!(help.status.code(), Some(0));
    let help_text = text(&help.stdout);
    for needle in [
        "usage: vardr-init",
        "VARDR_STOP_TIMEOUT",
        "VARDR_JSON_LOGS",
        "127",
    ] {
        assert!(
            help_text.contains(needle),
            "--help lacks {needle}: {help_text}"
        );
    }
    let version = vardr(&["--version"], &bad_env);
    assert_eq!(version.status.code(), Some(0));
    assert_version_line(&text(&version.stdout));
}

/// `vardr-init VERSION (commit COMMIT, TARGET)`: the commit is the checkout's HEAD (12 hex digits)
/// when git can tell, and the target a Linux triple (the binary under test may be arm64).
fn assert_version_line(line: &str) {
    let prefix = format!("vardr-init {} (commit ", env!("CARGO_PKG_VERSION"));
    let rest = line
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("--version is not `{prefix}COMMIT, TARGET)`: {line:?}"));
    let (commit, target) = rest
        .split_once(", ")
        .unwrap_or_else(|| panic!("--version lacks `COMMIT, TARGET`: {line:?}"));
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_owned());
    match head {
        Some(head) => assert_eq!(commit, &head[..12], "--version names HEAD: {line:?}"),
        None => assert!(
            commit == "unknown" || commit.len() == 12,
            "commit: {line:?}"
        ),
    }
    assert!(
        ["x86_64-", "aarch64-"]
            .iter()
            .any(|a| target.starts_with(a))
            && target.contains("-linux-"),
        "target: {line:?}"
    );
}

#[test]
fn bad_usage_exits_2_with_the_usage_line_and_starts_nothing() {
    let marker = std::env::temp_dir().join(format!("vardr-usage-{}", std::process::id()));
    let touch = format!("touch {}", marker.display());
    for args in [
        vec!["--frobnicate"],
        vec!["--help=please"],
        vec!["--"],
        vec!["sh", "-c", touch.as_str()],
        vec!["--bogus", "--", "sh", "-c", touch.as_str()],
    ] {
        let output = vardr(&args, &[]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: vardr-init"), "{args:?}: {stderr}");
        assert!(!marker.exists(), "{args:?} started the command");
    }
}

#[test]
fn bad_environment_exits_2_naming_every_variable_and_starts_nothing() {
    let marker = std::env::temp_dir().join(format!("vardr-config-{}", std::process::id()));
    let touch = format!("touch {}", marker.display());
    let cases: [&[(&str, &str)]; 4] = [
        &[("WORKERS", "abc")],
        &[("VARDR_STOP_TIMEOUT", "-1")],
        &[("PORT", "70000"), ("VARDR_LOG_LEVEL", "verbose")],
        &[("VARDR_JSON_LOGS", "sometimes")],
    ];
    for env in cases {
        let output = vardr(&["--", "sh", "-c", &touch], env);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{env:?}: {stderr}");
        for (name, value) in env {
            assert!(
                stderr.contains(&format!("{name}=\"{value}\"")) && stderr.contains("expected"),
                "{env:?}: the message names {name}, its value and the allowed form: {stderr}"
            );
        }
        assert!(!marker.exists(), "{env:?} started the command");
    }
}

/// Issue 24, item 7: values that used to be read as something else (a tiny duration as off, a
/// signed or huge count, an option as a host, python3.08 as python3.8) are exit 2 in a dry run.
#[test]
fn values_that_were_misread_are_exit_2_in_a_dry_run() {
    for (name, value) in [
        ("VARDR_STOP_TIMEOUT", "0.0000000001"),
        ("VARDR_CERTS_RECHECK", "0.0000000001"),
        ("VARDR_STOP_DELAY", "0.0000000001"),
        ("VARDR_PRESTART_TIMEOUT", "0.0000000001"),
        ("VARDR_CERTS_DEBOUNCE", "0.0000000001"),
        ("PORT", "+5"),
        ("WORKERS", "+5"),
        ("WORKERS", "86401"),
        ("WEB_CONCURRENCY", "86401"),
        ("HOST", "--reload"),
        ("VARDR_TLS_PROFILE", "python3.08"),
    ] {
        let output = vardr(&["--dry-run", "--", "true"], &[(name, value)]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}={value}: {stderr}");
        assert!(
            stderr.contains(&format!("{name}=\"{value}\"")) && stderr.contains("expected"),
            "{name}={value}: the message names the variable, its value and the form: {stderr}"
        );
    }
}

fn assert_contract_json(line: &str) -> serde_json::Value {
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
    let object = value.as_object().expect("a JSON object");
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut expected = ["type", "timestamp", "level", "message"];
    expected.sort_unstable();
    assert_eq!(keys, expected, "exactly the contract's keys: {line}");
    assert_eq!(value["type"], "log");
    assert!(["ERROR", "WARN", "INFO", "DEBUG"].contains(&value["level"].as_str().expect("level")));
    let timestamp = value["timestamp"].as_str().expect("timestamp");
    let shape = timestamp.len() == 20
        && timestamp.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == 'T',
            13 | 16 => c == ':',
            19 => c == 'Z',
            _ => c.is_ascii_digit(),
        });
    assert!(shape, "RFC 3339 UTC to the second: {timestamp}");
    assert!(value["message"].is_string());
    value
}

#[test]
fn json_logs_every_stderr_line_is_a_contract_object() {
    // A run that logs at every level: start, forwarded signal, deadline, SIGKILL, exit; and an
    // argument with a quote, a backslash and a newline that must stay inside one JSON string.
    let mut args = python_script("ignore_term.py");
    args.push("quote\" back\\slash\nnewline".to_owned());
    let mut command = command(Mode::Subreaper, &args);
    command.envs([
        ("VARDR_JSON_LOGS", "true"),
        ("VARDR_LOG_LEVEL", "debug"),
        ("VARDR_STOP_TIMEOUT", "0.2"),
    ]);
    let (running, _, _) = common::start_ignoring_term(command, Mode::Subreaper);
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(137), "{stderr:#?}");
    // Every line is a log object, except the one certificate summary of the start-up.
    let (summaries, logs): (Vec<&String>, Vec<&String>) = stderr
        .iter()
        .partition(|line| line.contains(r#""type":"certificate_import_summary""#));
    assert_eq!(summaries.len(), 1, "{stderr:#?}");
    let summary: serde_json::Value = serde_json::from_str(summaries[0]).expect("JSON");
    assert_eq!(summary["action"], "none", "no certificates in this run");
    let values: Vec<_> = logs.iter().map(|line| assert_contract_json(line)).collect();
    let levels: Vec<&str> = values.iter().filter_map(|v| v["level"].as_str()).collect();
    for level in ["DEBUG", "INFO", "WARN"] {
        assert!(
            levels.contains(&level),
            "expected a {level} line: {stderr:#?}"
        );
    }
    assert!(
        values
            .iter()
            .any(|v| v["message"].as_str().is_some_and(|m| m.contains("newline"))),
        "{stderr:#?}"
    );

    // A configuration error and a usage error, both reported in JSON.
    for output in [
        vardr(
            &["--", "true"],
            &[("VARDR_JSON_LOGS", "true"), ("WORKERS", "abc")],
        ),
        vardr(&["--nope"], &[("VARDR_JSON_LOGS", "1")]),
    ] {
        assert_eq!(output.status.code(), Some(2));
        let stderr = text(&output.stderr);
        assert!(!stderr.is_empty());
        for line in stderr.lines() {
            assert_eq!(assert_contract_json(line)["level"], "ERROR", "{line}");
        }
    }
}

#[test]
fn text_logs_are_prefixed_and_the_level_filters_them() {
    let (status, stderr) = run(Mode::Subreaper, &["sh", "-c", "exit 3"], &[]);
    assert_eq!(status.code(), Some(3));
    assert!(!stderr.is_empty());
    for line in &stderr {
        assert!(line.starts_with("[Vardr] "), "{line}");
    }
    let (status, stderr) = run(
        Mode::Subreaper,
        &["sh", "-c", "exit 0"],
        &[("VARDR_LOG_LEVEL", "error")],
    );
    assert_eq!(status.code(), Some(0));
    assert!(
        stderr.is_empty(),
        "an error-level run that succeeds is silent: {stderr:#?}"
    );
    let (_, stderr) = run(Mode::Subreaper, &["true"], &[("VARDR_LOG_LEVEL", "debug")]);
    assert!(
        stderr.iter().any(|l| l.starts_with("[Vardr] DEBUG: ")),
        "debug lines are marked: {stderr:#?}"
    );
}

#[test]
fn certificate_summary_keys_come_in_the_contracts_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    std::fs::write(certs.join("bad.pem"), "not a certificate\n").expect("write");
    let bundle = dir.path().join("bundle.pem");
    let env = [
        ("VARDR_CERTS_DIR", certs.to_str().expect("utf-8")),
        ("VARDR_CA_BUNDLE", bundle.to_str().expect("utf-8")),
    ];
    let output = vardr(&["certs", "--json"], &env);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let line = text(&output.stdout);
    let positions: Vec<usize> = [
        "\"type\":\"certificate_import_summary\"",
        "\"timestamp\":",
        "\"successful_imports\":0",
        "\"failed_imports\":1",
        "\"total_certificates\":0",
        "\"results\":{\"bad.pem\":\"FAILED: no certificate found",
    ]
    .iter()
    .map(|key| {
        line.find(key)
            .unwrap_or_else(|| panic!("{key} missing: {line}"))
    })
    .collect();
    assert!(positions.is_sorted(), "keys out of order: {line}");
    assert!(
        line.starts_with('{') && line.ends_with("}\n"),
        "one line: {line}"
    );
    assert!(!bundle.exists(), "no accepted CA, so no bundle");
}

#[test]
fn a_full_stdout_is_exit_1_with_a_message_not_a_panic() {
    for args in [
        &["--help"][..],
        &["--version"],
        &["--dry-run", "--", "true"],
    ] {
        let full = std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let output = Command::new(bin())
            .args(args)
            .env("VARDR_CERTS_DIR", "/nonexistent/vardr-test-certs")
            .stdout(full)
            .output()
            .expect("run vardr-init");
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot write to stdout"),
            "{args:?}: {stderr}"
        );
    }
}
