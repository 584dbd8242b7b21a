//! The rules a TLS client's verifier applies to a CA it trusts, so that `SUCCESS` is a promise the
//! app's own TLS stack keeps.
//!
//! Read from OpenSSL 3.0's `crypto/x509/x509_vfy.c` (`check_extensions`, `check_key_level`,
//! `check_sig_level`, `build_chain`) and `v3_purp.c` (`X509_check_ca`, `X509_supported_extension`,
//! `check_purpose_ssl_server`), compared with 3.5 (the same rules) and with CPython's
//! `ssl.create_default_context()`: security level 2 since 3.10, `VERIFY_X509_STRICT` and
//! `VERIFY_X509_PARTIAL_CHAIN` since 3.13. tests/tls_verdicts.rs checks every rule against real
//! handshakes through CPython 3.12 and 3.13.
//!
//! Each [`Rule`] knows who applies it ([`Scope`]); a [`Profile`] (the runtime the run starts)
//! decides whether a broken rule rejects the CA or only warns.

use std::fmt;

use serde::{Deserialize, Serialize};
use x509_parser::prelude::{X509Certificate, X509Version};

use super::der::{self, Parts};

pub use crate::config::TlsProfile as Profile;

impl Profile {
    /// Whether a broken rule of `scope` rejects the CA (`true`) or only warns.
    pub fn enforces(self, scope: Scope) -> bool {
        match (self, scope) {
            (_, Scope::Every) => true,
            (Profile::OpenSsl, _) => false,
            // @SECLEVEL=2 is in Python's default ciphers since 3.10.
            (Profile::Python { minor }, Scope::SecurityLevel2) => minor >= 10,
            (Profile::Python { minor }, Scope::Strict) => minor >= 13,
            (Profile::Python { minor }, Scope::FullChain) => minor < 13,
        }
    }

    /// Whether the chain must end at a self-signed root in the store (no partial chain).
    pub fn needs_root(self) -> bool {
        self.enforces(Scope::FullChain)
    }
}

/// Who refuses a CA that breaks a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every OpenSSL 3 client verifying a TLS server (Python, curl, Node...).
    Every,
    /// Python 3.10+: `@SECLEVEL=2` in its default ciphers (112-bit keys and digests).
    SecurityLevel2,
    /// Python 3.13+: `VERIFY_X509_STRICT`.
    Strict,
    /// Python 3.12 and older: no `VERIFY_X509_PARTIAL_CHAIN`, a chain ends at a self-signed root.
    FullChain,
}

/// A rule a CA certificate breaks. The `Display` text says the rule, who applies it, and the fix.
///
/// It crosses the worker's pipe and is kept in the cache record (serialised by derive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    NotCa(String),
    /// Not CA-capable under strict checking: a v1 root, or a CA by keyUsage or nsCertType only.
    NotStrictCa(String),
    EkuWithoutServerAuth,
    UnhandledCritical(String),
    ExplicitEcParameters,
    InvalidExtension(String),
    KeyTooSmall {
        algorithm: String,
        bits: usize,
        minimum: usize,
    },
    WeakDigest(String),
    BasicConstraintsNotCritical,
    NoKeyUsage,
    NoSubjectKeyIdentifier,
    PathLengthWithoutCertSign,
    EmptySubject,
    EmptyIssuer,
    SignatureAlgorithmMismatch,
    ExtensionsInV1,
    NoIssuer(String),
}

impl Rule {
    pub fn scope(&self) -> Scope {
        match self {
            Rule::NotCa(_)
            | Rule::EkuWithoutServerAuth
            | Rule::UnhandledCritical(_)
            | Rule::ExplicitEcParameters
            | Rule::InvalidExtension(_) => Scope::Every,
            Rule::KeyTooSmall { .. } | Rule::WeakDigest(_) => Scope::SecurityLevel2,
            Rule::NoIssuer(_) => Scope::FullChain,
            _ => Scope::Strict,
        }
    }
}

