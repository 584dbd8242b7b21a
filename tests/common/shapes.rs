//! CA certificates of many shapes, each with a well-formed server certificate it issued, made with
//! the openssl command line (and the DER editor for encodings no tool writes). The differential
//! test mounts each one and compares vardr-init's verdict with a real handshake through CPython.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::der::{Node, path};
use super::pki::openssl;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Key {
    Rsa(u32),
    RsaPss,
    Ec(&'static str),
    EcExplicit(&'static str),
    Ed25519,
    Ed448,
    Dsa(u32),
}

/// Where the CA sits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Place {
    /// A self-signed root.
    Root,
    /// An intermediate issued by a good root; the mounted file holds the intermediate only.
    Alone,
    /// An intermediate and its root, in one mounted file.
    WithRoot,
}

#[derive(Clone)]
pub struct Shape {
    pub name: &'static str,
    pub key: Key,
    /// openssl extension lines for the CA (`""`: none at all).
    pub ext: &'static str,
    /// `None`: the key type's own (Ed25519 has no separate digest).
    pub digest: Option<&'static str>,
    /// An X.509 v1 certificate (no extensions).
    pub v1: bool,
    pub serial: &'static str,
    pub place: Place,
    /// Validity in days from now: (start offset, length).
    pub days: (i64, i64),
    /// An edit of the CA's DER after signing (the anchor's own signature is never checked).
    pub mutate: Option<fn(&mut Node)>,
    /// Ignored by OpenSSL's decoder but refused by the verifier, or refused at load: either way
    /// the case is about the bundle, not the chain; it only says which group a shape is in.
    pub encoding: bool,
}

/// A CA's basicConstraints (critical, CA:TRUE) and keyUsage (critical, keyCertSign and
/// cRLSign), then the extension lines `$rest`: the shapes that vary what follows.
macro_rules! ca_with {
    ($rest:literal) => {
        concat!(
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
            $rest
        )
    };
}

pub const GOOD_EXT: &str =
    ca_with!("subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n");

fn base(name: &'static str) -> Shape {
    Shape {
        name,
        key: Key::Rsa(2048),
        ext: GOOD_EXT,
        digest: Some("sha256"),
        v1: false,
        serial: "0x0180",
        place: Place::Root,
        days: (-1, 3650),
        mutate: None,
        encoding: false,
    }
}

/// Every shape of the differential corpus.
pub fn all() -> Vec<Shape> {
    let s = base;
    let mut shapes = vec![
        s("good_rsa2048"),
        Shape {
            key: Key::Rsa(1024),
            ..s("rsa1024")
        },
        Shape {
            key: Key::Rsa(4096),
            ..s("rsa4096")
        },
        Shape {
            key: Key::Ec("prime256v1"),
            ..s("ec_p256")
        },
        Shape {
            key: Key::Ec("secp384r1"),
            digest: Some("sha384"),
            ..s("ec_p384")
        },
        Shape {
            key: Key::Ec("prime192v1"),
            ..s("ec_p192")
        },
        Shape {
            key: Key::EcExplicit("prime256v1"),
            ..s("ec_explicit_params")
        },
        Shape {
            key: Key::Ed25519,
            digest: None,
            ..s("ed25519")
        },
        Shape {
            key: Key::Ed448,
            digest: None,
            ..s("ed448")
        },
        Shape {
            key: Key::Ec("secp224r1"),
            ..s("ec_p224")
        },
        Shape {
            key: Key::Rsa(1962),
            ..s("rsa1962")
        },
        Shape {
            key: Key::Rsa(1963),
            ..s("rsa1963")
        },
        Shape {
            ext: ca_with!(
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=critical,keyid:always\n"
            ),
            ..s("aki_critical")
        },
        Shape {
            ext: "keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n\
                  authorityKeyIdentifier=keyid:always\n",
            place: Place::WithRoot,
            ..s("intermediate_by_key_usage_only_with_root")
        },
        Shape {
            key: Key::RsaPss,
            ..s("rsa_pss")
        },
        Shape {
            key: Key::Dsa(2048),
            ..s("dsa2048")
        },
        Shape {
            key: Key::Dsa(1024),
            ..s("dsa1024")
        },
        Shape {
            digest: Some("sha1"),
            ..s("sha1_root")
        },
        Shape {
            digest: Some("md5"),
            ..s("md5_root")
        },
        Shape {
            digest: Some("sha1"),
            place: Place::Alone,
            ..s("sha1_intermediate")
        },
        Shape {
            digest: Some("sha1"),
            place: Place::WithRoot,
            ..s("sha1_intermediate_with_root")
        },
        Shape {
            place: Place::Alone,
            ..s("intermediate_alone")
        },
        Shape {
            place: Place::WithRoot,
            ..s("intermediate_with_root")
        },
        Shape {
            ext: ca_with!("subjectKeyIdentifier=hash\n"),
            place: Place::Alone,
            ..s("intermediate_without_aki")
        },
        Shape {
            ext: "basicConstraints=CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
                  subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n",
            ..s("bc_not_critical")
        },
        Shape {
            ext: "basicConstraints=critical,CA:TRUE\nsubjectKeyIdentifier=hash\n\
                  authorityKeyIdentifier=keyid:always\n",
            ..s("no_key_usage")
        },
        Shape {
            ext: ca_with!("subjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n"),
            ..s("no_ski")
        },
        Shape {
            ext: ca_with!("subjectKeyIdentifier=hash\nauthorityKeyIdentifier=none\n"),
            ..s("no_aki")
        },
        Shape {
            ext: "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyCertSign\n\
                  subjectKeyIdentifier=hash\n",
            ..s("ca_false")
        },
        Shape {
            ext: "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\n\
                  subjectKeyIdentifier=hash\n",
            ..s("ku_without_cert_sign")
        },
        Shape {
            ext: "keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
            ..s("ku_cert_sign_without_bc")
        },
        Shape {
            ext: "subjectKeyIdentifier=hash\n",
            ..s("v3_without_bc_or_ku")
        },
        Shape {
            ext: "nsCertType=sslCA\nsubjectKeyIdentifier=hash\n",
            ..s("netscape_ssl_ca_only")
        },
        Shape {
            ext: "",
            v1: true,
            ..s("v1_root")
        },
        Shape {
            ext: "basicConstraints=critical,CA:TRUE,pathlen:0\n\
                  keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
            ..s("pathlen_0")
        },
        Shape {
            ext: "basicConstraints=critical,CA:TRUE,pathlen:1\nsubjectKeyIdentifier=hash\n",
            ..s("pathlen_without_key_usage")
        },
        Shape {
            ext: ca_with!("subjectKeyIdentifier=hash\nextendedKeyUsage=clientAuth\n"),
            ..s("eku_client_only")
        },
        Shape {
            ext: ca_with!(
                "subjectKeyIdentifier=hash\nextendedKeyUsage=critical,serverAuth,clientAuth\n"
            ),
            ..s("eku_critical_server")
        },
        Shape {
            ext: ca_with!("subjectKeyIdentifier=hash\nextendedKeyUsage=anyExtendedKeyUsage\n"),
            ..s("eku_any_only")
        },
        Shape {
            ext: ca_with!("subjectKeyIdentifier=hash\n1.3.6.1.4.1.55555.1=critical,ASN1:NULL\n"),
            ..s("unknown_critical_extension")
        },
        Shape {
            ext: ca_with!("subjectKeyIdentifier=hash\n1.3.6.1.4.1.55555.1=ASN1:NULL\n"),
            ..s("unknown_noncritical_extension")
        },
        Shape {
            ext: ca_with!("subjectKeyIdentifier=critical,hash\n"),
            ..s("ski_critical")
        },
        Shape {
            ext: ca_with!("subjectKeyIdentifier=hash\nissuerAltName=critical,DNS:ca.test\n"),
            ..s("issuer_alt_name_critical")
        },
        Shape {
            ext: ca_with!(
                "subjectKeyIdentifier=hash\n\
                  nameConstraints=critical,permitted;DNS:localhost,permitted;IP:127.0.0.0/255.0.0.0\n"
            ),
            ..s("name_constraints_permit")
        },
        Shape {
            ext: ca_with!(
                "subjectKeyIdentifier=hash\nnameConstraints=critical,excluded;DNS:other.test\n"
            ),
            ..s("name_constraints_exclude_other")
        },
        Shape {
            ext: ca_with!(
                "subjectKeyIdentifier=hash\n\
                  certificatePolicies=critical,2.5.29.32.0\n"
            ),
            ..s("policies_critical_any")
        },
        Shape {
            serial: "-5",
            ..s("serial_negative")
        },
        Shape {
            serial: "0",
            ..s("serial_zero")
        },
        Shape {
            days: (-3650, 10),
            ..s("expired")
        },
        Shape {
            days: (-5000, 10),
            place: Place::Alone,
            ..s("expired_intermediate")
        },
        Shape {
            days: (30, 3650),
            ..s("not_yet_valid")
        },
        Shape {
            mutate: Some(|cert| {
                cert.at(path::SUBJECT).children().clear();
                cert.at(path::ISSUER).children().clear();
            }),
            ..s("empty_subject")
        },
        Shape {
            mutate: Some(|cert| {
                // sha384WithRSAEncryption outside, sha256WithRSAEncryption inside.
                let oid = cert.at(&[1, 0]).bytes();
                *oid.last_mut().expect("oid") = 0x0c;
            }),
            ..s("signature_algorithm_mismatch")
        },
        Shape {
            mutate: Some(|cert| {
                let exts = cert.at(path::EXTENSIONS).children();
                let first = exts[0].clone();
                exts.push(first);
            }),
            ..s("duplicate_extension")
        },
    ];
    shapes.extend(encodings());
    shapes
}

/// Encodings OpenSSL's decoder may refuse: with one of them in a bundle, the whole file fails to
/// load in Python (`[X509] PEM lib`), the system CAs with it.
fn encodings() -> Vec<Shape> {
    let e = |name: &'static str, mutate: fn(&mut Node)| Shape {
        mutate: Some(mutate),
        encoding: true,
        ..base(name)
    };
    // The value of the subject's and issuer's second attribute (`O=...`).
    fn org(cert: &mut Node, tag: u8, bytes: &[u8]) {
        for name in [path::SUBJECT, path::ISSUER] {
            *cert.at(name).at(&[1, 0, 1]) = Node::primitive(tag, bytes);
        }
    }
    vec![
        e("der_serial_zero_pad", |c| {
            c.at(path::SERIAL).bytes().insert(0, 0x00)
        }),
        e("der_serial_ff_pad", |c| {
            *c.at(path::SERIAL).bytes() = vec![0xff, 0x80]
        }),
        e("der_serial_empty", |c| c.at(path::SERIAL).bytes().clear()),
        e("der_oid_non_minimal", |c| {
            // id-at-organizationName 2.5.4.10 = 55 04 0a, with a 0x80 pad before the 04.
            for name in [path::SUBJECT, path::ISSUER] {
                *c.at(name).at(&[1, 0, 0]).bytes() = vec![0x55, 0x80, 0x04, 0x0a];
            }
        }),
        e("der_oid_empty", |c| {
            for name in [path::SUBJECT, path::ISSUER] {
                c.at(name).at(&[1, 0, 0]).bytes().clear();
            }
        }),
        e("der_oid_unterminated", |c| {
            for name in [path::SUBJECT, path::ISSUER] {
                *c.at(name).at(&[1, 0, 0]).bytes() = vec![0x55, 0x04, 0x8a];
            }
        }),
        e("der_utf8_overlong", |c| org(c, 0x0c, b"A\xc0\xafB")),
        e("der_utf8_surrogate", |c| org(c, 0x0c, b"A\xed\xa0\x80B")),
        e("der_utf8_truncated", |c| org(c, 0x0c, b"AB\xe2\x82")),
        e("der_bmp_odd_length", |c| org(c, 0x1e, b"\x00A\x00")),
        e("der_bmp_surrogate", |c| org(c, 0x1e, b"\x00A\xd8\x00")),
        e("der_universal_length_3", |c| org(c, 0x1c, b"\x00\x00A")),
        e("der_printable_bad_char", |c| org(c, 0x13, b"a@b")),
        e("der_name_visible_string", |c| org(c, 0x1a, b"ab")),
        e("der_name_octet_string", |c| org(c, 0x04, b"ab")),
        e("der_null_param_length_1", |c| {
            *c.at(&[path::TBS_SIGNATURE_ALG, &[1]].concat()).bytes() = vec![0x00];
        }),
        e("der_bit_string_unused_8", |c| c.at(&[2]).bytes()[0] = 0x08),
        e("der_boolean_length_2", |c| {
            // basicConstraints is the first extension: { extnID, critical BOOLEAN, extnValue }.
            *c.at(path::EXTENSIONS).at(&[0, 1]).bytes() = vec![0xff, 0xff];
        }),
        // An explicit v1 version with extensions: it decodes, the strict verifier refuses it.
        Shape {
            mutate: Some(|c| *c.at(&[0, 0, 0]).bytes() = vec![0x00]),
            ..base("v1_version_with_extensions")
        },
    ]
}

