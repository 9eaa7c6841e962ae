//! The fields of a server certificate the record shows, read with
//! `x509-parser`: subject and issuer distinguished names, serial number,
//! validity bounds; and its SHA-1 fingerprint. Serial and fingerprint are
//! written as Suricata writes them: bytes in hex separated by colons,
//! upper case for the serial, lower case for the fingerprint.
//!
//! Extensions are not parsed (nothing here shows them), and names are
//! written straight into their string in the form of x509-parser's
//! `Display`: those two made most of a TLS flow's allocations.

use std::fmt::Write as _;

use sha1::{Digest, Sha1};
use x509_parser::asn1_rs::{Any, BmpString, Tag};
use x509_parser::certificate::X509CertificateParser;
use x509_parser::nom::Parser as _;
use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::time::ASN1Time;
use x509_parser::x509::X509Name;

use super::TlsRecord;
use super::record::CertField;
use crate::l7::prefixed::prefixed;

/// Hexadecimal digits, upper and lower case.
const UPPER: &[u8; 16] = b"0123456789ABCDEF";
const LOWER: &[u8; 16] = b"0123456789abcdef";

/// The certificates of a Certificate message (TLS 1.2 and before): a list
/// behind a 3-byte length, each certificate behind its own, read up to the
/// first cut one, as tls-parser reads them (which collects them into a new
/// vector). `None` when the list is cut.
pub(super) fn chain(body: &[u8]) -> Option<Chain<'_>> {
    let (list, _) = prefixed::<3>(body)?;
    Some(Chain(list))
}

/// The DER certificates of a list ([`chain`]), in order.
#[derive(Debug, Clone)]
pub(super) struct Chain<'a>(&'a [u8]);

impl<'a> Iterator for Chain<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (der, rest) = prefixed::<3>(self.0)?;
        self.0 = rest;
        Some(der)
    }
}

/// Reads a DER certificate into `record`'s certificate fields; false (and
/// `record` untouched) if it does not parse.
pub(super) fn parse(der: &[u8], record: &mut TlsRecord) -> bool {
    let Ok((_, cert)) = X509CertificateParser::new()
        .with_deep_parse_extensions(false)
        .parse(der)
    else {
        return false;
    };
    let validity = cert.validity();
    record.set_cert(|field, out| match field {
        CertField::Subject => push_name_text(out, cert.subject()),
        CertField::Issuer => push_name_text(out, cert.issuer()),
        CertField::Serial => push_hex_colons(out, cert.tbs_certificate.raw_serial(), UPPER),
        CertField::Fingerprint => push_hex_colons(out, &Sha1::digest(der), LOWER),
        CertField::NotBefore => push_utc(out, validity.not_before),
        CertField::NotAfter => push_utc(out, validity.not_after),
    });
    true
}

/// A distinguished name as x509-parser's `Display` writes it: its RDNs
/// joined by `, `, the attributes of one RDN by ` + `, each `abbrev=value`
/// (the OID's `Debug` form when it has no abbreviation; a value that is no
/// string in upper-case hex); `<X509Error: Invalid X.509 name>` when a
/// string value is not valid.
fn push_name_text(out: &mut String, name: &X509Name<'_>) {
    let start = out.len();
    if push_name(out, name, start).is_none() {
        out.truncate(start);
        out.push_str("<X509Error: Invalid X.509 name>");
    }
}

/// Appends `name`'s RDNs to `out`, whose text before `start` is not its.
fn push_name(out: &mut String, name: &X509Name<'_>, start: usize) -> Option<()> {
    let registry = oid_registry();
    for rdn in name.iter_rdn() {
        if out.len() > start {
            out.push_str(", ");
        }
        for (i, attr) in rdn.iter().enumerate() {
            if i > 0 {
                out.push_str(" + ");
            }
            match oid2abbrev(attr.attr_type(), registry) {
                Ok(abbrev) => out.push_str(abbrev),
                Err(_) => {
                    let _ = write!(out, "{:?}", attr.attr_type());
                }
            }
            out.push('=');
            push_value(out, attr.attr_value())?;
        }
    }
    Some(())
}

/// An attribute's value: strings as they are, a BMPString decoded, any
/// other type in upper-case hex.
fn push_value(out: &mut String, value: &Any<'_>) -> Option<()> {
    match value.tag() {
        Tag::NumericString
        | Tag::VisibleString
        | Tag::PrintableString
        | Tag::GeneralString
        | Tag::ObjectDescriptor
        | Tag::GraphicString
        | Tag::T61String
        | Tag::VideotexString
        | Tag::Utf8String
        | Tag::Ia5String => out.push_str(std::str::from_utf8(value.data).ok()?),
        Tag::BmpString => out.push_str(BmpString::try_from(value).ok()?.as_ref()),
        _ => {
            for b in value.as_bytes() {
                out.push(char::from(UPPER[usize::from(b >> 4)]));
                out.push(char::from(UPPER[usize::from(b & 0xf)]));
            }
        }
    }
    Some(())
}