const STRICT: &str = "Python 3.13+ refuses it (VERIFY_X509_STRICT)";

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::NotCa(why) => write!(f, "is not a CA: {why}"),
            Rule::NotStrictCa(what) => write!(
                f,
                "not a CA for Python 3.13+: {what}, without basicConstraints CA:TRUE, which \
                 VERIFY_X509_STRICT requires; reissue the CA with basicConstraints=critical,CA:TRUE"
            ),
            Rule::EkuWithoutServerAuth => f.write_str(
                "its extendedKeyUsage leaves out serverAuth: OpenSSL refuses it for TLS servers \
                 ('unsuitable certificate purpose'); reissue the CA without extendedKeyUsage or \
                 with serverAuth in it",
            ),
            Rule::UnhandledCritical(oid) => write!(
                f,
                "it has a critical extension OpenSSL does not handle ({oid}): every OpenSSL \
                 client refuses it ('unhandled critical extension'); reissue the CA with that \
                 extension not critical"
            ),
            Rule::ExplicitEcParameters => f.write_str(
                "its EC key has explicit curve parameters: OpenSSL 3 refuses it ('explicit ECC \
                 parameters'); reissue the CA with a named curve (-pkeyopt \
                 ec_param_enc:named_curve)",
            ),
            Rule::InvalidExtension(which) => write!(
                f,
                "its {which} extension is invalid or repeated: OpenSSL never uses such a \
                 certificate as an issuer; reissue the CA"
            ),
            Rule::KeyTooSmall {
                algorithm,
                bits,
                minimum,
            } => write!(
                f,
                "its {bits}-bit {algorithm} key gives under 112 bits of security (needs \
                 {minimum}+ bits): Python 3.10+ refuses it (OpenSSL security level 2, 'CA \
                 certificate key too weak'); reissue the CA with RSA 2048+ or EC P-256+"
            ),
            Rule::WeakDigest(digest) => write!(
                f,
                "it is signed with {digest}, and its signature is checked: Python 3.10+ refuses \
                 it (OpenSSL security level 2, 'CA signature digest algorithm too weak'); have \
                 it reissued with SHA-256"
            ),
            Rule::BasicConstraintsNotCritical => write!(
                f,
                "basicConstraints is not critical: {STRICT}; reissue the CA with \
                 basicConstraints=critical,CA:TRUE"
            ),
            Rule::NoKeyUsage => write!(
                f,
                "it has no keyUsage extension: {STRICT}; reissue the CA with \
                 keyUsage=critical,keyCertSign,cRLSign"
            ),
            Rule::NoSubjectKeyIdentifier => write!(
                f,
                "it has no subjectKeyIdentifier: {STRICT}; reissue the CA with \
                 subjectKeyIdentifier=hash"
            ),
            Rule::PathLengthWithoutCertSign => write!(
                f,
                "it sets a pathlen without keyUsage keyCertSign: {STRICT}; reissue the CA with \
                 keyUsage=critical,keyCertSign,cRLSign"
            ),
            Rule::EmptySubject => write!(
                f,
                "its subject is empty: {STRICT}; reissue the CA with a subject name"
            ),
            Rule::EmptyIssuer => write!(
                f,
                "its issuer is empty: {STRICT}; reissue the CA with an issuer name"
            ),
            Rule::SignatureAlgorithmMismatch => write!(
                f,
                "its two signature algorithm fields differ: {STRICT}; reissue the CA"
            ),
            Rule::ExtensionsInV1 => write!(
                f,
                "it has extensions but is not X.509 v3: {STRICT}; reissue the CA as v3"
            ),
            Rule::NoIssuer(issuer) => write!(
                f,
                "it is not self-signed and its issuer ({issuer}) is neither in the certificates \
                 directory nor in the system bundle: Python 3.12 and older need the chain up to \
                 a self-signed root (3.13+ trusts an intermediate alone, \
                 VERIFY_X509_PARTIAL_CHAIN); mount its root CA as well"
            ),
        }
    }
}

/// What chain building needs to know of an accepted CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    /// The issuer's name, for messages.
    pub issuer_text: String,
    pub key_id: Option<Vec<u8>>,
    pub issuer_key_id: Option<Vec<u8>>,
    /// OpenSSL's "self-signed": same names, and an authority key id (if any) naming its own key.
    pub self_signed: bool,
    /// Its own signature's digest, when under security level 2.
    pub weak_digest: Option<String>,
    /// `X509_check_ca` returns 1 (basicConstraints CA:TRUE): needed to sit below a root.
    pub strict_ca: bool,
}

