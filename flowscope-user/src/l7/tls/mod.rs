//! TLS session parser: the clear-text handshake of one TCP flow, summarised
//! into one [`TlsRecord`] (SNI, versions, JA3/JA3S/JA4, ALPN, and the first
//! server certificate when it is sent in clear, i.e. TLS ≤ 1.2).
//!
//! Each side runs the record layer (5-byte headers, bodies skipped unless
//! they carry handshake data). Handshake messages may span records and
//! segments; a message is copied only when it is split, into a per-side
//! buffer bounded by [`TlsConfig::max_handshake_bytes`]
//! ([`TlsCounters::handshake_too_large`] when exceeded). A side stops at its
//! first encrypted byte (ChangeCipherSpec, application data, or a TLS 1.3
//! ServerHello), after the client's ClientHello, or after the server's
//! Certificate (its ServerKeyExchange for an ECDHE suite, which names the
//! curve) / ServerHelloDone; the record is emitted once both sides have
//! stopped or ended.

mod cert;
mod factory;
pub(super) mod fingerprint;
pub(super) mod hello;
mod record;

pub use self::factory::TlsFactory;
use self::hello::{ClientHello, ServerHello};
use self::record::Md5Pair;
pub use self::record::TlsRecord;
use super::carry::Carry;
use crate::l7::session::{RecordSink, Side};

/// Limits of one TLS parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsConfig {
    /// Largest handshake message buffered when split, in bytes.
    pub max_handshake_bytes: usize,
    /// Hash every certificate of the server's chain
    /// ([`TlsRecord::cert_chain_fps`]: Zeek's ssl.log `cert_chain_fps`;
    /// EVE has no such field). Off by default: the runtime turns it on
    /// when a Zeek log is written.
    pub chain_fingerprints: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            max_handshake_bytes: 64 * 1024,
            chain_fingerprints: false,
        }
    }
}

/// What happened inside one TLS parser; add them up per worker.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TlsCounters {
    /// ClientHellos parsed.
    pub client_hellos: u64,
    /// ServerHellos parsed.
    pub server_hellos: u64,
    /// Certificates read.
    pub certificates: u64,
    /// Handshake messages that did not parse.
    pub malformed: u64,
    /// Split handshake messages larger than the buffer limit.
    pub handshake_too_large: u64,
    /// Sides whose bytes were not TLS records.
    pub not_tls: u64,
    /// Sides stopped by a gap the record layer could not skip.
    pub gaps_lost: u64,
}

impl TlsCounters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Self) {
        add_counters!(self += other: Self {
            client_hellos,
            server_hellos,
            certificates,
            malformed,
            handshake_too_large,
            not_tls,
            gaps_lost,
        });
    }
}

/// TLS record content types.
mod content {
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;
    pub const HEARTBEAT: u8 = 24;
}

/// Handshake message types.
mod handshake {
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const CERTIFICATE: u8 = 11;
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    pub const SERVER_HELLO_DONE: u8 = 14;
}

/// Largest record body allowed (2^14 plus expansion, RFC 8446 §5.2).
const MAX_RECORD_BYTES: u16 = 16_384 + 2_048;

/// One direction of the flow.
#[derive(Debug)]
struct Half {
    header: [u8; 5],
    header_len: usize,
    body_left: u16,
    content_type: u8,
    handshake: Carry,
    /// Still reading this side.
    active: bool,
}

impl Half {
    fn new(limit: usize) -> Self {
        Self {
            header: [0; 5],
            header_len: 0,
            body_left: 0,
            content_type: 0,
            handshake: Carry::new(limit),
            active: true,
        }
    }
}

/// What the two sides have told so far.
#[derive(Debug, Default)]
struct Summary {
    record: TlsRecord,
    /// The ClientHello, parsed into the room of the last flow's.
    hello: ClientHello,
    /// The ServerHello, likewise.
    server_hello: ServerHello,
    client_version: Option<u16>,
    /// The ClientHello's session ID, to tell a resumption.
    client_session_id: Vec<u8>,
    server_version: Option<u16>,
    seen: bool,
    emitted: bool,
    counters: TlsCounters,
    /// [`TlsConfig::chain_fingerprints`].
    chain_fingerprints: bool,
}

/// TLS handshake parser of one flow.
#[derive(Debug)]
pub struct TlsParser {
    client: Half,
    server: Half,
    summary: Summary,
}

impl Default for TlsParser {
    fn default() -> Self {
        Self::new(TlsConfig::default())
    }
}

/// Appends the SHA-256 of `bytes` in lower-case hex.
fn push_hex_sha256(out: &mut String, bytes: &[u8]) {
    use sha2::{Digest, Sha256};
    crate::l7::fingerprint::push_hex(out, &Sha256::digest(bytes));
}

