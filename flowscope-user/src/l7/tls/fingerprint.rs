//! TLS client and server fingerprints: JA3 and JA3S (MD5 of a decimal
//! string, <https://github.com/salesforce/ja3>) and JA4 (FoxIO's
//! `a_b_c` form, <https://github.com/FoxIO-LLC/ja4/blob/main/technical_details/JA4.md>).
//! GREASE values are left out of every list, as both specs say, except in
//! the JA3 Suricata writes for QUIC ([`push_ja3_quic`]), which keeps them.

use sha2::{Digest, Sha256};

use super::hello::{ClientHello, ServerHello, ext, is_grease, suricata_quic_type};
use crate::l7::fingerprint::{hex_u16, push_dec, push_hex};

/// Appends dash-joined decimal values.
fn join_dec(s: &mut String, values: impl IntoIterator<Item = u16>) {
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            s.push('-');
        }
        push_dec(s, v);
    }
}

/// Appends a JA3 string: the version, then each list dash-joined, all
/// comma-separated.
fn push_ja3_string<const N: usize>(
    out: &mut String,
    version: u16,
    lists: [&mut dyn Iterator<Item = u16>; N],
) {
    push_dec(out, version);
    for list in lists {
        out.push(',');
        join_dec(out, list);
    }
}

/// `values` without GREASE.
fn no_grease(values: &[u16]) -> impl Iterator<Item = u16> + '_ {
    values.iter().copied().filter(|&v| !is_grease(v))
}

/// Appends the JA3 string of a ClientHello.
pub(super) fn push_ja3(out: &mut String, ch: &ClientHello) {
    push_ja3_string(
        out,
        ch.version,
        [
            &mut no_grease(&ch.ciphers),
            &mut no_grease(&ch.extensions),
            &mut no_grease(&ch.groups),
            &mut ch.point_formats.iter().map(|&f| u16::from(f)),
        ],
    );
}

/// Appends the JA3 string of a ClientHello carried by QUIC, as Suricata
/// writes it (`rust/src/quic/frames.rs`): unlike [`push_ja3`], GREASE
/// ciphers and groups stay in, and each GREASE extension is written as
/// 64250.
pub(in crate::l7) fn push_ja3_quic(out: &mut String, ch: &ClientHello) {
    let mut extensions = ch.extensions.iter().map(|&e| suricata_quic_type(e));
    push_ja3_string(
        out,
        ch.version,
        [
            &mut ch.ciphers.iter().copied(),
            &mut extensions,
            &mut ch.groups.iter().copied(),
            &mut ch.point_formats.iter().map(|&f| u16::from(f)),
        ],
    );
}

/// Appends the JA3S string of a ServerHello.
pub(super) fn push_ja3s(out: &mut String, sh: &ServerHello) {
    push_ja3_string(
        out,
        sh.version,
        [
            &mut std::iter::once(sh.cipher),
            &mut no_grease(&sh.extensions),
        ],
    );
}

fn version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// Appends the first 12 hex digits of the SHA-256 of `values` as 4-digit
/// hex, comma-joined, followed (when `suffix` has any) by `_` and `suffix`
/// the same way; zeros for an empty `values`. The text is hashed as it is
/// made, not built.
fn push_hash12(out: &mut String, values: &[u16], suffix: &[u16]) {
    if values.is_empty() {
        out.push_str("000000000000");
        return;
    }
    let mut h = Sha256::new();
    for (i, &v) in values.iter().enumerate() {
        if i > 0 {
            h.update(b",");
        }
        h.update(hex_u16(v));
    }
    for (i, &v) in suffix.iter().enumerate() {
        h.update(if i == 0 { b"_" } else { b"," });
        h.update(hex_u16(v));
    }
    push_hex(out, &h.finalize()[..6]);
}