impl Link {
    /// Whether `issuer` may have issued this certificate, as OpenSSL's `X509_check_issued` sees it
    /// without the signature: the names match, and key identifiers when both are present.
    pub fn issued_by(&self, issuer: &Link) -> bool {
        self.issuer == issuer.subject
            && match (&self.issuer_key_id, &issuer.key_id) {
                (Some(aki), Some(ski)) => aki == ski,
                _ => true,
            }
    }
}

/// Everything that decides a CA's fate under any profile: the rules it breaks, in the order
/// OpenSSL checks them, and what chain building needs.
pub struct Judged {
    pub broken: Vec<Rule>,
    pub link: Link,
}

/// Object identifiers as they are encoded (the content octets), compared as bytes.
mod oid {
    pub const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    pub const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    pub const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    pub const SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
    pub const AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
    pub const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    pub const NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x1e];
    pub const CRL_DISTRIBUTION_POINTS: &[u8] = &[0x55, 0x1d, 0x1f];
    pub const NS_CERT_TYPE: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x01, 0x01];
    pub const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    pub const NS_SGC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x04, 0x01];
    pub const MS_SGC: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0a, 0x03, 0x03];
    pub const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    pub const DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
    pub const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
}

/// OpenSSL's `X509_supported_extension` (3.0 and 3.5): a critical extension outside it is
/// "unhandled" (2.5.29.x by last arc, then the rest whole).
fn supported_critical(id: &[u8]) -> bool {
    const PKIX: [&[u8]; 4] = [
        &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x07], // sbgp-ipAddrBlock
        &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x08], // sbgp-autonomousSysNum
        &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x0e], // proxyCertInfo
        &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05], // OCSP noCheck
    ];
    match id {
        // keyUsage, subjectAltName, basicConstraints, nameConstraints, cRLDistributionPoints,
        // certificatePolicies, policyMappings, policyConstraints, extendedKeyUsage,
        // inhibitAnyPolicy
        [0x55, 0x1d, last] => matches!(
            last,
            0x0f | 0x11 | 0x13 | 0x1e | 0x1f | 0x20 | 0x21 | 0x24 | 0x25 | 0x36
        ),
        id => id == oid::NS_CERT_TYPE || PKIX.contains(&id),
    }
}

/// What OpenSSL decodes of a certificate's extensions to decide on it (`ossl_x509v3_cache_extensions`).
/// Read from the raw extension values: x509-parser's eager parsing of every extension kind cost
/// 58 KB of the binary's 1 MiB budget for the six read here.
#[derive(Default)]
struct Extensions {
    /// basicConstraints: CA, pathLenConstraint present, critical.
    basic: Option<(bool, bool, bool)>,
    /// keyUsage: keyCertSign.
    cert_sign: Option<bool>,
    /// extendedKeyUsage: serverAuth (or an SGC purpose) in it.
    server_auth: Option<bool>,
    /// nsCertType: sslCA.
    ns_ssl_ca: Option<bool>,
    key_id: Option<Vec<u8>>,
    issuer_key_id: Option<Vec<u8>>,
    /// Those that do not decode or repeat (their names), and critical ones OpenSSL does not know.
    invalid: Vec<&'static str>,
    unhandled: Vec<String>,
    count: usize,
}

