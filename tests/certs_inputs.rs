//! `vardr-init certs --json` on hostile and odd inputs, on the real binary: one test per fixture
//! in `fixture::` (encodings, directory layouts, symlinks, special files, sizes, private keys,
//! certificates that are not CAs or not valid now, malformed PEM and DER), then all of them in
//! one directory (with determinism and the cache over the whole matrix); the limits (10,000 files,
//! a symlink to /); and an empty or missing certificates directory.
//! The behaviour pinned here is the Certificates section of the contract (docs/contract.md).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use common::certs::{Env, make_dir, system_fixture};
use common::pki::{self, Ca, Cert};
use common::{Finished, finish, summary};
use serde_json::Value;

/// What vardr-init must say about one file.
#[derive(Clone, Copy, Debug)]
enum Verdict {
    Success,
    /// `FAILED: REASON`, REASON containing this phrase (in any case).
    Failed(&'static str),
}

/// One fixture: files written under `dir`, and what vardr-init must say about them.
struct Fixture {
    /// The case's directory: the certs dir itself, or `certs/NAME` when all cases share one.
    dir: PathBuf,
    /// What result keys start with: "" or "NAME/".
    prefix: String,
    /// A directory outside the certs dir, for symlink targets.
    outside: PathBuf,
    results: Vec<(String, Verdict)>,
    /// Accepted files and their certificates in file order.
    accepted: Vec<(String, Vec<Vec<u8>>)>,
    /// Whether the case only means something when vardr-init is not root.
    nonroot: bool,
}

impl Fixture {
    fn new(dir: PathBuf, prefix: String, outside: PathBuf) -> Fixture {
        make_dir(&dir);
        make_dir(&outside);
        Fixture {
            dir,
            prefix,
            outside,
            results: Vec::new(),
            accepted: Vec::new(),
            nonroot: false,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        let path = self.dir.join(rel);
        make_dir(path.parent().expect("a parent"));
        path
    }

    fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        fs::write(&path, bytes).expect("write a fixture");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        path
    }

    fn symlink(&self, target: impl AsRef<Path>, rel: &str) {
        symlink(target, self.path(rel)).expect("symlink");
    }

    fn accept(&mut self, rel: &str, certs: &[&Cert]) {
        let key = format!("{}{rel}", self.prefix);
        self.results.push((key.clone(), Verdict::Success));
        self.accepted
            .push((key, certs.iter().map(|c| c.der.clone()).collect()));
    }

    fn reject(&mut self, rel: &str, phrase: &'static str) {
        self.results
            .push((format!("{}{rel}", self.prefix), Verdict::Failed(phrase)));
    }

