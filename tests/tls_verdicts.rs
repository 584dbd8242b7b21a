//! The verdict is a promise the runtime keeps: for every CA shape of the corpus, vardr-init's
//! `SUCCESS` or `FAILED` must agree with a real handshake through each CPython on the machine
//! (pyenv's builds: `$(pyenv root)/versions/3.12.*` and `3.13.*`), the runtime found on its own
//! from the command's interpreter. And whatever the corpus holds, the bundle written loads in
//! every runtime and verifies through the good CAs in it.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::certs::{Env, vardr_on};
use common::python_script;
use common::shapes::{self, Made};
use serde_json::Value;
use tempfile::TempDir;

struct Corpus {
    _dir: TempDir,
    made: Vec<Made>,
    /// One file per shape, `NAME.pem`.
    env: Env,
}

fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let made: Vec<Made> = shapes::all()
            .iter()
            .map(|shape| shapes::make(shape, &dir.path().join(shape.name)))
            .collect();
        let env = Env::new();
        for m in &made {
            std::fs::write(env.certs.join(format!("{}.pem", m.name)), &m.mounted).expect("mount");
        }
        Corpus {
            _dir: dir,
            made,
            env,
        }
    })
}

/// Each shape's outcome in `python`: "ok", "load: ..." or "verify: ...".
fn handshakes(python: &Path, cases: &[(String, PathBuf, &Made)]) -> BTreeMap<String, String> {
    let input: Vec<Value> = cases
        .iter()
        .map(|(name, cafile, made)| {
            serde_json::json!({
                "name": name,
                "cafile": cafile,
                "cert": made.leaf_cert,
                "key": made.leaf_key,
                "host": "localhost",
            })
        })
        .collect();
    let script = python_script("verify_shapes.py");
    let mut child = Command::new(python)
        .arg(&script[1])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the runtime");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(&input).expect("json").as_bytes())
        .expect("write cases");
    let out = child.wait_with_output().expect("runtime output");
    assert!(out.status.success(), "{} failed", python.display());
    serde_json::from_slice(&out.stdout).expect("runtime JSON")
}

/// vardr-init's plan for `-- PYTHON -c pass` on the corpus: the runtime it found and each file's
/// verdict.
fn verdicts(python: &Path) -> (Value, BTreeMap<String, String>) {
    let c = corpus();
    let python_arg = python.to_str().expect("utf-8 path");
    let done = vardr_on(
        &c.env,
        &["--dry-run", "--json", "--", python_arg, "-c", "pass"],
        &[("VARDR_TLS_PROFILE", Path::new("auto"))],
    );
    let plan: Value = serde_json::from_str(&done.stdout)
        .unwrap_or_else(|e| panic!("plan JSON ({e}): {}", done.describe()));
    let results = plan["certificates"]["results"]
        .as_object()
        .expect("results")
        .iter()
        .map(|(name, verdict)| {
            let shape = name.trim_end_matches(".pem").to_owned();
            (shape, verdict.as_str().expect("verdict text").to_owned())
        })
        .collect();
    (plan["certificates"]["runtime"].clone(), results)
}

