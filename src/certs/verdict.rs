//! One file's bytes in, one verdict out: pure, no I/O, so every hostile input is a unit test.
//!
//! A file is accepted or rejected whole. Accepted means every certificate in it is a CA within its
//! validity period; anything else names the first problem found. Private keys are looked for
//! before anything is parsed, in the raw bytes, so a key in a block the PEM parser does not know
//! (`OPENSSH PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`) or in a malformed block still rejects the file.

use std::fmt;

use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::{self, PemObject, SectionKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::der;
use super::rules::{self, Link, Profile, Rule};

/// A CA certificate that may enter the bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ca {
    pub der: Vec<u8>,
    pub sha256: [u8; 32],
    /// For logs: the subject's common name, or the whole subject.
    pub subject: String,
    /// Unix seconds; the cache must not outlive the first expiry.
    pub not_after: i64,
    /// What chain building needs (a profile without partial chains).
    pub link: Link,
    /// Rules it breaks that the profile does not enforce: warnings, not rejections.
    pub warnings: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted(Vec<Ca>),
    Rejected(Reason),
}

/// Why a file stays out of the bundle. The `Display` text is the contract's `FAILED: reason`.
///
/// Serialisable (derived): it crosses the pipe from the certificate worker to PID 1 and is kept
/// in the cache record, so a reused pass reports the same reasons as the pass that built the
/// bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    PrivateKey(String),
    Empty,
    NoCertificate,
    /// Bytes without PEM armour that are not a DER certificate either.
    NotDer(String),
    MalformedPem(String),
    TrustedCertificate,
    InvalidDer {
        index: usize,
        error: String,
    },
    TrailingData {
        index: usize,
        bytes: usize,
    },
    NotCa {
        index: usize,
        subject: String,
        why: String,
    },
    /// OpenSSL's decoder refuses it: one such certificate makes the whole bundle unloadable.
    Undecodable {
        index: usize,
        why: String,
    },
    /// A rule the runtime's verifier applies (see [`rules`]).
    Refused {
        index: usize,
        subject: String,
        rule: Rule,
    },
    Expired {
        index: usize,
        subject: String,
        not_after: String,
    },
    NotYetValid {
        index: usize,
        subject: String,
        not_before: String,
        /// Unix seconds: when this verdict stops holding.
        starts: i64,
    },
    // Found while reading the directory, before any bytes are judged.
    TooLarge {
        limit: u64,
    },
    /// What it is instead: `FIFO`, `socket`, `device`, `directory`...
    NotRegular(String),
    Dangling,
    SymlinkLoop,
    PermissionDenied,
    TooManyFiles {
        limit: usize,
    },
    TooMuchData {
        limit: u64,
    },
    Unreadable(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::PrivateKey(label) => write!(
                f,
                "contains a private key ({label}): nothing from this file is used; mount only \
                 certificates in the certs directory"
            ),
            Reason::Empty => f.write_str("empty file"),
            Reason::NoCertificate => f.write_str(
                "no certificate found: expected PEM (-----BEGIN CERTIFICATE-----) or DER X.509",
            ),
            Reason::NotDer(error) => write!(
                f,
                "no certificate found: not PEM, and not a DER X.509 certificate ({error})"
            ),
            Reason::MalformedPem(error) => write!(f, "malformed PEM: {error}"),
            Reason::TrustedCertificate => f.write_str(
                "TRUSTED CERTIFICATE (OpenSSL trust attributes) is not accepted: its trust \
                 restrictions would be lost; convert it with `openssl x509 -in FILE -out FILE.crt`",
            ),
            Reason::InvalidDer { index, error } => {
                write!(f, "certificate {index}: invalid X.509 DER: {error}")
            }
            Reason::TrailingData { index, bytes } => write!(
                f,
                "certificate {index}: {bytes} bytes of trailing data after the DER certificate"
            ),
            Reason::NotCa {
                index,
                subject,
                why,
            } => write!(f, "certificate {index} ({subject}) is not a CA: {why}"),
            Reason::Undecodable { index, why } => write!(
                f,
                "certificate {index}: OpenSSL cannot decode it ({why}); one such certificate \
                 makes the whole bundle fail to load ('[X509] PEM lib' in Python), so it is \
                 left out; reissue it with a standard tool"
            ),
            Reason::Refused {
                index,
                subject,
                rule,
            } => write!(f, "certificate {index} ({subject}): {rule}"),
            Reason::Expired {
                index,
                subject,
                not_after,
            } => write!(f, "certificate {index} ({subject}) expired on {not_after}"),
            Reason::NotYetValid {
                index,
                subject,
                not_before,
                ..
            } => write!(
                f,
                "certificate {index} ({subject}) is not yet valid: valid from {not_before}"
            ),
            Reason::TooLarge { limit } => {
                write!(f, "too large: over {limit} bytes, not a certificate file")
            }
            Reason::NotRegular(kind) => write!(f, "not a regular file ({kind})"),
            Reason::Dangling => f.write_str("dangling symlink: its target does not exist"),
            Reason::SymlinkLoop => f.write_str("symlink loop"),
            Reason::PermissionDenied => {
                f.write_str("permission denied: make it readable by the container's user")
            }
            Reason::TooManyFiles { limit } => write!(
                f,
                "too many files: only the first {limit} names are read, and nothing after this one"
            ),
            Reason::TooMuchData { limit } => write!(
                f,
                "too much data: the certificates directory holds over {limit} bytes; this file \
                 was not read"
            ),
            Reason::Unreadable(error) => write!(f, "cannot read: {error}"),
        }
    }
}

