//! SSH session parser: the clear-text start of one TCP flow (RFC 4253 §4.2
//! and §7.1), summarised into one [`SshRecord`]: each side's identification
//! line (`SSH-protoversion-softwareversion comments`), each side's KEXINIT,
//! their HASSH fingerprints and the algorithms the two KEXINITs agree on.
//!
//! Each side reads lines until its identification line (a server may send
//! other lines first; at most [`MAX_LINES_BEFORE_BANNER`] are skipped), then
//! binary packets (4-byte length, padding length, payload, padding; no MAC
//! before the first NEWKEYS) until its KEXINIT, skipping IGNORE, DEBUG and
//! UNIMPLEMENTED packets before it. A line or packet split across segments
//! is copied into a per-side buffer bounded by [`SshConfig::max_packet_bytes`]
//! ([`SshCounters::too_large`] when exceeded). A side stops after its
//! KEXINIT, at bytes that are not SSH, or at a gap (nothing after a gap can
//! be framed again before the keys change); the record is emitted once both
//! sides have stopped or ended, with what is known.
//!
//! HASSH is the MD5 of `kex;encryption;mac;compression` of the client's
//! client-to-server lists, HASSH-server that of the server's server-to-client
//! lists (<https://github.com/salesforce/hassh>).

mod factory;
mod kexinit;
mod record;

pub use self::factory::SshFactory;
pub use self::record::{SshAlgorithms, SshEndpoint, SshRecord};
use super::carry::Carry;
use crate::l7::session::{RecordSink, Side};

/// Lines a side may send before its identification line.
pub const MAX_LINES_BEFORE_BANNER: u8 = 32;

/// Limits of one SSH parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshConfig {
    /// Largest line or binary packet buffered when split, in bytes.
    pub max_packet_bytes: usize,
}

impl Default for SshConfig {
    /// 35 000 bytes: the largest packet every implementation must accept
    /// (RFC 4253 §6.1).
    fn default() -> Self {
        Self {
            max_packet_bytes: 35_000,
        }
    }
}

/// What happened inside one SSH parser; add them up per worker.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SshCounters {
    /// Identification lines read.
    pub banners: u64,
    /// KEXINIT messages read.
    pub kexinits: u64,
    /// Packets whose framing or KEXINIT did not parse.
    pub malformed: u64,
    /// Sides whose first lines held no identification line.
    pub not_ssh: u64,
    /// Sides that sent another message where their KEXINIT was due.
    pub no_kexinit: u64,
    /// Split lines or packets larger than the buffer limit.
    pub too_large: u64,
    /// Sides stopped by a gap before their KEXINIT.
    pub gaps_lost: u64,
}

impl SshCounters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Self) {
        add_counters!(self += other: Self {
            banners,
            kexinits,
            malformed,
            not_ssh,
            no_kexinit,
            too_large,
            gaps_lost,
        });
    }
}

/// Message numbers (RFC 4250 §4.1.2).
mod msg {
    pub const IGNORE: u8 = 2;
    pub const UNIMPLEMENTED: u8 = 3;
    pub const DEBUG: u8 = 4;
    pub const KEXINIT: u8 = 20;
}

/// Where one side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading lines; this many came before the identification line.
    Lines(u8),
    /// Reading binary packets until the KEXINIT.
    Packets,
    /// Nothing more is read on this side.
    Over,
}

/// One direction of the flow.
#[derive(Debug)]
struct Half {
    carry: Carry,
    phase: Phase,
}

impl Half {
    fn new(limit: usize) -> Self {
        Self {
            carry: Carry::new(limit),
            phase: Phase::Lines(0),
        }
    }

    fn stop(&mut self) {
        self.phase = Phase::Over;
        self.carry.clear();
    }
}

/// SSH parser of one flow.
#[derive(Debug)]
pub struct SshParser {
    client: Half,
    server: Half,
    /// What both sides told, written from the first byte fed.
    record: SshRecord,
    counters: SshCounters,
    emitted: bool,
}

impl Default for SshParser {
    fn default() -> Self {
        Self::new(SshConfig::default())
    }
}

impl SshParser {
    /// A parser with these limits.
    pub fn new(config: SshConfig) -> Self {
        Self {
            client: Half::new(config.max_packet_bytes),
            server: Half::new(config.max_packet_bytes),
            record: SshRecord::default(),
            counters: SshCounters::default(),
            emitted: false,
        }
    }

    /// Counters of this flow so far.
    pub fn counters(&self) -> &SshCounters {
        &self.counters
    }

