//! A test PKI: roots, intermediates, server certificates and the odd ones (expired, not yet valid,
//! not a CA, X.509 v1, OpenSSL's TRUSTED CERTIFICATE form), made with rcgen or, for the forms
//! rcgen cannot make, the `openssl` CLI; PEM and DER encoders; strict readers for the bundles
//! vardr-init writes; and the environment scrubbing every spawned process needs.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber, date_time_ymd,
};

/// Variables that point TLS clients at CA files or directories. This machine sets many of them;
/// every process a test spawns starts without them (and without vardr-init's own certificate
/// variables) unless the test sets one on purpose.
pub const CA_VARIABLES: &[&str] = &[
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "AWS_CA_BUNDLE",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "PIP_CERT",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
    "NIX_SSL_CERT_FILE",
    "HTTPLIB2_CA_CERTS",
    "VARDR_CERTS_DIR",
    "VARDR_CA_BUNDLE",
    "VARDR_SYSTEM_CA_BUNDLE",
    "VARDR_CERTS_STRICT",
    "VARDR_JSON_LOGS",
    "VARDR_LOG_LEVEL",
    "VARDR_EXTRA_CA_VARS",
    "VARDR_PYTHON_HOOK",
    // The Python hook's: the child's PYTHONPATH is the test's to set.
    "PYTHONPATH",
];

/// Removes [`CA_VARIABLES`] and anything else in the test's environment that looks like a CA
/// setting (`*CERT*`, `*CA_BUNDLE*`, `*CAINFO*`) from `command`'s environment.
pub fn scrub(command: &mut Command) -> &mut Command {
    for name in CA_VARIABLES {
        command.env_remove(name);
    }
    let looks_like_ca = |name: &OsString| {
        let name = name.to_string_lossy().to_ascii_uppercase();
        ["CERT", "CA_BUNDLE", "CAINFO"]
            .iter()
            .any(|part| name.contains(part))
    };
    for (name, _) in std::env::vars_os().filter(|(name, _)| looks_like_ca(name)) {
        command.env_remove(name);
    }
    command
}

/// The one key pair behind most certificates here: certificates only need distinct DERs, and one
/// key keeps thousands of fixtures fast.
pub fn shared_key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(|| KeyPair::generate().expect("generate a P-256 key"))
}

/// A distinct serial for every certificate this process makes.
fn next_serial() -> SerialNumber {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut bytes = vec![0x01];
    bytes.extend_from_slice(&u64::from(std::process::id()).to_be_bytes());
    bytes.extend_from_slice(&n.to_be_bytes());
    SerialNumber::from_slice(&bytes)
}

/// Parameters for a certificate named `name`, valid 2000-01-01 to 2100-01-01, with no extensions
/// yet (rcgen writes a v3 certificate with only what the parameters ask for).
pub fn params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "vardr-init tests");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.serial_number = Some(next_serial());
    params.not_before = date_time_ymd(2000, 1, 1);
    params.not_after = date_time_ymd(2100, 1, 1);
    params
}

