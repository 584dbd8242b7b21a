//! The bundle `vardr-init certs` writes: the system bundle first byte for byte and loadable by
//! Python's ssl and OpenSSL; which file is the system bundle, and what happens when it lacks a
//! final newline or is missing; how it is written (replaced by rename, never through a planted
//! symlink, mode 0644 whatever the umask) and where (a read-only root with only /tmp writable, an
//! unwritable directory); and the variables naming an old bundle, removed when none is exported.
//! The behaviour pinned here is the Certificates section of the contract (docs/contract.md).

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use common::certs::{Env, make_dir, system_fixture, vardr_on};
use common::pki::{self, Ca, Cert};
use common::{bin, finish, summary};
use serde_json::Value;

/// The machine's real system bundle: it comes first byte for byte, and the result loads in
/// Python's ssl (system + custom CAs) and in `openssl storeutl`.
#[test]
fn bundle_loads_in_python_ssl_and_openssl_with_the_expected_count() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let system = Path::new("/etc/ssl/certs/ca-certificates.crt");
    let system_bytes = fs::read(system).unwrap_or_else(|_| pki::system_bundle(40).0);
    let env = Env::with_system(system_bytes);
    let customs: Vec<Cert> = (0..3)
        .map(|i| Ca::new(&format!("python sees {i}")).cert)
        .collect();
    for (i, ca) in customs.iter().enumerate() {
        fs::write(env.certs.join(format!("ca{i}.pem")), ca.pem()).expect("write");
    }
    let run = env.run();
    run.assert_code(0, "certs");
    let ders: Vec<Vec<u8>> = customs.iter().map(|c| c.der.clone()).collect();
    let bytes = pki::assert_bundle(&env.bundle, &env.system_bytes, &ders, "real system bundle");
    let summary = summary(&run, "real system bundle");
    assert_eq!(
        summary["system_certificates"].as_u64(),
        Some(env.system_ders.len() as u64)
    );

    let in_bundle = pki::certificates_in(&bytes).len();
    assert_eq!(in_bundle, env.system_ders.len() + 3);
    assert_eq!(
        pki::storeutl_count(&env.bundle),
        in_bundle,
        "openssl storeutl"
    );
    let mut command = Command::new(python);
    command.args([
        "-c",
        "import ssl, sys; print(len(ssl.create_default_context(cafile=sys.argv[1]).get_ca_certs()))",
    ]);
    command.arg(&env.bundle);
    pki::scrub(&mut command);
    let output = finish(command);
    output.assert_code(0, "python ssl");
    let unique_system = pki::unique(&env.system_ders).len();
    assert_eq!(
        output.stdout.trim(),
        (unique_system + 3).to_string(),
        "Python's ssl loads every system CA and the 3 custom ones"
    );
}

#[test]
fn system_bundle_without_a_final_newline_gets_one() {
    let (mut system, _) = pki::system_bundle(2);
    while system.last() == Some(&b'\n') {
        system.pop();
    }
    let env = Env::with_system(system);
    let ca = Ca::new("after a newline-less system bundle").cert;
    fs::write(env.certs.join("ca.pem"), ca.pem()).expect("write");
    env.run().assert_code(0, "certs");
    pki::assert_bundle(
        &env.bundle,
        &env.system_bytes,
        &[ca.der],
        "newline-less system bundle",
    );
}

#[test]
fn missing_system_bundle_warns_and_the_bundle_holds_only_the_custom_cas() {
    let env = Env::new();
    let ca = Ca::new("alone").cert;
    fs::write(env.certs.join("ca.pem"), ca.pem()).expect("write");
    let missing = env.root.join("no-such-bundle.pem");
    let mut command = env.command(false);
    command.env("VARDR_SYSTEM_CA_BUNDLE", &missing);
    let run = finish(command);
    run.assert_code(0, "missing system bundle");
    let lines = run.stderr_lines();
    assert!(
        lines.iter().any(|l| l.starts_with("[Vardr] WARN:")
            && l.contains(missing.to_str().expect("UTF-8"))),
        "a warning names the missing system bundle: {lines:#?}"
    );
    let summary = summary(&run, "missing system bundle");
    assert!(summary["system_bundle"].is_null(), "{summary}");
    assert_eq!(summary["system_certificates"], 0, "{summary}");
    assert_eq!(summary["action"], "built", "{summary}");
    pki::assert_bundle(&env.bundle, b"", &[ca.der], "no system bundle");
}

#[test]
fn a_symlink_at_the_bundle_path_is_replaced_and_its_target_untouched() {
    let env = Env::new();
    let ca = Ca::new("behind a planted symlink").cert;
    fs::write(env.certs.join("ca.pem"), ca.pem()).expect("write");
    let victim = env.root.join("victim.txt");
    fs::write(&victim, "precious\n").expect("write");
    symlink(&victim, &env.bundle).expect("plant the symlink");
    env.run().assert_code(0, "certs over a symlink");
    assert_eq!(
        fs::read(&victim).expect("victim"),
        b"precious\n",
        "written through the symlink"
    );
    assert!(fs::symlink_metadata(&env.bundle).expect("stat").is_file());
    pki::assert_bundle(
        &env.bundle,
        &env.system_bytes,
        &[ca.der],
        "replaced symlink",
    );
}