    /// A fresh CA written to `rel` as PEM, accepted.
    fn ca_file(&mut self, rel: &str) -> Cert {
        let ca = Ca::new(&format!("{}{rel}", self.prefix)).cert;
        self.write(rel, ca.pem());
        self.accept(rel, &[&ca]);
        ca
    }
}

/// Everything a run must report for a set of fixtures.
struct Expectation {
    results: BTreeMap<String, Verdict>,
    /// The custom certificates in bundle order, after deduplication.
    certs: Vec<Vec<u8>>,
    duplicates: usize,
}

impl Expectation {
    fn of(fixtures: &[&Fixture], system_ders: &[Vec<u8>]) -> Expectation {
        let mut results = BTreeMap::new();
        let mut accepted = Vec::new();
        for fixture in fixtures {
            for (key, verdict) in &fixture.results {
                assert!(
                    results.insert(key.clone(), *verdict).is_none(),
                    "fixture bug: {key} twice"
                );
            }
            accepted.extend(fixture.accepted.iter().cloned());
        }
        // Bundle order: byte order of relative paths, then position in the file; the first copy
        // of a certificate wins, and one already in the system bundle is not added again.
        accepted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut seen: HashSet<&[u8]> = system_ders.iter().map(Vec::as_slice).collect();
        let (mut certs, mut duplicates) = (Vec::new(), 0);
        for der in accepted.iter().flat_map(|(_, ders)| ders) {
            if seen.insert(der) {
                certs.push(der.clone());
            } else {
                duplicates += 1;
            }
        }
        Expectation {
            results,
            certs,
            duplicates,
        }
    }
}

/// Checks a finished `certs --json` run against `expect`: clean exit 0, the summary, the verdicts,
/// the bundle (or its absence), and the verdict log lines. Returns the summary.
fn check(env: &Env, expect: &Expectation, run: &Finished, context: &str) -> Value {
    run.assert_code(0, context);
    let summary = summary(run, context);
    let results = summary["results"]
        .as_object()
        .unwrap_or_else(|| panic!("{context}: results is an object: {summary}"));
    let got: Vec<&String> = results.keys().collect();
    let wanted: Vec<&String> = expect.results.keys().collect();
    let missing: Vec<_> = wanted
        .iter()
        .filter(|k| !results.contains_key(**k))
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|k| !expect.results.contains_key(**k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{context}: result keys: missing {missing:?}, unexpected {extra:?}; stderr:\n{}",
        run.stderr
    );
    let mut wrong = Vec::new();
    for (key, verdict) in &expect.results {
        let value = results[key].as_str().unwrap_or_default();
        let right = match verdict {
            Verdict::Success => value == "SUCCESS",
            // Phrases are matched case-insensitively: the reasons say "CA" and "PEM".
            Verdict::Failed(phrase) => {
                value.starts_with("FAILED: ")
                    && value.to_lowercase().contains(&phrase.to_lowercase())
            }
        };
        if !right {
            wrong.push(format!("{key}: expected {verdict:?}, got {value:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{context}: verdicts:\n  {}",
        wrong.join("\n  ")
    );

    let successes = expect
        .results
        .values()
        .filter(|v| matches!(v, Verdict::Success))
        .count();
    let mut counts = vec![
        ("successful_imports", successes),
        ("failed_imports", expect.results.len() - successes),
        ("total_certificates", expect.certs.len()),
        ("duplicates", expect.duplicates),
    ];
    // With no input at all the system bundle is not even read (no_certs_dir_...); otherwise
    // the summary names it and counts its certificates, bundle built or not.
    if !expect.results.is_empty() {
        counts.push(("system_certificates", env.system_ders.len()));
    }
    for (field, count) in counts {
        assert_eq!(
            summary[field].as_u64(),
            Some(count as u64),
            "{context}: {field} in {summary}"
        );
    }
    let system = (!expect.results.is_empty()).then(|| env.system.to_str().expect("UTF-8 path"));
    assert_eq!(
        summary["system_bundle"].as_str(),
        system,
        "{context}: system_bundle"
    );

    if expect.certs.is_empty() {
        assert_eq!(summary["action"], "none", "{context}: {summary}");
        assert!(summary["bundle"].is_null(), "{context}: {summary}");
        assert!(
            fs::symlink_metadata(&env.bundle).is_err(),
            "{context}: no accepted CA, yet a bundle was written"
        );
    } else {
        assert_eq!(summary["action"], "built", "{context}: {summary}");
        assert_eq!(
            summary["bundle"].as_str(),
            env.bundle.to_str(),
            "{context}: bundle path"
        );
        pki::assert_bundle(&env.bundle, &env.system_bytes, &expect.certs, context);
        assert!(
            env.cache().is_file(),
            "{context}: no cache file {} beside the bundle",
            env.cache().display()
        );
    }

    let stderr = run.stderr_lines();
    for line in &stderr {
        assert!(
            line.starts_with("[Vardr] "),
            "{context}: a stderr line not in the log format: {line:?}"
        );
    }
    if expect.results.len() <= 100 {
        for key in expect.results.keys() {
            assert!(
                stderr.iter().any(|l| l.contains(key.as_str())),
                "{context}: no verdict log line names {key:?}: {stderr:#?}"
            );
        }
    }
    summary
}

// ---------------------------------------------------------------------------------------------
// The fixtures. Each writes files under `fx.dir` and says what vardr-init must answer.

fn pem_single(fx: &mut Fixture) {
    fx.ca_file("ca.pem");
}

fn two_certs_in_one_file(fx: &mut Fixture) {
    let (a, b) = (Ca::new("first of two").cert, Ca::new("second of two").cert);
    fx.write(
        "two.pem",
        format!("{}some text between\n{}", a.pem(), b.pem()),
    );
    fx.accept("two.pem", &[&a, &b]);
}

fn crlf(fx: &mut Fixture) {
    let (a, b) = (Ca::new("crlf 1").cert, Ca::new("crlf 2").cert);
    fx.write("crlf.pem", (a.pem() + &b.pem()).replace('\n', "\r\n"));
    fx.accept("crlf.pem", &[&a, &b]);
}

fn no_final_newline(fx: &mut Fixture) {
    let ca = Ca::new("no final newline").cert;
    fx.write("ca.pem", ca.pem().trim_end());
    fx.accept("ca.pem", &[&ca]);
}

fn text_around_pem(fx: &mut Fixture) {
    let ca = Ca::new("text around").cert;
    let text = format!(
        "Certificate:\n    Data:\n        Subject: O=vardr-init tests, CN=text around\n\n{}\n\
         # trailing notes, not base64: -----\n",
        ca.pem()
    );
    fx.write("annotated.crt", text);
    fx.accept("annotated.crt", &[&ca]);
}

fn der_named_crt(fx: &mut Fixture) {
    let ca = Ca::new("der crt").cert;
    fx.write("ca.crt", &ca.der);
    fx.accept("ca.crt", &[&ca]);
}

fn der_named_pem(fx: &mut Fixture) {
    let ca = Ca::new("der pem").cert;
    fx.write("ca.pem", &ca.der);
    fx.accept("ca.pem", &[&ca]);
}

fn der_named_cer(fx: &mut Fixture) {
    let ca = Ca::new("der cer").cert;
    fx.write("ca.cer", &ca.der);
    fx.accept("ca.cer", &[&ca]);
}

fn der_without_extension(fx: &mut Fixture) {
    let ca = Ca::new("der bare").cert;
    fx.write("corporate-root", &ca.der);
    fx.accept("corporate-root", &[&ca]);
}

fn intermediate_ca(fx: &mut Fixture) {
    let intermediate = Ca::new("root of intermediate").intermediate("intermediate");
    fx.write("intermediate.pem", intermediate.cert.pem());
    fx.accept("intermediate.pem", &[&intermediate.cert]);
}

fn nested_directory(fx: &mut Fixture) {
    fx.ca_file("a/b/c/d/deep.pem");
    fx.ca_file("top.pem");
}

/// Byte order of whole relative paths (' ' < '-' < '.' < '/' < 'B' < 'a'), which a walk sorting
/// each directory's entries on its own does not give: it would put a/x.pem before "a b.pem".
fn byte_order_of_paths(fx: &mut Fixture) {
    for rel in ["a.pem", "a/x.pem", "a-b.pem", "a b.pem", "B.pem"] {
        fx.ca_file(rel);
    }
}

fn duplicate_across_files(fx: &mut Fixture) {
    let ca = Ca::new("duplicated").cert;
    fx.write("a.pem", ca.pem());
    fx.write("b.crt", &ca.der);
    fx.accept("a.pem", &[&ca]);
    fx.accept("b.crt", &[&ca]);
}

fn duplicate_in_one_file(fx: &mut Fixture) {
    let ca = Ca::new("twice in a file").cert;
    fx.write("twice.pem", ca.pem() + &ca.pem());
    fx.accept("twice.pem", &[&ca, &ca]);
}

fn already_in_system_bundle(fx: &mut Fixture) {
    let system = &system_fixture().1[0];
    fx.write("system-copy.pem", system.pem());
    fx.accept("system-copy.pem", &[system]);
    fx.ca_file("new.pem");
}

/// A ConfigMap volume: NAME -> ..data/NAME, ..data -> ..TIMESTAMP: each certificate once, under
/// the user-facing name.
fn kubernetes_configmap(fx: &mut Fixture) {
    let stamp = "..2026_11_22_23_40_00.123456789";
    let (a, b) = (Ca::new("configmap a").cert, Ca::new("configmap b").cert);
    fx.write(&format!("{stamp}/ca-a.crt"), a.pem());
    fx.write(&format!("{stamp}/ca-b.crt"), b.pem());
    fx.symlink(stamp, "..data");
    fx.symlink("..data/ca-a.crt", "ca-a.crt");
    fx.symlink("..data/ca-b.crt", "ca-b.crt");
    fx.accept("ca-a.crt", &[&a]);
    fx.accept("ca-b.crt", &[&b]);
}

fn dot_files_skipped(fx: &mut Fixture) {
    for rel in [".hidden.pem", ".git/ca.pem", "sub/.swap.pem"] {
        fx.write(rel, Ca::new(rel).cert.pem());
    }
    fx.write(".key.pem", pki::private_key_pem("PRIVATE KEY"));
    fx.ca_file("visible.pem");
    fx.ca_file("sub/visible.pem");
}

fn symlink_to_file(fx: &mut Fixture) {
    let ca = Ca::new("symlinked file").cert;
    let target = fx.outside.join("real-ca.pem");
    fs::write(&target, ca.pem()).expect("write");
    fx.symlink(&target, "linked.pem");
    fx.accept("linked.pem", &[&ca]);
}

fn symlinked_directory(fx: &mut Fixture) {
    let ca = Ca::new("in a symlinked dir").cert;
    let target = fx.outside.join("mounted");
    make_dir(&target);
    fs::write(target.join("ca.pem"), ca.pem()).expect("write");
    fx.symlink(&target, "linked-dir");
    fx.accept("linked-dir/ca.pem", &[&ca]);
}

fn symlink_loop(fx: &mut Fixture) {
    fx.symlink("loop-b.pem", "loop-a.pem");
    fx.symlink("loop-a.pem", "loop-b.pem");
    fx.symlink("self.pem", "self.pem");
    for rel in ["loop-a.pem", "loop-b.pem", "self.pem"] {
        fx.reject(rel, "symlink loop");
    }
    fx.ca_file("ok.pem");
}

/// Directory symlinks back up the tree: each directory is visited once, the cycles give no verdict.
fn directory_symlink_cycle(fx: &mut Fixture) {
    fx.ca_file("ca.pem");
    fx.ca_file("sub/inner.pem");
    fx.symlink("..", "sub/up");
    fx.symlink(".", "self");
}

fn dangling_symlink(fx: &mut Fixture) {
    fx.symlink(fx.outside.join("missing.pem"), "gone.pem");
    fx.reject("gone.pem", "dangling");
    fx.ca_file("ok.pem");
}

/// Mode 000: only meaningful when vardr-init is not root.
fn unreadable_file(fx: &mut Fixture) {
    let path = fx.write("secret.pem", Ca::new("unreadable").cert.pem());
    fs::set_permissions(path, fs::Permissions::from_mode(0o000)).expect("chmod 000");
    fx.reject("secret.pem", "permission denied");
    fx.ca_file("readable.pem");
    fx.nonroot = true;
}

/// A directory with mode 000: its files cannot even be listed. Only meaningful when not root.
fn unreadable_directory(fx: &mut Fixture) {
    fx.write("locked/ca.pem", Ca::new("in a locked directory").cert.pem());
    fs::set_permissions(fx.path("locked"), fs::Permissions::from_mode(0o000)).expect("chmod 000");
    fx.reject("locked", "permission denied");
    fx.ca_file("readable.pem");
    fx.nonroot = true;
}

/// A FIFO nobody writes to: opening it for reading would block forever.
fn fifo(fx: &mut Fixture) {
    let path = fx.path("pipe.pem");
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: mkfifo(3) on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0, "mkfifo");
    fx.reject("pipe.pem", "not a regular file");
    fx.ca_file("ok.pem");
}

fn unix_socket(fx: &mut Fixture) {
    let path = fx.path("agent.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind a socket"));
    fx.reject("agent.sock", "not a regular file");
    fx.ca_file("ok.pem");
}

/// Devices behind symlinks: /dev/zero never ends, /dev/null is not an empty file.
fn device_symlinks(fx: &mut Fixture) {
    fx.symlink("/dev/zero", "zero.pem");
    fx.symlink("/dev/null", "null.pem");
    fx.reject("zero.pem", "not a regular file");
    fx.reject("null.pem", "not a regular file");
    fx.ca_file("ok.pem");
}

/// `prefix` padded with text lines to exactly `size` bytes.
fn padded(prefix: &[u8], size: usize) -> Vec<u8> {
    let mut bytes = prefix.to_vec();
    while bytes.len() < size {
        bytes.push(if bytes.len() % 64 == 63 { b'\n' } else { b'x' });
    }
    bytes.truncate(size);
    *bytes.last_mut().expect("not empty") = b'\n';
    bytes
}

/// 50 MiB starting with a good CA: rejected whole, without being read whole.
fn fifty_mib_file(fx: &mut Fixture) {
    let pem = Ca::new("inside 50 MiB").cert.pem();
    fx.write("huge.pem", padded(pem.as_bytes(), 50 << 20));
    fx.reject("huge.pem", "too large");
    fx.ca_file("ok.pem");
}

/// The limit is 1 MiB per file: exactly 1 MiB is allowed, one byte more is "too large".
fn one_mib_boundary(fx: &mut Fixture) {
    let ca = Ca::new("exactly 1 MiB").cert;
    fx.write("exactly-1mib.pem", padded(ca.pem().as_bytes(), 1 << 20));
    fx.accept("exactly-1mib.pem", &[&ca]);
    let over = Ca::new("1 MiB + 1").cert;
    fx.write(
        "over-1mib.pem",
        padded(over.pem().as_bytes(), (1 << 20) + 1),
    );
    fx.reject("over-1mib.pem", "too large");
}

/// A key alone, and a good CA followed by the key: both rejected whole, loudly.
fn private_key(fx: &mut Fixture, label: &str) {
    let key = pki::private_key_pem(label);
    fx.write("key.pem", &key);
    fx.reject("key.pem", "private key");
    let ca = Ca::new(&format!("next to a {label}")).cert;
    fx.write("ca-and-key.pem", ca.pem() + &key);
    fx.reject("ca-and-key.pem", "private key");
    fx.ca_file("ok.pem");
}

fn private_key_pkcs8(fx: &mut Fixture) {
    private_key(fx, "PRIVATE KEY");
}

fn private_key_rsa(fx: &mut Fixture) {
    private_key(fx, "RSA PRIVATE KEY");
}

fn private_key_ec(fx: &mut Fixture) {
    private_key(fx, "EC PRIVATE KEY");
}

fn private_key_encrypted(fx: &mut Fixture) {
    private_key(fx, "ENCRYPTED PRIVATE KEY");
}

fn private_key_openssh(fx: &mut Fixture) {
    private_key(fx, "OPENSSH PRIVATE KEY");
}

fn private_key_before_ca(fx: &mut Fixture) {
    let ca = Ca::new("after a key").cert;
    fx.write(
        "bundle.pem",
        pki::private_key_pem("EC PRIVATE KEY") + "\n" + &ca.pem(),
    );
    fx.reject("bundle.pem", "private key");
}

fn leaf_ca_false(fx: &mut Fixture) {
    let leaf = Ca::new("issuer of a leaf").leaf("leaf");
    fx.write("leaf.pem", leaf.pem());
    fx.reject("leaf.pem", "not a ca");
}

fn no_basic_constraints(fx: &mut Fixture) {
    fx.write(
        "nobc.pem",
        pki::no_basic_constraints("no basicConstraints").pem(),
    );
    fx.reject("nobc.pem", "not a ca");
}

fn key_usage_without_cert_sign(fx: &mut Fixture) {
    fx.write(
        "nosign.pem",
        pki::ca_without_cert_sign("no keyCertSign").pem(),
    );
    fx.reject("nosign.pem", "not a ca");
}

fn ca_and_leaf_in_one_file(fx: &mut Fixture) {
    let ca = Ca::new("chain root");
    fx.write("chain.pem", ca.cert.pem() + &ca.leaf("chain leaf").pem());
    fx.reject("chain.pem", "not a ca");
}

fn expired(fx: &mut Fixture) {
    fx.write("expired.pem", pki::expired_ca("expired").pem());
    fx.reject("expired.pem", "expired");
}

fn not_yet_valid(fx: &mut Fixture) {
    fx.write("future.pem", pki::not_yet_valid_ca("future").pem());
    fx.reject("future.pem", "not yet valid");
}

fn expired_next_to_good(fx: &mut Fixture) {
    let good = Ca::new("good beside expired").cert;
    fx.write(
        "mixed.pem",
        good.pem() + &pki::expired_ca("expired beside good").pem(),
    );
    fx.reject("mixed.pem", "expired");
}

fn empty_file(fx: &mut Fixture) {
    fx.write("empty.pem", "");
    fx.reject("empty.pem", "empty");
}

fn der_with_trailing_junk(fx: &mut Fixture) {
    let mut bytes = Ca::new("der then junk").cert.der;
    bytes.extend_from_slice(b"junk after the certificate\n");
    fx.write("junk.der", bytes);
    fx.reject("junk.der", "trailing");
}

fn malformed_base64(fx: &mut Fixture) {
    let pem = Ca::new("bad base64").cert.pem();
    let mut lines: Vec<String> = pem.lines().map(str::to_owned).collect();
    lines[3].replace_range(10..12, "!?");
    fx.write("bad64.pem", lines.join("\n") + "\n");
    fx.reject("bad64.pem", "malformed pem");
}

fn begin_without_end(fx: &mut Fixture) {
    let pem = Ca::new("cut short").cert.pem();
    let cut = pem.find("-----END").expect("an END line");
    fx.write("truncated.pem", &pem[..cut]);
    fx.reject("truncated.pem", "malformed pem");
}

fn text_without_pem(fx: &mut Fixture) {
    fx.write("readme.txt", "Put your corporate CA here.\n");
    fx.reject("readme.txt", "no certificate");
}

fn pem_without_certificate(fx: &mut Fixture) {
    fx.write("public.pem", pki::public_key_pem());
    fx.reject("public.pem", "no certificate");
    fx.write("request.csr", pki::csr_pem("a request"));
    fx.reject("request.csr", "no certificate");
}

fn binary_noise(fx: &mut Fixture) {
    fx.write("noise.bin", noise(4096, 0x9e37_79b9_7f4a_7c15));
    fx.reject("noise.bin", "no certificate");
}

/// Deterministic pseudo-random bytes (xorshift), never starting with a DER SEQUENCE tag.
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect();
    bytes[0] = 0xA5;
    bytes
}

fn der_not_x509(fx: &mut Fixture) {
    fx.write("sequence.der", [0x30, 0x03, 0x02, 0x01, 0x05]);
    fx.reject("sequence.der", "no certificate");
}

fn trusted_certificate(fx: &mut Fixture) {
    let pem = pki::trusted_certificate_pem(&Ca::new("trusted form").cert);
    fx.write("trusted.pem", pem);
    fx.reject("trusted.pem", "trusted certificate");
}

/// Python 3.12 and older trust a v1 root as an anchor; 3.13's strict checks do not (these
/// fixtures are judged for 3.13; tests/tls_verdicts.rs has the v1 root in every runtime).
fn v1_self_signed_root(fx: &mut Fixture) {
    let (root, _) = pki::v1_pair(&format!("v1 root {}", fx.prefix));
    fx.write("v1-root.pem", root.pem());
    fx.reject("v1-root.pem", "not a ca for python 3.13+");
}

fn v1_not_self_signed(fx: &mut Fixture) {
    let (_, leaf) = pki::v1_pair(&format!("v1 issuer {}", fx.prefix));
    fx.write("v1-leaf.pem", leaf.pem());
    fx.reject("v1-leaf.pem", "not a ca");
}

fn odd_file_name(fx: &mut Fixture) {
    fx.ca_file("Corporate Root (prod) é.crt");
}

/// Every fixture: `fixture::NAME` tests each alone; `all_fixtures_in_one_directory` runs them
/// together, each in `certs/NAME/`.
macro_rules! fixtures {
    ($($name:ident),* $(,)?) => {
        const FIXTURES: &[(&str, fn(&mut Fixture))] = &[$((stringify!($name), $name)),*];

        mod fixture {
            $(
                #[test]
                fn $name() {
                    super::run_fixture(stringify!($name), super::$name);
                }
            )*
        }
    };
}

fixtures!(
    pem_single,
    two_certs_in_one_file,
    crlf,
    no_final_newline,
    text_around_pem,
    der_named_crt,
    der_named_pem,
    der_named_cer,
    der_without_extension,
    intermediate_ca,
    nested_directory,
    byte_order_of_paths,
    duplicate_across_files,
    duplicate_in_one_file,
    already_in_system_bundle,
    kubernetes_configmap,
    dot_files_skipped,
    symlink_to_file,
    symlinked_directory,
    symlink_loop,
    directory_symlink_cycle,
    dangling_symlink,
    unreadable_file,
    unreadable_directory,
    fifo,
    unix_socket,
    device_symlinks,
    fifty_mib_file,
    one_mib_boundary,
    private_key_pkcs8,
    private_key_rsa,
    private_key_ec,
    private_key_encrypted,
    private_key_openssh,
    private_key_before_ca,
    leaf_ca_false,
    no_basic_constraints,
    key_usage_without_cert_sign,
    ca_and_leaf_in_one_file,
    expired,
    not_yet_valid,
    expired_next_to_good,
    empty_file,
    der_with_trailing_junk,
    malformed_base64,
    begin_without_end,
    text_without_pem,
    pem_without_certificate,
    binary_noise,
    der_not_x509,
    trusted_certificate,
    v1_self_signed_root,
    v1_not_self_signed,
    odd_file_name,
);

fn run_fixture(name: &str, build: fn(&mut Fixture)) {
    let env = Env::new();
    let mut fx = Fixture::new(env.certs.clone(), String::new(), env.outside.clone());
    build(&mut fx);
    if fx.nonroot && !common::switch_users() {
        return;
    }
    let run = finish(env.command(fx.nonroot));
    let expect = Expectation::of(&[&fx], &env.system_ders);
    check(&env, &expect, &run, name);
    for (key, verdict) in &expect.results {
        if let Verdict::Failed("private key") = verdict {
            let file = key.rsplit('/').next().expect("a name");
            assert!(
                run.stderr_lines().iter().any(|l| l.contains(file)
                    && l.contains("private key")
                    && (l.contains("WARN") || l.contains("ERROR"))),
                "{name}: a private key is rejected loudly (a WARN or ERROR line naming {key}): {}",
                run.stderr
            );
        }
    }
}

/// Every fixture in one certs dir: the whole matrix at once, determinism, and the cache.
#[test]
fn all_fixtures_in_one_directory() {
    let env = Env::new();
    // As uid 65532 when possible, so the unreadable file means something.
    let nonroot = common::switch_users();
    let mut fixtures = Vec::new();
    for (name, build) in FIXTURES {
        let mut fx = Fixture::new(
            env.certs.join(name),
            format!("{name}/"),
            env.outside.join(name),
        );
        build(&mut fx);
        if fx.nonroot && !nonroot {
            fs::remove_dir_all(&fx.dir).expect("drop the case");
            continue;
        }
        fixtures.push(fx);
    }
    let expect = Expectation::of(&fixtures.iter().collect::<Vec<_>>(), &env.system_ders);
    let run = |what: &str| {
        let run = finish(env.command(nonroot));
        run.assert_code(0, what);
        run
    };

    let first = run("first run");
    let first_summary = check(&env, &expect, &first, "all fixtures, first run");
    let bundle = fs::read(&env.bundle).expect("the bundle");
    let cache = fs::read(env.cache()).expect("the cache");

    // Determinism: the same inputs to another target give the same bytes.
    let other = env.root.join("out/other.pem");
    let mut command = env.command(nonroot);
    command.env("VARDR_CA_BUNDLE", &other);
    finish(command).assert_code(0, "run to another target");
    assert!(
        fs::read(&other).expect("the other bundle") == bundle,
        "the same inputs built different bundles"
    );

    // Unchanged inputs: the cache answers, nothing is written, the verdicts are replayed.
    let before = fs::metadata(&env.bundle).expect("stat");
    let second = run("second run");
    let second_summary = summary(&second, "second run");
    assert_eq!(second_summary["action"], "reused", "{second_summary}");
    common::assert_logged(
        &second.stderr_lines(),
        "Certificates unchanged, skipping import",
        "a cache hit says so",
    );
    for field in [
        "results",
        "successful_imports",
        "failed_imports",
        "total_certificates",
        "bundle",
        "system_bundle",
        "system_certificates",
        "duplicates",
    ] {
        assert_eq!(
            second_summary[field], first_summary[field],
            "a cache hit replays {field}"
        );
    }
    let after = fs::metadata(&env.bundle).expect("stat");
    assert_eq!(
        (after.ino(), after.mtime(), after.mtime_nsec()),
        (before.ino(), before.mtime(), before.mtime_nsec()),
        "a cache hit rewrote the bundle"
    );
    assert_eq!(fs::read(&env.bundle).expect("bundle"), bundle);
    assert_eq!(fs::read(env.cache()).expect("cache"), cache);

    // One input's bytes change, size and mtime kept: the cache must notice.
    let noise_file = env.certs.join("binary_noise/noise.bin");
    let mtime = fs::metadata(&noise_file)
        .and_then(|m| m.modified())
        .expect("mtime");
    fs::write(&noise_file, noise(4096, 7)).expect("rewrite");
    fs::File::options()
        .write(true)
        .open(&noise_file)
        .and_then(|f| f.set_modified(mtime))
        .expect("restore mtime");
    let third = run("after changing one input's bytes");
    let third_summary = check(&env, &expect, &third, "after changing one input's bytes");
    assert_eq!(third_summary["action"], "built");

    // A new CA: built again, in its place in the order.
    let mut extra = Fixture::new(
        env.certs.join("zz_added"),
        "zz_added/".to_owned(),
        env.outside.join("zz_added"),
    );
    extra.ca_file("new.pem");
    fixtures.push(extra);
    let expect = Expectation::of(&fixtures.iter().collect::<Vec<_>>(), &env.system_ders);
    let fourth = run("after adding a CA");
    check(&env, &expect, &fourth, "after adding a CA");

    // A cache entry without an intact bundle is not a hit.
    let full = fs::read(&env.bundle).expect("bundle");
    fs::write(&env.bundle, &full[..full.len() / 2]).expect("truncate the bundle");
    let fifth = run("after truncating the bundle");
    check(&env, &expect, &fifth, "after truncating the bundle");
    fs::remove_file(&env.bundle).expect("remove the bundle");
    let sixth = run("after removing the bundle");
    check(&env, &expect, &sixth, "after removing the bundle");
}

#[test]
fn ten_thousand_files_are_scanned_and_the_next_one_is_too_many() {
    let env = Env::new();
    let first = Ca::new("first of 10001").cert;
    fs::write(env.certs.join("f00000.pem"), first.pem()).expect("write");
    for i in 1..10_000 {
        fs::write(env.certs.join(format!("f{i:05}.pem")), "x\n").expect("write");
    }
    let mut fx = Fixture::new(env.certs.clone(), String::new(), env.outside.clone());
    fx.accept("f00000.pem", &[&first]);
    for i in 1..10_000 {
        fx.reject(&format!("f{i:05}.pem"), "no certificate");
    }
    let run = env.run();
    check(
        &env,
        &Expectation::of(&[&fx], &env.system_ders),
        &run,
        "10000 files",
    );

    // The 10,001st file (last in byte order) is beyond the limit, even though it holds a CA.
    fs::write(env.certs.join("f10000.pem"), Ca::new("10001st").cert.pem()).expect("write");
    fx.reject("f10000.pem", "too many files");
    let run = env.run();
    check(
        &env,
        &Expectation::of(&[&fx], &env.system_ders),
        &run,
        "10001 files",
    );

    // Every name in the results counts, not only regular files: two dangling links sorted
    // first take two of the 10,000, so f09998 is the first name past the limit.
    let mut fx = Fixture::new(env.certs.clone(), String::new(), env.outside.clone());
    for link in ["a-dangling-0", "a-dangling-1"] {
        fx.symlink(env.outside.join("missing"), link);
        fx.reject(link, "dangling symlink");
    }
    fx.accept("f00000.pem", &[&first]);
    for i in 1..9_998 {
        fx.reject(&format!("f{i:05}.pem"), "no certificate");
    }
    fx.reject("f09998.pem", "too many files");
    let run = env.run();
    check(
        &env,
        &Expectation::of(&[&fx], &env.system_ders),
        &run,
        "two dangling links and 10001 files",
    );
}

#[test]
fn no_certs_dir_or_an_empty_one_builds_nothing() {
    let env = Env::new();
    let fx = Fixture::new(env.certs.clone(), String::new(), env.outside.clone());
    let expect = Expectation::of(&[&fx], &env.system_ders);
    let empty = check(&env, &expect, &env.run(), "empty certs dir");
    fs::remove_dir(&env.certs).expect("rmdir");
    let missing = check(&env, &expect, &env.run(), "missing certs dir");
    // No custom CA to merge: the system bundle is not read at all (the common start, kept
    // cheap), so the summary names none and counts none.
    for summary in [empty, missing] {
        assert!(summary["system_bundle"].is_null(), "{summary}");
        assert_eq!(
            summary["system_certificates"].as_u64(),
            Some(0),
            "{summary}"
        );
    }
}

/// A symlink to / in the certs directory: the walk stops at its limits instead of reading the
/// whole file system.
#[test]
fn a_symlink_to_the_root_stops_at_the_limits() {
    let env = Env::new();
    symlink("/", env.certs.join("root")).expect("symlink");
    let run = env.run();
    run.assert_code(0, "certs over a symlink to /");
    let summary = summary(&run, "symlink to /");
    let results = summary["results"].as_object().expect("results");
    assert!(results.len() <= 10_001, "{} results", results.len());
    assert!(
        results
            .values()
            .any(|v| v.as_str().is_some_and(|v| v.contains("too many"))),
        "a limit was reported"
    );
}

/// A private key in DER is a key too: rejected as `contains a private key` (PKCS#8, PKCS#1 RSA,
/// SEC1 EC, made by openssl), not as "not a DER X.509 certificate (parser error)".
#[test]
fn a_der_private_key_is_rejected_as_a_private_key() {
    let available = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        common::skip_outside_ci("openssl is not installed");
        return;
    }
    let env = Env::new();
    let openssl = |args: &[&str], out: &str| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .arg("-out")
            .arg(env.certs.join(out))
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-outform",
            "DER",
        ],
        "pkcs8.der",
    );
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-outform",
            "PEM",
        ],
        "rsa.pem.tmp",
    );
    let rsa_pem = env.certs.join("rsa.pem.tmp").to_string_lossy().into_owned();
    openssl(
        &["rsa", "-in", &rsa_pem, "-traditional", "-outform", "DER"],
        "pkcs1.der",
    );
    fs::remove_file(&rsa_pem).expect("remove");
    openssl(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-outform",
            "DER",
        ],
        "sec1.der",
    );
    fs::write(
        env.certs.join("ca.pem"),
        Ca::new("beside DER keys").cert.pem(),
    )
    .expect("write");
    let run = env.run();
    run.assert_code(0, "DER keys");
    let summary = summary(&run, "DER keys");
    for name in ["pkcs1.der", "pkcs8.der", "sec1.der"] {
        let verdict = summary["results"][name].as_str().unwrap_or_default();
        assert!(
            verdict.starts_with("FAILED: contains a private key"),
            "{name}: {verdict}"
        );
    }
    assert_eq!(summary["results"]["ca.pem"], "SUCCESS", "{summary}");
}