/// The files of one generated shape.
pub struct Made {
    pub name: &'static str,
    /// What is mounted in the certificates directory (PEM).
    pub mounted: Vec<u8>,
    pub leaf_cert: PathBuf,
    pub leaf_key: PathBuf,
}

fn key(dir: &Path, key: Key, file: &str) {
    let bits;
    let args: Vec<&str> = match key {
        Key::Rsa(n) => {
            bits = format!("rsa_keygen_bits:{n}");
            vec!["-algorithm", "RSA", "-pkeyopt", &bits]
        }
        Key::RsaPss => vec!["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"],
        Key::Ec(curve) => {
            bits = format!("ec_paramgen_curve:{curve}");
            vec!["-algorithm", "EC", "-pkeyopt", &bits]
        }
        Key::EcExplicit(curve) => {
            bits = format!("ec_paramgen_curve:{curve}");
            vec![
                "-algorithm",
                "EC",
                "-pkeyopt",
                &bits,
                "-pkeyopt",
                "ec_param_enc:explicit",
            ]
        }
        Key::Ed25519 => vec!["-algorithm", "ED25519"],
        Key::Ed448 => vec!["-algorithm", "ED448"],
        Key::Dsa(n) => {
            bits = format!("dsa_paramgen_bits:{n}");
            let params = format!("{file}.params");
            openssl(
                dir,
                &[
                    "genpkey",
                    "-genparam",
                    "-algorithm",
                    "DSA",
                    "-pkeyopt",
                    &bits,
                    "-out",
                    &params,
                ],
            );
            openssl(dir, &["genpkey", "-paramfile", &params, "-out", file]);
            return;
        }
    };
    let mut all = vec!["genpkey"];
    all.extend(args);
    all.extend(["-out", file]);
    openssl(dir, &all);
}