/// Appends the name of version `v`: `SSLv3`, `TLS 1.2`, or `0x` and its
/// four hex digits.
fn push_version_name(out: &mut String, v: u16) {
    match v {
        0x0300 => out.push_str("SSLv3"),
        0x0301..=0x0304 => {
            out.push_str("TLS 1.");
            out.push(char::from(b'0' + (v - 0x0301) as u8));
        }
        _ => {
            out.push_str("0x");
            let digits = crate::l7::fingerprint::hex_u16(v);
            out.extend(digits.iter().map(|&d| char::from(d)));
        }
    }
}

impl TlsParser {
    /// A parser with these limits.
    pub fn new(config: TlsConfig) -> Self {
        Self {
            client: Half::new(config.max_handshake_bytes),
            server: Half::new(config.max_handshake_bytes),
            summary: Summary {
                chain_fingerprints: config.chain_fingerprints,
                ..Summary::default()
            },
        }
    }

    /// Makes it a new parser with the same limits, keeping the room of
    /// its buffers.
    pub fn reuse(&mut self) {
        for Half {
            header,
            header_len,
            body_left,
            content_type,
            handshake,
            active,
        } in [&mut self.client, &mut self.server]
        {
            *header = [0; 5];
            (*header_len, *body_left, *content_type, *active) = (0, 0, 0, true);
            handshake.clear();
        }
        let Summary {
            record,
            hello,
            server_hello,
            client_version,
            client_session_id,
            server_version,
            seen,
            emitted,
            counters,
            chain_fingerprints: _,
        } = &mut self.summary;
        record.clear();
        hello.clear();
        server_hello.clear();
        client_session_id.clear();
        (*client_version, *server_version) = (None, None);
        (*seen, *emitted) = (false, false);
        *counters = TlsCounters::default();
    }

    /// Counters of this flow so far.
    pub fn counters(&self) -> &TlsCounters {
        &self.summary.counters
    }

    /// True once the record has been emitted: nothing more will be read.
    pub fn is_done(&self) -> bool {
        self.summary.emitted
    }

    /// True when neither side ever carried a TLS record.
    pub fn is_not_tls(&self) -> bool {
        !self.summary.seen && !self.client.active && !self.server.active
    }

    /// Feeds the next in-order bytes of `side`; the record goes to `out` when
    /// the handshake is over.
    pub fn feed(&mut self, side: Side, mut bytes: &[u8], out: &mut dyn RecordSink<TlsRecord>) {
        let half = match side {
            Side::Initiator => &mut self.client,
            Side::Responder => &mut self.server,
        };
        let s = &mut self.summary;
        if !s.record.is_started() {
            s.record.start(|| out.spare_text());
        }
        while half.active && !bytes.is_empty() {
            if half.body_left == 0 {
                let take = (5 - half.header_len).min(bytes.len());
                half.header[half.header_len..half.header_len + take]
                    .copy_from_slice(&bytes[..take]);
                half.header_len += take;
                bytes = &bytes[take..];
                if half.header_len < 5 {
                    break;
                }
                half.header_len = 0;
                let [ty, major, _, hi, lo] = half.header;
                let len = u16::from_be_bytes([hi, lo]);
                if !(content::CHANGE_CIPHER_SPEC..=content::HEARTBEAT).contains(&ty)
                    || major != 3
                    || len > MAX_RECORD_BYTES
                {
                    s.counters.not_tls += 1;
                    half.active = false;
                    break;
                }
                s.seen = true;
                half.content_type = ty;
                half.body_left = len;
                if ty == content::CHANGE_CIPHER_SPEC || ty == content::APPLICATION_DATA {
                    // Everything after this on this side is encrypted.
                    half.active = false;
                }
            } else {
                let n = usize::from(half.body_left).min(bytes.len());
                let (body, rest) = bytes.split_at(n);
                bytes = rest;
                half.body_left -= n as u16;
                if half.content_type != content::HANDSHAKE {
                    // Alerts and heartbeats: skipped.
                    continue;
                }
                let active = &mut half.active;
                let result = half
                    .handshake
                    .drive(body, |m| handshake_message(side, active, s, m));
                if result.is_err() {
                    s.counters.handshake_too_large += 1;
                    half.active = false;
                }
            }
        }
        self.emit_if_over(out);
    }