/// Appends `bytes` in hex with `digits`, separated by colons.
fn push_hex_colons(out: &mut String, bytes: &[u8], digits: &[u8; 16]) {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(char::from(digits[usize::from(b >> 4)]));
        out.push(char::from(digits[usize::from(b & 0xf)]));
    }
}

/// Appends a time as `YYYY-MM-DDTHH:MM:SS` (civil-from-days conversion).
fn push_utc(out: &mut String, t: ASN1Time) {
    let secs = t.timestamp();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_is_read_by_tls_parsers_rules() {
        let u24 = |n: usize| (n as u32).to_be_bytes()[1..].to_vec();
        let certs: [&[u8]; 3] = [b"\x30\x03abc", b"", b"\x30\x01z"];
        let mut list = Vec::new();
        for c in certs {
            list.extend(u24(c.len()));
            list.extend_from_slice(c);
        }
        let whole = [u24(list.len()), list].concat();
        let mut bodies = vec![whole.clone()];
        for at in 0..whole.len() {
            bodies.push(whole[..at].to_vec());
            for v in [0x00, 0x01, 0x05, 0xff] {
                let mut b = whole.clone();
                b[at] = v;
                bodies.push(b);
            }
        }
        for body in &bodies {
            let want = match tls_parser::parse_tls_handshake_msg_certificate(body) {
                Ok((_, tls_parser::TlsMessageHandshake::Certificate(c))) => {
                    Some(c.cert_chain.iter().map(|r| r.data).collect::<Vec<_>>())
                }
                _ => None,
            };
            assert_eq!(chain(body).map(Iterator::collect), want, "{body:02x?}");
        }
        assert_eq!(chain(&whole).map(Iterator::collect), Some(certs.to_vec()));
    }

    #[test]
    fn times_format_like_suricata() {
        let t = |s| {
            let mut out = String::new();
            push_utc(&mut out, ASN1Time::from_timestamp(s).unwrap());
            out
        };
        assert_eq!(t(0), "1970-01-01T00:00:00");
        // `date -u -d @1709251199` = 2024-02-29 23:59:59 (leap day).
        assert_eq!(t(1_709_251_199), "2024-02-29T23:59:59");
        assert_eq!(t(951_782_400), "2000-02-29T00:00:00");
        let mut record = TlsRecord::default();
        assert!(!parse(b"\x30\x03\x02\x01\x00", &mut record));
        assert_eq!(record, TlsRecord::default());
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag, content.len() as u8];
        v.extend_from_slice(content);
        v
    }

    /// One attribute: OID content bytes and a value of `tag`.
    fn attr(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        tlv(0x30, &[tlv(0x06, oid), tlv(tag, value)].concat())
    }

    #[test]
    fn names_are_what_x509_parsers_display_writes() {
        use x509_parser::prelude::FromDer;
        let (cn, o, c, unknown) = (
            &[0x55, 4, 3][..],
            &[0x55, 4, 10][..],
            &[0x55, 4, 6][..],
            &[0x2a, 3, 4][..],
        );
        let rdn = |attrs: &[Vec<u8>]| tlv(0x31, &attrs.concat());
        let names = [
            vec![
                rdn(&[attr(c, 0x13, b"US")]),
                rdn(&[attr(o, 0x13, b"Let's Encrypt")]),
                rdn(&[attr(cn, 0x0c, b"R3")]),
            ],
            // Two attributes in one RDN, an OID without abbreviation, an
            // INTEGER value, a BMPString.
            vec![
                rdn(&[
                    attr(cn, 0x0c, b"a.example"),
                    attr(o, 0x0c, "Exämple".as_bytes()),
                ]),
                rdn(&[attr(unknown, 0x02, &[1, 0xab])]),
                rdn(&[attr(o, 0x1e, &[0, b'B', 0, b'm', 0x4e, 0x2d])]),
            ],
            // An empty RDN.
            vec![rdn(&[]), rdn(&[attr(cn, 0x0c, b"after empty")])],
            // Not UTF-8.
            vec![rdn(&[attr(cn, 0x0c, b"\xff")])],
            vec![],
        ];
        let mut texts = Vec::new();
        for rdns in names {
            let der = tlv(0x30, &rdns.concat());
            let (_, name) = X509Name::from_der(&der).expect("a name");
            // Written after other text, as into a record's buffer.
            let mut text = String::from("before");
            push_name_text(&mut text, &name);
            let text = text.split_off("before".len());
            assert_eq!(text, name.to_string(), "{der:02x?}");
            texts.push(text);
        }
        assert_eq!(
            texts[..2],
            [
                "C=US, O=Let's Encrypt, CN=R3",
                "CN=a.example + O=Exämple, OID(1.2.3.4)=01AB, O=Bm中"
            ]
        );
        assert_eq!(texts[3], "<X509Error: Invalid X.509 name>");
    }
}