/// Two names that differ only in invalid UTF-8 bytes stay two results: a lossy conversion made
/// both `ca-\u{fffd}.pem`, a duplicate JSON key, and a JSON reader then showed only the SUCCESS
/// and hid the key's rejection.
#[test]
fn names_that_differ_in_invalid_utf8_stay_distinct() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    let name = |byte: u8| {
        std::ffi::OsStr::from_bytes(&[b'c', b'a', b'-', byte, b'.', b'p', b'e', b'm']).to_owned()
    };
    fs::write(
        env.certs.join(name(0xfe)),
        pki::private_key_pem("PRIVATE KEY"),
    )
    .expect("write");
    fs::write(
        env.certs.join(name(0xff)),
        Ca::new("invalid UTF-8 name").cert.pem(),
    )
    .expect("write");
    let run = env.run();
    run.assert_code(0, "invalid UTF-8 names");
    let line = run.stdout.trim();
    assert!(
        line.contains(r#""ca-\\xfe.pem":"FAILED: contains a private key"#),
        "{line}"
    );
    assert!(line.contains(r#""ca-\\xff.pem":"SUCCESS""#), "{line}");
    let summary = summary(&run, "invalid UTF-8 names");
    assert_eq!(
        summary["results"].as_object().map(|m| m.len()),
        Some(2),
        "{summary}"
    );
    assert_eq!(summary["failed_imports"], 1);
}
