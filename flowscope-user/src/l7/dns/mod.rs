//! DNS parser: queries and answers over UDP (one message per datagram) and
//! over TCP (messages framed by a 2-byte length, RFC 1035 §4.2.2), one
//! [`DnsRecord`] per message.
//!
//! Queries wait in a pending table keyed by transaction ID, bounded by
//! [`DnsConfig::max_pending`] (oldest evicted and counted); an answer removes
//! its query, or counts as unmatched. Malformed messages are counted and
//! skipped. Over TCP a gap inside a message skips that message; a gap at an
//! unknown place in the framing stops the side ([`DnsCounters::gaps_lost`]).

mod factory;
mod message;

use std::collections::VecDeque;

use serde::Serialize;

pub use self::factory::{DnsFactory, DnsTcpFactory, LLMNR, MDNS};
use super::carry::Carry;
use crate::session::{RecordSink, Side};

/// Query or answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsKind {
    /// A message with the QR bit clear.
    Query,
    /// A message with the QR bit set.
    Answer,
}

/// One answer resource record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsAnswer {
    /// Owner name.
    pub rrname: String,
    /// Type name (`A`, `CNAME`, `TYPE99`).
    pub rrtype: String,
    /// Time to live, in seconds.
    pub ttl: u32,
    /// Text form of the data, for the types listed in the module docs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdata: Option<String>,
}

/// The EVE DNS format version of [`DnsRecord`]: Suricata's version 2
/// (one record per message, the first question's name and type at the top).
pub const DNS_EVE_VERSION: u8 = 2;

/// One DNS message, in Suricata EVE `dns` names (version 2 records: an
/// answer carries the header flags as Suricata writes them, `flags` in hex
/// and one boolean per flag that is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    /// [`DNS_EVE_VERSION`].
    pub version: u8,
    /// `query` or `answer`.
    #[serde(rename = "type")]
    pub kind: DnsKind,
    /// Transaction ID.
    pub id: u16,
    /// The header's flags field in lowercase hex, unpadded (answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
    /// Response (answers only, when set).
    #[serde(skip_serializing_if = "is_false")]
    pub qr: bool,
    /// Authoritative answer (answers only, when set).
    #[serde(skip_serializing_if = "is_false")]
    pub aa: bool,
    /// Truncated (answers only, when set).
    #[serde(skip_serializing_if = "is_false")]
    pub tc: bool,
    /// Recursion desired (answers only, when set).
    #[serde(skip_serializing_if = "is_false")]
    pub rd: bool,
    /// Recursion available (answers only, when set).
    #[serde(skip_serializing_if = "is_false")]
    pub ra: bool,
    /// The reserved Z bit (when set).
    #[serde(skip_serializing_if = "is_false")]
    pub z: bool,
    /// Operation code (0: standard query).
    pub opcode: u8,
    /// Name of the first question.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rrname: Option<String>,
    /// Type of the first question.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rrtype: Option<String>,
    /// Response code name (`NOERROR`, `NXDOMAIN`), answers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// The header's flags word (QR, opcode, AA, TC, RD, RA, Z, rcode), for
    /// Zeek's dns.log (not in EVE).
    #[serde(skip)]
    pub header_flags: u16,
    /// Class and type numbers of the first question (Zeek's `qclass`,
    /// `qtype`; not in EVE).
    #[serde(skip)]
    pub qclass_qtype: Option<(u16, u16)>,
    /// Answer section.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<DnsAnswer>,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_false(b: &bool) -> bool {
    !*b
}

/// Limits of one DNS parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsConfig {
    /// Most queries waiting for an answer per flow.
    pub max_pending: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self { max_pending: 64 }
    }
}

/// What happened inside one DNS parser; add them up per worker.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DnsCounters {
    /// Queries parsed.
    pub queries: u64,
    /// Answers parsed.
    pub answers: u64,
    /// Answers that found their query.
    pub matched: u64,
    /// Answers with no pending query of that ID.
    pub unmatched_answers: u64,
    /// Queries evicted from a full pending table.
    pub pending_evicted: u64,
    /// Queries still unanswered when the flow ended.
    pub unanswered: u64,
    /// Messages that did not parse.
    pub malformed: u64,
    /// TCP messages skipped because a gap fell inside them.
    pub messages_lost: u64,
    /// TCP sides stopped by a gap outside any known message.
    pub gaps_lost: u64,
}

impl DnsCounters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Self) {
        add_counters!(self += other: Self {
            queries,
            answers,
            matched,
            unmatched_answers,
            pending_evicted,
            unanswered,
            malformed,
            messages_lost,
            gaps_lost,
        });
    }
}

