//! [`QuicRecord`]: the client's hello of one QUIC flow, its text in one
//! [`Texts`] buffer that circulates between a worker and the writer stage
//! as the other records' do. It is written at once from what the hello
//! says, a TLS ClientHello (IETF QUIC, T05x) or a gQUIC CHLO, in the names
//! and value formats of Suricata's EVE `quic` object.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::chlo::Chlo;
use super::packet::varint;
use super::version;
use crate::l7::fingerprint::{Md5Text, push_dec, push_hex};
use crate::l7::session::{Texts, push_lossy};
use crate::l7::tls::fingerprint::{push_ja3_quic, push_ja4};
use crate::l7::tls::hello::{ClientHello, ext, suricata_quic_type};

/// Text fields, by index.
mod field {
    pub const VERSION: usize = 0;
    pub const SNI: usize = 1;
    pub const UA: usize = 2;
    pub const CYU_HASH: usize = 3;
    pub const CYU_STRING: usize = 4;
    pub const JA3_HASH: usize = 5;
    pub const JA3_STRING: usize = 6;
    pub const JA4: usize = 7;
    pub const CLIENT_INITIAL_DCID: usize = 8;
    pub const CLIENT_SCID: usize = 9;
    /// Where the extensions lie among the appended fields: first index
    /// and count. Each extension is a numbers field (its type, 0), then a
    /// list field of its values ([`Texts::list`](crate::l7::session::Texts::list)),
    /// then the values' fields.
    pub const EXTENSIONS_AT: usize = 10;
    /// Fixed fields; the extensions are appended after them.
    pub const COUNT: usize = 11;
}

/// Transport parameter carrying Chrome's user agent (`google_user_agent`).
const GOOGLE_USER_AGENT: u64 = 0x3129;

/// One extension of the ClientHello, as Suricata's `quic.extensions` lists
/// it, borrowed from its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuicExtension<'a> {
    /// IANA name, for the types Suricata names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    /// Extension type (every GREASE type as 64250, as Suricata writes it).
    #[serde(rename = "type")]
    pub kind: u16,
    /// Values: server names, ALPN protocols, supported versions,
    /// signature algorithms.
    #[serde(skip_serializing_if = "QuicValues::is_empty")]
    pub values: QuicValues<'a>,
}

/// An extension's values as Suricata writes them: server names and ALPN
/// protocols as sent, versions by tls-parser's names (`Tls13`), signature
/// algorithms in decimal. Serialises as a list of strings.
#[derive(Clone, Copy)]
pub struct QuicValues<'a> {
    texts: &'a Texts,
    /// The list field.
    list: usize,
}

impl<'a> QuicValues<'a> {
    /// The values, in wire order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a str> + use<'a> {
        self.texts.list(self.list)
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.iter().len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Equal when the values are.
impl PartialEq for QuicValues<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for QuicValues<'_> {}

impl fmt::Debug for QuicValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for QuicValues<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// The client's hello of one QUIC flow, in Suricata EVE `quic` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuicRecord {
    texts: Texts,
    /// The version number (Zeek's quic.log names it; not in EVE).
    pub version_number: u32,
}

impl QuicRecord {
    /// Version of the packet that completed the hello, as Suricata writes
    /// it: `1`, `ff00001d`, `v2`, `Q046`, `54303531` (T051).
    pub fn version(&self) -> &str {
        self.texts.get(field::VERSION).unwrap_or_default()
    }

    /// Server name: the ClientHello's `server_name`, or gQUIC's `SNI` tag.
    pub fn sni(&self) -> Option<&str> {
        self.texts.get(field::SNI)
    }

    /// User agent: gQUIC's `UAID` tag, or Chrome's `google_user_agent`
    /// transport parameter.
    pub fn ua(&self) -> Option<&str> {
        self.texts.get(field::UA)
    }