/// The bundle is replaced by rename, never rewritten in place, even when another user owns the
/// old one: a hard link to the old file keeps the old bytes.
#[test]
fn an_existing_bundle_is_replaced_not_written_in_place() {
    let env = Env::new();
    let ca = Ca::new("replaces an old bundle").cert;
    fs::write(env.certs.join("ca.pem"), ca.pem()).expect("write");
    fs::write(&env.bundle, "someone else's file\n").expect("write");
    fs::set_permissions(&env.bundle, fs::Permissions::from_mode(0o666)).expect("chmod");
    if vardr_init::sys::geteuid() == 0 {
        std::os::unix::fs::chown(&env.bundle, Some(1234), Some(1234)).expect("chown");
    }
    let link = env.root.join("hard-link.txt");
    fs::hard_link(&env.bundle, &link).expect("hard link");
    env.run().assert_code(0, "certs over an existing file");
    assert_eq!(fs::read(&link).expect("link"), b"someone else's file\n");
    pki::assert_bundle(&env.bundle, &env.system_bytes, &[ca.der], "replaced file");
}

#[test]
fn bundle_mode_is_0644_whatever_the_umask() {
    let env = Env::new();
    let ca = Ca::new("under umask 077").cert;
    fs::write(env.certs.join("ca.pem"), ca.pem()).expect("write");
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 077 && exec \"$0\" certs --json"])
        .arg(bin());
    pki::scrub(&mut command)
        .env("VARDR_CERTS_DIR", &env.certs)
        .env("VARDR_CA_BUNDLE", &env.bundle)
        .env("VARDR_SYSTEM_CA_BUNDLE", &env.system);
    finish(command).assert_code(0, "certs under umask 077");
    pki::assert_bundle(&env.bundle, &env.system_bytes, &[ca.der], "umask 077");
}

/// `SSL_CERT_FILE` set by the user is the system bundle; set to our own bundle path (an image
/// that exports it), it is not, or every run would nest the last bundle inside the next.
#[test]
fn ssl_cert_file_is_the_system_bundle_unless_it_is_our_own() {
    let env = Env::new();
    let ca = Ca::new("with SSL_CERT_FILE").cert;
    fs::write(env.certs.join("ca.pem"), ca.pem()).expect("write");
    let auto = |ssl_cert_file: &Path| {
        let mut command = env.command(false);
        command
            .env_remove("VARDR_SYSTEM_CA_BUNDLE")
            .env("SSL_CERT_FILE", ssl_cert_file);
        let run = finish(command);
        run.assert_code(0, "certs with SSL_CERT_FILE");
        summary(&run, "SSL_CERT_FILE")
    };

    let user = auto(&env.system);
    assert_eq!(
        user["system_bundle"].as_str(),
        env.system.to_str(),
        "{user}"
    );
    pki::assert_bundle(
        &env.bundle,
        &env.system_bytes,
        std::slice::from_ref(&ca.der),
        "user's SSL_CERT_FILE",
    );

    let mut seen = Vec::new();
    for round in 0..2 {
        // A new CA each round, so the bundle is rebuilt.
        let next = Ca::new(&format!("round {round}")).cert;
        fs::write(env.certs.join(format!("round{round}.pem")), next.pem()).expect("write");
        seen.push(next);
        let own = auto(&env.bundle);
        assert_ne!(
            own["system_bundle"].as_str(),
            env.bundle.to_str(),
            "our own bundle taken as the system bundle: {own}"
        );
        let bytes = fs::read(&env.bundle).expect("bundle");
        let count = pki::certificates_in(&bytes).len() as u64;
        let system = own["system_certificates"].as_u64().unwrap_or(u64::MAX);
        assert_eq!(
            count,
            system + 2 + round,
            "round {round}: system + custom CAs, nothing nested: {own}"
        );
    }
}

