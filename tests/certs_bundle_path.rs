//! Where the bundle may go: `VARDR_CA_BUNDLE` must be absent or a regular file (or a symlink,
//! replaced and never followed) this user may replace, and never a system bundle. For each path
//! that may not take it, the dry run foresees what a run does: the problem is named, the run
//! starts on the system trust with nothing exported (strict mode: exit 2), `certs` exits 1, and
//! the path is left exactly as it was. Also: a relative path is exported absolute, and a bundle
//! directory anyone may write without the sticky bit is warned about.
//! The behaviour pinned here is the Certificates section of the contract (docs/contract.md).

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::certs::{Env, PRINT_EXPORT, vardr_on};
use common::pki::{self, Ca};
use common::{bin, finish, skip_outside_ci};
use serde_json::Value;

/// What is at `path`, in a word, without following a symlink.
fn what_is(path: &Path) -> String {
    match fs::symlink_metadata(path) {
        Err(_) => "absent".into(),
        Ok(m) if m.file_type().is_symlink() => {
            format!("symlink to {:?}", fs::read_link(path).expect("readlink"))
        }
        Ok(m) if m.is_dir() => "directory".into(),
        Ok(m) if m.file_type().is_fifo() => "fifo".into(),
        Ok(m) if m.file_type().is_char_device() => format!("char device {}", m.len()),
        Ok(_) => format!("file {:?}", fs::read(path).expect("read")),
    }
}

fn plan(env: &Env, bundle: &Path, strict: bool) -> (i32, Value) {
    let strict = if strict { "true" } else { "false" };
    let run = vardr_on(
        env,
        &["--dry-run", "--json", "--", "true"],
        &[
            ("VARDR_CA_BUNDLE", bundle),
            ("VARDR_CERTS_STRICT", Path::new(strict)),
        ],
    );
    let value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("plan is JSON ({e}): {}", run.describe()));
    (run.status.code().unwrap_or(-1), value)
}

/// Every way a bundle path can be unusable: the dry run, the run, strict mode and `certs` agree,
/// and nothing at the path changes.
#[test]
fn a_path_that_cannot_take_the_bundle_is_foreseen_and_left_alone() {
    let env = Env::new();
    fs::write(env.certs.join("ca.pem"), Ca::new("bundle path").cert.pem()).expect("write");
    let out = env.root.join("out");
    let mut cases: Vec<(&str, PathBuf)> = Vec::new();
    let dir = out.join("a-directory");
    fs::create_dir(&dir).expect("mkdir");
    cases.push(("a directory", dir));
    let fifo = out.join("a-fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    cases.push(("a FIFO", fifo));
    if vardr_init::sys::geteuid() == 0 {
        // What /dev/null is, made here: a regression must not replace the machine's /dev/null.
        let null = out.join("null");
        let made = Command::new("mknod")
            .arg(&null)
            .args(["c", "1", "3"])
            .status()
            .expect("mknod");
        assert!(made.success());
        cases.push(("a device", null));
    } else {
        skip_outside_ci("making a device node needs root");
    }
    cases.push(("the system bundle", env.system.clone()));
    let to_system = out.join("link-to-system.pem");
    symlink(&env.system, &to_system).expect("symlink");
    cases.push(("a symlink to the system bundle", to_system));

    for (what, path) in cases {
        let before = what_is(&path);
        let (code, dry) = plan(&env, &path, false);
        assert_eq!(code, 0, "{what}: {dry:#}");
        assert_eq!(dry["would_start"], true, "{what}: {dry:#}");
        assert!(dry["bundle_problem"].is_string(), "{what}: {dry:#}");
        assert_eq!(dry["environment"], serde_json::json!({}), "{what}: {dry:#}");

        let run = vardr_on(&env, &PRINT_EXPORT, &[("VARDR_CA_BUNDLE", &path)]);
        run.assert_code(0, what);
        assert_eq!(run.stdout.trim(), "[]", "{what}: nothing exported");
        assert!(
            run.stderr
                .contains("the service starts with the system trust only"),
            "{what}: {}",
            run.describe()
        );

        let (code, strict) = plan(&env, &path, true);
        assert_eq!(
            (code, &strict["would_start"]),
            (2, &Value::Bool(false)),
            "{what}"
        );
        let mut command = Command::new(bin());
        command.args(PRINT_EXPORT);
        pki::scrub(&mut command)
            .env("VARDR_CERTS_DIR", &env.certs)
            .env("VARDR_CA_BUNDLE", &path)
            .env("VARDR_SYSTEM_CA_BUNDLE", &env.system)
            .env("VARDR_CERTS_STRICT", "true");
        let run = finish(command);
        run.assert_code(2, &format!("{what}, strict"));
        assert_eq!(run.stdout, "", "{what}: strict mode starts nothing");

        let mut command = env.command(false);
        command.env("VARDR_CA_BUNDLE", &path);
        finish(command).assert_code(1, &format!("certs on {what}"));

        assert_eq!(what_is(&path), before, "{what}: changed");
    }
    assert_eq!(fs::read(&env.system).expect("system"), env.system_bytes);
}

/// A relative `VARDR_CA_BUNDLE` is exported as an absolute path: a child that changes directory
/// keeps its trust.
#[test]
fn a_relative_bundle_path_is_exported_absolute() {
    let env = Env::new();
    fs::write(env.certs.join("ca.pem"), Ca::new("relative").cert.pem()).expect("write");
    let mut command = Command::new(bin());
    command
        .args([
            "--",
            "sh",
            "-c",
            "cd / && printf '[%s]\\n' \"$SSL_CERT_FILE\"",
        ])
        .current_dir(&env.root);
    pki::scrub(&mut command)
        .env("VARDR_CERTS_DIR", &env.certs)
        .env("VARDR_CA_BUNDLE", "out/relative.pem")
        .env("VARDR_SYSTEM_CA_BUNDLE", &env.system);
    let run = finish(command);
    run.assert_code(0, "relative bundle path");
    let exported = run.stdout.trim().trim_matches(['[', ']']);
    assert_eq!(
        Path::new(exported),
        env.root.join("out/relative.pem"),
        "{}",
        run.describe()
    );
    assert!(Path::new(exported).is_file());
}

/// A Kubernetes emptyDir is 0777 without the sticky bit: another user could swap the bundle
/// between the check and the app's read. Said once; not for a sticky directory like /tmp.
#[test]
fn a_world_writable_directory_without_the_sticky_bit_is_warned_about() {
    let env = Env::new();
    fs::write(env.certs.join("ca.pem"), Ca::new("emptyDir").cert.pem()).expect("write");
    let out = env.root.join("out");
    let warned = |mode: u32| {
        fs::set_permissions(&out, fs::Permissions::from_mode(mode)).expect("chmod");
        let _ = fs::remove_file(env.cache());
        let run = env.run();
        run.assert_code(0, &format!("mode {mode:o}"));
        run.stderr.contains("writable by every user and not sticky")
    };
    assert!(warned(0o777), "0777 is warned about");
    assert!(!warned(0o1777), "sticky 1777 is not");
    assert!(!warned(0o755), "0755 is not");
}