    /// CYU fingerprint of a gQUIC CHLO: the version's two digits and the
    /// tags (`46,PAD-SNI-…`), and its MD5.
    pub fn cyu(&self) -> Option<Md5Text<'_>> {
        Md5Text::get(&self.texts, field::CYU_HASH, field::CYU_STRING)
    }

    /// JA3 of the ClientHello as Suricata writes it for QUIC (GREASE kept).
    pub fn ja3(&self) -> Option<Md5Text<'_>> {
        Md5Text::get(&self.texts, field::JA3_HASH, field::JA3_STRING)
    }

    /// JA4 of the ClientHello, QUIC variant (`q…`).
    pub fn ja4(&self) -> Option<&str> {
        self.texts.get(field::JA4)
    }

    /// Destination connection ID of the client's first Initial, in hex
    /// (Zeek's `client_initial_dcid`; not in EVE, whose schema has no such
    /// field). Unset for gQUIC's clear-text CHLO packets.
    pub fn client_initial_dcid(&self) -> Option<&str> {
        self.texts.get(field::CLIENT_INITIAL_DCID)
    }

    /// Source connection ID of the client's first Initial, in hex (Zeek's
    /// `client_scid`; not in EVE).
    pub fn client_scid(&self) -> Option<&str> {
        self.texts.get(field::CLIENT_SCID)
    }

    /// The ClientHello's extensions in wire order.
    pub fn extensions(&self) -> impl Iterator<Item = QuicExtension<'_>> + '_ {
        let (start, count) = self.texts.numbers(field::EXTENSIONS_AT).unwrap_or((0, 0));
        (0..count).scan(start as usize, |at, _| {
            let kind = u16::try_from(self.texts.numbers(*at)?.0).ok()?;
            let values = QuicValues {
                texts: &self.texts,
                list: *at + 1,
            };
            *at += 2 + values.len();
            Some(QuicExtension {
                name: extension_name(kind),
                kind,
                values,
            })
        })
    }

    /// The ALPN protocols the client offered, in its order.
    pub fn alpn(&self) -> impl Iterator<Item = &str> {
        self.extensions()
            .filter(|e| e.kind == ext::ALPN)
            .flat_map(|e| e.values.iter())
    }

    /// Its text storage (to prefetch before it is written).
    pub(crate) fn texts(&self) -> &Texts {
        &self.texts
    }

    /// The text buffer, for the next record to reuse.
    pub fn into_buffer(self) -> Texts {
        self.texts
    }
}

/// Building a record, for the parser.
impl QuicRecord {
    /// A record of the hello sent with `version`, written into `texts`,
    /// its other fields unset.
    fn on(mut texts: Texts, version: u32) -> Self {
        texts.reset(field::COUNT);
        texts.write(field::VERSION, |buf| version::push_name(buf, version));
        Self {
            texts,
            version_number: version,
        }
    }

    /// The record of a TLS ClientHello sent with `version` (`varints`:
    /// its transport parameters' encoding), written into `texts`.
    pub(super) fn of_client_hello(
        texts: Texts,
        version: u32,
        varints: bool,
        ch: &ClientHello,
    ) -> Self {
        let mut r = Self::on(texts, version);
        let t = &mut r.texts;
        if let Some(sni) = ch.sni() {
            t.set(field::SNI, sni);
        }
        if let Some(ua) = google_user_agent(&ch.transport_parameters, varints) {
            t.set_lossy(field::UA, ua);
        }
        Md5Text::set(t, field::JA3_HASH, field::JA3_STRING, |buf| {
            push_ja3_quic(buf, ch);
        });
        t.write(field::JA4, |buf| push_ja4(buf, ch, 'q'));
        push_extensions(t, ch);
        r
    }

    /// The record of a gQUIC CHLO sent with `version`, written into
    /// `texts`, with its CYU fingerprint: the version's two digits and the
    /// tags, `46,PAD-SNI-…`.
    pub(super) fn of_chlo(texts: Texts, version: u32, chlo: &Chlo<'_>) -> Self {
        let mut r = Self::on(texts, version);
        let t = &mut r.texts;
        if let Some(sni) = chlo.sni {
            t.set_lossy(field::SNI, sni);
        }
        if let Some(ua) = chlo.ua {
            t.set_lossy(field::UA, ua);
        }
        Md5Text::set(t, field::CYU_HASH, field::CYU_STRING, |buf| {
            let [.., d2, d3] = version.to_be_bytes();
            buf.extend([char::from(d2), char::from(d3), ',']);
            for (i, tag) in chlo.tags().enumerate() {
                if i > 0 {
                    buf.push('-');
                }
                push_lossy(buf, tag);
            }
        });
        r
    }

    /// Sets the connection IDs of the client's first Initial, in hex.
    pub(super) fn set_client_cids(&mut self, dcid: &[u8], scid: &[u8]) {
        let t = &mut self.texts;
        t.write(field::CLIENT_INITIAL_DCID, |buf| push_hex(buf, dcid));
        t.write(field::CLIENT_SCID, |buf| push_hex(buf, scid));
    }
}

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