/// Parameters for a proper CA: basicConstraints CA:TRUE (critical), keyUsage keyCertSign,
/// cRLSign, digitalSignature, and a subject key identifier.
pub fn ca_params(name: &str) -> CertificateParams {
    let mut params = params(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A certificate as DER bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cert {
    pub der: Vec<u8>,
}

impl Cert {
    /// `-----BEGIN CERTIFICATE-----`, 64-column base64, LF line ends.
    pub fn pem(&self) -> String {
        pem("CERTIFICATE", &self.der)
    }

    /// The subject's common name, for messages.
    pub fn name(&self) -> String {
        describe(&self.der)
    }
}

/// A self-signed certificate from `params`, signed with [`shared_key`].
pub fn self_signed(params: &CertificateParams) -> Cert {
    let cert = params
        .self_signed(shared_key())
        .expect("self-sign a certificate");
    Cert {
        der: cert.der().to_vec(),
    }
}

/// A certificate authority that can issue certificates.
pub struct Ca {
    pub cert: Cert,
    params: CertificateParams,
}

impl Ca {
    /// A new self-signed root named `name`.
    pub fn new(name: &str) -> Ca {
        let params = ca_params(name);
        Ca {
            cert: self_signed(&params),
            params,
        }
    }

    /// A certificate for `params`, issued by this CA (with an authority key identifier).
    pub fn issue(&self, params: &CertificateParams) -> Cert {
        self.issue_for(params, shared_key())
    }

    fn issue_for(&self, params: &CertificateParams, subject_key: &KeyPair) -> Cert {
        let mut params = params.clone();
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_params(&self.params, shared_key());
        let cert = params
            .signed_by(subject_key, &issuer)
            .expect("issue a certificate");
        Cert {
            der: cert.der().to_vec(),
        }
    }

    /// An intermediate CA issued by this one.
    pub fn intermediate(&self, name: &str) -> Ca {
        let params = ca_params(name);
        Ca {
            cert: self.issue(&params),
            params,
        }
    }

    /// An end-entity certificate with basicConstraints CA:FALSE.
    pub fn leaf(&self, name: &str) -> Cert {
        let mut params = params(name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(&params)
    }

    /// A TLS server certificate for 127.0.0.1 and localhost, with its own key (PKCS#8 PEM).
    pub fn server(&self) -> (Cert, String) {
        let key = KeyPair::generate().expect("generate a server key");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server names");
        let base = self::params("vardr-init test server");
        params.distinguished_name = base.distinguished_name;
        params.serial_number = base.serial_number;
        params.not_before = base.not_before;
        params.not_after = base.not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = self.issue_for(&params, &key);
        (cert, key.serialize_pem())
    }
}

/// A CA certificate whose parameters `adjust` changes first (validity, extensions...).
pub fn ca_with(name: &str, adjust: impl FnOnce(&mut CertificateParams)) -> Cert {
    let mut params = ca_params(name);
    adjust(&mut params);
    self_signed(&params)
}

/// A CA whose validity ended on 2001-01-01.
pub fn expired_ca(name: &str) -> Cert {
    ca_with(name, |p| {
        p.not_before = date_time_ymd(2000, 1, 1);
        p.not_after = date_time_ymd(2001, 1, 1);
    })
}

/// A CA whose validity starts on 2090-01-01.
pub fn not_yet_valid_ca(name: &str) -> Cert {
    ca_with(name, |p| {
        p.not_before = date_time_ymd(2090, 1, 1);
        p.not_after = date_time_ymd(2100, 1, 1);
    })
}

/// A v3 self-signed certificate with keyUsage keyCertSign but no basicConstraints at all.
pub fn no_basic_constraints(name: &str) -> Cert {
    ca_with(name, |p| {
        p.is_ca = IsCa::NoCa;
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    })
}

/// A CA:TRUE certificate whose keyUsage lacks keyCertSign.
pub fn ca_without_cert_sign(name: &str) -> Cert {
    ca_with(name, |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    })
}

/// The shared key as a PEM block labelled `label` (`PRIVATE KEY`, `RSA PRIVATE KEY`, ...): the
/// body is a real PKCS#8 key whatever the label says; the label is what matters.
pub fn private_key_pem(label: &str) -> String {
    pem(label, &shared_key().serialize_der())
}

/// The shared key's public half, a `PUBLIC KEY` PEM block.
pub fn public_key_pem() -> String {
    shared_key().public_key_pem()
}

/// A certificate signing request: a `CERTIFICATE REQUEST` PEM block (a label containing
/// "CERTIFICATE" that is not a certificate).
pub fn csr_pem(name: &str) -> String {
    // A request carries no serial, validity or CA flag: only the subject.
    let mut params = CertificateParams::default();
    params.distinguished_name = self::params(name).distinguished_name;
    params
        .serialize_request(shared_key())
        .expect("make a CSR")
        .pem()
        .expect("CSR as PEM")
}

/// Runs `openssl ARGS` in `dir`, failing the test on error.
pub fn openssl(dir: &Path, args: &[&str]) {
    let output = scrub(&mut Command::new("openssl"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed for v1, TRUSTED CERTIFICATE and CA shape fixtures");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Two X.509 v1 certificates (rcgen only writes v3): a self-signed root named `name`, and one
/// it issued to `NAME leaf` (v1, issuer != subject, so not a CA).
pub fn v1_pair(name: &str) -> (Cert, Cert) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("key.pem"), shared_key().serialize_pem()).expect("write key");
    // `-subj` separates RDNs with '/'.
    let name = name.replace('/', " ");
    let root_subject = format!("/O=vardr-init tests/CN={name}");
    let leaf_subject = format!("/O=vardr-init tests/CN={name} leaf");
    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-key",
            "key.pem",
            "-subj",
            &root_subject,
            "-out",
            "root.csr",
        ],
    );
    openssl(
        dir.path(),
        &[
            "x509", "-req", "-in", "root.csr", "-signkey", "key.pem", "-days", "3650", "-outform",
            "DER", "-out", "root.der",
        ],
    );
    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-key",
            "key.pem",
            "-subj",
            &leaf_subject,
            "-out",
            "leaf.csr",
        ],
    );
    openssl(
        dir.path(),
        &[
            "x509", "-req", "-in", "leaf.csr", "-CA", "root.der", "-CAform", "DER", "-CAkey",
            "key.pem", "-days", "3650", "-outform", "DER", "-out", "leaf.der",
        ],
    );
    let read = |file: &str| Cert {
        der: std::fs::read(dir.path().join(file)).expect("read openssl output"),
    };
    let (root, leaf) = (read("root.der"), read("leaf.der"));
    assert_eq!(x509_version(&root.der), 0, "openssl made a v1 root");
    assert_eq!(x509_version(&leaf.der), 0, "openssl made a v1 leaf");
    (root, leaf)
}

