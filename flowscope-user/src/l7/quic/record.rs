//! A [`QuicRecord`] from what the client's hello says: a TLS ClientHello
//! (IETF QUIC, T05x) or a gQUIC CHLO, in the names and value formats of
//! Suricata's EVE `quic` object.

use super::chlo::Chlo;
use super::packet::varint;
use super::{ExtensionValues, QuicExtension, QuicRecord, version};
use crate::l7::tls::Ja3;
use crate::l7::tls::fingerprint::{ja3_quic, ja4};
use crate::l7::tls::hello::{ClientHello, is_grease};

/// Transport parameter carrying Chrome's user agent (`google_user_agent`).
const GOOGLE_USER_AGENT: u64 = 0x3129;

/// The name Suricata's `quic.extensions[].name` gives an extension type
/// (the IANA TLS ExtensionType names, `alpn` for 16); none for types it
/// does not name.
fn extension_name(ty: u16) -> Option<&'static str> {
    Some(match ty {
        0 => "server_name",
        1 => "max_fragment_length",
        2 => "client_certificate_url",
        3 => "trusted_ca_keys",
        4 => "truncated_hmac",
        5 => "status_request",
        6 => "user_mapping",
        7 => "client_authz",
        8 => "server_authz",
        9 => "cert_type",
        10 => "supported_groups",
        11 => "ec_point_formats",
        12 => "srp",
        13 => "signature_algorithms",
        14 => "use_srtp",
        15 => "heartbeat",
        16 => "alpn",
        17 => "status_request_v2",
        18 => "signed_certificate_timestamp",
        19 => "client_certificate_type",
        20 => "server_certificate_type",
        21 => "padding",
        22 => "encrypt_then_mac",
        23 => "extended_master_secret",
        24 => "token_binding",
        25 => "cached_info",
        26 => "tls_lts",
        27 => "compress_certificate",
        28 => "record_size_limit",
        29 => "pwd_protect",
        30 => "pwd_clear",
        31 => "password_salt",
        32 => "ticket_pinning",
        33 => "tls_cert_with_extern_psk",
        34 => "delegated_credentials",
        35 => "session_ticket",
        36 => "tlmsp",
        37 => "tlmsp_proxying",
        38 => "tlmsp_delegate",
        39 => "supported_ekt_ciphers",
        41 => "pre_shared_key",
        42 => "early_data",
        43 => "supported_versions",
        44 => "cookie",
        45 => "psk_key_exchange_modes",
        47 => "certificate_authorities",
        48 => "oid_filters",
        49 => "post_handshake_auth",
        50 => "signature_algorithms_cert",
        51 => "key_share",
        52 => "transparency_info",
        53 => "connection_id_deprecated",
        54 => "connection_id",
        55 => "external_id_hash",
        56 => "external_session_id",
        57 => "quic_transport_parameters",
        58 => "ticket_request",
        59 => "dnssec_chain",
        13172 => "next_protocol_negotiation",
        65281 => "renegotiation_info",
        _ => return None,
    })
}

/// The ClientHello's extensions as Suricata lists them: wire order, each
/// GREASE type as 64250, and values for the server name, ALPN,
/// supported versions (tls-parser's names, e.g. `Tls13`) and signature
/// algorithms (decimal).
fn extensions(ch: &ClientHello) -> Vec<QuicExtension> {
    ch.extensions
        .iter()
        .map(|&ty| {
            let values = match ty {
                0 => ExtensionValues::Names(ch.sni().map(str::to_owned).into_iter().collect()),
                16 => ExtensionValues::Names(ch.alpn().map(str::to_owned).collect()),
                43 => ExtensionValues::Versions(ch.supported_versions.clone()),
                13 => ExtensionValues::Codes(ch.signature_algorithms.clone()),
                _ => ExtensionValues::default(),
            };
            let ty = if is_grease(ty) { 0xfafa } else { ty };
            QuicExtension {
                name: extension_name(ty),
                kind: ty,
                values,
            }
        })
        .collect()
}

/// The `google_user_agent` transport parameter: varint id/length pairs, or
/// (before draft 27) 16-bit ones behind a 16-bit total length.
fn google_user_agent(params: &[u8], varints: bool) -> Option<String> {
    let mut rest = if varints { params } else { params.get(2..)? };
    while !rest.is_empty() {
        let (id, len, at) = if varints {
            let (id, a) = varint(rest)?;
            let (len, b) = varint(rest.get(a..)?)?;
            (id, usize::try_from(len).ok()?, a + b)
        } else {
            let [i0, i1, l0, l1, ..] = *rest else {
                return None;
            };
            (
                u64::from(u16::from_be_bytes([i0, i1])),
                usize::from(u16::from_be_bytes([l0, l1])),
                4,
            )
        };
        let value = rest.get(at..at.checked_add(len)?)?;
        if id == GOOGLE_USER_AGENT {
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        rest = &rest[at + len..];
    }
    None
}

/// The record of a TLS ClientHello sent with `version`.
pub(super) fn from_client_hello(version: u32, varints: bool, ch: &ClientHello) -> QuicRecord {
    QuicRecord {
        version: version::name(version),
        sni: ch.sni().map(str::to_owned),
        ua: google_user_agent(&ch.transport_parameters, varints),
        cyu: Vec::new(),
        ja3: Some(ja3_quic(ch)),
        ja4: Some(ja4(ch, 'q')),
        extensions: extensions(ch),
        version_number: version,
        client_initial_dcid: None,
        client_scid: None,
    }
}

/// The record of a gQUIC CHLO sent with `version`, with its CYU
/// fingerprint: the version's two digits and the tags, `46,PAD-SNI-…`.
pub(super) fn from_chlo(version: u32, chlo: Chlo) -> QuicRecord {
    let digits = version.to_be_bytes();
    let cyu = format!(
        "{}{},{}",
        char::from(digits[2]),
        char::from(digits[3]),
        chlo.tags.join("-")
    );
    QuicRecord {
        version: version::name(version),
        sni: chlo.sni,
        ua: chlo.ua,
        cyu: vec![Ja3::of(cyu)],
        ja3: None,
        ja4: None,
        extensions: Vec::new(),
        version_number: version,
        client_initial_dcid: None,
        client_scid: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_in_both_parameter_encodings() {
        // Varints: max_idle_timeout (1) = 30000, then 0x3129 "ua/1".
        let v = [
            0x01, 0x04, 0x80, 0x00, 0x75, 0x30, 0x71, 0x29, 0x04, b'u', b'a', b'/', b'1',
        ];
        assert_eq!(google_user_agent(&v, true).as_deref(), Some("ua/1"));
        // 16-bit: total length, then (id, len, value) pairs.
        let f = [0, 10, 0, 1, 0, 0, 0x31, 0x29, 0, 2, b'u', b'a'];
        assert_eq!(google_user_agent(&f, false).as_deref(), Some("ua"));
        assert_eq!(google_user_agent(&f, true), None);
        assert_eq!(google_user_agent(&v[..10], true), None);
    }

    #[test]
    fn cyu_of_a_chlo() {
        let chlo = Chlo {
            sni: Some("a.example".into()),
            ua: None,
            tags: vec!["PAD".into(), "SNI".into(), "VER".into()],
        };
        let r = from_chlo(u32::from_be_bytes(*b"Q046"), chlo);
        assert_eq!(r.version, "Q046");
        assert_eq!(r.cyu[0].string, "46,PAD-SNI-VER");
        // `printf %s 46,PAD-SNI-VER | md5sum`
        assert_eq!(r.cyu[0].hash, "bafe1604ec403c41716f9cbb976c3928");
    }
}
