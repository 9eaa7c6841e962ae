//! QUIC parser: the client's hello of one UDP flow, summarised into one
//! [`QuicRecord`] in Suricata EVE `quic` names (version, SNI, user agent,
//! JA3, JA4 `q…`, TLS extensions; CYU for Google QUIC).
//!
//! - IETF QUIC v1 (RFC 9000/9001), v2 (RFC 9369, and draft-00's
//!   0xff020000), drafts 23–34, mvfst's draft-27 versions and Google's
//!   T050/T051/Q050: client Initial packets are opened with keys derived
//!   from the client's first Destination Connection ID (RFC 9001 §5.2,
//!   RustCrypto's HKDF and AES-GCM); their CRYPTO frames are reassembled in any
//!   order across packets in a bounded buffer ([`QuicConfig::max_crypto_bytes`]),
//!   and the ClientHello goes to the TLS parser's ClientHello reader.
//! - Google QUIC Q024–Q043 (public header) and Q046: the CHLO travels in
//!   clear.
//!
//! The flow's initiator is taken as the client. Coalesced packets are
//! walked; 0-RTT packets are skipped; a Retry or
//! Version Negotiation from the server starts the handshake over (new
//! keys, empty stream). Packets that do not open, versions not read here
//! and malformed frames are counted, never fatal. Only long-header
//! Initial packets are decrypted. The parser is done after the first hello
//! (record emitted), or when the client moves on to Handshake or 1-RTT
//! packets without one ([`QuicCounters::hellos_incomplete`]).

mod chlo;
mod factory;
mod keys;
mod packet;
mod record;
mod stream;
mod version;

pub use self::factory::QuicFactory;
use self::keys::{ConnectionId, InitialKeys, OpenError};
use self::packet::Packet;
pub use self::record::{QuicExtension, QuicRecord, QuicValues};
use self::stream::CryptoStream;
use self::version::{Handshake, PacketType, Protected};
use super::tls::hello::{ClientHello, parse_client_hello};
use crate::l7::session::{RecordSink, Side};

/// Limits of one QUIC parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuicConfig {
    /// Bytes of the client's Initial CRYPTO stream kept while reassembling
    /// its hello. Default 16 KiB.
    pub max_crypto_bytes: usize,
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self {
            max_crypto_bytes: 16 * 1024,
        }
    }
}

/// What happened inside one QUIC parser; add them up per worker.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct QuicCounters {
    /// TLS ClientHellos read.
    pub client_hellos: u64,
    /// Google QUIC CHLOs read.
    pub chlos: u64,
    /// Client Initial packets decrypted.
    pub initials_opened: u64,
    /// Client Initial packets that did not decrypt (keys from a connection
    /// ID not seen, or damaged packets).
    pub open_failures: u64,
    /// Client long-header packets of versions not read here.
    pub unsupported_versions: u64,
    /// Retry packets from the server.
    pub retries: u64,
    /// Version Negotiation packets from the server.
    pub version_negotiations: u64,
    /// Packets, frames or hellos that did not parse.
    pub malformed: u64,
    /// CRYPTO frames (or parts) not kept: past the buffer limit, or one
    /// hole too many.
    pub crypto_dropped: u64,
    /// Hellos longer than the buffer limit.
    pub hellos_too_large: u64,
    /// Flows whose client sent Initial packets but moved on (or ended)
    /// without a whole hello.
    pub hellos_incomplete: u64,
}

impl QuicCounters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Self) {
        add_counters!(self += other: Self {
            client_hellos,
            chlos,
            initials_opened,
            open_failures,
            unsupported_versions,
            retries,
            version_negotiations,
            malformed,
            crypto_dropped,
            hellos_too_large,
            hellos_incomplete,
        });
    }
}

/// IETF frame types read in Initial packets (RFC 9000 §19).
mod frame {
    pub const PADDING: u8 = 0x00;
    pub const PING: u8 = 0x01;
    pub const ACK: u8 = 0x02;
    pub const ACK_ECN: u8 = 0x03;
    pub const CONNECTION_CLOSE: u8 = 0x1c;
}