/// Judges a file's bytes at `now` (Unix seconds) for the runtime `profile`.
pub fn judge(bytes: &[u8], now: i64, profile: Profile) -> Verdict {
    let armoured = contains(bytes, b"-----BEGIN ");
    match certificates(bytes, armoured) {
        Ok(ders) => match check_all(ders, now, profile) {
            Verdict::Rejected(Reason::InvalidDer { error, .. }) if !armoured => {
                Verdict::Rejected(Reason::NotDer(error))
            }
            verdict => verdict,
        },
        Err(reason) => Verdict::Rejected(reason),
    }
}

/// The DER certificates in a file, PEM or raw DER.
fn certificates(bytes: &[u8], armoured: bool) -> Result<Vec<Vec<u8>>, Reason> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Reason::Empty);
    }
    if let Some(label) = private_key_label(bytes) {
        return Err(Reason::PrivateKey(label));
    }
    if !armoured {
        // No armour: a DER private key (pki-types classifies the three forms by their first
        // fields), a single DER certificate, or nothing usable.
        if let Ok(key) = PrivateKeyDer::try_from(bytes) {
            return Err(Reason::PrivateKey(der_key_label(&key).to_owned()));
        }
        if let Some(label) = bare_base64_key(bytes) {
            return Err(Reason::PrivateKey(label.to_owned()));
        }
        return if bytes.first() == Some(&0x30) {
            Ok(vec![bytes.to_vec()])
        } else {
            Err(Reason::NoCertificate)
        };
    }
    // The parser skips sections it has no kind for; this one must not be skipped silently.
    if begin_labels(bytes).any(|label| label == b"TRUSTED CERTIFICATE") {
        return Err(Reason::TrustedCertificate);
    }
    let mut ders = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        match section {
            Ok((SectionKind::Certificate, der)) => ders.push(der),
            Ok(_) => {} // a CRL or public key next to the certificates is harmless
            Err(error) => return Err(Reason::MalformedPem(pem_error(&error))),
        }
    }
    if ders.is_empty() {
        return Err(Reason::NoCertificate);
    }
    Ok(ders)
}

