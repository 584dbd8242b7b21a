//! A whole certificates directory -> bundle, through the real path: the input becomes a system
//! bundle and a directory of files on disk, then `certs::prepare` (scan, verdicts, cache key,
//! merge) and `Pass::apply` (atomic write, read-back check, cache record) run as a start would.
//!
//! Input format (easy to write by hand, so the seeds are readable): the system bundle's bytes,
//! then any number of `%%FILE:name\n` followed by that file's bytes. A `/` in a name makes
//! subdirectories and a 0x01 byte a newline; a name starting with `.` is written and, as in
//! Kubernetes mounts, skipped.
//!
//! Checked on every input: preparing twice decides the same; a bundle is built exactly when a
//! file is accepted; the system bundle is used exactly when it holds no private key, is text and
//! its PEM parses with a certificate, and then the bundle starts with it byte for byte; then only
//! canonical CERTIFICATE blocks, each an accepted CA, none twice, none already in the system
//! bundle; no private key anywhere in it; it counts what the pass says; once applied, the file on
//! disk is those bytes and the next start decides the same (a reuse, or while a system bundle
//! left out for its PEM is still there, the same build).
#![no_main]

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use data_encoding::BASE64;
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::pem::{PemObject, SectionKind};
use vardr_init::certs::verdict::{Verdict, has_private_key, judge};
use vardr_init::certs::{self, Action, bundle};
use vardr_init::certs::rules::Profile;
use vardr_init::config::CertSettings;

const NOW: i64 = 1_800_000_000; // as in the verdict target
/// Python 3.12: every rule, and chains built across files and the system bundle.
const PROFILE: Profile = Profile::Python { minor: 12 };
const MARK: &[u8] = b"%%FILE:";
const MAX_FILES: usize = 64;

/// A directory of this process's own under `TMPDIR`, which scripts/fuzz.sh points at a directory
/// it removes afterwards (on tmpfs when there is one: fsync is free there).
fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("vardr-fuzz-certs-{}", std::process::id()));
        fs::create_dir_all(&root).expect("fuzz root");
        root
    })
}

/// `name` made into a relative path of ordinary components (no `..`, no empty ones).
fn sanitise(name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut path = PathBuf::new();
    for part in name.split(|&b| b == b'/').take(4) {
        // NUL cannot be in a name; 0x01 stands for a newline, which ends the name in the input.
        let part: Vec<u8> = part
            .iter()
            .take(64)
            .map(|&b| match b {
                0 => b'_',
                1 => b'\n',
                b => b,
            })
            .collect();
        match &part[..] {
            b"" => {}
            b"." | b".." => path.push("_"),
            _ => path.push(std::ffi::OsStr::from_bytes(&part)),
        }
    }
    if path.as_os_str().is_empty() {
        path.push("unnamed");
    }
    path
}

/// Names and contents of the files to write.
type Files<'a> = Vec<(&'a [u8], &'a [u8])>;

