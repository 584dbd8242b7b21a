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
use x509_parser::extensions::ParsedExtension;
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
/// It crosses the worker's pipe and is kept in the cache record as `[code, detail]` (see
/// [`Wire`]): a derived enum encoding cost 14 KB of the binary's 1 MiB budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Wire", try_from = "Wire")]
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

/// A [`Rule`] as serialised: a code and the variant's data as text.
#[derive(Serialize, Deserialize)]
pub struct Wire(u8, String);

impl From<Rule> for Wire {
    fn from(rule: Rule) -> Wire {
        let text = |code, detail: String| Wire(code, detail);
        match rule {
            Rule::NotCa(why) => text(0, why),
            Rule::NotStrictCa(what) => text(1, what),
            Rule::EkuWithoutServerAuth => text(2, String::new()),
            Rule::UnhandledCritical(oid) => text(3, oid),
            Rule::ExplicitEcParameters => text(4, String::new()),
            Rule::InvalidExtension(which) => text(5, which),
            Rule::KeyTooSmall {
                algorithm,
                bits,
                minimum,
            } => text(6, format!("{algorithm} {bits} {minimum}")),
            Rule::WeakDigest(digest) => text(7, digest),
            Rule::BasicConstraintsNotCritical => text(8, String::new()),
            Rule::NoKeyUsage => text(9, String::new()),
            Rule::NoSubjectKeyIdentifier => text(10, String::new()),
            Rule::PathLengthWithoutCertSign => text(11, String::new()),
            Rule::EmptySubject => text(12, String::new()),
            Rule::EmptyIssuer => text(13, String::new()),
            Rule::SignatureAlgorithmMismatch => text(14, String::new()),
            Rule::ExtensionsInV1 => text(15, String::new()),
            Rule::NoIssuer(issuer) => text(16, issuer),
        }
    }
}

impl TryFrom<Wire> for Rule {
    type Error = String;