fn check_all(ders: Vec<Vec<u8>>, now: i64, profile: Profile) -> Verdict {
    let mut cas = Vec::with_capacity(ders.len());
    for (i, der) in ders.into_iter().enumerate() {
        match check(der, i + 1, now, profile) {
            Ok(ca) => cas.push(ca),
            Err(reason) => return Verdict::Rejected(reason),
        }
    }
    Verdict::Accepted(cas)
}

/// One certificate (`index` counts from 1, for messages).
fn check(der: Vec<u8>, index: usize, now: i64, profile: Profile) -> Result<Ca, Reason> {
    // A certificate is a constructed SEQUENCE: 0x30. The parser also takes the primitive form
    // (0x10), which OpenSSL refuses, and one such block makes OpenSSL refuse the whole bundle
    // (found by the certs_dir fuzz target).
    if let Some(&first) = der.first()
        && first != 0x30
    {
        return Err(Reason::InvalidDer {
            index,
            error: format!("it starts with 0x{first:02x}, not 0x30 (a DER SEQUENCE)"),
        });
    }
    let (rest, cert) = rules::parse(&der).map_err(|e| Reason::InvalidDer { index, error: e })?;
    if !rest.is_empty() {
        return Err(Reason::TrailingData {
            index,
            bytes: rest.len(),
        });
    }
    // Parsed, it may still be refused by OpenSSL's decoder (x509-parser is more lenient).
    if let Some(why) = der::refusal(&der) {
        return Err(Reason::Undecodable { index, why });
    }
    let subject = subject_name(&cert);
    let judged = rules::judge(&cert, &der);
    let mut warnings = Vec::new();
    for rule in judged.broken {
        if !profile.enforces(rule.scope()) {
            warnings.push(rule);
        } else if let Rule::NotCa(why) = rule {
            return Err(Reason::NotCa {
                index,
                subject,
                why,
            });
        } else {
            return Err(Reason::Refused {
                index,
                subject,
                rule,
            });
        }
    }
    let validity = cert.validity();
    if validity.not_after.timestamp() < now {
        return Err(Reason::Expired {
            index,
            subject,
            not_after: crate::events::date(validity.not_after.timestamp()),
        });
    }
    if validity.not_before.timestamp() > now {
        return Err(Reason::NotYetValid {
            index,
            subject,
            not_before: crate::events::date(validity.not_before.timestamp()),
            starts: validity.not_before.timestamp(),
        });
    }
    let not_after = validity.not_after.timestamp();
    drop(cert);
    Ok(Ca {
        sha256: Sha256::digest(&der).into(),
        der,
        subject,
        not_after,
        link: judged.link,
        warnings,
    })
}

fn subject_name(cert: &x509_parser::prelude::X509Certificate<'_>) -> String {
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok());
    match cn {
        Some(cn) => format!("CN={cn}"),
        None => cert.subject().to_string(),
    }
}

/// Whether the bytes hold a private key anywhere (used on the system bundle, copied verbatim).
pub fn has_private_key(bytes: &[u8]) -> bool {
    private_key_label(bytes).is_some()
}

/// The label of the first private key block, looked for anywhere in the bytes (not only at line
/// starts, where a PEM parser looks) and in any case (`-----BEGIN private key-----`, `PGP PRIVATE
/// KEY BLOCK`), or a PuTTY key file: a key must never slip through on a formatting technicality.
fn private_key_label(bytes: &[u8]) -> Option<String> {
    if contains(bytes, b"PuTTY-User-Key-File-") {
        return Some("PuTTY private key".to_owned());
    }
    let lower = bytes.to_ascii_lowercase();
    let end = memchr::memmem::find_iter(&lower, b"private key").find_map(|at| {
        let after = &lower[at + 11..];
        let block = after.starts_with(b" block-----");
        (after.starts_with(b"-----") || block).then_some(at + if block { 17 } else { 11 })
    })?;
    let start = lower[..end]
        .windows(11)
        .rposition(|w| w == b"-----begin ")
        .map(|i| i + 11);
    let label = match start {
        Some(start) if end - start <= 64 => &bytes[start..end],
        _ => b"PRIVATE KEY".as_slice(),
    };
    Some(String::from_utf8_lossy(label).into_owned())
}