impl Extensions {
    fn read(cert: &X509Certificate<'_>) -> Extensions {
        let mut e = Extensions::default();
        let mut seen: Vec<&[u8]> = Vec::new();
        for ext in cert.extensions() {
            e.count += 1;
            let id = ext.oid.as_bytes();
            let value = ext.value;
            if ext.critical && !supported_critical(id) {
                e.unhandled.push(match id {
                    oid::SUBJECT_KEY_ID => "subjectKeyIdentifier, 2.5.29.14".to_owned(),
                    oid::AUTHORITY_KEY_ID => "authorityKeyIdentifier, 2.5.29.35".to_owned(),
                    [0x55, 0x1d, 0x12] => "issuerAltName, 2.5.29.18".to_owned(),
                    _ => ext.oid.to_id_string(),
                });
            }
            let name = match id {
                oid::BASIC_CONSTRAINTS => "basicConstraints",
                oid::KEY_USAGE => "keyUsage",
                oid::EXT_KEY_USAGE => "extendedKeyUsage",
                oid::SUBJECT_KEY_ID => "subjectKeyIdentifier",
                oid::AUTHORITY_KEY_ID => "authorityKeyIdentifier",
                oid::SUBJECT_ALT_NAME => "subjectAltName",
                oid::NAME_CONSTRAINTS => "nameConstraints",
                oid::CRL_DISTRIBUTION_POINTS => "cRLDistributionPoints",
                oid::NS_CERT_TYPE => "nsCertType",
                _ => continue,
            };
            let decoded =
                match id {
                    oid::BASIC_CONSTRAINTS => basic_constraints(value).map(|(ca, path_len)| {
                        e.basic = Some((ca, path_len, ext.critical));
                    }),
                    oid::KEY_USAGE => bits(value).and_then(|b| {
                        let first = b.first().copied().filter(|_| b.iter().any(|&x| x != 0))?;
                        e.cert_sign = Some(first & 0x04 != 0);
                        Some(())
                    }),
                    oid::EXT_KEY_USAGE => sequence_of(value, der::OID).map(|oids| {
                        let server = [oid::SERVER_AUTH, oid::NS_SGC, oid::MS_SGC];
                        e.server_auth = Some(oids.iter().any(|o| server.contains(o)));
                    }),
                    oid::SUBJECT_KEY_ID => whole(value)
                        .filter(|t| t.tag == 0x04)
                        .map(|t| e.key_id = Some(t.content.to_vec())),
                    oid::AUTHORITY_KEY_ID => whole(value)
                        .filter(|t| t.tag == der::SEQUENCE)
                        .and_then(|t| {
                            let mut fields = der::children(t.content);
                            match fields.next() {
                                Some(Ok(id)) if id.tag == 0x80 => {
                                    e.issuer_key_id = Some(id.content.to_vec())
                                }
                                Some(Err(_)) => return None,
                                _ => {}
                            }
                            fields.all(|f| f.is_ok()).then_some(())
                        }),
                    oid::NS_CERT_TYPE => bits(value).map(|b| {
                        e.ns_ssl_ca = Some(b.first().is_some_and(|x| x & 0x04 != 0));
                    }),
                    // Decoded by OpenSSL too: they must at least be one DER element.
                    _ => whole(value).map(drop),
                };
            if decoded.is_none() || seen.contains(&id) {
                e.invalid.push(name);
            }
            seen.push(id);
        }
        e
    }
}

/// `value` as exactly one DER element.
fn whole(value: &[u8]) -> Option<der::Tlv<'_>> {
    match der::read(value) {
        Ok((tlv, [])) => Some(tlv),
        _ => None,
    }
}

/// A BIT STRING's bits (the unused-bits octet dropped).
fn bits(value: &[u8]) -> Option<&[u8]> {
    let tlv = whole(value).filter(|t| t.tag == der::BIT_STRING)?;
    match tlv.content {
        [unused, rest @ ..] if *unused <= 7 => Some(rest),
        _ => None,
    }
}

/// The contents of a SEQUENCE OF elements tagged `tag`.
fn sequence_of(value: &[u8], tag: u8) -> Option<Vec<&[u8]>> {
    let seq = whole(value).filter(|t| t.tag == der::SEQUENCE)?;
    der::children(seq.content)
        .map(|c| c.ok().filter(|c| c.tag == tag).map(|c| c.content))
        .collect()
}

/// BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }:
/// (cA, a path length given). A negative path length is invalid, as OpenSSL has it.
fn basic_constraints(value: &[u8]) -> Option<(bool, bool)> {
    let seq = whole(value).filter(|t| t.tag == der::SEQUENCE)?;
    let (mut ca, mut path_len) = (false, false);
    for field in der::children(seq.content) {
        let field = field.ok()?;
        match field.tag {
            0x01 if !ca && !path_len => ca = field.content.first().is_some_and(|&b| b != 0),
            der::INTEGER if !path_len => {
                if field.content.first().is_some_and(|&b| b & 0x80 != 0) {
                    return None;
                }
                path_len = true;
            }
            _ => return None,
        }
    }
    Some((ca, path_len))
}

