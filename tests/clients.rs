//! Issue 22's client matrix: one real TLS call per Python client library (tests/helpers/
//! client_matrix.py, the libraries from PyPI in the test venv) to real peers whose CA is only in
//! the certificates directory (tests/helpers/tls_servers.py: HTTPS, WebSocket, gRPC, MongoDB).
//! Without vardr-init every client refuses; under it every client trusts, in a user's venv, with
//! a user's own sitecustomize and .pth files, and inside a uvicorn app; each opt-out takes away
//! exactly the clients it should; a user's own variable is kept.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::app::{self, World};
use common::pki::{self, Ca};
use common::{Finished, Mode, Running, finish};
use tempfile::TempDir;

/// The 13 rows of issue 22's table, as client_matrix.py names them.
const CLIENTS: [&str; 13] = [
    "requests",
    "httpx",
    "httpx (async)",
    "aiohttp",
    "urllib.request",
    "urllib3",
    "websockets",
    "botocore",
    "elastic-transport",
    "pymongo",
    "httplib2",
    "grpcio",
    "certifi.where()",
];

fn helper(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/helpers")
        .join(script)
}

/// Removes from `command` what would make a run depend on this machine rather than on the test:
/// CA variables (pki::scrub), Python's own search-path settings, proxies, and the AWS and pip
/// configuration files.
fn hermetic(command: &mut Command) -> &mut Command {
    machine_free(pki::scrub(command))
}

/// [`hermetic`] less the CA variables (for a command whose certificate settings are already made).
fn machine_free(command: &mut Command) -> &mut Command {
    for name in [
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONSAFEPATH",
        "PYTHONNOUSERSITE",
        "VIRTUAL_ENV",
        "VARDR_EXTRA_CA_VARS",
        "VARDR_PYTHON_HOOK",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ] {
        command.env_remove(name);
    }
    command
        .env("AWS_CONFIG_FILE", "/nonexistent/vardr-test-aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/vardr-test-aws-credentials",
        )
        .env("PIP_CONFIG_FILE", "/dev/null")
}

/// tls_servers.py running with a server certificate from a fresh test CA.
struct Peers {
    _running: Running,
    _dir: TempDir,
    ca: Ca,
    /// The `ready` line's JSON: client_matrix.py's argument.
    ports: String,
}

fn peers(venv_python: &Path) -> Peers {
    let ca = Ca::new("client matrix test CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = ca.server();
    let (cert_path, key_path) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    fs::write(&cert_path, cert.pem()).expect("write the server certificate");
    fs::write(&key_path, key).expect("write the server key");
    let mut command = Command::new(venv_python);
    command
        .arg(helper("tls_servers.py"))
        .arg(&cert_path)
        .arg(&key_path);
    hermetic(&mut command);
    let running = common::start(command, Mode::Subreaper);
    let ready = running.expect_line("ready ");
    Peers {
        ports: ready.trim_start_matches("ready ").trim().to_owned(),
        _running: running,
        _dir: dir,
        ca,
    }
}

/// A certificates directory holding the peers' CA, and where the bundle goes.
struct Tree {
    dir: TempDir,
    certs: PathBuf,
    bundle: PathBuf,
}

impl Tree {
    fn with(ca: &Ca) -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = dir.path().join("certs");
        fs::create_dir(&certs).expect("mkdir certs");
        fs::write(certs.join("matrix-ca.crt"), ca.cert.pem()).expect("write the CA");
        Tree {
            bundle: dir.path().join("custom_ca_bundle.pem"),
            certs,
            dir,
        }
    }

    /// `vardr-init -- ARGS...` on this tree, hermetic.
    fn vardr_init<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut command = Command::new(common::bin());
        command.arg("--").args(args);
        hermetic(&mut command)
            .env("VARDR_CERTS_DIR", &self.certs)
            .env("VARDR_CA_BUNDLE", &self.bundle);
        if let Some(system) = system_bundle() {
            command.env("VARDR_SYSTEM_CA_BUNDLE", system);
        }
        command
    }
}