    fn try_from(Wire(code, detail): Wire) -> Result<Rule, String> {
        Ok(match code {
            0 => Rule::NotCa(detail),
            1 => Rule::NotStrictCa(detail),
            2 => Rule::EkuWithoutServerAuth,
            3 => Rule::UnhandledCritical(detail),
            4 => Rule::ExplicitEcParameters,
            5 => Rule::InvalidExtension(detail),
            6 => {
                let mut words = detail.split(' ');
                let (Some(algorithm), Some(bits), Some(minimum)) =
                    (words.next(), words.next(), words.next())
                else {
                    return Err(format!("bad key rule {detail:?}"));
                };
                let number = |w: &str| w.parse().map_err(|_| format!("bad number {w:?}"));
                Rule::KeyTooSmall {
                    algorithm: algorithm.to_owned(),
                    bits: number(bits)?,
                    minimum: number(minimum)?,
                }
            }
            7 => Rule::WeakDigest(detail),
            8 => Rule::BasicConstraintsNotCritical,
            9 => Rule::NoKeyUsage,
            10 => Rule::NoSubjectKeyIdentifier,
            11 => Rule::PathLengthWithoutCertSign,
            12 => Rule::EmptySubject,
            13 => Rule::EmptyIssuer,
            14 => Rule::SignatureAlgorithmMismatch,
            15 => Rule::ExtensionsInV1,
            16 => Rule::NoIssuer(detail),
            other => return Err(format!("unknown rule {other}")),
        })
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

const SUPPORTED_CRITICAL: [&str; 15] = [
    "2.16.840.1.113730.1.1", // nsCertType
    "2.5.29.15",             // keyUsage
    "2.5.29.17",             // subjectAltName
    "2.5.29.19",             // basicConstraints
    "2.5.29.32",             // certificatePolicies
    "2.5.29.31",             // cRLDistributionPoints
    "2.5.29.37",             // extendedKeyUsage
    "1.3.6.1.5.5.7.1.7",     // sbgp-ipAddrBlock
    "1.3.6.1.5.5.7.1.8",     // sbgp-autonomousSysNum
    "1.3.6.1.5.5.7.48.1.5",  // OCSP noCheck
    "2.5.29.36",             // policyConstraints
    "1.3.6.1.5.5.7.1.14",    // proxyCertInfo
    "2.5.29.30",             // nameConstraints
    "2.5.29.33",             // policyMappings
    "2.5.29.54",             // inhibitAnyPolicy
];

/// The extensions OpenSSL decodes to decide on a certificate: one it cannot decode, or a second
/// of the same kind, makes the certificate unusable (`EXFLAG_INVALID`).
const DECODED: [(&str, &str); 8] = [
    ("2.5.29.19", "basicConstraints"),
    ("2.5.29.15", "keyUsage"),
    ("2.5.29.37", "extendedKeyUsage"),
    ("2.5.29.14", "subjectKeyIdentifier"),
    ("2.5.29.35", "authorityKeyIdentifier"),
    ("2.5.29.17", "subjectAltName"),
    ("2.5.29.30", "nameConstraints"),
    ("2.5.29.31", "cRLDistributionPoints"),
];

/// Applies every rule to one certificate (its DER already passed [`der::refusal`]).
pub fn judge(cert: &X509Certificate<'_>, der: &[u8]) -> Judged {
    let mut broken = Vec::new();
    let parts = Parts::of(der);
    let mut seen = Vec::new();
    let (mut bc, mut ku, mut eku, mut ns, mut ski, mut aki) = (None, None, None, None, None, None);
    let mut bc_critical = false;
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if let Some((_, name)) = DECODED.iter().find(|(id, _)| *id == oid) {
            if seen.contains(name)
                || matches!(ext.parsed_extension(), ParsedExtension::ParseError { .. })
            {
                broken.push(Rule::InvalidExtension((*name).to_owned()));
            }
            seen.push(name);
        }
        if ext.critical && !SUPPORTED_CRITICAL.contains(&oid.as_str()) {
            broken.push(Rule::UnhandledCritical(extension_name(&oid)));
        }
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(v) => {
                bc = Some(v.clone());
                bc_critical = ext.critical;
            }
            ParsedExtension::KeyUsage(v) => ku = Some(v.key_cert_sign()),
            ParsedExtension::ExtendedKeyUsage(v) => {
                let sgc = ["2.16.840.1.113730.4.1", "1.3.6.1.4.1.311.10.3.3"];
                let other = v
                    .other
                    .iter()
                    .any(|o| sgc.contains(&o.to_id_string().as_str()));
                eku = Some(v.server_auth || other);
            }
            ParsedExtension::NSCertType(v) => ns = Some(v.ssl_ca()),
            ParsedExtension::SubjectKeyIdentifier(v) => ski = Some(v.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(v) => {
                aki = Some(v.key_identifier.as_ref().map(|k| k.0.to_vec()))
            }
            _ => {}
        }
    }
    let aki = aki.flatten();
    let (subject, issuer) = parts.map_or((&[][..], &[][..]), |p| (p.subject, p.issuer));
    let self_signed = subject == issuer
        && match (&aki, &ski) {
            (Some(aki), Some(ski)) => aki == ski,
            _ => true,
        };
    let v1 = cert.version() == X509Version::V1;

    // X509_check_ca: 1 for basicConstraints CA:TRUE, 3/4/5 for the lenient kinds, 0 for none.
    let lenient = match (&bc, ku) {
        (_, Some(false)) => {
            broken.push(Rule::NotCa(
                "keyUsage does not allow certificate signing (keyCertSign)".into(),
            ));
            None
        }
        (Some(bc), _) if bc.ca => None,
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
        (None, None) if ns == Some(true) => Some("a CA by Netscape certificate type only"),
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
    if eku == Some(false) {
        broken.push(Rule::EkuWithoutServerAuth);
    }
    let spki = cert.public_key();
    let key_oid = spki.algorithm.algorithm.to_id_string();
    let params = spki.algorithm.parameters.as_ref();
    if key_oid == "1.2.840.10045.2.1" && params.is_some_and(|p| p.header.tag().0 == 16) {
        broken.push(Rule::ExplicitEcParameters);
    }
    if let Some((algorithm, bits, minimum)) = key_strength(
        &key_oid,
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
    if bc.as_ref().is_some_and(|bc| bc.ca) && !bc_critical {
        broken.push(Rule::BasicConstraintsNotCritical);
    }
    if bc
        .as_ref()
        .is_some_and(|bc| bc.path_len_constraint.is_some())
        && ku != Some(true)
    {
        broken.push(Rule::PathLengthWithoutCertSign);
    }
    let is_ca = bc.as_ref().is_some_and(|bc| bc.ca);
    if is_ca && ku.is_none() {
        broken.push(Rule::NoKeyUsage);
    }
    if issuer.is_empty() {
        broken.push(Rule::EmptyIssuer);
    }
    if subject.is_empty() {
        broken.push(Rule::EmptySubject);
    }
    if parts.is_some_and(|p| p.inner_algorithm != p.outer_algorithm) {
        broken.push(Rule::SignatureAlgorithmMismatch);
    }
    if cert.version() == X509Version::V3 {
        if is_ca && ski.is_none() {
            broken.push(Rule::NoSubjectKeyIdentifier);
        }
    } else if !cert.extensions().is_empty() {
        broken.push(Rule::ExtensionsInV1);
    }
    let link = Link {
        subject: subject.to_vec(),
        issuer: issuer.to_vec(),
        issuer_text: cert.issuer().to_string(),
        key_id: ski,
        issuer_key_id: aki,
        self_signed,
        weak_digest: weak_digest(cert),
        strict_ca: lenient.is_none() && is_ca,
    };
    Judged { broken, link }
}

/// The smallest RSA modulus (DSA prime) OpenSSL 3 rates at 112 bits of security: its estimate
/// (`ossl_ifc_ffc_compute_security_bits`, NIST's formula in fixed point, rounded to a multiple
/// of 8) reaches 112 at 1963 bits, found with `openssl verify -auth_level 2`.
const MIN_FFC_BITS: usize = 1963;

/// The key's algorithm, size and security level 2's minimum for it, when known.
fn key_strength(
    oid: &str,
    params: Option<&[u8]>,
    key: &[u8],
) -> Option<(&'static str, usize, usize)> {
    match oid {
        // rsaEncryption, RSASSA-PSS: RSAPublicKey ::= SEQUENCE { modulus INTEGER, ... }
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => {
            let (seq, _) = der::read(key).ok()?;
            let (modulus, _) = der::read(seq.content).ok()?;
            Some(("RSA", der::integer_bits(modulus.content), MIN_FFC_BITS))
        }
        // DSA: the parameters are SEQUENCE { p, q, g }; the key's size is p's.
        "1.2.840.10040.4.1" => {
            let (p, _) = der::read(params?).ok()?;
            Some(("DSA", der::integer_bits(p.content), MIN_FFC_BITS))
        }
        "1.2.840.10045.2.1" => {
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
    let name = match cert.signature_algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.2" => "MD2",
        "1.2.840.113549.1.1.3" => "MD4",
        "1.2.840.113549.1.1.4" => "MD5",
        "1.2.840.113549.1.1.5" | "1.2.840.10040.4.3" | "1.2.840.10045.4.1" => "SHA-1",
        // RSASSA-PSS without a hashAlgorithm ([0]) means SHA-1.
        "1.2.840.113549.1.1.10" => {
            let params = cert.signature_algorithm.parameters.as_ref()?;
            let first = der::children(params.data).next();
            match first {
                Some(Ok(tlv)) if tlv.tag == 0xa0 => return None,
                _ => "SHA-1 (RSASSA-PSS default)",
            }
        }
        _ => return None,
    };
    Some(name.to_owned())
}

fn extension_name(oid: &str) -> String {
    match oid {
        "2.5.29.14" => "subjectKeyIdentifier, 2.5.29.14".into(),
        "2.5.29.35" => "authorityKeyIdentifier, 2.5.29.35".into(),
        "2.5.29.18" => "issuerAltName, 2.5.29.18".into(),
        other => other.into(),
    }
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