/// A read-only root with only /tmp writable, as uid 65532 (bwrap): `certs` builds the default
/// bundle path, a cache hit works, and a supervised child gets the variables.
#[test]
fn read_only_root_as_uid_65532_with_only_tmp_writable() {
    if !common::bwrap_available() {
        return;
    }
    // Under target/, visible through the read-only root; the host's /tmp is hidden.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let env = Env::in_dir(dir, system_fixture().0.clone());
    let ca = Ca::new("read-only root").cert;
    fs::write(env.certs.join("ca.pem"), ca.pem()).expect("write");
    let tmp = env.root.join("tmp");
    make_dir(&tmp);
    let sandboxed = |args: &[&str]| {
        let mut command = common::bwrap_read_only_root(&tmp);
        command.arg(bin()).args(args);
        pki::scrub(&mut command)
            .env("VARDR_CERTS_DIR", &env.certs)
            .env("VARDR_SYSTEM_CA_BUNDLE", &env.system);
        command
    };

    let run = finish(sandboxed(&["certs", "--json"]));
    run.assert_code(0, "certs on a read-only root");
    let first = summary(&run, "read-only root");
    assert_eq!(first["action"], "built", "{first}");
    assert_eq!(first["bundle"], "/tmp/custom_ca_bundle.pem", "{first}");
    pki::assert_bundle(
        &tmp.join("custom_ca_bundle.pem"),
        &env.system_bytes,
        &[ca.der],
        "read-only root",
    );

    let run = finish(sandboxed(&["certs", "--json"]));
    run.assert_code(0, "second run on a read-only root");
    assert_eq!(summary(&run, "second run")["action"], "reused");

    let script =
        "id -u; printf '%s\\n' \"$SSL_CERT_FILE\" \"$REQUESTS_CA_BUNDLE\" \"$CURL_CA_BUNDLE\"";
    let run = finish(sandboxed(&["--", "sh", "-c", script]));
    run.assert_code(0, "supervised run on a read-only root");
    let bundle = "/tmp/custom_ca_bundle.pem";
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        ["65532", bundle, bundle, bundle],
        "{}",
        run.describe()
    );

    // A target on the read-only part: exit 1, and the message says where and why.
    let mut command = sandboxed(&["certs", "--json"]);
    command.env("VARDR_CA_BUNDLE", "/usr/local/custom_ca_bundle.pem");
    let run = finish(command);
    run.assert_code(1, "bundle on a read-only file system");
    assert!(
        run.stderr.contains("/usr/local") && run.stderr.to_lowercase().contains("read-only"),
        "the error names the place and the cause: {}",
        run.describe()
    );
}

#[test]
fn an_unwritable_bundle_directory_exits_1_with_a_clear_message() {
    if !common::switch_users() {
        return;
    }
    let env = Env::new();
    fs::write(
        env.certs.join("ca.pem"),
        Ca::new("cannot be written").cert.pem(),
    )
    .expect("write");
    let locked = env.root.join("locked");
    make_dir(&locked);
    let bundle = locked.join("bundle.pem");
    let mut command = common::as_nonroot(bin());
    command.args(["certs", "--json"]);
    pki::scrub(&mut command)
        .env("VARDR_CERTS_DIR", &env.certs)
        .env("VARDR_CA_BUNDLE", &bundle)
        .env("VARDR_SYSTEM_CA_BUNDLE", &env.system);
    let run = finish(command);
    run.assert_code(1, "unwritable bundle directory");
    assert!(
        run.stderr_lines().iter().any(|l| l.contains("ERROR")
            && l.contains(locked.to_str().expect("UTF-8"))
            && l.to_lowercase().contains("permission denied")),
        "an ERROR line names the directory and the cause: {}",
        run.describe()
    );
    let summary = summary(&run, "unwritable");
    assert_eq!(summary["action"], "failed", "{summary}");
    assert!(fs::read_dir(&locked).expect("ls").next().is_none());
}

/// A Dockerfile's `ENV SSL_CERT_FILE=/tmp/custom_ca_bundle.pem` must not keep the child on an old
/// bundle once the CA it held is removed from the certs directory.
#[test]
fn a_variable_naming_an_old_bundle_is_removed_when_no_bundle_is_exported() {
    let env = Env::new();
    fs::write(
        env.certs.join("ca.pem"),
        Ca::new("removed later").cert.pem(),
    )
    .expect("write");
    env.run().assert_code(0, "first pass builds the bundle");
    assert!(env.bundle.is_file());
    fs::remove_file(env.certs.join("ca.pem")).expect("rm");
    let print = "printf '%s|%s|%s\\n' \"${SSL_CERT_FILE-unset}\" \"${REQUESTS_CA_BUNDLE-unset}\" \"${CURL_CA_BUNDLE-unset}\"";
    let vars = [
        ("SSL_CERT_FILE", env.bundle.as_path()),
        ("REQUESTS_CA_BUNDLE", env.bundle.as_path()),
        ("CURL_CA_BUNDLE", Path::new("/elsewhere.pem")),
    ];
    let run = vardr_on(&env, &["--", "sh", "-c", print], &vars);
    run.assert_code(0, "supervised run with no custom CA left");
    assert_eq!(
        run.stdout.trim(),
        "unset|unset|/elsewhere.pem",
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("removed from the child's environment"),
        "{}",
        run.describe()
    );
    // The dry run says the same.
    let plan = vardr_on(&env, &["--dry-run", "--json", "--", "true"], &vars);
    let plan: Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    assert_eq!(
        plan["unset"],
        serde_json::json!(["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
    );
}