fn config(dir: &Path, ext: &str) -> PathBuf {
    let path = dir.join("ext.cnf");
    // The leaf names its issuer's key when the issuer has a key identifier to name, else its
    // issuer and serial (strict verifiers want an authority key identifier on the leaf).
    let aki = if ext.contains("subjectKeyIdentifier=hash")
        || ext.contains("subjectKeyIdentifier=critical,hash")
    {
        "authorityKeyIdentifier=keyid\n"
    } else {
        "authorityKeyIdentifier=issuer:always\n"
    };
    let text = format!(
        "[req]\ndistinguished_name = dn\n[dn]\n[ca]\n{ext}\n[leaf]\n\
         basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n\
         subjectKeyIdentifier=hash\n{aki}"
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// `openssl req -new`: a request for `subject`, signed with `key`, to `out`.
fn request(dir: &Path, key: &str, subject: &str, cnf: &str, out: &str) {
    let args = [
        "req", "-new", "-key", key, "-subj", subject, "-out", out, "-config", cnf,
    ];
    openssl(dir, &args);
}

/// `openssl x509 -req`: the request `csr` signed `by` (`-signkey KEY`: self-signed; `-CA PEM
/// -CAkey KEY`), to `out`, with `more` arguments (extensions, days, digest).
fn sign(dir: &Path, csr: &str, by: &[&str], out: &str, serial: &str, more: &[&str]) {
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        csr,
        "-out",
        out,
        "-set_serial",
        serial,
    ];
    args.extend(by);
    args.extend(more);
    openssl(dir, &args);
}

/// Makes one shape in `dir` (a fresh directory).
pub fn make(shape: &Shape, dir: &Path) -> Made {
    std::fs::create_dir_all(dir).expect("shape dir");
    key(dir, shape.key, "ca.key");
    let subject = format!("/CN={}/O=vardr differential", shape.name);
    let digest = shape.digest.map(|d| format!("-{d}"));
    let mut chain_root = None;
    if shape.place != Place::Root {
        // A good root first, then the shape as its intermediate.
        key(dir, Key::Rsa(2048), "root.key");
        let root_cnf = config(dir, GOOD_EXT);
        let root_cnf = root_cnf.to_str().expect("utf-8");
        request(
            dir,
            "root.key",
            &format!("/CN={} root", shape.name),
            root_cnf,
            "root.csr",
        );
        let more = [
            "-sha256",
            "-extfile",
            root_cnf,
            "-extensions",
            "ca",
            "-days",
            "3650",
        ];
        sign(
            dir,
            "root.csr",
            &["-signkey", "root.key"],
            "root.pem",
            "7",
            &more,
        );
        chain_root = Some(std::fs::read(dir.join("root.pem")).expect("root"));
    }
    let cnf = config(dir, shape.ext);
    let cnf = cnf.to_str().expect("utf-8 path");
    request(dir, "ca.key", &subject, cnf, "ca.csr");
    let mut more = vec!["-days", "3650"];
    more.extend(digest.as_deref());
    // No extension section at all makes `x509 -req` write a v1 certificate.
    if !shape.v1 && !shape.ext.is_empty() {
        more.extend(["-extfile", cnf, "-extensions", "ca"]);
    }
    let by: &[&str] = match shape.place {
        Place::Root => &["-signkey", "ca.key"],
        Place::Alone | Place::WithRoot => &["-CA", "root.pem", "-CAkey", "root.key"],
    };
    sign(dir, "ca.csr", by, "ca.pem", shape.serial, &more);
    let edit = || {
        if shape.mutate.is_some() || shape.days != base("").days {
            // Edited after signing: the anchor's own signature is never checked. Validity too, as
            // OpenSSL 3.0's `x509 -req` only counts `-days` from now.
            let der = pem_to_der(&std::fs::read(dir.join("ca.pem")).expect("ca"));
            let mut tree = Node::parse(&der);
            if shape.days != base("").days {
                let (start, length) = shape.days;
                let validity = tree.at(&[0, 4]).children();
                validity[0] = Node::primitive(0x17, &utc_time(start));
                validity[1] = Node::primitive(0x17, &utc_time(start + length));
            }
            if let Some(mutate) = shape.mutate {
                mutate(&mut tree);
            }
            std::fs::write(dir.join("ca.pem"), der_to_pem(&tree.encode())).expect("write ca");
        }
    };
    // The leaf is signed by the CA as mounted; when openssl cannot read an edited encoding back,
    // by the CA as it was before the edit (same key and names).
    std::fs::copy(dir.join("ca.pem"), dir.join("ca.orig.pem")).expect("keep the original");
    edit();
    let readable = Command::new("openssl")
        .args(["x509", "-noout", "-in"])
        .arg(dir.join("ca.pem"))
        .output()
        .is_ok_and(|out| out.status.success());
    let signer = if readable { "ca.pem" } else { "ca.orig.pem" };
    // The leaf: a well-formed server certificate, EC P-256, signed by the CA. A leaf under a CA
    // that is not valid now is still made valid now: the CA is what is judged.
    key(dir, Key::Ec("prime256v1"), "leaf.key");
    request(dir, "leaf.key", "/CN=localhost", cnf, "leaf.csr");
    let mut more = vec!["-extfile", cnf, "-extensions", "leaf", "-days", "30"];
    if !matches!(shape.key, Key::Ed25519 | Key::Ed448) {
        more.push("-sha256");
    }
    let by = ["-CA", signer, "-CAkey", "ca.key"];
    sign(dir, "leaf.csr", &by, "leaf.pem", "99", &more);
    let mut mounted = std::fs::read(dir.join("ca.pem")).expect("ca");
    if shape.place == Place::WithRoot {
        mounted.extend(chain_root.expect("root"));
    }
    Made {
        name: shape.name,
        mounted,
        leaf_cert: dir.join("leaf.pem"),
        leaf_key: dir.join("leaf.key"),
    }
}

/// `YYMMDDHHMMSSZ`, `days` from now.
fn utc_time(days: i64) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let out = Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{}", now + days * 86_400),
            "+%y%m%d%H%M%SZ",
        ])
        .output()
        .expect("date");
    String::from_utf8(out.stdout)
        .expect("ascii")
        .trim()
        .as_bytes()
        .to_vec()
}

pub fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    data_encoding::BASE64
        .decode(body.as_bytes())
        .expect("base64")
}

pub fn der_to_pem(der: &[u8]) -> Vec<u8> {
    let b64 = data_encoding::BASE64.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("ascii"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out.into_bytes()
}