/// Hands each CRYPTO frame of an Initial payload to `crypto`; skips
/// PADDING, PING and (IETF) ACK frames; stops at CONNECTION_CLOSE.
///
/// # Errors
/// At a frame that does not parse, or (IETF) one an Initial may not carry.
fn walk_frames(
    mut p: &[u8],
    version: &Protected,
    mut crypto: impl FnMut(u64, &[u8]),
) -> Result<(), ()> {
    let ietf = version.crypto_frame == 0x06;
    let next = |p: &mut &[u8]| -> Result<u64, ()> {
        let (v, n) = packet::varint(p).ok_or(())?;
        *p = &p[n..];
        Ok(v)
    };
    while let Some((&ty, rest)) = p.split_first() {
        p = rest;
        match ty {
            frame::PADDING | frame::PING => {}
            t if t == version.crypto_frame => {
                let offset = next(&mut p)?;
                let len = usize::try_from(next(&mut p)?).map_err(|_| ())?;
                let data = p.get(..len).ok_or(())?;
                crypto(offset, data);
                p = &p[len..];
            }
            frame::ACK | frame::ACK_ECN if ietf => {
                let _largest = next(&mut p)?;
                let _delay = next(&mut p)?;
                let ranges = next(&mut p)?;
                let _first = next(&mut p)?;
                for _ in 0..ranges {
                    let _gap = next(&mut p)?;
                    let _len = next(&mut p)?;
                }
                if ty == frame::ACK_ECN {
                    for _ in 0..3 {
                        let _count = next(&mut p)?;
                    }
                }
            }
            frame::CONNECTION_CLOSE if ietf => return Ok(()),
            // Google versions' other frames are not read; their CRYPTO
            // frames come first.
            _ if !ietf => return Ok(()),
            _ => return Err(()),
        }
    }
    Ok(())
}

/// TLS handshake type of a ClientHello.
const CLIENT_HELLO: u8 = 1;

/// QUIC parser of one UDP flow: feed it each datagram with its side.
#[derive(Debug)]
pub struct QuicParser {
    /// Client Initial keys, once a client Initial has been seen.
    keys: Option<InitialKeys>,
    crypto: CryptoStream,
    limit: usize,
    /// Decrypted packets land here (grows to the largest Initial once).
    scratch: Vec<u8>,
    /// The client has sent an Initial (or a gQUIC CHLO packet).
    seen_initial: bool,
    /// Destination and source connection IDs of the client's first
    /// Initial.
    client_cids: Option<[ConnectionId; 2]>,
    /// The ClientHello, parsed into the room of the last flow's.
    hello: ClientHello,
    done: bool,
    counters: QuicCounters,
}

impl Default for QuicParser {
    fn default() -> Self {
        Self::new(QuicConfig::default())
    }
}

impl QuicParser {
    /// A parser with these limits.
    pub fn new(config: QuicConfig) -> Self {
        Self {
            keys: None,
            crypto: CryptoStream::new(config.max_crypto_bytes),
            limit: config.max_crypto_bytes,
            scratch: Vec::new(),
            seen_initial: false,
            client_cids: None,
            hello: ClientHello::default(),
            done: false,
            counters: QuicCounters::default(),
        }
    }

    /// Makes it a new parser with the same limits, keeping the room of
    /// its buffers.
    pub fn reuse(&mut self) {
        let Self {
            keys,
            crypto,
            limit: _,
            scratch,
            seen_initial,
            client_cids,
            hello,
            done,
            counters,
        } = self;
        hello.clear();
        *keys = None;
        crypto.clear();
        scratch.clear();
        (*seen_initial, *done) = (false, false);
        *client_cids = None;
        *counters = QuicCounters::default();
    }

    /// Counters of this flow so far.
    pub fn counters(&self) -> &QuicCounters {
        &self.counters
    }

    /// True once the parser wants no more datagrams: the record has been
    /// emitted, or the handshake moved on without a hello.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// One UDP payload sent by `side` (the client is the initiator).
    pub fn datagram(&mut self, side: Side, payload: &[u8], out: &mut dyn RecordSink<QuicRecord>) {
        if self.done {
            return;
        }
        match side {
            Side::Initiator => self.client(payload, out),
            Side::Responder => self.server(payload),
        }
    }

    /// The flow ended.
    pub fn end(&mut self) {
        if !self.done {
            self.give_up();
        }
    }

    /// Stops, counting a hello the client began and never finished.
    fn give_up(&mut self) {
        if self.seen_initial {
            self.counters.hellos_incomplete += 1;
        }
        self.done = true;
    }

    /// The server's Retry and Version Negotiation packets restart the
    /// client's handshake: new keys, a new CRYPTO stream.
    fn server(&mut self, payload: &[u8]) {
        let restart = match packet::parse(payload) {
            Some(Packet::VersionNegotiation) => &mut self.counters.version_negotiations,
            Some(Packet::Protected {
                ty: PacketType::Retry,
                ..
            }) => &mut self.counters.retries,
            _ => return,
        };
        *restart += 1;
        self.keys = None;
        self.crypto.clear();
    }

