//! The merge: system bundle and accepted CAs in, bundle bytes out. Pure, tested on bytes.
//!
//! The system part keeps every certificate of the system bundle, expired roots and duplicates
//! included (distributions ship them on purpose, and second-guessing them is not this tool's
//! job), and nothing else: no text, no keys, no CRLs. Each is re-encoded from its DER, and one
//! that OpenSSL would refuse to decode is left out with a warning, since a single such block
//! makes Python refuse the whole file. Custom CAs follow in input order, each once (by SHA-256 of
//! its DER, also against the system's own), re-encoded the same way.

use std::collections::HashSet;

use data_encoding::BASE64;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{PemObject, SectionKind};
use sha2::{Digest, Sha256};

use super::der;
use super::verdict::{self, Ca};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    pub bytes: Vec<u8>,
    pub system_certificates: usize,
    /// Custom CAs written after the system ones.
    pub custom_certificates: usize,
    /// Accepted CAs left out because the same DER was already in.
    pub duplicates: usize,
    /// What of the system bundle was left out and why, as warnings: certificates OpenSSL would
    /// not decode, PEM that does not parse, private keys.
    pub system_left_out: Vec<String>,
    /// Where the custom part begins: the length of the system part.
    pub system_len: usize,
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
    let mut system_left_out = Vec::new();
    let mut scratch = Vec::new();
    if let Some(system) = system {
        if verdict::has_private_key(system) {
            system_left_out.push("private key material left out".to_owned());
        }
        let mut block = 0;
        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(system) {
            match section {
                Ok((SectionKind::Certificate, der)) => {
                    block += 1;
                    match loadable(&der) {
                        Ok(()) => {
                            seen.insert(Sha256::digest(&der));
                            push_pem_with(&mut bytes, &der, &mut scratch);
                            system_certificates += 1;
                        }
                        Err(why) => system_left_out.push(format!(
                            "certificate {block} left out: OpenSSL would not decode it ({why}), \
                             and would refuse the whole bundle for it"
                        )),
                    }
                }
                Ok(_) => {} // keys, CRLs, requests: not trust anchors
                Err(e) => system_left_out.push(format!(
                    "a PEM block after certificate {block} left out: it does not parse ({e})"
                )),
            }
        }
    }
    let system_len = bytes.len();
    let (mut custom_certificates, mut duplicates) = (0, 0);
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
        system_left_out,
        system_len,
    }
}

/// Whether OpenSSL decodes this certificate: an X.509 structure (x509-parser), nothing after it,
/// and none of the encodings OpenSSL's decoder refuses ([`der::refusal`]).
pub fn loadable(cert: &[u8]) -> Result<(), String> {
    if cert.first() != Some(&0x30) {
        return Err("not a DER SEQUENCE".to_owned());
    }
    match super::rules::parse(cert) {
        Ok((rest, _)) if !rest.is_empty() => Err("trailing bytes".to_owned()),
        Ok(_) => der::refusal(cert).map_or(Ok(()), Err),
        Err(e) => Err(e.to_string()),
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
    use crate::certs::rules::Link;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn real() -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("key");
        params.self_signed(&key).expect("signed").der().to_vec()
    }

    fn ca(der: &[u8]) -> Ca {
        Ca {
            der: der.to_vec(),
            sha256: Sha256::digest(der).into(),
            subject: "CN=test".into(),
            not_after: i64::MAX,
            link: Link {
                subject: Vec::new(),
                issuer: Vec::new(),
                issuer_text: String::new(),
                key_id: None,
                issuer_key_id: None,
                self_signed: true,
                weak_digest: None,
                strict_ca: true,
            },
            warnings: Vec::new(),
        }
    }

    fn pem(der: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_pem(&mut out, der);
        out
    }

    #[test]
    fn system_certificates_first_then_custom_once_each() {
        let (one, two) = (real(), real());
        let system = pem(&one);
        let (a, b) = (ca(&real()), ca(&real()));
        let merged = merge(Some(&system), [&a, &b, &a, &ca(&one)]);
        // A clean system bundle comes out byte for byte: the cache compares it so.
        assert!(merged.bytes.starts_with(&system));
        assert_eq!(merged.system_len, system.len());
        assert_eq!(merged.system_certificates, 1);
        assert_eq!(merged.custom_certificates, 2);
        assert_eq!(merged.duplicates, 2);
        let ders: Vec<_> = certificates(&merged.bytes).collect();
        assert_eq!(ders, [one, a.der.clone(), b.der]);
        assert!(merged.system_left_out.is_empty());
        assert_eq!(count(&merged.bytes), Ok(3));
        let with_two = merge(Some(&[system, pem(&two)].concat()), [&a]);
        assert_eq!(with_two.system_certificates, 2);
    }

    /// Only certificates OpenSSL decodes leave the system bundle: no text, no key, no other
    /// block, no certificate it would refuse; each left-out block is named.
    #[test]
    fn the_system_part_keeps_only_loadable_certificates() {
        let (one, two) = (real(), real());
        let mut not_a_sequence = real();
        not_a_sequence[0] = 0x31;
        let mut system = b"# a comment the distro wrote\n".to_vec();
        system.extend(pem(&one));
        system.extend(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        system.extend(
            b"-----BEGIN PGP PRIVATE KEY BLOCK-----\nAAAA\n-----END PGP PRIVATE KEY BLOCK-----\n",
        );
        system.extend(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
        system.extend(pem(b"not x509 at all"));
        system.extend(pem(&not_a_sequence));
        system.extend(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        system.extend(pem(&two).trim_ascii_end());
        let merged = merge(Some(&system), [&ca(&real())]);
        let ders: Vec<_> = certificates(&merged.bytes).collect();
        assert_eq!(&ders[..2], [one.clone(), two.clone()]);
        assert_eq!(merged.system_certificates, 2);
        assert_eq!(
            merged.bytes[..merged.system_len],
            [pem(&one), pem(&two)].concat()
        );
        let left_out = merged.system_left_out.join("\n");
        assert_eq!(merged.system_left_out.len(), 4, "{left_out}");
        assert!(left_out.contains("private key"), "{left_out}");
        assert!(!String::from_utf8_lossy(&merged.bytes).contains("PRIVATE"));
        assert!(!String::from_utf8_lossy(&merged.bytes).contains("comment"));
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
        let only = real();
        let merged = merge(None, [&ca(&only)]);
        assert_eq!(merged.bytes, pem(&only));
        assert_eq!(merged.system_certificates, 0);
    }
}