/// Parses a certificate's outline with x509-parser, leaving extension values unparsed: the rules
/// read the six they need ([`Extensions`]); parsing every kind cost 58 KB of the 1 MiB budget.
pub fn parse(der: &[u8]) -> Result<(&[u8], X509Certificate<'_>), String> {
    use x509_parser::nom::Parser as _;
    x509_parser::certificate::X509CertificateParser::new()
        .with_deep_parse_extensions(false)
        .parse(der)
        .map_err(|e| e.to_string())
}

/// Applies every rule to one certificate (its DER already passed [`der::refusal`]).
pub fn judge(cert: &X509Certificate<'_>, der: &[u8]) -> Judged {
    let mut broken = Vec::new();
    let parts = Parts::of(der);
    let e = Extensions::read(cert);
    broken.extend(
        e.invalid
            .iter()
            .map(|name| Rule::InvalidExtension((*name).to_owned())),
    );
    broken.extend(e.unhandled.iter().cloned().map(Rule::UnhandledCritical));
    let link = link_of(cert, parts, &e);
    let self_signed = link.self_signed;
    let v1 = cert.version() == X509Version::V1;
    let is_ca = matches!(e.basic, Some((true, _, _)));

    // X509_check_ca: 1 for basicConstraints CA:TRUE, 3/4/5 for the lenient kinds, 0 for none.
    let lenient = match (e.basic, e.cert_sign) {
        (_, Some(false)) => {
            broken.push(Rule::NotCa(
                "keyUsage does not allow certificate signing (keyCertSign)".into(),
            ));
            None
        }
        (Some((true, _, _)), _) => None,
        (Some(_), _) => {
            broken.push(Rule::NotCa("basicConstraints CA:FALSE".into()));
            None
        }
        (None, _) if v1 && self_signed => Some("an X.509 v1 root"),
        (None, _) if v1 => {
            broken.push(Rule::NotCa(
                "X.509 v1 certificate that is not self-signed (only v1 roots are accepted)".into(),
            ));
            None
        }
        (None, Some(true)) => Some("a CA by keyUsage keyCertSign only"),
        (None, None) if e.ns_ssl_ca == Some(true) => Some("a CA by Netscape certificate type only"),
        (None, None) => {
            broken.push(Rule::NotCa(
                "no basicConstraints extension (CA:TRUE is required)".into(),
            ));
            None
        }
    };
    if let Some(what) = lenient {
        broken.push(Rule::NotStrictCa(what.to_owned()));
    }
    if e.server_auth == Some(false) {
        broken.push(Rule::EkuWithoutServerAuth);
    }
    let spki = cert.public_key();
    let key_oid = spki.algorithm.algorithm.as_bytes();
    let params = spki.algorithm.parameters.as_ref();
    if key_oid == oid::EC && params.is_some_and(|p| p.header.tag().0 == 16) {
        broken.push(Rule::ExplicitEcParameters);
    }
    if let Some((algorithm, bits, minimum)) = key_strength(
        key_oid,
        params.map(|p| p.data),
        &spki.subject_public_key.data,
    ) && bits < minimum
    {
        broken.push(Rule::KeyTooSmall {
            algorithm: algorithm.to_owned(),
            bits,
            minimum,
        });
    }
    // The strict checks, in x509_vfy.c's order, for a CA.
    if let Some((true, _, false)) = e.basic {
        broken.push(Rule::BasicConstraintsNotCritical);
    }
    if matches!(e.basic, Some((_, true, _))) && e.cert_sign != Some(true) {
        broken.push(Rule::PathLengthWithoutCertSign);
    }
    if is_ca && e.cert_sign.is_none() {
        broken.push(Rule::NoKeyUsage);
    }
    if link.issuer.is_empty() {
        broken.push(Rule::EmptyIssuer);
    }
    if link.subject.is_empty() {
        broken.push(Rule::EmptySubject);
    }
    if parts.is_some_and(|p| p.inner_algorithm != p.outer_algorithm) {
        broken.push(Rule::SignatureAlgorithmMismatch);
    }
    if cert.version() == X509Version::V3 {
        if is_ca && e.key_id.is_none() {
            broken.push(Rule::NoSubjectKeyIdentifier);
        }
    } else if e.count > 0 {
        broken.push(Rule::ExtensionsInV1);
    }
    Judged { broken, link }
}

