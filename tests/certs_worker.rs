//! The certificate pass runs in a short-lived worker process: PID 1 opens nothing under the
//! certificates directory and parses no certificate byte. Shown with strace's fault injection:
//! a fatal signal delivered to whichever process opens a certificate file kills the worker, never
//! PID 1. (SIGSYS, what a seccomp violation raises: Rust's own SIGSEGV handler would let an
//! injected SIGSEGV pass, and PID 1's forwarded signals, SIGABRT among them, are blocked in the
//! worker it forks.) The failure is said, the service starts on the system trust (strict mode: exit 2),
//! `certs` exits 1, and no bundle is written.

mod common;

use std::ffi::OsString;
use std::fs;
use std::process::Command;

use common::certs::{Env, PRINT_EXPORT};
use common::pki::{self, Ca};
use common::{finish, summary};

/// `vardr-init ARGS` under strace, SIGSYS delivered at any `openat` of `ca.pem`, in any process
/// of vardr-init's tree (`-f`).
fn crash_on_open(env: &Env, args: &[&str], strict: bool) -> common::Finished {
    let mut command = Command::new("strace");
    command
        .args(["-f", "-qq", "-o", "/dev/null", "-P"])
        .arg(env.certs.join("ca.pem"))
        .args(["-e", "trace=openat", "-e", "inject=openat:signal=SIGSYS"])
        .arg(common::bin())
        .args(args.iter().map(OsString::from));
    pki::scrub(&mut command)
        .env("VARDR_CERTS_DIR", &env.certs)
        .env("VARDR_CA_BUNDLE", &env.bundle)
        .env("VARDR_SYSTEM_CA_BUNDLE", &env.system)
        .env("VARDR_CERTS_STRICT", if strict { "true" } else { "false" });
    finish(command)
}

#[test]
fn a_crash_while_reading_the_certificates_kills_the_worker_not_pid_1() {
    if !common::strace_available() {
        return;
    }
    let env = Env::new();
    fs::write(env.certs.join("ca.pem"), Ca::new("crash").cert.pem()).expect("write");

    let certs = crash_on_open(&env, &["certs", "--json"], false);
    certs.assert_code(1, "certs with a crashing worker");
    assert!(
        certs.stderr.contains("certificate worker") && certs.stderr.contains("SIGSYS"),
        "the crash is said: {}",
        certs.describe()
    );
    assert_eq!(summary(&certs, "crashed worker")["action"], "failed");
    assert!(!env.bundle.exists(), "no bundle written");

    let run = crash_on_open(&env, &PRINT_EXPORT, false);
    run.assert_code(0, "a run with a crashing worker starts on the system trust");
    assert_eq!(
        run.stdout.trim(),
        "[]",
        "nothing exported: {}",
        run.describe()
    );
    assert!(
        run.stderr
            .contains("the service starts with the system trust only"),
        "{}",
        run.describe()
    );

    let strict = crash_on_open(&env, &["--", "true"], true);
    strict.assert_code(2, "strict mode with a crashing worker");
    assert!(!env.bundle.exists(), "no bundle written");
}
