//! DER as OpenSSL's decoder reads it: what makes `d2i_X509` refuse a certificate, so that no
//! certificate that would stop the whole bundle from loading is ever written into it.
//!
//! x509-parser is lenient where OpenSSL is not (a padded serial, a non-minimal OID, invalid
//! UTF-8 in a name), and one refused certificate makes Python's `load_verify_locations` fail for
//! the whole file, the system CAs with it. No crate decodes exactly as OpenSSL does (the strict
//! DER crates refuse more: an explicit default version, a `@` in a PrintableString, long-form
//! lengths), so this walks the certificate's TLV tree and applies OpenSSL 3.0's refusals, found
//! in its sources (crypto/asn1: `c2i_ibuf`, `c2i_ASN1_OBJECT`, `c2i_ASN1_BIT_STRING`,
//! `ASN1_mbstring_copy`) and checked against CPython in tests/tls_verdicts.rs. What it accepts,
//! OpenSSL accepts too: long-form lengths and other BER-isms OpenSSL tolerates pass here.

/// One element: its tag byte and its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OID: u8 = 0x06;
pub const SEQUENCE: u8 = 0x30;

/// The first element of `bytes` and what follows it, or why it does not read.
pub fn read(bytes: &[u8]) -> Result<(Tlv<'_>, &[u8]), &'static str> {
    let [tag, first, rest @ ..] = bytes else {
        return Err("truncated element");
    };
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tag");
    }
    let (len, rest) = match *first {
        n if n < 0x80 => (usize::from(n), rest),
        0x80 => return Err("indefinite length"),
        n => {
            let count = usize::from(n & 0x7f);
            if count > 4 || rest.len() < count {
                return Err("bad length");
            }
            let (len_bytes, rest) = rest.split_at(count);
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, rest)
        }
    };
    if rest.len() < len {
        return Err("length beyond the data");
    }
    let (content, rest) = rest.split_at(len);
    Ok((Tlv { tag: *tag, content }, rest))
}

/// The elements inside a constructed element's content.
pub fn children(content: &[u8]) -> impl Iterator<Item = Result<Tlv<'_>, &'static str>> {
    let mut rest = content;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match read(rest) {
            Ok((tlv, after)) => {
                rest = after;
                Some(Ok(tlv))
            }
            Err(e) => {
                rest = &[];
                Some(Err(e))
            }
        }
    })
}

/// Why OpenSSL would refuse to decode this certificate, or `None`. Walks every constructed
/// element (extension values are OCTET STRINGs: OpenSSL decodes those only when it verifies, and
/// the verdict's rules judge them) and checks each universal primitive it meets, then the types
/// of the names' attribute values.
pub fn refusal(der: &[u8]) -> Option<String> {
    let tlv = match read(der) {
        Ok((tlv, _)) => tlv,
        Err(e) => return Some(e.to_owned()),
    };
    if let Err(e) = walk(tlv, 0) {
        return Some(e);
    }
    let parts = Parts::of(der)?;
    [("issuer", parts.issuer), ("subject", parts.subject)]
        .into_iter()
        .find_map(|(which, name)| name_refusal(name).map(|e| format!("the {which} name holds {e}")))
}

/// The pieces of a certificate the rules compare as bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    /// `tbsCertificate.signature`, whole element.
    pub inner_algorithm: &'a [u8],
    /// The outer `signatureAlgorithm`, whole element.
    pub outer_algorithm: &'a [u8],
    /// The names' contents (the RDN sequence without its header): empty for an empty name.
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
}