/// What chain building needs of a certificate, and nothing else (the system bundle's are read
/// for it only when a custom CA needs an issuer: see `chain`).
pub fn link(cert: &X509Certificate<'_>, der: &[u8]) -> Link {
    link_of(cert, Parts::of(der), &Extensions::read(cert))
}

fn link_of(cert: &X509Certificate<'_>, parts: Option<Parts<'_>>, e: &Extensions) -> Link {
    let (subject, issuer) = parts.map_or((&[][..], &[][..]), |p| (p.subject, p.issuer));
    Link {
        subject: subject.to_vec(),
        issuer: issuer.to_vec(),
        issuer_text: cert.issuer().to_string(),
        key_id: e.key_id.clone(),
        issuer_key_id: e.issuer_key_id.clone(),
        // OpenSSL's self-signed: the same names, and an authority key id (if both are there)
        // naming its own key; the signature is not checked.
        self_signed: subject == issuer
            && match (&e.issuer_key_id, &e.key_id) {
                (Some(aki), Some(ski)) => aki == ski,
                _ => true,
            },
        weak_digest: weak_digest(cert),
        // X509_check_ca returns 1: basicConstraints CA:TRUE, and a keyUsage (if any) that
        // allows certificate signing.
        strict_ca: matches!(e.basic, Some((true, _, _))) && e.cert_sign != Some(false),
    }
}

/// The smallest RSA modulus (DSA prime) OpenSSL 3 rates at 112 bits of security: its estimate
/// (`ossl_ifc_ffc_compute_security_bits`, NIST's formula in fixed point, rounded to a multiple
/// of 8) reaches 112 at 1963 bits, found with `openssl verify -auth_level 2`.
const MIN_FFC_BITS: usize = 1963;

/// The key's algorithm, size and security level 2's minimum for it, when known.
fn key_strength(
    algorithm: &[u8],
    params: Option<&[u8]>,
    key: &[u8],
) -> Option<(&'static str, usize, usize)> {
    match algorithm {
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, ... }
        oid::RSA | oid::RSA_PSS => {
            let (seq, _) = der::read(key).ok()?;
            let (modulus, _) = der::read(seq.content).ok()?;
            Some(("RSA", der::integer_bits(modulus.content), MIN_FFC_BITS))
        }
        // DSA: the parameters are SEQUENCE { p, q, g }; the key's size is p's.
        oid::DSA => {
            let (p, _) = der::read(params?).ok()?;
            Some(("DSA", der::integer_bits(p.content), MIN_FFC_BITS))
        }
        oid::EC => {
            let curve = params.filter(|p| !p.is_empty())?;
            let bits = match curve {
                [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01] => 192, // prime192v1
                [0x2b, 0x81, 0x04, 0x00, 0x21] => 224,                   // secp224r1
                [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => 256, // prime256v1
                [0x2b, 0x81, 0x04, 0x00, 0x22] => 384,                   // secp384r1
                [0x2b, 0x81, 0x04, 0x00, 0x23] => 521,                   // secp521r1
                [0x2b, 0x81, 0x04, 0x00, 0x0a] => 256,                   // secp256k1
                [0x2b, 0x81, 0x04, 0x00, n] if *n < 0x21 => 160,         // secp1xx: all < 224
                _ => return None,
            };
            Some(("EC", bits, 224))
        }
        _ => None,
    }
}

