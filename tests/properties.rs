//! Properties of the certificate pass for any mix of inputs, checked with proptest on the real
//! path (`certs::prepare` over a directory on disk, then `Pass::apply`): valid CAs (PEM, DER,
//! several per file, repeated across files and in the system bundle), leaves, expired CAs, CAs
//! that may not sign, private keys, truncated PEM, text and random bytes.
//!
//! For every input set: the bundle is exactly the system bundle's bytes (when it holds a
//! certificate; otherwise it is left out), then each CA of the
//! accepted files once, in file order, as strict PEM, and nothing else (so no duplicates and no
//! private key); it parses back to those certificates; the verdicts are what the inputs deserve;
//! and it does not depend on the order the files were created in, nor change when run again.
//!
//! The inputs are certificates made once per run (rcgen); proptest picks and combines them. A
//! failure prints the minimal input set it shrank to.

mod common;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;
use std::time::SystemTime;

use common::pki::{self, Ca, Cert};
use proptest::prelude::*;
use vardr_init::certs::rules::Profile;
use vardr_init::certs::{self, Action, bundle};
use vardr_init::config::CertSettings;

/// How many distinct valid CAs the inputs draw from: few, so repeats are common.
const CAS: usize = 4;
const KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"];

struct Pool {
    cas: Vec<Cert>,
    leaf: Cert,
    expired: Cert,
    not_signing: Cert,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let root = Ca::new("property root");
        Pool {
            cas: (0..CAS)
                .map(|i| Ca::new(&format!("property CA {i}")).cert)
                .collect(),
            leaf: root.leaf("property leaf"),
            expired: pki::expired_ca("property expired"),
            not_signing: pki::ca_without_cert_sign("property no keyCertSign"),
        }
    })
}

/// One part of a PEM file.
#[derive(Clone, Debug)]
enum Piece {
    Ca(usize),
    /// A line of text between blocks (what `openssl x509 -text` or a person adds).
    Text(String),
    Leaf,
    Expired,
    NotSigning,
    Key(usize),
    /// A CA's PEM without its END line.
    Truncated(usize),
}

#[derive(Clone, Debug)]
enum Input {
    Pem(Vec<Piece>),
    Der(usize),
    Garbage(Vec<u8>),
}

impl Input {
    fn bytes(&self) -> Vec<u8> {
        let pool = pool();
        match self {
            Input::Der(i) => pool.cas[*i].der.clone(),
            Input::Garbage(bytes) => bytes.clone(),
            Input::Pem(pieces) => pieces
                .iter()
                .map(|piece| match piece {
                    Piece::Ca(i) => pool.cas[*i].pem(),
                    Piece::Text(text) => format!("{text}\n"),
                    Piece::Leaf => pool.leaf.pem(),
                    Piece::Expired => pool.expired.pem(),
                    Piece::NotSigning => pool.not_signing.pem(),
                    Piece::Key(label) => pki::private_key_pem(KEY_LABELS[*label]),
                    Piece::Truncated(i) => pool.cas[*i]
                        .pem()
                        .replace("-----END CERTIFICATE-----\n", ""),
                })
                .collect::<String>()
                .into_bytes(),
        }
    }

    /// The CAs this file brings if it is accepted, or `None` if it must be rejected: a file is
    /// all good CAs (text around them allowed) or it is out.
    fn accepted(&self) -> Option<Vec<Vec<u8>>> {
        let cas = &pool().cas;
        match self {
            Input::Der(i) => Some(vec![cas[*i].der.clone()]),
            // Fewer than 64 random bytes are never a CA certificate.
            Input::Garbage(_) => None,
            Input::Pem(pieces) => {
                let mut ders = Vec::new();
                for piece in pieces {
                    match piece {
                        Piece::Ca(i) => ders.push(cas[*i].der.clone()),
                        Piece::Text(_) => {}
                        _ => return None,
                    }
                }
                (!ders.is_empty()).then_some(ders)
            }
        }
    }
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        6 => (0..CAS).prop_map(Piece::Ca),
        3 => "[a-zA-Z0-9 #:=.]{0,30}".prop_map(Piece::Text),
        1 => Just(Piece::Leaf),
        1 => Just(Piece::Expired),
        1 => Just(Piece::NotSigning),
        1 => (0..KEY_LABELS.len()).prop_map(Piece::Key),
        1 => (0..CAS).prop_map(Piece::Truncated),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        8 => prop::collection::vec(piece(), 1..4).prop_map(Input::Pem),
        1 => (0..CAS).prop_map(Input::Der),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Input::Garbage),
    ]
}

/// A system bundle: comments and some of the same CAs, with or without a final newline.
fn system() -> impl Strategy<Value = Vec<u8>> {
    let part = prop_oneof![
        (0..CAS).prop_map(|i| pool().cas[i].pem()),
        "# [a-zA-Z0-9 ]{0,30}\n",
    ];
    (prop::collection::vec(part, 0..4), any::<bool>()).prop_map(|(parts, trim)| {
        let text = parts.concat();
        let text = if trim { text.trim_end() } else { &text[..] };
        text.as_bytes().to_vec()
    })
}

/// The inputs, and the order to create their files in (a permutation of their indices).
fn case() -> impl Strategy<Value = (Vec<u8>, Vec<Input>, Vec<usize>)> {
    (system(), prop::collection::vec(input(), 0..8)).prop_flat_map(|(system, inputs)| {
        let order = Just((0..inputs.len()).collect::<Vec<_>>()).prop_shuffle();
        (Just(system), Just(inputs), order)
    })
}

