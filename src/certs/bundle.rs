//! The merge: system bundle and accepted CAs in, bundle bytes out. Pure, tested on bytes.
//!
//! The system bundle is copied byte for byte, not filtered: distributions ship expired or
//! cross-signed roots on purpose, and second-guessing them is not this tool's job. Custom CAs
//! follow in input order, each once (by SHA-256 of its DER, also against the system's own), each
//! re-encoded from its DER so nothing but the certificate itself (no comments, no other blocks)
//! reaches the bundle.

use std::collections::HashSet;

use data_encoding::BASE64;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

use super::verdict::Ca;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    pub bytes: Vec<u8>,
    pub system_certificates: usize,
    /// Custom CAs written after the system ones.
    pub custom_certificates: usize,
    /// Accepted CAs left out because the same DER was already in.
    pub duplicates: usize,
    /// Why a PEM section of the system bundle does not parse (the first that does not), if one
    /// does not. Without one, the whole of `bytes` parses, holding exactly the counted
    /// certificates: the custom part is encoded here from DER.
    pub system_error: Option<String>,
}

pub fn merge<'a>(system: Option<&[u8]>, accepted: impl IntoIterator<Item = &'a Ca>) -> Merged {
    let accepted: Vec<&Ca> = accepted.into_iter().collect();
    // The final size, so the bundle is not copied as it grows: the system bundle, a newline, and
    // per CA its base64 in 64-column lines between the two armour lines.
    let pem_len = |ca: &&Ca| {
        let base64 = BASE64.encode_len(ca.der.len());
        PEM_BEGIN.len() + base64 + base64.div_ceil(64) + PEM_END.len()
    };
    let capacity = system.map_or(0, |s| s.len() + 1) + accepted.iter().map(pem_len).sum::<usize>();
    let mut bytes = Vec::with_capacity(capacity);
    let mut seen = HashSet::new();
    let mut system_certificates = 0;
    let mut system_error = None;
    if let Some(system) = system {
        // The same sections `certificates` yields, up to the first malformed one.
        for der in CertificateDer::pem_slice_iter(system) {
            match der {
                Ok(der) => {
                    seen.insert(Sha256::digest(&der));
                    system_certificates += 1;
                }
                Err(e) => {
                    system_error = Some(e.to_string());
                    break;
                }
            }
        }
        bytes.extend_from_slice(system);
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
    }
    let (mut custom_certificates, mut duplicates) = (0, 0);
    let mut scratch = Vec::new();
    for ca in accepted {
        if seen.insert(ca.sha256.into()) {
            push_pem_with(&mut bytes, &ca.der, &mut scratch);
            custom_certificates += 1;
        } else {
            duplicates += 1;
        }
    }
    Merged {
        bytes,
        system_certificates,
        custom_certificates,
        duplicates,
        system_error,
    }
}

/// The DER of every `CERTIFICATE` block, stopping at the first malformed one.
pub fn certificates(pem: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    CertificateDer::pem_slice_iter(pem)
        .map_while(Result::ok)
        .map(|der| der.as_ref().to_vec())
}

/// How many certificates a bundle holds, or why it is not a bundle at all.
pub fn count(pem: &[u8]) -> Result<usize, String> {
    let mut n = 0;
    for der in CertificateDer::pem_slice_iter(pem) {
        der.map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}

const PEM_BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----\n";
const PEM_END: &[u8] = b"-----END CERTIFICATE-----\n";

#[cfg(test)]
fn push_pem(out: &mut Vec<u8>, der: &[u8]) {
    push_pem_with(out, der, &mut Vec::new());
}

/// One 64-column PEM block; `scratch` holds the base64 (reused across calls).
fn push_pem_with(out: &mut Vec<u8>, der: &[u8], scratch: &mut Vec<u8>) {
    scratch.resize(BASE64.encode_len(der.len()), 0);
    BASE64.encode_mut(der, scratch);
    out.extend_from_slice(PEM_BEGIN);
    for line in scratch.chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(PEM_END);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(der: &[u8]) -> Ca {
        Ca {
            der: der.to_vec(),
            sha256: Sha256::digest(der).into(),
            subject: "CN=test".into(),
            not_after: i64::MAX,
        }
    }

    fn pem(der: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_pem(&mut out, der);
        out
    }

    #[test]
    fn system_first_verbatim_then_custom_once_each() {
        let mut system = b"# a comment the distro wrote\n".to_vec();
        system.extend(pem(b"system-one"));
        system.extend(b"no final newline");
        let (a, b) = (ca(b"custom-a"), ca(b"custom-b"));
        let merged = merge(Some(&system), [&a, &b, &a, &ca(b"system-one")]);
        assert!(merged.bytes.starts_with(&system));
        assert_eq!(merged.system_certificates, 1);
        assert_eq!(merged.custom_certificates, 2);
        assert_eq!(merged.duplicates, 2);
        let ders: Vec<_> = certificates(&merged.bytes).collect();
        assert_eq!(ders, [b"system-one".to_vec(), a.der, b.der]);
        assert_eq!(merged.system_error, None);
        assert_eq!(count(&merged.bytes), Ok(3));
    }

    /// `system_error` is what leaves a malformed system bundle out of the bundle; without it the
    /// merged bytes must parse into exactly the counted certificates, which is why the read-back
    /// check need not parse them again.
    #[test]
    fn system_error_is_set_exactly_when_a_section_of_the_system_bundle_is_malformed() {
        let mut bad_base64 = pem(b"system-one");
        bad_base64.extend(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        bad_base64.extend(pem(b"system-two"));
        let unterminated = [
            pem(b"system-one"),
            b"-----BEGIN CERTIFICATE-----\nAAAA".to_vec(),
        ]
        .concat();
        for system in [bad_base64, unterminated] {
            let merged = merge(Some(&system), [&ca(b"custom")]);
            assert!(merged.system_error.is_some());
            assert_eq!(merged.system_certificates, 1);
        }
        let mut good = b"text around\n".to_vec();
        good.extend(pem(b"system-one"));
        good.extend(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
        good.extend(pem(b"system-two").trim_ascii_end());
        for system in [Some(good.as_slice()), Some(b"".as_slice()), None] {
            let merged = merge(system, [&ca(b"custom-a"), &ca(b"custom-b")]);
            assert_eq!(merged.system_error, None);
            let expected = merged.system_certificates + merged.custom_certificates;
            assert_eq!(count(&merged.bytes), Ok(expected));
            // Sized up front (at most the newline an empty system bundle does not need spare).
            assert!(merged.bytes.capacity() - merged.bytes.len() <= 1);
        }
    }

    #[test]
    fn pem_lines_are_64_columns() {
        let der = vec![0x5a; 200];
        let text = String::from_utf8(pem(&der)).expect("ascii");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert!(lines[1..lines.len() - 1].iter().all(|l| l.len() <= 64));
        assert_eq!(lines[1].len(), 64);
        assert_eq!(count(text.as_bytes()), Ok(1));
        assert_eq!(certificates(text.as_bytes()).next(), Some(der));
    }

    #[test]
    fn no_system_bundle_means_custom_only() {
        let merged = merge(None, [&ca(b"only")]);
        assert_eq!(merged.bytes, pem(b"only"));
        assert_eq!(merged.system_certificates, 0);
    }
}
