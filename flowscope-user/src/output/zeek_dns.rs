//! Zeek `dns.log` records from the DNS parser's records, joined to conn.log
//! by `uid`: one row per query, completed by the first answer with its
//! transaction ID (`rtt` the time between them), as Zeek pairs them.
//!
//! The parser reports queries and answers as they come (EVE's shape); this
//! log keeps each flow's unanswered queries (at most
//! [`MAX_PENDING`] per flow, the oldest written unanswered beyond it) and
//! writes them unanswered when the flow ends, as Zeek does when the
//! connection is removed. An answer without a query is a row of its own.
//!
//! Fields are Zeek's, in Zeek's order. `ts` is the query's time (the
//! answer's for an answer alone). The flags (`AA`, `TC`, `RD`, `RA`, `Z`,
//! `opcode`) are the answer's when there is one, the query's otherwise.
//! `answers`/`TTLs` list the answer records the parser renders (A, AAAA,
//! CNAME, NS, PTR, MX, TXT; TXT written `TXT <length> <text>` with the
//! record's strings joined, where Zeek writes each string that way).
//! `rejected` is Zeek's rule: an answer with an error code and no question.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};

use super::community::FLOWS_WITHOUT_GROWING;
use super::record::FlowHeader;
use super::zeek::{Value, ZeekLog};
use crate::extractor::L4Proto;
use crate::l7::{DnsKind, DnsRecord, RrType};
use crate::view::Timestamp;

/// `#fields` after `ts`, `uid` and `id` of Zeek's dns.log.
const FIELDS: [&str; 20] = [
    "proto",
    "trans_id",
    "rtt",
    "query",
    "qclass",
    "qclass_name",
    "qtype",
    "qtype_name",
    "rcode",
    "rcode_name",
    "AA",
    "TC",
    "RD",
    "RA",
    "Z",
    "answers",
    "TTLs",
    "rejected",
    "opcode",
    "opcode_name",
];

/// `#types` of those fields.
const TYPES: [&str; 20] = [
    "enum",
    "count",
    "interval",
    "string",
    "count",
    "string",
    "count",
    "string",
    "count",
    "string",
    "bool",
    "bool",
    "bool",
    "bool",
    "count",
    "vector[string]",
    "vector[interval]",
    "bool",
    "count",
    "string",
];

/// Most unanswered queries kept per flow.
pub const MAX_PENDING: usize = 64;

/// Records of written queries kept for the next ones (their storage
/// reused), and queues of ended flows kept for new flows, at most.
const SPARES: usize = 64;

/// A row's answer strings kept for the next rows, at most.
const KEPT_ANSWERS: usize = 64;

/// Largest record storage worth keeping: bounds the kept records to
/// `SPARES` × this (a crafted query can carry a large answer section).
const SPARE_BYTES: usize = 4096;

super::zeek::log_kind!(Dns, "dns");

/// A query waiting for its answer.
#[derive(Debug)]
struct Pending {
    header: FlowHeader,
    ts: Timestamp,
    query: DnsRecord,
}

/// Writes dns.log records to `W`, pairing queries with answers. Once spare
/// records and queues exist, a row allocates nothing: a query is copied
/// into a written one's storage, a new flow's queue is one an ended flow
/// left, and a row's answers are written into strings kept from the last
/// row.
#[derive(Debug)]
pub struct ZeekDnsWriter<W: Write> {
    log: ZeekLog<W, Dns>,
    pending: HashMap<u64, VecDeque<Pending>>,
    spare: Vec<DnsRecord>,
    spare_queues: Vec<VecDeque<Pending>>,
    /// A row's `answers` and `TTLs`; `answers` holds strings beyond the
    /// row's, kept for their memory (at most [`KEPT_ANSWERS`]).
    answers: Vec<String>,
    ttls: Vec<u64>,
}

/// Zeek's `classes` names.
fn qclass_name(c: u16) -> Cow<'static, str> {
    match c {
        1 => "C_INTERNET".into(),
        2 => "C_CSNET".into(),
        3 => "C_CHAOS".into(),
        4 => "C_HESIOD".into(),
        254 => "C_NONE".into(),
        255 => "C_ANY".into(),
        n => format!("qclass-{n}").into(),
    }
}

/// Zeek's `opcodes` names.
fn opcode_name(op: u16) -> Cow<'static, str> {
    match op {
        0 => "query".into(),
        1 => "inverse-query".into(),
        2 => "status".into(),
        4 => "notify".into(),
        5 => "dynamic-update".into(),
        n => format!("opcode-{n}").into(),
    }
}

/// A flag bit of the header's flags word.
fn bit(flags: u16, n: u16) -> Value<'static> {
    Value::Bool(flags & (1 << n) != 0)
}