    /// The client's coalesced packets, in order.
    fn client(&mut self, mut rest: &[u8], out: &mut dyn RecordSink<QuicRecord>) {
        while !rest.is_empty() && !self.done {
            let Some(p) = packet::parse(rest) else {
                self.counters.malformed += 1;
                return;
            };
            match p {
                Packet::Padding | Packet::VersionNegotiation => return,
                Packet::Unsupported(_) => {
                    self.counters.unsupported_versions += 1;
                    return;
                }
                Packet::Short => return self.give_up(),
                Packet::Clear { version, frames } => {
                    return self.clear_chlo(version, &rest[frames..], out);
                }
                Packet::Protected {
                    version,
                    ty,
                    dcid,
                    scid,
                    pn_offset,
                    end,
                } => {
                    match ty {
                        PacketType::Initial => {
                            self.client_cids
                                .get_or_insert_with(|| [dcid, scid].map(ConnectionId::new));
                            self.initial(&version, dcid, &rest[..end], pn_offset, out);
                        }
                        PacketType::Handshake => return self.give_up(),
                        PacketType::ZeroRtt | PacketType::Retry => {}
                    }
                    rest = &rest[end..];
                }
            }
        }
    }

    /// A gQUIC packet whose frames are in clear: its CHLO, if any.
    fn clear_chlo(&mut self, version: u32, frames: &[u8], out: &mut dyn RecordSink<QuicRecord>) {
        self.seen_initial = true;
        let little_endian = version::little_endian_frames(version);
        match chlo::handshake_stream_data(frames, little_endian).and_then(chlo::parse) {
            Some(c) => {
                self.counters.chlos += 1;
                self.done = true;
                let record = QuicRecord::of_chlo(out.spare_text(), version, &c);
                out.emit(record);
            }
            None => self.counters.malformed += 1,
        }
    }

    /// One client Initial packet.
    fn initial(
        &mut self,
        version: &Protected,
        dcid: &[u8],
        packet: &[u8],
        pn_offset: usize,
        out: &mut dyn RecordSink<QuicRecord>,
    ) {
        self.seen_initial = true;
        let keys = match self.keys.take() {
            Some(k) if k.version() == version.number => k,
            _ => InitialKeys::derive(version, dcid),
        };
        let mut opened = keys.open(packet, pn_offset, &mut self.scratch);
        let keys = if opened == Err(OpenError::Authentication) && keys.dcid() != dcid {
            // A Retry (or Version Negotiation) this capture missed: the
            // client restarted with this connection ID.
            let fresh = InitialKeys::derive(version, dcid);
            opened = fresh.open(packet, pn_offset, &mut self.scratch);
            if opened.is_ok() {
                self.crypto.clear();
                fresh
            } else {
                keys
            }
        } else {
            keys
        };
        self.keys = Some(keys);
        let payload = match opened {
            Ok(range) => &self.scratch[range],
            Err(OpenError::Truncated) => {
                self.counters.malformed += 1;
                return;
            }
            Err(OpenError::Authentication) => {
                self.counters.open_failures += 1;
                return;
            }
        };
        self.counters.initials_opened += 1;
        let (crypto, counters) = (&mut self.crypto, &mut self.counters);
        let walked = walk_frames(payload, version, |offset, data| {
            if crypto.insert(offset, data).is_err() {
                counters.crypto_dropped += 1;
            }
        });
        if walked.is_err() {
            self.counters.malformed += 1;
        }
        self.hello(version, out);
    }

    /// Reads the hello once the CRYPTO stream holds all of it.
    fn hello(&mut self, version: &Protected, out: &mut dyn RecordSink<QuicRecord>) {
        let prefix = self.crypto.prefix();
        let len = match version.handshake {
            Handshake::Tls => match *prefix {
                [CLIENT_HELLO, a, b, c, ..] => {
                    Some(4 + (usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c)))
                }
                [ty, ..] if ty != CLIENT_HELLO => Some(0),
                _ => None,
            },
            Handshake::Chlo => chlo::message_len(prefix),
        };
        let Some(len) = len else {
            return;
        };
        if len == 0 {
            // Not a ClientHello (or CHLO) at the stream's start.
            self.counters.malformed += 1;
            return self.give_up();
        }
        if len > self.limit {
            self.counters.hellos_too_large += 1;
            return self.give_up();
        }
        let Some(message) = prefix.get(..len) else {
            return;
        };
        let record = match version.handshake {
            Handshake::Tls => parse_client_hello(&message[4..], &mut self.hello).then(|| {
                self.counters.client_hellos += 1;
                QuicRecord::of_client_hello(
                    out.spare_text(),
                    version.number,
                    version.varint_parameters,
                    &self.hello,
                )
            }),
            Handshake::Chlo => chlo::parse(message).map(|c| {
                self.counters.chlos += 1;
                QuicRecord::of_chlo(out.spare_text(), version.number, &c)
            }),
        };
        match record {
            Some(mut r) => {
                self.done = true;
                if let Some([dcid, scid]) = self.client_cids.take() {
                    r.set_client_cids(dcid.as_slice(), scid.as_slice());
                }
                out.emit(r);
            }
            None => {
                self.counters.malformed += 1;
                self.give_up();
            }
        }
    }
}

#[cfg(test)]
mod tests;