/// Appends the two ALPN characters of JA4's first part.
fn push_alpn_code(out: &mut String, first: Option<&str>) {
    let Some(bytes) = first.map(str::as_bytes).filter(|b| !b.is_empty()) else {
        out.push_str("00");
        return;
    };
    let (a, z) = (bytes[0], bytes[bytes.len() - 1]);
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        out.push(char::from(a));
        out.push(char::from(z));
    } else {
        // The first character's high nibble, the last one's low nibble.
        let [ha, _, _, hz] = hex_u16(u16::from_be_bytes([a, z]));
        out.push(char::from(ha));
        out.push(char::from(hz));
    }
}

/// Appends the JA4 of a ClientHello; `transport` is JA4's first
/// character, `t` for TCP and `q` for QUIC. The sorted lists are the
/// hello's own ([`ClientHello::sorted_ciphers`]).
pub(in crate::l7) fn push_ja4(out: &mut String, ch: &ClientHello, transport: char) {
    let version = ch
        .supported_versions
        .iter()
        .copied()
        .filter(|&v| !is_grease(v))
        .max()
        .unwrap_or(ch.version);
    let extensions = ch.extensions.iter().filter(|&&e| !is_grease(e)).count();
    let sni = if ch.extensions.contains(&ext::SERVER_NAME) {
        'd'
    } else {
        'i'
    };
    out.push(transport);
    out.push_str(version_code(version));
    out.push(sni);
    for n in [ch.sorted_ciphers.len(), extensions] {
        let n = n.min(99) as u8;
        out.push(char::from(b'0' + n / 10));
        out.push(char::from(b'0' + n % 10));
    }
    push_alpn_code(out, ch.alpn().next());
    out.push('_');
    push_hash12(out, &ch.sorted_ciphers, &[]);
    out.push('_');
    push_hash12(out, &ch.sorted_extensions, &ch.signature_algorithms);
}

#[cfg(test)]
mod tests {
    use super::super::hello::parse_server_hello;
    use super::super::hello::tests::parsed;
    use super::super::hello::tests::{client_hello_body, server_hello_body};
    use super::*;
    use crate::l7::fingerprint::Md5Text;

    #[test]
    fn ja3_leaves_grease_out() {
        let ch = parsed(&client_hello_body()).unwrap();
        let mut t = crate::l7::session::Texts::default();
        t.reset(4);
        Md5Text::set(&mut t, 0, 1, |buf| push_ja3(buf, &ch));
        let f = Md5Text::get(&t, 0, 1).unwrap();
        assert_eq!(f.string, "771,4865-49195-47,0-23-10-11-13-16-43,29-23,0");
        // md5 of that string, computed independently (`printf %s … | md5sum`).
        assert_eq!(f.hash, "e9c51f79d13dfe5012c557c2f2020a5e");
        let mut sh = ServerHello::default();
        assert!(parse_server_hello(&server_hello_body(), &mut sh));
        Md5Text::set(&mut t, 2, 3, |buf| push_ja3s(buf, &sh));
        let s = Md5Text::get(&t, 2, 3).unwrap();
        assert_eq!(s.string, "771,49195,65281-16-11");
        assert_eq!(s.hash, "554786d4c84f8a7953b7e453c6371067");
    }

    #[test]
    fn ja4_parts() {
        let ch = parsed(&client_hello_body()).unwrap();
        let mut f = String::new();
        push_ja4(&mut f, &ch, 't');
        // a: TCP, TLS 1.3 (highest supported_versions), SNI, 3 ciphers, 7 extensions, "h2".
        assert!(f.starts_with("t13d0307h2_"), "{f}");
        // sha256 prefixes computed with `printf %s … | sha256sum`.
        assert_eq!(f, "t13d0307h2_58a34ed92d94_38dbf9c86be1");
    }

    #[test]
    fn alpn_codes() {
        let alpn_code = |first| {
            let mut s = String::new();
            push_alpn_code(&mut s, first);
            s
        };
        assert_eq!(alpn_code(None), "00");
        assert_eq!(alpn_code(Some("http/1.1")), "h1");
        assert_eq!(alpn_code(Some("h")), "hh");
        assert_eq!(alpn_code(Some("\u{1}x\u{2}")), "02");
    }
}