impl<W: Write> ZeekDnsWriter<W> {
    /// A writer to `out`; the TSV header is written now.
    ///
    /// # Errors
    ///
    /// Writing the header.
    pub fn new(out: W, format: super::zeek::ZeekFormat) -> io::Result<Self> {
        Ok(Self {
            log: ZeekLog::new(out, format)?,
            pending: HashMap::with_capacity(FLOWS_WITHOUT_GROWING),
            spare: Vec::new(),
            spare_queues: Vec::new(),
            answers: Vec::new(),
            ttls: Vec::new(),
        })
    }

    /// Takes one DNS record of `flow`, seen at `ts`: a query waits for its
    /// answer; an answer completes the oldest query with its ID, or is
    /// written alone.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn write_dns(&mut self, flow: &FlowHeader, ts: Timestamp, r: &DnsRecord) -> io::Result<()> {
        match r.kind {
            DnsKind::Query => {
                let query = match self.spare.pop() {
                    Some(mut q) => {
                        q.clone_from(r);
                        q
                    }
                    None => r.clone(),
                };
                let queue = self
                    .pending
                    .entry(flow.flow_id)
                    .or_insert_with(|| self.spare_queues.pop().unwrap_or_default());
                let evicted = if queue.len() >= MAX_PENDING {
                    queue.pop_front()
                } else {
                    None
                };
                queue.push_back(Pending {
                    header: *flow,
                    ts,
                    query,
                });
                evicted.map_or(Ok(()), |p| self.written(p, None))
            }
            DnsKind::Answer => {
                let query = self.pending.get_mut(&flow.flow_id).and_then(|q| {
                    let at = q.iter().position(|p| p.query.id == r.id)?;
                    q.remove(at)
                });
                match query {
                    Some(p) => self.written(p, Some((flow, ts, r))),
                    None => self.row(flow, ts, None, Some((ts, r))),
                }
            }
        }
    }

    /// Writes the row of pending query `p`, answered by `answer` of the
    /// flow it names, if any; keeps its record for the next query.
    fn written(
        &mut self,
        p: Pending,
        answer: Option<(&FlowHeader, Timestamp, &DnsRecord)>,
    ) -> io::Result<()> {
        let result = match answer {
            Some((flow, at, a)) => self.row(flow, p.ts, Some(&p.query), Some((at, a))),
            None => self.row(&p.header, p.ts, Some(&p.query), None),
        };
        if self.spare.len() < SPARES && p.query.footprint() <= SPARE_BYTES {
            self.spare.push(p.query);
        }
        result
    }

    /// The flow ended: its unanswered queries are written.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn flow_ended(&mut self, flow_id: u64) -> io::Result<()> {
        let Some(mut queue) = self.pending.remove(&flow_id) else {
            return Ok(());
        };
        while let Some(p) = queue.pop_front() {
            self.written(p, None)?;
        }
        if self.spare_queues.len() < SPARES {
            self.spare_queues.push(queue);
        }
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.log.records()
    }

    /// The log itself (to account for its file, reopen or rotate it).
    pub fn log_mut(&mut self) -> &mut ZeekLog<W, Dns> {
        &mut self.log
    }

    /// The log itself, read-only.
    pub fn log_ref(&self) -> &ZeekLog<W, Dns> {
        &self.log
    }

    /// Flushes the underlying writer.
    ///
    /// # Errors
    ///
    /// The flush's I/O error.
    pub fn flush(&mut self) -> io::Result<()> {
        self.log.flush()
    }

    /// Writes every query still waiting, unanswered (the input ended).
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn end_all(&mut self) -> io::Result<()> {
        let mut flows: Vec<u64> = self.pending.keys().copied().collect();
        flows.sort_unstable();
        flows.into_iter().try_for_each(|f| self.flow_ended(f))
    }

    /// Writes the queries still waiting, unanswered, then closes the log.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn finish(mut self) -> io::Result<W> {
        self.end_all()?;
        self.log.finish()
    }

    /// One row: a query and/or its answer (at its time).
    fn row(
        &mut self,
        flow: &FlowHeader,
        ts: Timestamp,
        query: Option<&DnsRecord>,
        answer: Option<(Timestamp, &DnsRecord)>,
    ) -> io::Result<()> {
        let Some(msg) = answer.map(|a| a.1).or(query) else {
            return Ok(());
        };
        let question = query.unwrap_or(msg);
        let flags = msg.header_flags;
        let rtt = match (query, answer) {
            (Some(_), Some((at, _))) => Value::Secs(at.0.saturating_sub(ts.0) / 1000),
            _ => Value::Unset,
        };
        let (qclass, qtype) = question
            .qclass_qtype
            .map_or((None, None), |(c, t)| (Some(c), Some(t)));
        let qtype_name = question.rrtype().map(|t| match t.0 {
            255 => "*".into(),
            _ => t.name(),
        });
        let (mut n, ttls) = (0, &mut self.ttls);
        ttls.clear();
        for rr in answer.into_iter().flat_map(|(_, a)| a.answers()) {
            let Some(data) = rr.rdata else { continue };
            if n == self.answers.len() {
                self.answers.push(String::new());
            }
            let text = &mut self.answers[n];
            text.clear();
            if rr.rrtype == RrType(16) {
                text.push_str("TXT ");
                text.push_str(itoa::Buffer::new().format(data.len()));
                text.push(' ');
            }
            text.push_str(data);
            ttls.push(u64::from(rr.ttl) * 1_000_000);
            n += 1;
        }
        let answers = &self.answers[..n];
        let rcode = answer.map(|_| flags & 0xf);
        let opcode = (flags >> 11) & 0xf;
        let proto = if flow.l4 == L4Proto::Tcp {
            "tcp"
        } else {
            "udp"
        };
        let (qclass_name, opcode_name) = (qclass.map(qclass_name), opcode_name(opcode));
        let rest: [Value<'_>; FIELDS.len()] = [
            Value::Str(proto),
            Value::Count(u64::from(msg.id)),
            rtt,
            question.rrname().map_or(Value::Unset, Value::Str),
            qclass.map_or(Value::Unset, |c| Value::Count(u64::from(c))),
            qclass_name.as_deref().map_or(Value::Unset, Value::Str),
            qtype.map_or(Value::Unset, |t| Value::Count(u64::from(t))),
            qtype_name.as_deref().map_or(Value::Unset, Value::Str),
            rcode.map_or(Value::Unset, |c| Value::Count(u64::from(c))),
            answer
                .and_then(|(_, a)| a.rcode())
                .map_or(Value::Unset, Value::Str),
            bit(flags, 10),
            bit(flags, 9),
            bit(flags, 8),
            bit(flags, 7),
            Value::Count(u64::from((flags >> 4) & 0x7)),
            if answers.is_empty() {
                Value::Unset
            } else {
                Value::Strs(answers)
            },
            if ttls.is_empty() {
                Value::Unset
            } else {
                Value::SecsList(ttls)
            },
            Value::Bool(rcode.is_some_and(|c| c != 0) && question.rrname().is_none()),
            Value::Count(u64::from(opcode)),
            Value::Str(&opcode_name),
        ];
        let written = self.log.write_conn(ts, flow, &rest);
        // The strings of a typical row stay; a larger row's go.
        self.answers.truncate(KEPT_ANSWERS);
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::FiveTupleKey;
    use crate::l7::DnsParser;
    use crate::output::zeek::ZeekFormat;

    /// The records of one query (`answers` A records in it, as a crafted
    /// one may carry) and its answer.
    fn exchange(id: u16, answers: u16) -> Vec<DnsRecord> {
        let mut msg = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        msg[..2].copy_from_slice(&id.to_be_bytes());
        msg[6..8].copy_from_slice(&answers.to_be_bytes());
        msg.extend_from_slice(b"\x01a\x07example\x00\x00\x01\x00\x01");
        for i in 0..answers {
            msg.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 192, 0, 2]);
            msg.push(i as u8);
        }
        let mut answer = msg.clone();
        answer[2] = 0x81;
        let (mut p, mut out) = (DnsParser::default(), Vec::new());
        p.datagram(&msg, &mut out);
        p.datagram(&answer, &mut out);
        out
    }

    #[test]
    fn only_small_queries_and_a_few_answer_strings_are_kept() {
        let flow = FlowHeader {
            flow_id: 1,
            key: FiveTupleKey::from_v4(
                [192, 0, 2, 1].into(),
                5353,
                [198, 51, 100, 2].into(),
                53,
                17,
            ),
            initiator: crate::extractor::Orientation::Forward,
            l4: L4Proto::Udp,
        };
        let mut w = ZeekDnsWriter::new(Vec::new(), ZeekFormat::Tsv).unwrap();
        // The large query took the kept record's place and is dropped
        // after its row.
        for (id, answers, kept) in [(1, 1, 1), (2, 400, 0), (3, 2, 1)] {
            let records = exchange(id, answers);
            assert!(records[0].footprint() > SPARE_BYTES || answers < 100);
            for r in &records {
                w.write_dns(&flow, Timestamp(u64::from(id)), r).unwrap();
            }
            assert_eq!(w.spare.len(), kept, "query {id}");
            assert!(w.answers.len() <= KEPT_ANSWERS, "answers of {id}");
        }
        assert_eq!(w.records(), 3);
    }
}