fn system_bundle() -> Option<&'static Path> {
    Some(Path::new("/etc/ssl/certs/ca-certificates.crt")).filter(|p| p.is_file())
}

/// `[python, client_matrix.py, PORTS]`.
fn matrix_argv(python: &Path, peers: &Peers) -> Vec<String> {
    vec![
        python.to_string_lossy().into_owned(),
        helper("client_matrix.py").to_string_lossy().into_owned(),
        peers.ports.clone(),
    ]
}

type Verdicts = BTreeMap<String, String>;

/// The verdicts of a finished client_matrix.py run: its one JSON line, with exactly the 13 rows.
fn verdicts(run: &Finished, context: &str) -> Verdicts {
    run.assert_code(0, context);
    for broken in ["Traceback", "Error in sitecustomize"] {
        assert!(
            !run.stderr.contains(broken),
            "{context}: Python reported an error; {}",
            run.describe()
        );
    }
    let line = run.stdout.lines().last().unwrap_or_default();
    let verdicts: Verdicts = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{context}: not the matrix's JSON ({e}); {}", run.describe()));
    parsed(verdicts, context)
}

fn parsed(verdicts: Verdicts, context: &str) -> Verdicts {
    let mut names: Vec<&str> = verdicts.keys().map(String::as_str).collect();
    let mut expected = CLIENTS.to_vec();
    names.sort_unstable();
    expected.sort_unstable();
    assert_eq!(
        names, expected,
        "{context}: the matrix's rows: {verdicts:#?}"
    );
    verdicts
}

/// Asserts that exactly the clients in `refused` refused and all others trusted (an error in any
/// row fails: it is neither).
fn assert_verdicts(verdicts: &Verdicts, refused: &[&str], context: &str) {
    let expected: Verdicts = CLIENTS
        .iter()
        .map(|&client| {
            let verdict = if refused.contains(&client) {
                "refused"
            } else {
                "trusted"
            };
            (client.to_owned(), verdict.to_owned())
        })
        .collect();
    let wrong: Vec<String> = CLIENTS
        .iter()
        .filter(|&&c| verdicts[c] != expected[c])
        .map(|&c| format!("{c}: {} (expected {})", verdicts[c], expected[c]))
        .collect();
    assert!(
        wrong.is_empty(),
        "{context}: {} of 13 rows wrong:\n  {}\nall verdicts: {verdicts:#?}",
        wrong.len(),
        wrong.join("\n  ")
    );
}

/// The baseline: the venv's Python with none of the CA variables set refuses in every client, so
/// the tests below can fail.
#[test]
fn without_vardr_init_every_client_refuses() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let peers = peers(&python);
    let argv = matrix_argv(&python, &peers);
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    hermetic(&mut command);
    let run = finish(command);
    assert_verdicts(
        &verdicts(&run, "baseline"),
        &CLIENTS,
        "the venv's Python, no CA variable",
    );
}

/// `vardr-init -- python client_matrix.py`, the CA in the certificates directory: 13 of 13.
#[test]
fn under_vardr_init_every_client_trusts_the_ca_from_certs() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let peers = peers(&python);
    let tree = Tree::with(&peers.ca);
    let run = finish(tree.vardr_init(&matrix_argv(&python, &peers)));
    assert_verdicts(&verdicts(&run, "default"), &[], "vardr-init, defaults");
}

/// VARDR_EXTRA_CA_VARS=false exports only the classic three: grpcio (its own roots, or
/// GRPC_DEFAULT_SSL_ROOTS_FILE_PATH) is the one client left out. httplib2 still trusts: without
/// HTTPLIB2_CA_CERTS it asks certifi.where(), which the Python hook answers.
#[test]
fn without_the_extra_variables_only_grpcio_refuses() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let peers = peers(&python);
    let tree = Tree::with(&peers.ca);
    let mut command = tree.vardr_init(&matrix_argv(&python, &peers));
    command.env("VARDR_EXTRA_CA_VARS", "false");
    let run = finish(command);
    assert_verdicts(
        &verdicts(&run, "VARDR_EXTRA_CA_VARS=false"),
        &["grpcio"],
        "VARDR_EXTRA_CA_VARS=false",
    );
}

