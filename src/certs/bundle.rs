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
}

pub fn merge<'a>(system: Option<&[u8]>, accepted: impl IntoIterator<Item = &'a Ca>) -> Merged {
    let mut bytes = Vec::new();
    let mut seen = HashSet::new();
    let mut system_certificates = 0;
    if let Some(system) = system {
        for der in certificates(system) {
            seen.insert(Sha256::digest(&der));
            system_certificates += 1;
        }
        bytes.extend_from_slice(system);
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
    }
    let (mut custom_certificates, mut duplicates) = (0, 0);
    for ca in accepted {
        if seen.insert(ca.sha256.into()) {
            push_pem(&mut bytes, &ca.der);
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

fn push_pem(out: &mut Vec<u8>, der: &[u8]) {
    out.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
    for line in BASE64.encode(der).as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END CERTIFICATE-----\n");
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