/// Length-prefix framing of one TCP side.
#[derive(Debug)]
struct Framing {
    carry: Carry,
    /// Bytes of a message cut by a gap still to skip.
    skip: u64,
    active: bool,
}

impl Framing {
    fn new() -> Self {
        Self {
            carry: Carry::new(2 + usize::from(u16::MAX)),
            skip: 0,
            active: true,
        }
    }
}

/// Query/answer bookkeeping shared by both sides.
#[derive(Debug)]
struct Transactions {
    max_pending: usize,
    pending: VecDeque<u16>,
    counters: DnsCounters,
}

impl Transactions {
    /// Parses one message and emits its record.
    fn message(&mut self, msg: &[u8], out: &mut dyn RecordSink<DnsRecord>) {
        let Ok(record) = message::parse(msg) else {
            self.counters.malformed += 1;
            return;
        };
        match record.kind {
            DnsKind::Query => {
                self.counters.queries += 1;
                if self.pending.len() >= self.max_pending {
                    self.pending.pop_front();
                    self.counters.pending_evicted += 1;
                }
                self.pending.push_back(record.id);
            }
            DnsKind::Answer => {
                self.counters.answers += 1;
                match self.pending.iter().position(|&id| id == record.id) {
                    Some(i) => {
                        self.pending.remove(i);
                        self.counters.matched += 1;
                    }
                    None => self.counters.unmatched_answers += 1,
                }
            }
        }
        out.emit(record);
    }
}

/// DNS parser of one flow, over UDP ([`DnsParser::datagram`]) or TCP
/// ([`DnsParser::feed`]).
#[derive(Debug)]
pub struct DnsParser {
    tx: Transactions,
    tcp: [Framing; 2],
}

impl Default for DnsParser {
    fn default() -> Self {
        Self::new(DnsConfig::default())
    }
}

impl DnsParser {
    /// A parser with these limits.
    pub fn new(config: DnsConfig) -> Self {
        Self {
            tx: Transactions {
                max_pending: config.max_pending,
                pending: VecDeque::new(),
                counters: DnsCounters::default(),
            },
            tcp: [Framing::new(), Framing::new()],
        }
    }

    /// Counters of this flow so far.
    pub fn counters(&self) -> &DnsCounters {
        &self.tx.counters
    }

    /// One UDP payload: one message.
    pub fn datagram(&mut self, payload: &[u8], out: &mut dyn RecordSink<DnsRecord>) {
        self.tx.message(payload, out);
    }

    /// True when both TCP sides stopped.
    pub fn is_stopped(&self) -> bool {
        self.tcp.iter().all(|f| !f.active)
    }

    /// The next in-order TCP bytes of `side`.
    pub fn feed(&mut self, side: Side, mut bytes: &[u8], out: &mut dyn RecordSink<DnsRecord>) {
        let f = &mut self.tcp[side.index()];
        if !f.active {
            return;
        }
        let skip = f.skip.min(bytes.len() as u64);
        f.skip -= skip;
        bytes = bytes.get(skip as usize..).unwrap_or_default();
        let tx = &mut self.tx;
        // A frame never exceeds the carry's limit, so drive cannot overflow.
        let _ = f.carry.drive(bytes, |b| {
            let [hi, lo, ..] = *b else {
                return 0;
            };
            let end = 2 + usize::from(u16::from_be_bytes([hi, lo]));
            match b.get(2..end) {
                Some(msg) => {
                    tx.message(msg, out);
                    end
                }
                None => 0,
            }
        });
    }

    /// `len` TCP bytes of `side` are missing.
    pub fn gap(&mut self, side: Side, len: u64) {
        let f = &mut self.tcp[side.index()];
        if !f.active {
            return;
        }
        let have = f.carry.buffered();
        if let [hi, lo, ..] = *have {
            let total = 2 + u64::from(u16::from_be_bytes([hi, lo]));
            let end = have.len() as u64 + len;
            if end <= total {
                f.skip = total - end;
                f.carry.clear();
                self.tx.counters.messages_lost += 1;
                return;
            }
        } else if f.skip >= len {
            f.skip -= len;
            return;
        }
        self.tx.counters.gaps_lost += 1;
        f.carry.clear();
        f.active = false;
    }

    /// The TCP stream of `side` ended.
    pub fn end_side(&mut self, side: Side) {
        let f = &mut self.tcp[side.index()];
        f.carry.clear();
        f.active = false;
    }

    /// The flow ended: queries still pending are counted as unanswered.
    pub fn end(&mut self) {
        self.tx.counters.unanswered += self.tx.pending.len() as u64;
        self.tx.pending.clear();
    }
}

#[cfg(test)]
mod tests;
