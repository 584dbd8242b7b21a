//! Real clients over real TLS. A local HTTPS server (tests/helpers/https_server.py) presents a
//! certificate for 127.0.0.1 signed by a test CA; `vardr-init -- CLIENT` builds the bundle from
//! the certs dir and exports it, and urllib, requests, httpx and curl must trust the server
//! exactly when the CA is in the certs dir.

mod common;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::pki::{self, Ca};
use common::{Finished, Mode, Running, bin, finish};
use tempfile::TempDir;

/// A running HTTPS server; killed when dropped.
struct Server {
    _running: Running,
    _dir: TempDir,
    url: String,
}

/// Starts the HTTPS server with a certificate for 127.0.0.1 issued by `ca`.
fn serve(ca: &Ca) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = ca.server();
    let (cert_path, key_path) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    fs::write(&cert_path, cert.pem()).expect("write the server certificate");
    fs::write(&key_path, key).expect("write the server key");
    let mut command = Command::new(common::python());
    command
        .arg(helper("https_server.py"))
        .arg(&cert_path)
        .arg(&key_path);
    pki::scrub(&mut command);
    let running = common::start(command, Mode::Subreaper);
    let ready = running.expect_line("ready ");
    let port = ready.trim_start_matches("ready ").trim();
    Server {
        _running: running,
        _dir: dir,
        url: format!("https://127.0.0.1:{port}/"),
    }
}

fn helper(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/helpers")
        .join(script)
}

/// The machine's system bundle when it has the usual one, else none (the custom CAs alone).
fn system_bundle() -> Option<&'static Path> {
    Some(Path::new("/etc/ssl/certs/ca-certificates.crt")).filter(|p| p.is_file())
}

/// A certs dir, and where the bundle goes.
struct Tree {
    _dir: TempDir,
    root: PathBuf,
    certs: PathBuf,
    bundle: PathBuf,
}

impl Tree {
    /// A certs dir holding `cas` as PEM files.
    fn with(cas: &[&Ca]) -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let certs = root.join("certs");
        fs::create_dir(&certs).expect("mkdir");
        for (i, ca) in cas.iter().enumerate() {
            fs::write(certs.join(format!("ca{i}.crt")), ca.cert.pem()).expect("write a CA");
        }
        Tree {
            bundle: root.join("custom_ca_bundle.pem"),
            root,
            certs,
            _dir: dir,
        }
    }

    /// `vardr-init -- ARGS...` with a scrubbed environment pointing at this tree.
    fn supervise<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut command = Command::new(bin());
        command.arg("--").args(args);
        pki::scrub(&mut command)
            .env("VARDR_CERTS_DIR", &self.certs)
            .env("VARDR_CA_BUNDLE", &self.bundle);
        if let Some(system) = system_bundle() {
            command.env("VARDR_SYSTEM_CA_BUNDLE", system);
        }
        command
    }
}

#[derive(Clone, Copy, Debug)]
enum Client {
    Urllib,
    Requests,
    Httpx,
    Curl,
}

impl Client {
    /// The client's command line for `urls`; `None` (skip) when the venv is missing.
    fn argv(self, urls: &[&str]) -> Option<Vec<OsString>> {
        let mut argv: Vec<OsString> = match self {
            Client::Curl => ["curl", "-sS", "--max-time", "10"]
                .iter()
                .map(OsString::from)
                .collect(),
            python => {
                let name = format!("{python:?}").to_lowercase();
                vec![
                    common::venv_python()?.into_os_string(),
                    helper("tls_client.py").into_os_string(),
                    name.into(),
                ]
            }
        };
        argv.extend(urls.iter().map(OsString::from));
        Some(argv)
    }

    fn assert_success(self, run: &Finished, urls: usize, context: &str) {
        run.assert_code(0, &format!("{self:?}: {context}"));
        let answers = run.stdout.matches("hello over tls").count();
        assert_eq!(
            answers,
            urls,
            "{self:?}: {context}: every URL answered; {}",
            run.describe()
        );
    }

    fn assert_untrusted(self, run: &Finished, context: &str) {
        let output = format!("{}{}", run.stdout, run.stderr);
        let (code, phrase) = match self {
            // curl's "SSL certificate problem: unable to get local issuer certificate".
            Client::Curl => (Some(60), "SSL certificate problem"),
            _ => (Some(1), "certificate verify failed"),
        };
        assert_eq!(
            run.status.code(),
            code,
            "{self:?}: {context}: must fail; {}",
            run.describe()
        );
        assert!(
            output.contains(phrase),
            "{self:?}: {context}: fails on trust ({phrase:?}); {}",
            run.describe()
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.describe());
    }
}

/// The client trusts the server through the bundle exactly when the server's CA is in the certs
/// dir: with it, success; with only another CA (a bundle, but not that CA) or nothing, failure.
fn trusts_exactly_the_custom_ca(client: Client) {
    let ca = Ca::new("tls test CA");
    let server = serve(&ca);
    let Some(argv) = client.argv(&[&server.url]) else {
        return;
    };

    let tree = Tree::with(&[&ca]);
    let run = finish(tree.supervise(&argv));
    client.assert_success(&run, 1, "CA in the certs dir");
    pki::assert_no_private_key(&fs::read(&tree.bundle).expect("the bundle"), "tls");

    let other = Tree::with(&[&Ca::new("some other CA")]);
    let run = finish(other.supervise(&argv));
    client.assert_untrusted(&run, "only another CA in the certs dir");

    let empty = Tree::with(&[]);
    let run = finish(empty.supervise(&argv));
    client.assert_untrusted(&run, "empty certs dir");
}

#[test]
fn urllib_trusts_exactly_the_custom_ca() {
    trusts_exactly_the_custom_ca(Client::Urllib);
}

