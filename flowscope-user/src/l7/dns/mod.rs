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

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;

use serde::Serialize;

pub use self::factory::{DnsFactory, DnsTcpFactory, LLMNR, MDNS};
use super::carry::Carry;
use crate::l7::session::{RecordSink, Side, Texts};

/// Query or answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsKind {
    /// A message with the QR bit clear.
    Query,
    /// A message with the QR bit set.
    Answer,
}

/// A resource record type, written as Suricata names it (`A`, `CNAME`,
/// `TYPE99` for a type without a name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrType(pub u16);

impl RrType {
    /// Its name, `None` for a type written `TYPE<n>`.
    pub fn known(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "A",
            2 => "NS",
            5 => "CNAME",
            6 => "SOA",
            12 => "PTR",
            13 => "HINFO",
            15 => "MX",
            16 => "TXT",
            28 => "AAAA",
            33 => "SRV",
            35 => "NAPTR",
            41 => "OPT",
            43 => "DS",
            46 => "RRSIG",
            47 => "NSEC",
            48 => "DNSKEY",
            64 => "SVCB",
            65 => "HTTPS",
            255 => "ANY",
            _ => return None,
        })
    }

    /// Its name as written.
    pub fn name(self) -> Cow<'static, str> {
        self.known()
            .map_or_else(|| Cow::Owned(self.to_string()), Cow::Borrowed)
    }
}

impl fmt::Display for RrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.known() {
            Some(name) => f.write_str(name),
            None => write!(f, "TYPE{}", self.0),
        }
    }
}

impl Serialize for RrType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.known() {
            Some(name) => s.serialize_str(name),
            None => s.collect_str(self),
        }
    }
}

/// One answer resource record, borrowed from its [`DnsRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DnsAnswer<'a> {
    /// Owner name.
    pub rrname: &'a str,
    /// Type.
    pub rrtype: RrType,
    /// Time to live, in seconds.
    pub ttl: u32,
    /// Text form of the data, for the types listed in the module docs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdata: Option<&'a str>,
}

/// The EVE DNS format version of [`DnsRecord`]: Suricata's version 2
/// (one record per message, the first question's name and type at the top).
pub const DNS_EVE_VERSION: u8 = 2;

/// The field of a [`DnsRecord`]'s text holding the first question's name;
/// [`ANSWER_FIELDS`] per answer follow it (name, rdata, type and TTL).
const QUESTION: usize = 0;
const ANSWER_FIELDS: usize = 3;

/// One DNS message, serialised in Suricata EVE `dns` names (version 2
/// records: an answer carries the header flags as Suricata writes them,
/// `flags` in hex and one boolean per flag that is set).
///
/// Its names and rdata share one [`Texts`], taken from the sink's spares:
/// a message costs no allocation once the writer stage hands them back.
#[derive(Debug, PartialEq, Eq)]
pub struct DnsRecord {
    texts: Texts,
    /// `query` or `answer` (the QR bit).
    pub kind: DnsKind,
    /// Transaction ID.
    pub id: u16,
    /// The header's flags word (QR, opcode, AA, TC, RD, RA, Z, rcode).
    pub header_flags: u16,
    /// Class and type numbers of the first question (Zeek's `qclass`,
    /// `qtype`).
    pub qclass_qtype: Option<(u16, u16)>,
}

/// `clone_from` reuses the target's storage.
impl Clone for DnsRecord {
    fn clone(&self) -> Self {
        Self {
            texts: self.texts.clone(),
            ..*self
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.texts.clone_from(&source.texts);
        self.kind = source.kind;
        self.id = source.id;
        self.header_flags = source.header_flags;
        self.qclass_qtype = source.qclass_qtype;
    }
}

/// Response code name as Suricata writes it.
fn rcode_name(rcode: u16) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "RESERVED",
    }
}

impl DnsRecord {
    /// An empty query record written into `texts`.
    fn on(mut texts: Texts) -> Self {
        texts.reset(QUESTION + 1);
        Self {
            texts,
            kind: DnsKind::Query,
            id: 0,
            header_flags: 0,
            qclass_qtype: None,
        }
    }

    /// Name of the first question.
    pub fn rrname(&self) -> Option<&str> {
        self.texts.get(QUESTION)
    }

    /// Type of the first question.
    pub fn rrtype(&self) -> Option<RrType> {
        self.qclass_qtype.map(|(_, t)| RrType(t))
    }

    /// Operation code (0: standard query).
    pub fn opcode(&self) -> u8 {
        ((self.header_flags >> 11) & 0xf) as u8
    }

    /// Response code name (`NOERROR`, `NXDOMAIN`), answers only.
    pub fn rcode(&self) -> Option<&'static str> {
        (self.kind == DnsKind::Answer).then(|| rcode_name(self.header_flags & 0xf))
    }

    /// The answer section.
    pub fn answers(&self) -> impl ExactSizeIterator<Item = DnsAnswer<'_>> {
        let n = self.texts.len().saturating_sub(QUESTION + 1) / ANSWER_FIELDS;
        (0..n).map(|i| {
            let at = QUESTION + 1 + i * ANSWER_FIELDS;
            let (rrtype, ttl) = self.texts.numbers(at + 2).unwrap_or_default();
            DnsAnswer {
                rrname: self.texts.get(at).unwrap_or_default(),
                rrtype: RrType(rrtype as u16),
                ttl,
                rdata: self.texts.get(at + 1),
            }
        })
    }

    /// Its text storage (to prefetch before it is written).
    pub(crate) fn texts(&self) -> &Texts {
        &self.texts
    }

    /// The storage its text was written into, for another record.
    pub fn into_buffer(self) -> Texts {
        self.texts
    }

    /// Bytes of memory its text holds ([`Texts::footprint`]).
    pub fn footprint(&self) -> usize {
        self.texts.footprint()
    }
}

/// Suricata's order: version, type, id, an answer's flags, opcode, the
/// question, rcode, answers.
impl Serialize for DnsRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("version", &DNS_EVE_VERSION)?;
        map.serialize_entry("type", &self.kind)?;
        map.serialize_entry("id", &self.id)?;
        let flags = self.header_flags;
        if self.kind == DnsKind::Answer {
            map.serialize_entry("flags", &format_args!("{flags:x}"))?;
            for (name, bit) in [
                ("qr", 0x8000),
                ("aa", 0x0400),
                ("tc", 0x0200),
                ("rd", 0x0100),
                ("ra", 0x0080),
            ] {
                if flags & bit != 0 {
                    map.serialize_entry(name, &true)?;
                }
            }
        }
        if flags & 0x0040 != 0 {
            map.serialize_entry("z", &true)?;
        }
        map.serialize_entry("opcode", &self.opcode())?;
        if let Some(name) = self.rrname() {
            map.serialize_entry("rrname", name)?;
        }
        if let Some(t) = self.rrtype() {
            map.serialize_entry("rrtype", &t)?;
        }
        if let Some(rcode) = self.rcode() {
            map.serialize_entry("rcode", rcode)?;
        }
        if self.answers().len() > 0 {
            map.serialize_entry("answers", &Answers(self))?;
        }
        map.end()
    }
}

/// The answer section, serialised as a list.
struct Answers<'a>(&'a DnsRecord);

impl Serialize for Answers<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.answers())
    }
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
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
        let Ok(record) = message::parse(msg, out.spare_text()) else {
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

    /// Makes it a new parser with the same limits, keeping its memory.
    pub fn reset(&mut self) {
        self.tx.pending.clear();
        self.tx.counters = DnsCounters::default();
        for f in &mut self.tcp {
            f.carry.clear();
            f.skip = 0;
            f.active = true;
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