/// VARDR_PYTHON_HOOK=false: certifi.where() is certifi's own file again; every client that reads
/// a variable still trusts.
#[test]
fn without_the_python_hook_only_certifi_where_refuses() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let peers = peers(&python);
    let tree = Tree::with(&peers.ca);
    let mut command = tree.vardr_init(&matrix_argv(&python, &peers));
    command.env("VARDR_PYTHON_HOOK", "false");
    let run = finish(command);
    assert_verdicts(
        &verdicts(&run, "VARDR_PYTHON_HOOK=false"),
        &["certifi.where()"],
        "VARDR_PYTHON_HOOK=false",
    );
}

/// Both opt-outs: the classic three variables alone, issue 22's "today" column: 10 of 13.
#[test]
fn with_both_opt_outs_the_classic_three_reach_ten_clients() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let peers = peers(&python);
    let tree = Tree::with(&peers.ca);
    let mut command = tree.vardr_init(&matrix_argv(&python, &peers));
    command
        .env("VARDR_EXTRA_CA_VARS", "false")
        .env("VARDR_PYTHON_HOOK", "false");
    let run = finish(command);
    assert_verdicts(
        &verdicts(&run, "both opt-outs"),
        &["httplib2", "grpcio", "certifi.where()"],
        "VARDR_EXTRA_CA_VARS=false VARDR_PYTHON_HOOK=false",
    );
}

/// A user's own AWS_CA_BUNDLE is theirs: kept, so botocore trusts what it trusts (here another
/// CA, not the peers'), and every other client still trusts the CA from the certificates
/// directory.
#[test]
fn a_users_own_aws_ca_bundle_is_kept() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let peers = peers(&python);
    let tree = Tree::with(&peers.ca);
    let theirs = tree.dir.path().join("users-aws-bundle.pem");
    fs::write(&theirs, Ca::new("the user's own AWS CA").cert.pem()).expect("write");
    let mut command = tree.vardr_init(&matrix_argv(&python, &peers));
    command.env("AWS_CA_BUNDLE", &theirs);
    let run = finish(command);
    assert_verdicts(
        &verdicts(&run, "the user's AWS_CA_BUNDLE"),
        &["botocore"],
        "AWS_CA_BUNDLE set by the user to a bundle without the peers' CA",
    );
}