/// A private key in base64 without armour (PKCS#8, PKCS#1 or SEC1 DER, base64-encoded).
fn bare_base64_key(bytes: &[u8]) -> Option<&'static str> {
    let text: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = data_encoding::BASE64.decode(&text).ok()?;
    let key = PrivateKeyDer::try_from(der.as_slice()).ok()?;
    Some(match key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY, base64 without armour",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY, base64 without armour",
        _ => "PRIVATE KEY, base64 without armour",
    })
}

/// What a DER private key is, in the words of its PEM label.
fn der_key_label(key: &PrivateKeyDer<'_>) -> &'static str {
    match key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY, DER",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY, DER",
        _ => "PRIVATE KEY, PKCS#8 DER",
    }
}

/// Labels of `-----BEGIN LABEL-----` lines.
fn begin_labels(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.trim_ascii();
        line.strip_prefix(b"-----BEGIN ")?.strip_suffix(b"-----")
    })
}

fn pem_error(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "no -----END {}----- line",
            String::from_utf8_lossy(end_marker).trim_end()
        ),
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is not well formed".into(),
        pem::Error::Base64Decode(_) => "invalid base64 inside a PEM block".into(),
        other => other.to_string(),
    }
}

/// The first position of `needle` in `haystack` (memchr's SIMD substring search: this runs over
/// every input file and the 220 KB system bundle on every start).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };

    const NOW: i64 = 1_800_000_000; // 2027-01-15
    const P: Profile = Profile::OpenSsl;

    fn cert(ca: IsCa, usages: Vec<KeyUsagePurpose>, from: i64, to: i64) -> rcgen::Certificate {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "Test");
        params.is_ca = ca;
        params.key_usages = usages;
        params.not_before = rcgen::date_time_ymd(1970, 1, 1) + time_offset(from);
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + time_offset(to);
        let key = KeyPair::generate().expect("key");
        params.self_signed(&key).expect("signed")
    }

    fn time_offset(seconds: i64) -> std::time::Duration {
        std::time::Duration::from_secs(u64::try_from(seconds).expect("after 1970"))
    }

    fn ca() -> rcgen::Certificate {
        let ca = IsCa::Ca(BasicConstraints::Unconstrained);
        cert(ca, Vec::new(), NOW - 1000, NOW + 1000)
    }

    fn rejected(bytes: &[u8]) -> String {
        match judge(bytes, NOW, P) {
            Verdict::Rejected(reason) => reason.to_string(),
            Verdict::Accepted(_) => panic!("accepted {:?}", String::from_utf8_lossy(bytes)),
        }
    }

    #[test]
    fn accepts_pem_with_text_crlf_and_no_final_newline_and_der() {
        let (a, b) = (ca(), ca());
        let pem = format!(
            "subject=Test\r\n{}\r\ntrailing words",
            a.pem().replace('\n', "\r\n")
        );
        let both = format!("{}{}", a.pem(), b.pem().trim_end());
        for bytes in [pem.as_bytes(), both.as_bytes(), a.der().as_ref()] {
            let Verdict::Accepted(cas) = judge(bytes, NOW, P) else {
                panic!("rejected {:?}", String::from_utf8_lossy(bytes));
            };
            assert_eq!(cas[0].der, a.der().as_ref());
            assert_eq!(cas[0].subject, "CN=Test");
        }
        assert!(matches!(judge(both.as_bytes(), NOW, P), Verdict::Accepted(cas) if cas.len() == 2));
    }

    #[test]
    fn rejects_non_cas_and_certificates_outside_their_validity() {
        let leaf = cert(IsCa::ExplicitNoCa, Vec::new(), NOW - 10, NOW + 10);
        assert!(rejected(leaf.pem().as_bytes()).contains("CA:FALSE"));
        let bare = cert(IsCa::NoCa, Vec::new(), NOW - 10, NOW + 10);
        assert!(rejected(bare.pem().as_bytes()).contains("no basicConstraints"));
        let ca_flag = IsCa::Ca(BasicConstraints::Unconstrained);
        let no_sign = cert(
            ca_flag,
            vec![KeyUsagePurpose::DigitalSignature],
            0,
            NOW + 10,
        );
        assert!(rejected(no_sign.pem().as_bytes()).contains("keyCertSign"));
        let expired = cert(ca_flag, Vec::new(), 0, NOW - 10);
        assert!(rejected(expired.pem().as_bytes()).contains("expired"));
        let early = cert(ca_flag, Vec::new(), NOW + 10, NOW + 20);
        let Verdict::Rejected(Reason::NotYetValid { starts, .. }) = judge(early.der(), NOW, P)
        else {
            panic!("not-yet-valid accepted");
        };
        assert_eq!(starts, NOW + 10);
        // One bad certificate rejects the whole file, good ones beside it included.
        let mixed = format!("{}{}", ca().pem(), leaf.pem());
        assert!(rejected(mixed.as_bytes()).starts_with("certificate 2 "));
    }

    #[test]
    fn any_private_key_rejects_the_file() {
        let good = ca().pem();
        for label in [
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
        ] {
            let file = format!("{good}-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n");
            let reason = rejected(file.as_bytes());
            assert!(
                reason.contains(&format!("private key ({label})")),
                "{reason}"
            );
        }
        // Not at a line start, so no PEM parser would see it: still a key.
        let hidden = format!("{good} junk -----BEGIN PRIVATE KEY-----\n");
        assert!(rejected(hidden.as_bytes()).contains("private key"));
        // Forms a PEM parser does not know: lowercase labels, PGP, PuTTY.
        for (file, label) in [
            (
                format!("{good}-----begin private key-----\nAAAA\n"),
                "(private key)",
            ),
            (
                format!("{good}-----BEGIN PGP PRIVATE KEY BLOCK-----\nAAAA\n"),
                "(PGP PRIVATE KEY BLOCK)",
            ),
            (
                format!("{good}PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\nAAAA\n"),
                "(PuTTY private key)",
            ),
        ] {
            let reason = rejected(file.as_bytes());
            assert!(reason.contains(label), "{label}: {reason}");
        }
        // Words about keys are not keys.
        let text = format!("# this bundle holds no private key\n{good}");
        assert!(matches!(
            judge(text.as_bytes(), NOW, P),
            Verdict::Accepted(_)
        ));
    }

    /// A key in DER is a key too, not "not a DER X.509 certificate (parser error)"; in bare
    /// base64 too.
    #[test]
    fn a_der_private_key_rejects_the_file_as_a_key() {
        let key = KeyPair::generate().expect("key");
        let reason = rejected(&key.serialize_der());
        assert!(
            reason.starts_with("contains a private key (PRIVATE KEY, PKCS#8 DER)"),
            "{reason}"
        );
        let base64 = data_encoding::BASE64.encode(&key.serialize_der());
        let wrapped: Vec<&str> = (0..base64.len())
            .step_by(64)
            .map(|i| &base64[i..(i + 64).min(base64.len())])
            .collect();
        let reason = rejected(wrapped.join("\n").as_bytes());
        assert!(reason.contains("base64 without armour"), "{reason}");
    }

    #[test]
    fn rejects_garbage_with_the_right_reason() {
        let der = ca().der().to_vec();
        let mut trailing = der.clone();
        trailing.extend_from_slice(b"junk");
        let trusted = ca().pem().replace("CERTIFICATE", "TRUSTED CERTIFICATE");
        let truncated = ca().pem().replace("-----END CERTIFICATE-----", "");
        let bad_base64 = ca().pem().replacen("MII", "M!I", 1);
        // The outer SEQUENCE's tag in its primitive form (0x10): the parser alone takes it.
        let mut primitive = der.clone();
        primitive[0] = 0x10;
        let primitive = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            data_encoding::BASE64.encode(&primitive)
        );
        for (bytes, reason) in [
            (&b""[..], "empty file"),
            (&b" \n\t\r\n"[..], "empty file"),
            (&b"hello world\n"[..], "no certificate found"),
            (&b"\x30\x82\xff\xff garbage"[..], "not a DER X.509"),
            (
                &b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"[..],
                "no certificate",
            ),
            (&trailing[..], "trailing data"),
            (trusted.as_bytes(), "TRUSTED CERTIFICATE"),
            (truncated.as_bytes(), "malformed PEM"),
            (bad_base64.as_bytes(), "malformed PEM"),
            (primitive.as_bytes(), "not 0x30"),
        ] {
            let got = rejected(bytes);
            assert!(got.contains(reason), "{reason:?} expected, got {got:?}");
        }
    }

    #[test]
    fn every_reason_survives_its_wire_form() {
        let s = || "x".to_owned();
        let reasons = [
            Reason::PrivateKey(s()),
            Reason::Empty,
            Reason::NoCertificate,
            Reason::NotDer(s()),
            Reason::MalformedPem(s()),
            Reason::TrustedCertificate,
            Reason::InvalidDer {
                index: 2,
                error: s(),
            },
            Reason::TrailingData { index: 3, bytes: 4 },
            Reason::NotCa {
                index: 1,
                subject: s(),
                why: "y".into(),
            },
            Reason::Undecodable { index: 1, why: s() },
            Reason::Refused {
                index: 1,
                subject: s(),
                rule: Rule::NoKeyUsage,
            },
            Reason::Expired {
                index: 1,
                subject: s(),
                not_after: "y".into(),
            },
            Reason::NotYetValid {
                index: 1,
                subject: s(),
                not_before: "y".into(),
                starts: -5,
            },
            Reason::TooLarge { limit: u64::MAX },
            Reason::NotRegular(s()),
            Reason::Dangling,
            Reason::SymlinkLoop,
            Reason::PermissionDenied,
            Reason::TooManyFiles { limit: 10_000 },
            Reason::TooMuchData { limit: 1 << 26 },
            Reason::Unreadable(s()),
        ];
        let mut seen = std::collections::HashSet::new();
        for reason in reasons {
            let json = serde_json::to_string(&reason).expect("serialise");
            assert!(seen.insert(json.clone()), "{json} twice");
            assert_eq!(serde_json::from_str::<Reason>(&json).expect("back"), reason);
        }
        assert!(serde_json::from_str::<Reason>("[10,1,0,\"x\",\"\",null]").is_err());
        assert!(serde_json::from_str::<Reason>("[99,0,0,\"\",\"\",null]").is_err());
    }

    /// `find` skips to candidate first bytes; it must agree with the plain window search
    /// everywhere, including partial matches that overlap the real one and matches at either end.
    #[test]
    fn find_agrees_with_a_window_search() {
        let naive = |h: &[u8], n: &[u8]| h.windows(n.len()).position(|w| w == n);
        let haystacks: [&[u8]; 8] = [
            b"",
            b"-",
            b"-----",
            b"----BEGIN ",
            b"-----BEGIN ",
            b"x-----BEGIN -----BEGIN ",
            b"--- ---- -----BEGI -----BEGIN CERT",
            b"PRIVATE KEY----PRIVATE KEY-----",
        ];
        for haystack in haystacks {
            for needle in [&b"-----BEGIN "[..], b"PRIVATE KEY-----", b"-", b"N "] {
                assert_eq!(
                    find(haystack, needle),
                    naive(haystack, needle),
                    "{haystack:?} {needle:?}"
                );
            }
        }
    }
}