/// Appends the ClientHello's extensions as Suricata lists them (wire
/// order, each GREASE type as 64250, values for the server name, ALPN,
/// supported versions and signature algorithms) and sets the extensions
/// field to where they lie.
fn push_extensions(t: &mut Texts, ch: &ClientHello) {
    let start = t.len();
    for &ty in &ch.extensions {
        let kind = suricata_quic_type(ty);
        t.push_numbers(u32::from(kind), 0);
        t.push_unset();
        let list = t.len() - 1;
        match ty {
            ext::SERVER_NAME => t.set_list(list, ch.sni(), String::push_str),
            ext::ALPN => t.set_list(list, ch.alpn(), String::push_str),
            ext::SUPPORTED_VERSIONS => t.set_list(list, &ch.supported_versions, |buf, &v| {
                // Writing to a `String` does not fail.
                let _ = write!(buf, "{}", tls_parser::TlsVersion(v));
            }),
            ext::SIGNATURE_ALGORITHMS => {
                t.set_list(list, &ch.signature_algorithms, |buf, &c| push_dec(buf, c));
            }
            _ => {}
        }
    }
    t.set_span(field::EXTENSIONS_AT, start, ch.extensions.len());
}

/// The `google_user_agent` transport parameter: varint id/length pairs, or
/// (before draft 27) 16-bit ones behind a 16-bit total length.
fn google_user_agent(params: &[u8], varints: bool) -> Option<&[u8]> {
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
            return Some(value);
        }
        rest = &rest[at + len..];
    }
    None
}

/// A record's extensions, serialised as a JSON array.
struct Extensions<'a>(&'a QuicRecord);

impl Serialize for Extensions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.extensions())
    }
}

/// The EVE `quic` object: Suricata's names, absent fields left out, the
/// CYU fingerprint as a list of one.
impl Serialize for QuicRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let text = |m: &mut S::SerializeMap, key: &str, v: Option<&str>| match v {
            Some(v) => m.serialize_entry(key, v),
            None => Ok(()),
        };
        m.serialize_entry("version", self.version())?;
        text(&mut m, "sni", self.sni())?;
        text(&mut m, "ua", self.ua())?;
        if let Some(f) = self.cyu() {
            m.serialize_entry("cyu", &[f])?;
        }
        if let Some(f) = self.ja3() {
            m.serialize_entry("ja3", &f)?;
        }
        text(&mut m, "ja4", self.ja4())?;
        if self.extensions().next().is_some() {
            m.serialize_entry("extensions", &Extensions(self))?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::super::chlo::parse;
    use super::super::chlo::tests::chlo;
    use super::*;

    #[test]
    fn user_agent_in_both_parameter_encodings() {
        // Varints: max_idle_timeout (1) = 30000, then 0x3129 "ua/1".
        let v = [
            0x01, 0x04, 0x80, 0x00, 0x75, 0x30, 0x71, 0x29, 0x04, b'u', b'a', b'/', b'1',
        ];
        assert_eq!(google_user_agent(&v, true), Some(&b"ua/1"[..]));
        // 16-bit: total length, then (id, len, value) pairs.
        let f = [0, 10, 0, 1, 0, 0, 0x31, 0x29, 0, 2, b'u', b'a'];
        assert_eq!(google_user_agent(&f, false), Some(&b"ua"[..]));
        assert_eq!(google_user_agent(&f, true), None);
        assert_eq!(google_user_agent(&v[..10], true), None);
    }

    #[test]
    fn cyu_of_a_chlo() {
        let m = chlo(&[(b"PAD\0", b"--"), (b"SNI\0", b"a.example"), (b"VER\0", b"")]);
        let c = parse(&m).expect("a CHLO");
        let r = QuicRecord::of_chlo(Texts::default(), u32::from_be_bytes(*b"Q046"), &c);
        assert_eq!(r.version(), "Q046");
        assert_eq!(r.sni(), Some("a.example"));
        let cyu = r.cyu().expect("cyu");
        assert_eq!(cyu.string, "46,PAD-SNI-VER");
        // `printf %s 46,PAD-SNI-VER | md5sum`
        assert_eq!(cyu.hash, "bafe1604ec403c41716f9cbb976c3928");
        assert_eq!((r.ja3(), r.extensions().count()), (None, 0));
    }
}