    /// True once the record has been emitted: nothing more will be read.
    pub fn is_done(&self) -> bool {
        self.emitted
    }

    /// True when both sides are over and neither sent an identification line.
    pub fn is_not_ssh(&self) -> bool {
        self.client.phase == Phase::Over
            && self.server.phase == Phase::Over
            && self.counters.banners == 0
    }

    /// `side`'s half, with what the halves share: the record and counters.
    fn half(&mut self, side: Side) -> (&mut Half, &mut SshRecord, &mut SshCounters) {
        let half = match side {
            Side::Initiator => &mut self.client,
            Side::Responder => &mut self.server,
        };
        (half, &mut self.record, &mut self.counters)
    }

    /// Feeds the next in-order bytes of `side`; the record goes to `out` once
    /// both sides are over.
    pub fn feed(&mut self, side: Side, bytes: &[u8], out: &mut dyn RecordSink<SshRecord>) {
        if self.record.is_unstarted() {
            self.record = SshRecord::on(out.spare_text());
        }
        let (half, record, counters) = self.half(side);
        if half.phase != Phase::Over {
            let phase = &mut half.phase;
            let result = half
                .carry
                .drive(bytes, |b| step(phase, side, record, counters, b));
            if result.is_err() {
                counters.too_large += 1;
                half.stop();
            }
            if half.phase == Phase::Over {
                half.carry.clear();
            }
        }
        self.emit_if_over(out);
    }

    /// `len` bytes of `side` are missing: the side stops, unless it was over
    /// already.
    pub fn gap(&mut self, side: Side, _len: u64, out: &mut dyn RecordSink<SshRecord>) {
        let (half, _, counters) = self.half(side);
        if half.phase != Phase::Over {
            counters.gaps_lost += 1;
            half.stop();
        }
        self.emit_if_over(out);
    }

    /// `side` ended: the record is emitted once both sides are over.
    pub fn end(&mut self, side: Side, out: &mut dyn RecordSink<SshRecord>) {
        self.half(side).0.stop();
        self.emit_if_over(out);
    }

    fn emit_if_over(&mut self, out: &mut dyn RecordSink<SshRecord>) {
        if self.emitted || self.client.phase != Phase::Over || self.server.phase != Phase::Over {
            return;
        }
        self.emitted = true;
        if !self.record.is_unstarted() && !self.record.is_empty() {
            out.emit(std::mem::take(&mut self.record));
        }
    }
}

/// Consumes one line or packet at the start of `b` for one side; 0 if it
/// is incomplete.
fn step(
    phase: &mut Phase,
    side: Side,
    record: &mut SshRecord,
    counters: &mut SshCounters,
    b: &[u8],
) -> usize {
    match *phase {
        Phase::Over => b.len(),
        Phase::Lines(before) => {
            let Some(nl) = b.iter().position(|&c| c == b'\n') else {
                return 0;
            };
            let line = &b[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(rest) = line.strip_prefix(b"SSH-") {
                counters.banners += 1;
                record.set_banner(side, line, rest);
                *phase = Phase::Packets;
            } else if before == MAX_LINES_BEFORE_BANNER {
                counters.not_ssh += 1;
                *phase = Phase::Over;
            } else {
                *phase = Phase::Lines(before + 1);
            }
            nl + 1
        }
        Phase::Packets => {
            let [a, b1, c, d, padding, ..] = *b else {
                return 0;
            };
            let len = u32::from_be_bytes([a, b1, c, d]) as usize;
            // At least the padding length and a message number, and the
            // padding inside the packet.
            if len < 2 || usize::from(padding) > len - 2 {
                counters.malformed += 1;
                *phase = Phase::Over;
                return b.len();
            }
            let Some(packet) = b.get(5..4 + len) else {
                return 0;
            };
            let payload = &packet[..len - 1 - usize::from(padding)];
            match payload[0] {
                msg::KEXINIT => {
                    *phase = Phase::Over;
                    match kexinit::parse(&payload[1..]) {
                        Some(lists) => {
                            counters.kexinits += 1;
                            record.set_kexinit(side, &lists);
                        }
                        None => counters.malformed += 1,
                    }
                }
                msg::IGNORE | msg::UNIMPLEMENTED | msg::DEBUG => {}
                _ => {
                    counters.no_kexinit += 1;
                    *phase = Phase::Over;
                }
            }
            4 + len
        }
    }
}

#[cfg(test)]
mod tests;