/// The hook is a sitecustomize, but it takes nothing away: with it on, a user's own
/// sitecustomize (on their PYTHONPATH) still runs, and a venv whose libraries are reached only
/// through a .pth file still gets them: 13 of 13. The hook's own directory is gone from sys.path
/// by the time user code runs.
#[test]
fn a_users_sitecustomize_and_pth_files_still_work_with_the_hook() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let peers = peers(&python);
    let tree = Tree::with(&peers.ca);
    let scratch = tempfile::tempdir().expect("tempdir");

    // The user's venv: empty, but for a .pth file naming the test venv's site-packages.
    let venv = scratch.path().join("venv");
    let mut make = Command::new(&python);
    make.args(["-m", "venv", "--without-pip"]).arg(&venv);
    finish(make).assert_code(0, "python -m venv");
    let site = |python: &Path| {
        let mut ask = Command::new(python);
        ask.args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ]);
        hermetic(&mut ask);
        let done = finish(ask);
        done.assert_code(0, "site-packages");
        PathBuf::from(done.stdout.trim())
    };
    let libraries = site(&python);
    let user_python = venv.join("bin/python");
    let user_site = site(&user_python);
    assert_ne!(libraries, user_site);
    fs::write(
        user_site.join("matrix-libraries.pth"),
        format!(
            "{}\nimport sys; sys.stderr.write('the venv .pth file ran\\n')\n",
            libraries.display()
        ),
    )
    .expect("write the .pth file");

    // The user's own sitecustomize, on their PYTHONPATH.
    let own = scratch.path().join("own");
    fs::create_dir(&own).expect("mkdir");
    fs::write(
        own.join("sitecustomize.py"),
        "import sys\nsys.stderr.write('the user sitecustomize ran\\n')\n",
    )
    .expect("write sitecustomize.py");

    // Without vardr-init, how often each runs (a venv's lib64 -> lib link makes Python read its
    // .pth files twice): with the hook, the same.
    let markers = ["the user sitecustomize ran", "the venv .pth file ran"];
    let mut plain = Command::new(&user_python);
    plain.args(["-c", "pass"]);
    hermetic(&mut plain).env("PYTHONPATH", &own);
    let plain = finish(plain);
    plain.assert_code(0, "the user's venv, plain");
    let counts = |run: &Finished| markers.map(|marker| run.stderr.matches(marker).count());
    assert!(
        counts(&plain).iter().all(|&n| n > 0),
        "both run without vardr-init: {}",
        plain.describe()
    );

    let mut command = tree.vardr_init(&matrix_argv(&user_python, &peers));
    command.env("PYTHONPATH", &own);
    let run = finish(command);
    let context = "a user's venv (.pth) and sitecustomize";
    assert_verdicts(&verdicts(&run, context), &[], context);
    assert_eq!(
        counts(&run),
        counts(&plain),
        "{context}: how often {markers:?} ran, under vardr-init and without; {}",
        run.describe()
    );

    // What user code sees: its own PYTHONPATH entry, and nothing of the hook's on sys.path.
    let show = "import json, sys, sitecustomize; \
                print(json.dumps({'path': sys.path, 'sitecustomize': sitecustomize.__file__}))";
    let mut command = tree.vardr_init(&[user_python.to_str().expect("utf-8"), "-c", show]);
    command.env("PYTHONPATH", &own);
    let run = finish(command);
    run.assert_code(0, "sys.path");
    let seen: serde_json::Value = serde_json::from_str(run.stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("sys.path JSON ({e}): {}", run.describe()));
    let path: Vec<&str> = seen["path"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    let tree_root = tree.dir.path().to_string_lossy().into_owned();
    assert!(
        !path.iter().any(|p| p.starts_with(&tree_root)),
        "the hook's directory (beside the bundle in {tree_root}) left on sys.path: {path:#?}"
    );
    assert!(path.contains(&own.to_str().expect("utf-8")), "{path:#?}");
    assert_eq!(
        seen["sitecustomize"].as_str(),
        own.join("sitecustomize.py").to_str(),
        "`import sitecustomize` gives the user's own module: {seen}"
    );
}

/// `vardr-init` running a real uvicorn app (tests/apps/client_matrix, found the way `fastapi
/// run` finds it) whose endpoint runs the matrix in the worker process: 13 of 13.
#[test]
fn a_uvicorn_app_trusts_the_ca_in_every_client() {
    let Some(world) = World::venv() else {
        return;
    };
    let Some(python) = common::venv_python() else {
        return;
    };
    let peers = peers(&python);
    fs::create_dir_all(world.certs_dir()).expect("mkdir certs");
    fs::write(world.certs_dir().join("matrix-ca.crt"), peers.ca.cert.pem()).expect("write CA");
    let mode = app::any_mode();
    let mut command = world.command(mode, &app::test_app("client_matrix"), &[]);
    machine_free(&mut command).env("VARDR_TEST_MATRIX_PORTS", &peers.ports);
    let running = common::start(command, mode);
    app::wait_until_serving(world.port);
    let answer = app::get(world.port, "/matrix");
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    let context = format!("in a uvicorn worker under vardr-init (its log: {stderr:#?})");
    let (code, body) = answer.unwrap_or_else(|e| panic!("{context}: GET /matrix: {e}"));
    assert_eq!(code, 200, "{context}: {body}");
    let verdicts: Verdicts = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{context}: the verdicts are not JSON ({e}): {body}"));
    assert_verdicts(&parsed(verdicts, &context), &[], &context);
    assert_eq!(status.code(), Some(0), "{context}: a clean stop");
}