/// `cert` in OpenSSL's `TRUSTED CERTIFICATE` form (`openssl x509 -trustout`, trusted for
/// serverAuth).
pub fn trusted_certificate_pem(cert: &Cert) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.der"), &cert.der).expect("write cert");
    openssl(
        dir.path(),
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            "in.der",
            "-trustout",
            "-addtrust",
            "serverAuth",
            "-out",
            "out.pem",
        ],
    );
    let pem = std::fs::read_to_string(dir.path().join("out.pem")).expect("read trusted cert");
    assert!(
        pem.starts_with("-----BEGIN TRUSTED CERTIFICATE-----"),
        "{pem}"
    );
    pem
}

/// The X.509 version field (0 = v1, 2 = v3).
pub fn x509_version(der: &[u8]) -> u32 {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("a certificate");
    cert.version().0
}

/// `CN` of a DER certificate, or a placeholder when it does not parse.
pub fn describe(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map_or_else(|| cert.subject().to_string(), str::to_owned),
        Err(_) => format!("<{} bytes, not X.509>", der.len()),
    }
}

/// Names of `ders`, for assertion messages.
pub fn describe_all(ders: &[Vec<u8>]) -> Vec<String> {
    ders.iter().map(|der| describe(der)).collect()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, no line breaks.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict standard base64 (padding required, nothing but the alphabet); `None` if invalid.
pub fn unbase64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (index, chunk) in bytes.chunks(4).enumerate() {
        let last = index == bytes.len() / 4 - 1;
        let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - padding] {
            let value = ALPHABET.iter().position(|&a| a == c)?;
            n = (n << 6) | u32::try_from(value).ok()?;
        }
        n <<= 6 * padding;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - padding]);
    }
    Some(out)
}

/// A PEM block: `-----BEGIN LABEL-----`, 64-column base64, `-----END LABEL-----`, LF line ends.
pub fn pem(label: &str, der: &[u8]) -> String {
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in base64(der).as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

/// Every `CERTIFICATE` block in `bytes`, leniently (any text around them, CRLF): for system
/// bundles and other files vardr-init did not write.
pub fn certificates_in(bytes: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(bytes);
    let mut ders = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (&mut body, line) {
            (None, "-----BEGIN CERTIFICATE-----") => body = Some(String::new()),
            (Some(b64), "-----END CERTIFICATE-----") => {
                ders.push(unbase64(b64).expect("valid base64 in a CERTIFICATE block"));
                body = None;
            }
            (Some(b64), line) => b64.push_str(line),
            (None, _) => {}
        }
    }
    ders
}