    /// `len` bytes of `side` are missing: skipped inside a non-handshake
    /// record, otherwise the side stops.
    pub fn gap(&mut self, side: Side, len: u64, out: &mut dyn RecordSink<TlsRecord>) {
        let half = match side {
            Side::Initiator => &mut self.client,
            Side::Responder => &mut self.server,
        };
        if !half.active {
            return;
        }
        if half.content_type != content::HANDSHAKE
            && half.header_len == 0
            && len <= u64::from(half.body_left)
        {
            half.body_left -= len as u16;
        } else {
            self.summary.counters.gaps_lost += 1;
            half.active = false;
            half.handshake.clear();
        }
        self.emit_if_over(out);
    }

    /// `side` ended: the record is emitted once both sides are over.
    pub fn end(&mut self, side: Side, out: &mut dyn RecordSink<TlsRecord>) {
        let half = match side {
            Side::Initiator => &mut self.client,
            Side::Responder => &mut self.server,
        };
        half.active = false;
        half.handshake.clear();
        self.emit_if_over(out);
    }

    fn emit_if_over(&mut self, out: &mut dyn RecordSink<TlsRecord>) {
        let s = &mut self.summary;
        if self.client.active || self.server.active || s.emitted {
            return;
        }
        s.emitted = true;
        if s.client_version.is_none() && s.server_version.is_none() {
            return;
        }
        if let Some(v) = s.server_version.or(s.client_version) {
            s.record.set_version(|buf| push_version_name(buf, v));
        }
        out.emit(std::mem::take(&mut s.record));
    }
}

/// Consumes one handshake message at the start of `m`; 0 if incomplete.
fn handshake_message(side: Side, active: &mut bool, s: &mut Summary, m: &[u8]) -> usize {
    if !*active {
        return m.len();
    }
    let [ty, a, b, c, ..] = *m else {
        return 0;
    };
    let len = 4 + ((usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c));
    let Some(body) = m.get(4..len) else {
        return 0;
    };
    match (side, ty) {
        (Side::Initiator, handshake::CLIENT_HELLO) => {
            *active = false;
            if hello::parse_client_hello(body, &mut s.hello) {
                let ch = &s.hello;
                s.counters.client_hellos += 1;
                s.client_version = Some(ch.version);
                s.record
                    .set_md5(Md5Pair::Ja3, |buf| fingerprint::push_ja3(buf, ch));
                s.record.set_ja4(|buf| fingerprint::push_ja4(buf, ch, 't'));
                s.record.set_sni(ch.sni());
                s.client_session_id.clone_from(&ch.session_id);
                s.record.set_alpn(ch.alpn());
            } else {
                s.counters.malformed += 1;
            }
        }
        (Side::Responder, handshake::SERVER_HELLO) => {
            if hello::parse_server_hello(body, &mut s.server_hello) {
                let sh = &s.server_hello;
                s.counters.server_hellos += 1;
                let version = sh.selected_version.unwrap_or(sh.version);
                s.server_version = Some(version);
                s.record
                    .set_md5(Md5Pair::Ja3s, |buf| fingerprint::push_ja3s(buf, sh));
                s.record.cipher = Some(sh.cipher);
                s.record.curve = sh.key_share_group;
                s.record.set_server_alpn(sh.alpn());
                if version < 0x0304
                    && !sh.session_id.is_empty()
                    && sh.session_id == s.client_session_id
                {
                    s.record.session_resumed = Some(true);
                }
                if version >= 0x0304 {
                    // The rest of a TLS 1.3 server flight is encrypted.
                    *active = false;
                }
            } else {
                s.counters.malformed += 1;
                *active = false;
            }
        }
        (Side::Responder, handshake::CERTIFICATE) => {
            // An ECDHE key exchange names its curve next.
            *active = s.record.cipher.is_some_and(|c| {
                tls_parser::TlsCipherSuite::from_id(c)
                    .is_some_and(|c| c.kx == tls_parser::TlsCipherKx::Ecdhe)
            });
            let read = cert::chain(body).is_some_and(|mut chain| {
                if s.chain_fingerprints {
                    s.record.set_chain(chain.clone(), push_hex_sha256);
                }
                chain
                    .next()
                    .is_some_and(|der| cert::parse(der, &mut s.record))
            });
            if read {
                s.counters.certificates += 1;
            } else {
                s.counters.malformed += 1;
            }
        }
        (Side::Responder, handshake::SERVER_KEY_EXCHANGE) => {
            *active = false;
            // ECParameters: curve type 3 (named curve), then the curve.
            if let [3, a, b, ..] = *body {
                s.record.curve = Some(u16::from_be_bytes([a, b]));
            }
        }
        (Side::Responder, handshake::SERVER_HELLO_DONE) => *active = false,
        _ => {}
    }
    len
}

#[cfg(test)]
mod tests;