/// The system bundle's bytes and the files, as the module docs describe.
fn split(data: &[u8]) -> (&[u8], Files<'_>) {
    let mut parts = Vec::new();
    let mut rest = data;
    let system = match find(rest, MARK) {
        Some(i) => {
            let system = &rest[..i];
            rest = &rest[i + MARK.len()..];
            loop {
                let end = find(rest, MARK).unwrap_or(rest.len());
                let record = &rest[..end];
                let (name, bytes) = match record.iter().position(|&b| b == b'\n') {
                    Some(nl) => (&record[..nl], &record[nl + 1..]),
                    None => (record, &b""[..]),
                };
                parts.push((name, bytes));
                if end == rest.len() || parts.len() == MAX_FILES {
                    break;
                }
                rest = &rest[end + MARK.len()..];
            }
            system
        }
        None => data,
    };
    (system, parts)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn pem(der: &[u8]) -> Vec<u8> {
    let mut out = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    for line in BASE64.encode(der).as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END CERTIFICATE-----\n");
    out
}

fuzz_target!(|data: &[u8]| {
    let root = root();
    let dir = root.join("certs");
    let out = root.join("out");
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(&out);
    fs::create_dir(&dir).expect("certs dir");
    fs::create_dir(&out).expect("out dir");
    let (system, files) = split(data);
    let system_path = root.join("system.pem");
    fs::write(&system_path, system).expect("system bundle");
    for (name, bytes) in &files {
        let path = dir.join(sanitise(name));
        if let Some(parent) = path.parent() {
            let _ = fs::create_dir_all(parent);
        }
        // A name clashing with a directory made for another one is simply not written.
        let _ = fs::write(&path, bytes);
    }
    let settings = CertSettings {
        dir,
        bundle: out.join("bundle.pem"),
        system_bundle: Some(system_path),
        strict: false,
        extra_vars: false,
        python_hook: false,
        python_logs: Default::default(),
        python_path: None,
        inherited: Vec::new(),
        tls_profile: None,
        keep_bundle: false,
    };
    let now = UNIX_EPOCH + Duration::from_secs(NOW as u64);

    let pass = certs::prepare(&settings, PROFILE, now);
    assert_eq!(
        certs::prepare(&settings, PROFILE, now),
        pass,
        "two passes over the same inputs differ"
    );
    assert_eq!(pass.successful() + pass.failed(), pass.summary.results.len());
    let Action::Build { bytes, .. } = &pass.action else {
        assert_eq!(pass.action, Action::Nothing);
        assert_eq!(
            pass.successful(),
            0,
            "accepted files but no bundle: {pass:?}"
        );
        return;
    };
    assert!(pass.successful() > 0, "a bundle without an accepted file");

    // The system bundle: used if it is text and holds a certificate OpenSSL decodes; then its
    // part is exactly those certificates, in order, re-encoded, and nothing else (no text, no
    // key, no other block). Being text is checked on every start, the rest when building.
    let not_text = std::str::from_utf8(system).is_err();
    let kept: Vec<Vec<u8>> = if not_text {
        Vec::new()
    } else {
        <(SectionKind, Vec<u8>)>::pem_slice_iter(system)
            .filter_map(Result::ok)
            .filter(|(kind, der)| *kind == SectionKind::Certificate && bundle::loadable(der).is_ok())
            .map(|(_, der)| der)
            .collect()
    };
    let system_used = !kept.is_empty();
    assert_eq!(pass.system.is_some(), system_used, "{:?}", pass.warnings);
    assert_eq!(pass.summary.system_certificates, kept.len());
    let system_part: Vec<u8> = kept.iter().flat_map(|der| pem(der)).collect();
    assert!(
        bytes.starts_with(&system_part),
        "the system part is not its loadable certificates, first and in order"
    );
    let custom = &bytes[system_part.len()..];

    // Then only canonical CERTIFICATE blocks of accepted CAs, each once.
    let system_ders: HashSet<Vec<u8>> = kept.iter().cloned().collect();
    let mut seen = HashSet::new();
    let mut canonical = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(custom) {
        let (kind, der) = section.expect("the custom part does not parse");
        assert_eq!(kind, SectionKind::Certificate);
        assert!(
            !system_ders.contains(&der),
            "a custom CA duplicates a system one"
        );
        assert!(seen.insert(der.clone()), "a custom CA appears twice");
        assert!(
            matches!(judge(&der, NOW, PROFILE), Verdict::Accepted(_)),
            "not an accepted CA"
        );
        canonical.extend(pem(&der));
    }
    assert_eq!(
        custom,
        &canonical[..],
        "something besides canonical certificates"
    );
    assert_eq!(seen.len(), pass.summary.custom_certificates);
    assert!(
        !has_private_key(bytes),
        "private key material in the bundle"
    );

    // Applying never fails here (a writable directory, a bundle that parses); the next start
    // reuses it, whether the system bundle came through byte for byte or was filtered.
    match pass.apply() {
        Ok(path) => {
            assert_eq!(path, Some(settings.bundle.as_path()));
            assert_eq!(fs::read(&settings.bundle).expect("bundle"), *bytes);
            assert_eq!(
                bundle::count(bytes),
                Ok(pass.summary.system_certificates + pass.summary.custom_certificates)
            );
            let again = certs::prepare(&settings, PROFILE, now);
            assert_eq!(again.action, Action::Reuse, "the next start rebuilds");
            assert_eq!(again.summary.results, pass.summary.results);
            assert_eq!(
                (
                    again.summary.system_certificates,
                    again.summary.custom_certificates,
                    again.summary.duplicates
                ),
                (
                    pass.summary.system_certificates,
                    pass.summary.custom_certificates,
                    pass.summary.duplicates
                )
            );
        }
        Err(e) => panic!("apply failed: {e}"),
    }
});