#[test]
fn requests_trusts_exactly_the_custom_ca() {
    trusts_exactly_the_custom_ca(Client::Requests);
}

#[test]
fn httpx_trusts_exactly_the_custom_ca() {
    trusts_exactly_the_custom_ca(Client::Httpx);
}

#[test]
fn curl_trusts_exactly_the_custom_ca() {
    trusts_exactly_the_custom_ca(Client::Curl);
}

const SHOW_VARIABLES: &str = "for v in SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE; do \
                              eval \"printf '%s=%s\\n' $v \\\"\\${$v-unset}\\\"\"; done";

fn variables(run: &Finished) -> Vec<String> {
    run.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn the_child_gets_the_bundle_variables_only_when_a_bundle_exists() {
    let tree = Tree::with(&[&Ca::new("exported")]);
    let run = finish(tree.supervise(&["sh", "-c", SHOW_VARIABLES]));
    run.assert_code(0, "with a CA");
    let bundle = tree.bundle.display();
    assert_eq!(
        variables(&run),
        [
            format!("SSL_CERT_FILE={bundle}"),
            format!("REQUESTS_CA_BUNDLE={bundle}"),
            format!("CURL_CA_BUNDLE={bundle}"),
        ],
        "{}",
        run.describe()
    );

    let empty = Tree::with(&[]);
    let run = finish(empty.supervise(&["sh", "-c", SHOW_VARIABLES]));
    run.assert_code(0, "without a CA");
    assert_eq!(
        variables(&run),
        [
            "SSL_CERT_FILE=unset",
            "REQUESTS_CA_BUNDLE=unset",
            "CURL_CA_BUNDLE=unset"
        ],
        "no bundle, nothing exported: {}",
        run.describe()
    );
    assert!(!empty.bundle.exists());
}

/// A REQUESTS_CA_BUNDLE the user set is theirs: left as is, and a log line says so. requests then
/// trusts what the user's file trusts.
#[test]
fn a_user_set_requests_ca_bundle_is_left_as_is_and_logged() {
    let server_ca = Ca::new("in the user's requests bundle");
    let tree = Tree::with(&[&Ca::new("in the certs dir")]);
    let user_file = tree.root.join("user-requests.pem");
    fs::write(&user_file, server_ca.cert.pem()).expect("write");

    let mut command = tree.supervise(&["sh", "-c", SHOW_VARIABLES]);
    command.env("REQUESTS_CA_BUNDLE", &user_file);
    let run = finish(command);
    run.assert_code(0, "user REQUESTS_CA_BUNDLE");
    let bundle = tree.bundle.display();
    assert_eq!(
        variables(&run),
        [
            format!("SSL_CERT_FILE={bundle}"),
            format!("REQUESTS_CA_BUNDLE={}", user_file.display()),
            format!("CURL_CA_BUNDLE={bundle}"),
        ],
        "{}",
        run.describe()
    );
    common::assert_logged(
        &run.stderr_lines(),
        "REQUESTS_CA_BUNDLE",
        "leaving the user's REQUESTS_CA_BUNDLE alone is logged",
    );

    let server = serve(&server_ca);
    let Some(argv) = Client::Requests.argv(&[&server.url]) else {
        return;
    };
    let mut command = tree.supervise(&argv);
    command.env("REQUESTS_CA_BUNDLE", &user_file);
    Client::Requests.assert_success(&finish(command), 1, "the user's REQUESTS_CA_BUNDLE");
}

/// An SSL_CERT_FILE the user set is the system bundle: its certificates come first in the merged
/// bundle, the child's SSL_CERT_FILE is the merged bundle, and it trusts both servers.
#[test]
fn a_user_set_ssl_cert_file_is_the_system_bundle_and_the_child_gets_the_merged_one() {
    let (user_ca, custom_ca) = (Ca::new("user's SSL_CERT_FILE CA"), Ca::new("certs dir CA"));
    let tree = Tree::with(&[&custom_ca]);
    let user_file = tree.root.join("user-ca-file.pem");
    let mut user_bytes = system_bundle()
        .map(|p| fs::read(p).expect("read the system bundle"))
        .unwrap_or_default();
    user_bytes.extend_from_slice(user_ca.cert.pem().as_bytes());
    fs::write(&user_file, &user_bytes).expect("write");

    let (user_server, custom_server) = (serve(&user_ca), serve(&custom_ca));
    let urls = [user_server.url.as_str(), custom_server.url.as_str()];
    let mut clients = vec![Client::Curl];
    if common::venv_python().is_some() {
        clients.extend([Client::Urllib, Client::Requests, Client::Httpx]);
    }
    for client in clients {
        let argv = client.argv(&urls).expect("client available");
        let mut command = tree.supervise(&argv);
        command
            .env_remove("VARDR_SYSTEM_CA_BUNDLE")
            .env("SSL_CERT_FILE", &user_file);
        client.assert_success(&finish(command), 2, "user SSL_CERT_FILE + certs dir");
    }
    pki::assert_bundle(
        &tree.bundle,
        &user_bytes,
        std::slice::from_ref(&custom_ca.cert.der),
        "user SSL_CERT_FILE as the system bundle",
    );

    let mut command = tree.supervise(&["sh", "-c", SHOW_VARIABLES]);
    command
        .env_remove("VARDR_SYSTEM_CA_BUNDLE")
        .env("SSL_CERT_FILE", &user_file);
    let run = finish(command);
    run.assert_code(0, "variables");
    assert_eq!(
        variables(&run).first().map(String::as_str),
        Some(format!("SSL_CERT_FILE={}", tree.bundle.display()).as_str()),
        "the child's SSL_CERT_FILE is the merged bundle: {}",
        run.describe()
    );
}