/// The certificates of the part of a bundle vardr-init wrote itself, read strictly: only
/// `CERTIFICATE` blocks (blank lines between them tolerated, nothing else), LF line ends,
/// 64-column base64, a final newline.
pub fn strict_certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if !text.ends_with('\n') {
        return Err("no final newline".to_owned());
    }
    let mut ders = Vec::new();
    let mut body: Option<Vec<&str>> = None;
    for (number, line) in text[..text.len() - 1].split('\n').enumerate() {
        let at = |what: &str| format!("line {} of the custom part: {what}: {line:?}", number + 1);
        match &mut body {
            None if line.is_empty() => {}
            None if line == "-----BEGIN CERTIFICATE-----" => body = Some(Vec::new()),
            None => return Err(at("outside a CERTIFICATE block")),
            Some(lines) if line == "-----END CERTIFICATE-----" => {
                let Some((last, full)) = lines.split_last() else {
                    return Err(at("empty block"));
                };
                if full.iter().any(|l| l.len() != 64) || last.is_empty() || last.len() > 64 {
                    return Err(at("base64 not in 64-column lines"));
                }
                let der = unbase64(&lines.concat()).ok_or_else(|| at("bad base64"))?;
                ders.push(der);
                body = None;
            }
            Some(lines) => lines.push(line),
        }
    }
    if body.is_some() {
        return Err("a block without END".to_owned());
    }
    Ok(ders)
}

/// Checks the bundle vardr-init wrote at `path`: no private key anywhere; the certificates of
/// `system` first, re-encoded as strict PEM and nothing else (its comments and other blocks are
/// not copied); then exactly `expected`, each once, as strict PEM; mode 0644. Returns the
/// bundle's bytes.
pub fn assert_bundle(path: &Path, system: &[u8], expected: &[Vec<u8>], context: &str) -> Vec<u8> {
    let bytes = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{context}: read the bundle {}: {e}", path.display()));
    assert_no_private_key(&bytes, context);
    let prefix: Vec<u8> = certificates_in(system)
        .iter()
        .flat_map(|der| pem("CERTIFICATE", der).into_bytes())
        .collect();
    assert!(
        bytes.starts_with(&prefix),
        "{context}: the bundle does not start with the system bundle's certificates ({} bytes \
         expected, the bundle has {})",
        prefix.len(),
        bytes.len()
    );
    let custom = strict_certificates(&bytes[prefix.len()..])
        .unwrap_or_else(|e| panic!("{context}: the custom part of the bundle: {e}"));
    assert!(
        custom == expected,
        "{context}: custom certificates in the bundle\n  got      {:?}\n  expected {:?}",
        describe_all(&custom),
        describe_all(expected)
    );
    let metadata = std::fs::symlink_metadata(path).expect("stat the bundle");
    assert!(
        metadata.file_type().is_file(),
        "{context}: the bundle is a regular file"
    );
    assert_eq!(
        metadata.permissions().mode() & 0o7777,
        0o644,
        "{context}: the bundle's mode"
    );
    bytes
}

/// Fails if `bytes` (a bundle) holds anything labelled as a private key.
pub fn assert_no_private_key(bytes: &[u8], context: &str) {
    assert!(
        !bytes.windows(11).any(|w| w == b"PRIVATE KEY"),
        "{context}: a bundle contains \"PRIVATE KEY\""
    );
}

/// A system bundle of `count` fresh CAs, in the style of Fedora's (a comment before each
/// certificate), and the CAs.
pub fn system_bundle(count: usize) -> (Vec<u8>, Vec<Cert>) {
    let cas: Vec<Cert> = (0..count)
        .map(|i| Ca::new(&format!("system root {i}")).cert)
        .collect();
    let mut text = String::from("# A test system bundle\n");
    for ca in &cas {
        let _ = writeln!(text, "\n# {}", ca.name());
        text.push_str(&ca.pem());
    }
    (text.into_bytes(), cas)
}

/// Removes repeated certificates, keeping the first of each.
pub fn unique(ders: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut seen = HashSet::new();
    ders.iter().filter(|d| seen.insert(*d)).cloned().collect()
}

/// `openssl storeutl -noout -certs PATH`'s "Total found: N".
pub fn storeutl_count(path: &Path) -> usize {
    let output = scrub(&mut Command::new("openssl"))
        .args(["storeutl", "-noout", "-certs"])
        .arg(path)
        .output()
        .expect("run openssl storeutl");
    assert!(
        output.status.success(),
        "openssl storeutl {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Total found: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no \"Total found\" in storeutl's output: {stdout}"))
}