/// Writes the system bundle and the files (`f00.pem`, `f01.pem`, ... in `order`) under `root`.
fn setup(root: &Path, system: &[u8], inputs: &[Input], order: &[usize]) -> CertSettings {
    let settings = CertSettings {
        dir: root.join("certs"),
        bundle: root.join("out/bundle.pem"),
        system_bundle: Some(root.join("system.pem")),
        strict: false,
        extra_vars: false,
        python_hook: false,
        python_logs: Default::default(),
        python_path: None,
        inherited: Vec::new(),
        tls_profile: None,
        keep_bundle: false,
    };
    fs::create_dir(&settings.dir).expect("mkdir certs");
    fs::create_dir(root.join("out")).expect("mkdir out");
    fs::write(root.join("system.pem"), system).expect("write the system bundle");
    for &i in order {
        let path = settings.dir.join(format!("f{i:02}.pem"));
        fs::write(path, inputs[i].bytes()).expect("write an input");
    }
    settings
}

/// The rules of any OpenSSL client: the pool's CAs are accepted (rcgen's carry no keyUsage,
/// which Python 3.13 would refuse; tests/tls_verdicts.rs covers the runtimes).
const PROFILE: Profile = Profile::OpenSsl;

/// 48 cases keep the suite fast (about a second); `PROPTEST_CASES=N` asks for more.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok());
    ProptestConfig::with_cases(cases.unwrap_or(48))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_bundle_is_the_system_bundle_then_each_accepted_ca_once(
        (system, inputs, order) in case()
    ) {
        let now = SystemTime::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = setup(dir.path(), &system, &inputs, &(0..inputs.len()).collect::<Vec<_>>());
        let pass = certs::prepare(&settings, PROFILE, now);

        // The verdicts are what each input deserves.
        prop_assert_eq!(pass.summary.results.len(), inputs.len());
        for (i, (input, result)) in inputs.iter().zip(&pass.summary.results).enumerate() {
            prop_assert_eq!(&result.name, &format!("f{i:02}.pem"));
            prop_assert_eq!(result.verdict.is_accepted(), input.accepted().is_some(), "{:?}: {}", input, result.detail());
        }

        // The bundle: the system bundle (if it holds a certificate), then each accepted CA once,
        // in file order.
        let system_ders = pki::certificates_in(&system);
        let expected: Vec<Vec<u8>> = pki::unique(
            &inputs.iter().filter_map(Input::accepted).flatten().collect::<Vec<_>>(),
        )
        .into_iter()
        .filter(|der| !system_ders.contains(der))
        .collect();
        let Action::Build { bytes, .. } = &pass.action else {
            prop_assert_eq!(&pass.action, &Action::Nothing);
            prop_assert!(inputs.iter().all(|input| input.accepted().is_none()));
            prop_assert_eq!(pass.apply(), Ok(None));
            prop_assert!(!settings.bundle.exists(), "a bundle without an accepted CA");
            return Ok(());
        };
        prop_assert_eq!(pass.apply(), Ok(Some(settings.bundle.as_path())));
        // The system bundle's certificates first, re-encoded (no comments), then exactly
        // `expected` as strict PEM, no private key anywhere, mode 0644. A system bundle without a
        // certificate (comments only) is left out, with a warning.
        let system_used = !system_ders.is_empty();
        let prefix: Vec<u8> = system_ders
            .iter()
            .flat_map(|der| pki::pem("CERTIFICATE", der).into_bytes())
            .collect();
        let prefix = &prefix[..];
        prop_assert_eq!(pass.system.is_some(), system_used);
        let written = pki::assert_bundle(&settings.bundle, prefix, &expected, "property");
        prop_assert_eq!(&written, bytes);
        prop_assert_eq!(pass.summary.system_certificates, system_ders.len());
        prop_assert_eq!(pass.summary.custom_certificates, expected.len());

        // It parses back: the lenient reader and the library's own see every certificate.
        let all: Vec<Vec<u8>> = system_ders.iter().chain(&expected).cloned().collect();
        prop_assert_eq!(pki::certificates_in(bytes), all.clone());
        prop_assert_eq!(bundle::certificates(bytes).collect::<Vec<_>>(), all.clone());
        prop_assert_eq!(bundle::count(bytes), Ok(all.len()));

        // Deterministic: the same inputs created in another order give the same bytes, and the
        // next start reuses the bundle with the same verdicts.
        let other = tempfile::tempdir().expect("tempdir");
        let again = certs::prepare(&setup(other.path(), &system, &inputs, &order), PROFILE, now);
        let Action::Build { bytes: same, .. } = &again.action else {
            return Err(TestCaseError::fail(format!("no bundle the second time: {again:?}")));
        };
        prop_assert_eq!(same, bytes);
        prop_assert_eq!(&again.summary.results, &pass.summary.results);
        // The next start reuses it, whether the system bundle came through byte for byte or
        // was filtered (then both files are hashed instead of compared).
        let reused = certs::prepare(&settings, PROFILE, now);
        prop_assert_eq!(&reused.action, &Action::Reuse);
        prop_assert_eq!(&reused.summary.results, &pass.summary.results);
    }
}