#[test]
fn every_verdict_agrees_with_a_handshake_in_every_runtime() {
    let c = corpus();
    assert!(c.made.len() >= 30, "the corpus has {} shapes", c.made.len());
    let cases: Vec<(String, PathBuf, &Made)> = c
        .made
        .iter()
        .map(|m| {
            let cafile = c.env.certs.join(format!("{}.pem", m.name));
            (m.name.to_owned(), cafile, m)
        })
        .collect();
    let mut table = String::new();
    let mut disagreements = Vec::new();
    for python in common::cpython_runtimes() {
        let outcomes = handshakes(&python, &cases);
        let (runtime, verdicts) = verdicts(&python);
        let version = outcomes.get("_runtime").cloned().unwrap_or_default();
        let minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
        if runtime["profile"].as_str() != Some(format!("python{minor}").as_str()) {
            disagreements.push(format!("{}: vardr-init found {runtime}", python.display()));
        }
        table.push_str(&format!("\n== {} ({version})\n", python.display()));
        for (name, _, _) in &cases {
            let outcome = &outcomes[name];
            let verdict = &verdicts[name];
            let agree = (outcome == "ok") == (verdict == "SUCCESS");
            table.push_str(&format!(
                "{} {name:<34} {outcome:<60.60} | {verdict:.110}\n",
                if agree { " " } else { "!" }
            ));
            if !agree {
                disagreements.push(format!(
                    "{version} {name}: runtime {outcome:?}, vardr-init {verdict:?}"
                ));
            }
        }
    }
    eprintln!("{table}");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// A system bundle a distribution should never ship, but one may: text, a PGP private key, a CRL
/// and a `CERTIFICATE` block that are not valid, and a certificate OpenSSL refuses to decode. Each
/// of those alone makes Python refuse the whole file if it is copied.
fn dirty_system_bundle() -> Vec<u8> {
    let c = corpus();
    let refused = c
        .made
        .iter()
        .find(|m| m.name == "der_serial_zero_pad")
        .expect("in the corpus");
    let mut system = common::certs::system_fixture().0.clone();
    system.extend_from_slice(b"Some words a script left here.\n");
    system.extend_from_slice(
        b"-----BEGIN PGP PRIVATE KEY BLOCK-----\nAAAA\n-----END PGP PRIVATE KEY BLOCK-----\n",
    );
    system.extend_from_slice(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
    system.extend_from_slice(b"-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n");
    system.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
    system.extend_from_slice(&refused.mounted);
    system.extend(common::certs::system_fixture().0.clone());
    system
}

/// The merged bundle itself: written from the whole corpus and a dirty system bundle by
/// `vardr-init certs` (which finds the runtime as the default command would, from `PATH`), it
/// loads in the runtime, and every shape verifies through it exactly when its verdict was
/// `SUCCESS`.
#[test]
fn the_bundle_written_loads_and_keeps_every_success() {
    let c = corpus();
    for python in common::cpython_runtimes() {
        let env = Env::new();
        std::fs::write(&env.system, dirty_system_bundle()).expect("system bundle");
        for m in &c.made {
            std::fs::write(env.certs.join(format!("{}.pem", m.name)), &m.mounted).expect("mount");
        }
        let mut command = env.command(false);
        command
            .env("PATH", python.parent().expect("bin"))
            .env("VARDR_TLS_PROFILE", "auto");
        let done = common::finish(command);
        let summary: Value = serde_json::from_str(&done.stdout)
            .unwrap_or_else(|e| panic!("summary JSON ({e}): {}", done.describe()));
        let outcomes_for = |cafile: &Path| {
            let cases: Vec<(String, PathBuf, &Made)> = c
                .made
                .iter()
                .map(|m| (m.name.to_owned(), cafile.to_path_buf(), m))
                .collect();
            handshakes(&python, &cases)
        };
        let outcomes = outcomes_for(&env.bundle);
        let minor: String = outcomes["_runtime"]
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".");
        assert_eq!(
            summary["tls_profile"].as_str(),
            Some(format!("python{minor}").as_str()),
            "{}",
            done.describe()
        );
        let stderr = done.stderr.clone();
        for warning in [
            "private key material left out",
            "OpenSSL would not decode it",
            "does not parse",
        ] {
            assert!(stderr.contains(warning), "{warning:?} not in: {stderr}");
        }
        let bundle = std::fs::read_to_string(&env.bundle).expect("bundle");
        // Whole markers: short words may occur in base64 by chance.
        for word in ["PRIVATE KEY", "BEGIN X509 CRL", "Some words", "!!!!"] {
            assert!(!bundle.contains(word), "{word} in the bundle: {bundle}");
        }
        let mut wrong = Vec::new();
        for m in &c.made {
            let outcome = &outcomes[m.name];
            let verdict = summary["results"][format!("{}.pem", m.name)]
                .as_str()
                .expect("verdict");
            assert!(
                !outcome.starts_with("load:"),
                "{python:?}: the bundle did not load: {outcome}"
            );
            if (outcome == "ok") != (verdict == "SUCCESS") {
                wrong.push(format!("{}: {outcome} | {verdict}", m.name));
            }
        }
        assert!(
            wrong.is_empty(),
            "{}:\n{}",
            python.display(),
            wrong.join("\n")
        );
    }
}

/// The shapes the container tests repeat inside each image, with the image's own Python and
/// OpenSSL (tests/containers/run.sh).
const CONTAINER_SHAPES: [&str; 12] = [
    "good_rsa2048",
    "rsa1024",
    "bc_not_critical",
    "no_key_usage",
    "intermediate_alone",
    "intermediate_with_root",
    "eku_client_only",
    "unknown_critical_extension",
    "ec_explicit_params",
    "v1_root",
    "sha1_intermediate_with_root",
    "der_serial_zero_pad",
];

/// Writes the container corpus to `VARDR_WRITE_CORPUS` (run by tests/containers/run.sh):
/// `certs/NAME.pem` to mount at /certs, each shape's leaf under `NAME/`, and `cases.json` for
/// tests/helpers/verify_shapes.py with the paths as seen at `VARDR_CORPUS_MOUNT` in the image.
#[test]
#[ignore = "a tool for tests/containers/run.sh"]
fn write_the_container_corpus() {
    let out = PathBuf::from(std::env::var_os("VARDR_WRITE_CORPUS").expect("VARDR_WRITE_CORPUS"));
    let mount = PathBuf::from(std::env::var_os("VARDR_CORPUS_MOUNT").expect("VARDR_CORPUS_MOUNT"));
    std::fs::create_dir_all(out.join("certs")).expect("mkdir");
    let mut cases = Vec::new();
    for shape in shapes::all()
        .iter()
        .filter(|s| CONTAINER_SHAPES.contains(&s.name))
    {
        let made = shapes::make(shape, &out.join(shape.name));
        let mounted = format!("{}.pem", shape.name);
        std::fs::write(out.join("certs").join(&mounted), &made.mounted).expect("write");
        cases.push(serde_json::json!({
            "name": shape.name,
            "cafile": mount.join("certs").join(&mounted),
            "cert": mount.join(shape.name).join("leaf.pem"),
            "key": mount.join(shape.name).join("leaf.key"),
            "host": "localhost",
        }));
    }
    assert_eq!(cases.len(), CONTAINER_SHAPES.len());
    std::fs::write(
        out.join("cases.json"),
        serde_json::to_string(&cases).expect("json"),
    )
    .expect("cases");
}

/// With no Python in the command (`-- node server.js`), only what every OpenSSL client refuses
/// rejects a CA; rules of some runtimes only are warnings. `VARDR_TLS_PROFILE` wins over the
/// command.
#[test]
fn without_python_the_openssl_rules_reject_and_the_others_warn() {
    let c = corpus();
    let plan = |vars: &[(&str, &Path)]| {
        let done = vardr_on(&c.env, &["--dry-run", "--json", "--", "/bin/true"], vars);
        let plan: Value = serde_json::from_str(&done.stdout)
            .unwrap_or_else(|e| panic!("plan JSON ({e}): {}", done.describe()));
        plan["certificates"].clone()
    };
    let certs = plan(&[("VARDR_TLS_PROFILE", Path::new("auto"))]);
    assert_eq!(certs["runtime"]["profile"], "openssl", "{certs}");
    assert!(
        certs["runtime"]["source"]
            .as_str()
            .is_some_and(|s| s.contains("runs no Python")),
        "{certs}"
    );
    let verdict = |certs: &Value, name: &str| {
        certs["results"][format!("{name}.pem")]
            .as_str()
            .expect("verdict")
            .to_owned()
    };
    for name in [
        "rsa1024",
        "bc_not_critical",
        "intermediate_alone",
        "v1_root",
    ] {
        assert_eq!(verdict(&certs, name), "SUCCESS", "{name}");
    }
    for name in [
        "unknown_critical_extension",
        "eku_client_only",
        "ec_explicit_params",
        "der_serial_zero_pad",
    ] {
        assert!(verdict(&certs, name).starts_with("FAILED"), "{name}");
    }
    let warnings = certs["warnings"].to_string();
    for expected in [
        "rsa1024.pem: certificate 1 (CN=rsa1024): its 1024-bit RSA key",
        "bc_not_critical.pem: certificate 1 (CN=bc_not_critical): basicConstraints is not critical",
    ] {
        assert!(
            warnings.contains(expected),
            "{expected:?} not in {warnings}"
        );
    }
    let certs = plan(&[("VARDR_TLS_PROFILE", Path::new("python3.13"))]);
    assert_eq!(certs["runtime"]["profile"], "python3.13");
    assert_eq!(certs["runtime"]["source"], "VARDR_TLS_PROFILE");
    assert!(verdict(&certs, "bc_not_critical").contains("VERIFY_X509_STRICT"));
    assert_eq!(verdict(&certs, "intermediate_alone"), "SUCCESS");
    let certs = plan(&[("VARDR_TLS_PROFILE", Path::new("python3.12"))]);
    assert!(verdict(&certs, "intermediate_alone").contains("mount its root CA"));
}