impl<'a> Parts<'a> {
    /// `None` when the certificate's outline does not read (x509-parser says why).
    pub fn of(der: &'a [u8]) -> Option<Parts<'a>> {
        let (cert, _) = read(der).ok()?;
        let (tbs, rest) = read(cert.content).ok()?;
        let outer_algorithm = element(rest)?;
        let mut fields = tbs.content;
        let (first, after) = read(fields).ok()?;
        if first.tag == 0xa0 {
            fields = after; // the explicit version
        }
        let (_serial, fields) = read(fields).ok()?;
        let inner_algorithm = element(fields)?;
        let (_, fields) = read(fields).ok()?;
        let (issuer, fields) = read(fields).ok()?;
        let (_validity, fields) = read(fields).ok()?;
        let (subject, _) = read(fields).ok()?;
        Some(Parts {
            inner_algorithm,
            outer_algorithm,
            issuer: issuer.content,
            subject: subject.content,
        })
    }
}

/// The first element of `bytes`, header included.
fn element(bytes: &[u8]) -> Option<&[u8]> {
    let (_, rest) = read(bytes).ok()?;
    bytes.get(..bytes.len() - rest.len())
}

/// OpenSSL canonicalises every name when it decodes a certificate, and refuses attribute values
/// outside its printable string types (a VisibleString, an OCTET STRING, an INTEGER...).
fn name_refusal(rdns: &[u8]) -> Option<String> {
    const ALLOWED: [u8; 9] = [0x03, 0x0c, 0x12, 0x13, 0x14, 0x16, 0x1c, 0x1e, 0x30];
    for rdn in children(rdns) {
        for attribute in children(rdn.ok()?.content) {
            let mut fields = children(attribute.ok()?.content);
            let _type = fields.next()?;
            let value = fields.next()?.ok()?;
            if !ALLOWED.contains(&value.tag) {
                return Some(format!(
                    "an attribute value of type 0x{:02x}, which OpenSSL does not take in a name",
                    value.tag
                ));
            }
        }
    }
    None
}

fn walk(tlv: Tlv<'_>, depth: usize) -> Result<(), String> {
    if depth > 32 {
        return Err("nested too deeply".to_owned());
    }
    if tlv.tag & 0x20 != 0 {
        for child in children(tlv.content) {
            walk(child.map_err(str::to_owned)?, depth + 1)?;
        }
        return Ok(());
    }
    if tlv.tag & 0xc0 != 0 {
        return Ok(()); // context-specific or private primitives: implicit types, read in context
    }
    primitive(tlv.tag, tlv.content).map_err(|why| format!("{why} (tag 0x{:02x})", tlv.tag))
}

fn primitive(tag: u8, c: &[u8]) -> Result<(), &'static str> {
    match tag {
        0x01 if c.len() != 1 => Err("a BOOLEAN that is not one byte long"),
        0x02 => integer(c),
        0x03 => match c.first() {
            None => Err("an empty BIT STRING"),
            Some(&unused) if unused > 7 => Err("a BIT STRING with more than 7 unused bits"),
            _ => Ok(()),
        },
        0x05 if !c.is_empty() => Err("a NULL with content"),
        0x06 => oid(c),
        0x0c => std::str::from_utf8(c)
            .map(drop)
            .map_err(|_| "a UTF8String that is not valid UTF-8"),
        0x1e => {
            if !c.len().is_multiple_of(2) {
                return Err("a BMPString of odd length");
            }
            let surrogate = c.chunks(2).any(|u| (0xd8..=0xdf).contains(&u[0]));
            if surrogate {
                Err("a BMPString holding a surrogate")
            } else {
                Ok(())
            }
        }
        0x1c => {
            if !c.len().is_multiple_of(4) {
                return Err("a UniversalString whose length is not a multiple of 4");
            }
            let invalid = c.chunks(4).any(|u| {
                let v = u32::from_be_bytes([u[0], u[1], u[2], u[3]]);
                char::from_u32(v).is_none()
            });
            if invalid {
                Err("a UniversalString holding an invalid character")
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// OpenSSL's `c2i_ibuf`: no empty INTEGER, no redundant leading 0x00 or 0xff.
fn integer(c: &[u8]) -> Result<(), &'static str> {
    match c {
        [] => Err("an empty INTEGER"),
        [0x00, next, ..] if next & 0x80 == 0 => Err("an INTEGER padded with 0x00"),
        [0xff, next, ..] if next & 0x80 != 0 => Err("an INTEGER padded with 0xff"),
        _ => Ok(()),
    }
}

/// OpenSSL's `c2i_ASN1_OBJECT`: not empty, no 0x80 padding, the last byte ends a sub-identifier.
fn oid(c: &[u8]) -> Result<(), &'static str> {
    let Some(last) = c.last() else {
        return Err("an empty OBJECT IDENTIFIER");
    };
    if last & 0x80 != 0 {
        return Err("an OBJECT IDENTIFIER that ends inside a sub-identifier");
    }
    let padded = c
        .iter()
        .enumerate()
        .any(|(i, &b)| b == 0x80 && (i == 0 || c[i - 1] & 0x80 == 0));
    if padded {
        return Err("an OBJECT IDENTIFIER with a non-minimal sub-identifier");
    }
    Ok(())
}

/// The number of significant bits of a DER INTEGER's content (an RSA modulus, a DSA prime).
pub fn integer_bits(c: &[u8]) -> usize {
    let c = match c {
        [0x00, rest @ ..] => rest,
        c => c,
    };
    match c.first() {
        None => 0,
        Some(&b) => (c.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, u8::try_from(content.len()).expect("short")];
        out.extend_from_slice(content);
        out
    }

    fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    #[test]
    fn refuses_what_openssl_refuses() {
        for (bad, why) in [
            (tlv(0x02, &[]), "empty INTEGER"),
            (tlv(0x02, &[0x00, 0x23]), "padded with 0x00"),
            (tlv(0x02, &[0xff, 0x80]), "padded with 0xff"),
            (tlv(0x06, &[]), "empty OBJECT"),
            (tlv(0x06, &[0x55, 0x80, 0x04]), "non-minimal"),
            (tlv(0x06, &[0x80, 0x55]), "non-minimal"),
            (tlv(0x06, &[0x55, 0x84]), "ends inside"),
            (tlv(0x0c, b"A\xc0\xaf"), "UTF-8"),
            (tlv(0x0c, b"\xed\xa0\x80"), "UTF-8"),
            (tlv(0x1e, b"\x00A\x00"), "odd length"),
            (tlv(0x1e, b"\xd8\x00"), "surrogate"),
            (tlv(0x1c, b"\x00\x00A"), "multiple of 4"),
            (tlv(0x1c, b"\x00\x11\x00\x00"), "invalid character"),
            (tlv(0x05, &[0]), "NULL"),
            (tlv(0x01, &[0xff, 0xff]), "BOOLEAN"),
            (tlv(0x03, &[8]), "unused bits"),
            (tlv(0x03, &[]), "empty BIT STRING"),
        ] {
            let wrapped = seq(&[tlv(0x02, &[1]), seq(std::slice::from_ref(&bad))]);
            let got = refusal(&wrapped).unwrap_or_else(|| panic!("{bad:02x?} accepted"));
            assert!(got.contains(why), "{bad:02x?}: {got}");
        }
    }

    #[test]
    fn accepts_what_openssl_accepts() {
        let ok = seq(&[
            tlv(0x02, &[0x00, 0x80]),
            tlv(0x02, &[0xff, 0x7f]),
            tlv(0x02, &[0x00]),
            tlv(0x06, &[0x55, 0x04, 0x03]),
            tlv(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            tlv(0x13, b"a@b"), // PrintableString's alphabet is not enforced on decode
            tlv(0x0c, "é".as_bytes()),
            tlv(0x1e, b"\x00A"),
            tlv(0x05, &[]),
            tlv(0x01, &[0x01]),
            tlv(0x80, &[]), // an implicit context-specific primitive is read in context
        ]);
        assert_eq!(refusal(&ok), None);
        // A long-form length where the short form would do: OpenSSL reads it.
        let long = [0x30, 0x81, 0x03, 0x02, 0x01, 0x05];
        assert_eq!(refusal(&long), None);
        assert!(refusal(&[0x30, 0x80, 0x00, 0x00]).is_some());
        let name = |value: Vec<u8>| seq(&[tlv(0x31, &seq(&[tlv(0x06, &[0x55, 4, 3]), value]))]);
        assert_eq!(name_refusal(&name(tlv(0x13, b"x"))[2..]), None);
        assert!(name_refusal(&name(tlv(0x1a, b"x"))[2..]).is_some());
        assert!(name_refusal(&name(tlv(0x04, b"x"))[2..]).is_some());
        assert!(refusal(&[0x30, 0x05, 0x02]).is_some());
    }

    #[test]
    fn integer_bits_counts_significant_bits() {
        assert_eq!(integer_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(integer_bits(&[0x01, 0x00]), 9);
        assert_eq!(integer_bits(&[]), 0);
    }
}
