//! The fields of a server certificate the record shows, read with
//! `x509-parser`: subject and issuer distinguished names, serial number,
//! validity bounds; and its SHA-1 fingerprint. Serial and fingerprint are
//! written as Suricata writes them: bytes in hex separated by colons,
//! upper case for the serial, lower case for the fingerprint.

use sha1::{Digest, Sha1};
use x509_parser::parse_x509_certificate;
use x509_parser::time::ASN1Time;

/// Subject, issuer and validity of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Serial number bytes, `0A:1B:…`.
    pub serial: String,
    /// SHA-1 of the DER certificate, `0a:1b:…`.
    pub fingerprint: String,
    /// `YYYY-MM-DDTHH:MM:SS`, UTC, as Suricata prints it.
    pub not_before: String,
    pub not_after: String,
}

/// Reads a DER certificate; `None` if it does not parse.
pub(super) fn parse(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = parse_x509_certificate(der).ok()?;
    let validity = cert.validity();
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: hex_colons(cert.tbs_certificate.raw_serial(), b"0123456789ABCDEF"),
        fingerprint: hex_colons(&Sha1::digest(der), b"0123456789abcdef"),
        not_before: utc(validity.not_before),
        not_after: utc(validity.not_after),
    })
}

/// `bytes` in hex with `digits`, separated by colons.
fn hex_colons(bytes: &[u8], digits: &[u8; 16]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push(char::from(digits[usize::from(b >> 4)]));
        s.push(char::from(digits[usize::from(b & 0xf)]));
    }
    s
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SS` (civil-from-days conversion).
fn utc(t: ASN1Time) -> String {
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
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_like_suricata() {
        let t = |s| utc(ASN1Time::from_timestamp(s).unwrap());
        assert_eq!(t(0), "1970-01-01T00:00:00");
        // `date -u -d @1709251199` = 2024-02-29 23:59:59 (leap day).
        assert_eq!(t(1_709_251_199), "2024-02-29T23:59:59");
        assert_eq!(t(951_782_400), "2000-02-29T00:00:00");
        assert!(parse(b"\x30\x03\x02\x01\x00").is_none());
    }
}