/// The certificate's own signature digest, if security level 2 refuses it (SHA-1: 63 bits in
/// OpenSSL 3, MD5 39).
fn weak_digest(cert: &X509Certificate<'_>) -> Option<String> {
    const PKCS1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    let algorithm = &cert.signature_algorithm;
    let id = algorithm.algorithm.as_bytes();
    let name = match id {
        [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03] | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01] => {
            "SHA-1"
        }
        _ => match id.strip_prefix(PKCS1) {
            Some([2]) => "MD2",
            Some([3]) => "MD4",
            Some([4]) => "MD5",
            Some([5]) => "SHA-1",
            // RSASSA-PSS without a hashAlgorithm ([0]) means SHA-1.
            Some([10]) => {
                let params = algorithm.parameters.as_ref()?;
                match der::children(params.data).next() {
                    Some(Ok(tlv)) if tlv.tag == 0xa0 => return None,
                    _ => "SHA-1 (RSASSA-PSS default)",
                }
            }
            _ => return None,
        },
    };
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_survives_its_wire_form() {
        let rules = [
            Rule::NotCa("why".into()),
            Rule::NotStrictCa("a v1 root".into()),
            Rule::EkuWithoutServerAuth,
            Rule::UnhandledCritical("1.2.3".into()),
            Rule::ExplicitEcParameters,
            Rule::InvalidExtension("keyUsage".into()),
            Rule::KeyTooSmall {
                algorithm: "RSA".into(),
                bits: 1024,
                minimum: 1963,
            },
            Rule::WeakDigest("SHA-1".into()),
            Rule::BasicConstraintsNotCritical,
            Rule::NoKeyUsage,
            Rule::NoSubjectKeyIdentifier,
            Rule::PathLengthWithoutCertSign,
            Rule::EmptySubject,
            Rule::EmptyIssuer,
            Rule::SignatureAlgorithmMismatch,
            Rule::ExtensionsInV1,
            Rule::NoIssuer("CN=root".into()),
        ];
        let mut codes = std::collections::HashSet::new();
        for rule in rules {
            let json = serde_json::to_string(&rule).expect("serialise");
            assert!(codes.insert(json.clone()), "two rules share {json}");
            let back: Rule = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(back, rule);
        }
        assert!(serde_json::from_str::<Rule>("[99,\"\"]").is_err());
        assert!(serde_json::from_str::<Rule>("[6,\"RSA x 1\"]").is_err());
    }

    #[test]
    fn extension_values_read_as_openssl_reads_them() {
        let bc = basic_constraints;
        assert_eq!(bc(&[0x30, 0x03, 0x01, 0x01, 0xff]), Some((true, false)));
        assert_eq!(bc(&[0x30, 0x00]), Some((false, false)));
        assert_eq!(
            bc(&[0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00]),
            Some((true, true))
        );
        // A negative path length, a field out of order, trailing bytes: invalid.
        assert_eq!(bc(&[0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0xff]), None);
        assert_eq!(bc(&[0x30, 0x06, 0x02, 0x01, 0x00, 0x01, 0x01, 0xff]), None);
        assert_eq!(bc(&[0x30, 0x03, 0x01, 0x01, 0xff, 0x00]), None);
        assert_eq!(bits(&[0x03, 0x02, 0x01, 0x06]), Some(&[0x06][..]));
        assert_eq!(bits(&[0x03, 0x02, 0x08, 0x06]), None);
        assert_eq!(bits(&[0x04, 0x01, 0x06]), None);
        let oids = sequence_of(&[0x30, 0x03, 0x06, 0x01, 0x2b], der::OID);
        assert_eq!(oids, Some(vec![&[0x2b][..]]));
        assert_eq!(sequence_of(&[0x30, 0x03, 0x04, 0x01, 0x2b], der::OID), None);
        assert!(
            supported_critical(oid::BASIC_CONSTRAINTS) && supported_critical(oid::NS_CERT_TYPE)
        );
        assert!(
            !supported_critical(oid::SUBJECT_KEY_ID) && !supported_critical(oid::AUTHORITY_KEY_ID)
        );
    }

    #[test]
    fn profiles_enforce_their_runtimes_rules() {
        let p13 = Profile::Python { minor: 13 };
        let p12 = Profile::Python { minor: 12 };
        let p9 = Profile::Python { minor: 9 };
        assert!(p13.enforces(Scope::Strict) && !p12.enforces(Scope::Strict));
        assert!(p12.needs_root() && !p13.needs_root() && !Profile::OpenSsl.needs_root());
        assert!(p12.enforces(Scope::SecurityLevel2) && !p9.enforces(Scope::SecurityLevel2));
        for p in [p13, p12, p9, Profile::OpenSsl] {
            assert!(p.enforces(Scope::Every));
        }
        assert!(!Profile::OpenSsl.enforces(Scope::SecurityLevel2));
    }
}
