//! Zeek `conn.log` records, in Zeek's TSV format (with its `#` header) or
//! its JSON-lines variant (`LogAscii::use_json`), and the log writer the
//! other logs share (ssh.log: [`super::zeek_ssh`]).
//!
//! Fields are Zeek's, in Zeek's order. Values come from the tracker, whose
//! flow definition is close to Zeek's but not the same:
//! - `ts` is the record's first packet; `uid` is Zeek's form (`C` and 96
//!   bits in base 62): the first 96 bits of the flow's
//!   [`FlowHeader::digest`], a keyed hash under a key drawn at random when
//!   the process starts, so every record of a flow (its interim records,
//!   its L7 logs) shares it, and it differs across runs and sensors, as
//!   Zeek's random uids do.
//! - `orig_bytes`/`resp_bytes` are the L4 payload bytes seen (retransmissions
//!   included; Zeek counts the TCP sequence space); for ICMP, as in Zeek,
//!   the message after its 8-byte header. Like `duration` they are unset
//!   when the duration is 0, as in Zeek.
//! - `history` is unset when empty (ICMP and other protocols), as in Zeek.
//! - `orig_ip_bytes`/`resp_ip_bytes` are the IP lengths the packets'
//!   headers state, summed per direction, as in Zeek.
//! - `missed_bytes` is what reassembly reported as gaps (bytes of sequence
//!   space never seen, both sides) when the writer is given the pipeline's
//!   [`FlowSummary`]; 0 for flows other than TCP, as in Zeek; a TCP flow
//!   without a summary (no reassembly ran) has it unset, as nothing is
//!   known about its gaps.
//! - `local_orig`/`local_resp` say whether each endpoint is in the
//!   `--local-nets` networks (Zeek's `Site::local_nets`), unset (`-`, or
//!   absent in JSON) when none were given, as in Zeek.
//! - `tunnel_parents` is, with `--decap`, the `uid` of the carrier of a
//!   connection taken out of a tunnel (its tunnel.log `uid`: see
//!   [`super::zeek_tunnel`]); unset otherwise.
//! - ICMP ports are the type and the counterpart type or code, as Zeek keys
//!   ICMP connections (see [`crate::wire::IcmpMessage::flow_ports`]); ICMPv6 is
//!   `icmp`, as in Zeek; other protocols are `unknown_transport`.

use std::io::{self, Write};
use std::marker::PhantomData;

use crate::extract::FiveTupleKey;
use crate::extractor::L4Proto;
use crate::output::eve::json;
use crate::output::record::FlowHeader;
use crate::output::write_rfc3339_micros;
use crate::pipeline::FlowSummary;
use crate::tracker::{FlowRecord, FlowSide, SideStats};
use crate::view::Timestamp;

/// `#fields` after `ts`, `uid` and `id` of Zeek's conn.log.
const FIELDS: [&str; 16] = [
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "local_orig",
    "local_resp",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "tunnel_parents",
    "ip_proto",
];

/// `#types` of those fields.
const TYPES: [&str; 16] = [
    "enum",
    "string",
    "interval",
    "count",
    "count",
    "string",
    "bool",
    "bool",
    "count",
    "string",
    "count",
    "count",
    "count",
    "count",
    "set[string]",
    "count",
];

/// The two encodings Zeek writes logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeekFormat {
    /// Tab-separated values under a `#fields`/`#types` header.
    Tsv,
    /// One JSON object per line; unset fields left out.
    Json,
}

/// One field's value.
pub(super) enum Value<'a> {
    /// A string; in TSV, control characters and backslashes are written
    /// `\xNN`, as Zeek escapes them.
    Str(&'a str),
    /// A string of bytes that may not be UTF-8: written as [`Value::Str`]
    /// but each byte of an invalid sequence as `\xNN` (in JSON, `\\xNN`),
    /// as Zeek writes them.
    Bytes(&'a [u8]),
    Count(u64),
    /// Seconds with microseconds (`time`, `interval`).
    Secs(u64),
    /// `T` or `F`.
    Bool(bool),
    /// A `set` or `vector` of strings: `,`-separated (a `,` inside an
    /// element escaped), `(empty)` when it has none.
    Strs(&'a [String]),
    /// A `vector[interval]`.
    SecsList(&'a [u64]),
    Unset,
}

impl<'a> Value<'a> {
    /// A string, or unset.
    pub(super) fn text(s: Option<&'a str>) -> Self {
        s.map_or(Self::Unset, Self::Str)
    }
}

/// One Zeek log of kind `K` (which gives it its records' writer, e.g.
/// [`ZeekConnWriter::write_flow_summary`]) being written to `W`: its `#`
/// header (TSV), then one line per record, reusing one line buffer.
#[derive(Debug)]
pub struct ZeekLog<W: Write, K> {
    out: W,
    format: ZeekFormat,
    fields: &'static [&'static str],
    line: Vec<u8>,
    /// Text a record's writer builds before writing it (see
    /// [`ZeekLog::take_scratch`]), kept for the next record.
    scratch: Vec<u8>,
    records: u64,
    conns: ConnCache,
    kind: PhantomData<K>,
}

/// The fields every log's records start with (see
/// [`ZeekLog::write_conn`]).
pub(super) const CONN_ID_FIELDS: [&str; 6] = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
];

/// The column of field `name` in a row of a log whose [`ZeekLogKind::FIELDS`]
/// are `fields`.
#[cfg(test)]
pub(super) fn column(fields: &[&str], name: &str) -> usize {
    (CONN_ID_FIELDS.iter().chain(fields))
        .position(|f| *f == name)
        .expect("a field of the log")
}

/// A TCP flow from 192.0.2.1:40000 to 198.51.100.2:`port`, for the
/// writers' tests.
#[cfg(test)]
pub(super) fn test_flow(port: u16) -> FlowHeader {
    FlowHeader {
        key: crate::extract::FiveTupleKey::from_v4(
            [192, 0, 2, 1].into(),
            40000,
            [198, 51, 100, 2].into(),
            port,
            6,
        ),
        flow_id: 62,
        l4: crate::extractor::L4Proto::Tcp,
        initiator: crate::extractor::Orientation::Forward,
    }
}

/// `#types` of those fields.
const CONN_ID_TYPES: [&str; 6] = ["time", "string", "addr", "port", "addr", "port"];

/// What makes a [`ZeekLog`] one log: its path and fields.
pub trait ZeekLogKind {
    /// `#path`, the file's name without `.log`.
    const PATH: &'static str;
    /// `#fields` after `ts`, `uid` and the four `id.*` fields, in Zeek's order.
    const FIELDS: &'static [&'static str];
    /// `#types` of those fields.
    const TYPES: &'static [&'static str];
}

/// Declares the kind of a log whose `#path` is `$path` (the calling
/// module's `FIELDS` and `TYPES`), and with `$writer` its writer's alias.
macro_rules! log_kind {
    ($kind:ident, $path:literal) => {
        #[doc = concat!("The kind of ", $path, ".log.")]
        #[derive(Debug)]
        pub enum $kind {}

        impl $crate::output::zeek::ZeekLogKind for $kind {
            const PATH: &'static str = $path;
            const FIELDS: &'static [&'static str] = &FIELDS;
            const TYPES: &'static [&'static str] = &TYPES;
        }
    };
    ($kind:ident, $path:literal, $writer:ident) => {
        $crate::output::zeek::log_kind!($kind, $path);

        #[doc = concat!("Writes ", $path, ".log records to `W`.")]
        pub type $writer<W> = $crate::output::zeek::ZeekLog<W, $kind>;
    };
}
pub(crate) use log_kind;

log_kind!(Conn, "conn", ZeekConnWriter);

/// Zeek's `#open`/`#close` stamp: `YYYY-MM-DD-HH-MM-SS`.
fn log_stamp(out: &mut Vec<u8>, now: Timestamp) {
    let mut t = Vec::with_capacity(32);
    write_rfc3339_micros(&mut t, now);
    out.extend(
        t.iter()
            .take(19)
            .map(|&c| if c == b'T' || c == b':' { b'-' } else { c }),
    );
}

fn wall_clock() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Zeek's ICMP header length (`ICMP_MINLEN`): its byte counts start after it.
const ICMP_HEADER: u64 = 8;

/// Text of at most `N` bytes, on the stack.
#[derive(Debug, Clone, Copy)]
struct Short<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Short<N> {
    /// `text`, cut at `N` bytes (callers size `N` for the longest).
    fn of(text: std::fmt::Arguments<'_>) -> Self {
        let mut buf = [0u8; N];
        let mut rest = &mut buf[..];
        let _ = rest.write_fmt(text);
        let len = N - rest.len();
        Self { buf, len }
    }

    fn as_str(&self) -> &str {
        let b = self.buf.get(..self.len).unwrap_or_default();
        std::str::from_utf8(b).unwrap_or_default()
    }
}

/// `C` and `n` in base 62.
fn uid_text(mut n: u128) -> Short<23> {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut tmp = [0u8; 23];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = DIGITS[(n % 62) as usize];
        n /= 62;
        if n == 0 {
            break;
        }
    }
    i -= 1;
    tmp[i] = b'C';
    let len = tmp.len() - i;
    tmp.copy_within(i.., 0);
    Short { buf: tmp, len }
}

/// The 96 bits of `flow`'s uid: the first 96 of its
/// [`FlowHeader::digest`].
fn uid_bits(flow: &FlowHeader) -> u128 {
    let mut b = [0u8; 16];
    b[4..].copy_from_slice(&flow.digest()[..12]);
    u128::from_be_bytes(b)
}

/// `flow`'s Zeek uid.
pub(super) fn uid(flow: &FlowHeader) -> String {
    uid_text(uid_bits(flow)).as_str().to_owned()
}

fn proto_name(l4: L4Proto) -> &'static str {
    match l4 {
        L4Proto::Tcp => "tcp",
        L4Proto::Udp => "udp",
        L4Proto::Icmp | L4Proto::IcmpV6 => "icmp",
        _ => "unknown_transport",
    }
}

/// The longest address text (`x:x:x:x:x:x:d.d.d.d`, RFC 4291).
const ADDR_TEXT: usize = 45;

/// A record's `uid` and `id` fields: its connection, initiator first
/// (written on the stack: a row allocates nothing).
#[derive(Debug, Clone, Copy)]
struct ConnId {
    uid: Short<23>,
    orig_h: Short<ADDR_TEXT>,
    orig_p: u16,
    resp_h: Short<ADDR_TEXT>,
    resp_p: u16,
}

impl ConnId {
    fn of(flow: &FlowHeader) -> Self {
        let k = flow.oriented();
        Self {
            uid: uid_text(uid_bits(flow)),
            orig_h: Short::of(format_args!("{}", k.src_ip())),
            orig_p: k.src_port(),
            resp_h: Short::of(format_args!("{}", k.dst_ip())),
            resp_p: k.dst_port(),
        }
    }

    /// `uid`, `id.orig_h`, `id.orig_p`, `id.resp_h`, `id.resp_p`.
    fn values(&self) -> [Value<'_>; 5] {
        [
            Value::Str(self.uid.as_str()),
            Value::Str(self.orig_h.as_str()),
            Value::Count(u64::from(self.orig_p)),
            Value::Str(self.resp_h.as_str()),
            Value::Count(u64::from(self.resp_p)),
        ]
    }
}

/// Slots of a [`ConnCache`].
const CONN_CACHE: usize = 64;

/// The [`ConnId`]s of the flows a log wrote last, by flow ID, direct-mapped:
/// the rows of one flow (its HTTP exchanges, DNS messages) hash and format
/// them once. Exact: a flow's ID is unique in the process, and its `uid`
/// and `id` depend on nothing else that changes.
#[derive(Debug)]
struct ConnCache(Box<[Option<(u64, ConnId)>]>);

impl ConnCache {
    fn new() -> Self {
        Self(vec![None; CONN_CACHE].into_boxed_slice())
    }

    /// `flow`'s fields, computed when its slot holds another flow.
    fn of(&mut self, flow: &FlowHeader) -> ConnId {
        let slot = &mut self.0[flow.flow_id as usize % CONN_CACHE];
        match slot {
            Some((id, conn)) if *id == flow.flow_id => *conn,
            _ => {
                let conn = ConnId::of(flow);
                *slot = Some((flow.flow_id, conn));
                conn
            }
        }
    }
}

impl<W: Write, K: ZeekLogKind> ZeekLog<W, K> {
    /// A writer to `out` (wrap files in a `BufWriter`); the TSV header is
    /// written now.
    ///
    /// # Errors
    ///
    /// Writing the header.
    pub fn new(out: W, format: ZeekFormat) -> io::Result<Self> {
        let mut log = Self {
            out,
            format,
            fields: K::FIELDS,
            line: Vec::with_capacity(1024),
            scratch: Vec::new(),
            records: 0,
            conns: ConnCache::new(),
            kind: PhantomData,
        };
        log.header()?;
        Ok(log)
    }

    /// Writes the TSV header (nothing for JSON).
    fn header(&mut self) -> io::Result<()> {
        if self.format == ZeekFormat::Tsv {
            let line = &mut self.line;
            line.clear();
            line.extend_from_slice(
                b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t",
            );
            line.extend_from_slice(K::PATH.as_bytes());
            line.extend_from_slice(b"\n#open\t");
            log_stamp(line, wall_clock());
            line.extend_from_slice(b"\n#fields\t");
            line.extend_from_slice([&CONN_ID_FIELDS, K::FIELDS].concat().join("\t").as_bytes());
            line.extend_from_slice(b"\n#types\t");
            line.extend_from_slice([&CONN_ID_TYPES, K::TYPES].concat().join("\t").as_bytes());
            line.push(b'\n');
            self.out.write_all(line)?;
        }
        Ok(())
    }

    /// Writes the TSV `#close` line (nothing for JSON) and flushes; the
    /// log takes no record after it (see [`cycle`](Self::cycle)).
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn close(&mut self) -> io::Result<()> {
        if self.format == ZeekFormat::Tsv {
            self.line.clear();
            self.line.extend_from_slice(b"#close\t");
            log_stamp(&mut self.line, wall_clock());
            self.line.push(b'\n');
            self.out.write_all(&self.line)?;
        }
        self.out.flush()
    }

    /// Ends the current file (`#close`, flushed), lets `reopen` point the
    /// writer at a new one (a reopen on SIGHUP, a rotation) and writes its
    /// header; the log's own state goes on.
    ///
    /// # Errors
    ///
    /// Writing, or `reopen`'s error.
    pub fn cycle(&mut self, reopen: impl FnOnce(&mut W) -> io::Result<()>) -> io::Result<()> {
        self.close()?;
        reopen(&mut self.out)?;
        self.header()
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The underlying writer (the writer stage accounts each record's
    /// bytes with it).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// The underlying writer, read-only.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Flushes the underlying writer.
    ///
    /// # Errors
    ///
    /// The flush's I/O error.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Writes the TSV `#close` line, flushes and returns the inner writer.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn finish(mut self) -> io::Result<W> {
        self.close()?;
        Ok(self.out)
    }

    /// Writes one record of `flow`'s connection: `ts`, `uid` and the `id`
    /// fields, then `rest`, one value per remaining field.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    /// The scratch buffer, emptied, to build a field's text in while the
    /// record's values borrow it; give it back with
    /// [`put_scratch`](Self::put_scratch).
    pub(super) fn take_scratch(&mut self) -> Vec<u8> {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        s
    }

    /// Keeps `scratch` (its memory) for the next record.
    pub(super) fn put_scratch(&mut self, scratch: Vec<u8>) {
        self.scratch = scratch;
    }

    pub(super) fn write_conn(
        &mut self,
        ts: Timestamp,
        flow: &FlowHeader,
        rest: &[Value<'_>],
    ) -> io::Result<()> {
        let id = self.conns.of(flow);
        let [uid, orig_h, orig_p, resp_h, resp_p] = id.values();
        let head = [
            Value::Secs(ts.0 / 1000),
            uid,
            orig_h,
            orig_p,
            resp_h,
            resp_p,
        ];
        self.line.clear();
        let values = head.iter().chain(rest);
        match self.format {
            ZeekFormat::Tsv => self.tsv(values)?,
            ZeekFormat::Json => self.json(values)?,
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.records += 1;
        Ok(())
    }
}

impl<W: Write> ZeekConnWriter<W> {
    /// Writes one conn.log record; `service` is the application protocol
    /// when a parser recognised one (`http`, `ssl`, `dns`, `ssh`), `summary` what
    /// the pipeline's reassembly did for it (its gaps are `missed_bytes`),
    /// `local` whether its originator and responder are local (unset
    /// without local networks), `parent` the carrier of a connection taken
    /// out of a tunnel.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn write_flow_summary(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        service: Option<&str>,
        summary: Option<&FlowSummary>,
        local: Option<[bool; 2]>,
        parent: Option<&FlowHeader>,
    ) -> io::Result<()> {
        let parent = parent.map(uid);
        let (o, r) = (
            flow.side(FlowSide::Initiator),
            flow.side(FlowSide::Responder),
        );
        let dur = flow.duration();
        let timed = !dur.is_zero();
        let dur_us = u64::try_from(dur.as_micros()).unwrap_or(u64::MAX);
        let if_timed = |v: Value<'static>| if timed { v } else { Value::Unset };
        // The tracker's ICMP payload is the whole message; Zeek counts what
        // follows the header of each.
        let app_bytes = |s: &SideStats| match flow.l4 {
            L4Proto::Icmp | L4Proto::IcmpV6 => s
                .payload_bytes
                .saturating_sub(ICMP_HEADER.saturating_mul(s.packets)),
            _ => s.payload_bytes,
        };
        let rest: [Value<'_>; FIELDS.len()] = [
            Value::Str(proto_name(flow.l4)),
            service.map_or(Value::Unset, Value::Str),
            if_timed(Value::Secs(dur_us)),
            if_timed(Value::Count(app_bytes(o))),
            if_timed(Value::Count(app_bytes(r))),
            Value::Str(flow.conn_state()),
            local.map_or(Value::Unset, |[o, _]| Value::Bool(o)),
            local.map_or(Value::Unset, |[_, r]| Value::Bool(r)),
            match (summary, flow.l4) {
                (Some(s), _) => Value::Count(missed_bytes(s)),
                (None, L4Proto::Tcp) => Value::Unset,
                (None, _) => Value::Count(0),
            },
            match flow.history.as_str() {
                "" => Value::Unset,
                h => Value::Str(h),
            },
            Value::Count(o.packets),
            Value::Count(o.ip_bytes),
            Value::Count(r.packets),
            Value::Count(r.ip_bytes),
            parent
                .as_ref()
                .map_or(Value::Unset, |p| Value::Strs(std::slice::from_ref(p))),
            Value::Count(u64::from(flow.l4.number())),
        ];
        self.write_conn(flow.start(), &FlowHeader::of(flow), &rest)
    }
}

impl<W: Write, K> ZeekLog<W, K> {
    fn tsv<'v>(&mut self, values: impl Iterator<Item = &'v Value<'v>>) -> io::Result<()> {
        for (i, v) in values.enumerate() {
            if i > 0 {
                self.line.push(b'\t');
            }
            match v {
                Value::Str("") => self.line.extend_from_slice(b"(empty)"),
                Value::Str(s) => escape(&mut self.line, s, b'\\'),
                Value::Bytes([]) => self.line.extend_from_slice(b"(empty)"),
                Value::Bytes(b) => utf8_or_hex(&mut self.line, b, b"\\x", |out, s| {
                    escape(out, s, b'\\');
                }),
                Value::Count(n) => json::uint(&mut self.line, *n),
                Value::Secs(us) => secs(&mut self.line, *us),
                Value::Bool(b) => self.line.push(if *b { b'T' } else { b'F' }),
                Value::Strs([]) => self.line.extend_from_slice(b"(empty)"),
                Value::Strs(v) => {
                    for (i, s) in v.iter().enumerate() {
                        if i > 0 {
                            self.line.push(b',');
                        }
                        escape(&mut self.line, s, b',');
                    }
                }
                Value::SecsList([]) => self.line.extend_from_slice(b"(empty)"),
                Value::SecsList(v) => {
                    for (i, us) in v.iter().enumerate() {
                        if i > 0 {
                            self.line.push(b',');
                        }
                        secs(&mut self.line, *us);
                    }
                }
                Value::Unset => self.line.push(b'-'),
            }
        }
        Ok(())
    }

    fn json<'v>(&mut self, values: impl Iterator<Item = &'v Value<'v>>) -> io::Result<()> {
        self.line.push(b'{');
        let mut first = true;
        let names = CONN_ID_FIELDS.iter().chain(self.fields);
        for (name, v) in names.zip(values) {
            if matches!(v, Value::Unset) {
                continue;
            }
            if !first {
                self.line.push(b',');
            }
            first = false;
            self.line.push(b'"');
            self.line.extend_from_slice(name.as_bytes());
            self.line.extend_from_slice(b"\":");
            match v {
                Value::Str(s) => json::string(&mut self.line, s),
                Value::Bytes(b) => {
                    self.line.push(b'"');
                    utf8_or_hex(&mut self.line, b, b"\\\\x", json::string_body);
                    self.line.push(b'"');
                }
                Value::Count(n) => json::uint(&mut self.line, *n),
                Value::Secs(us) => secs(&mut self.line, *us),
                Value::Bool(b) => self
                    .line
                    .extend_from_slice(if *b { b"true" } else { b"false" }),
                Value::Strs(v) => serde_json::to_writer(&mut self.line, v)?,
                Value::SecsList(v) => {
                    self.line.push(b'[');
                    for (i, us) in v.iter().enumerate() {
                        if i > 0 {
                            self.line.push(b',');
                        }
                        secs(&mut self.line, *us);
                    }
                    self.line.push(b']');
                }
                Value::Unset => {}
            }
        }
        self.line.push(b'}');
        Ok(())
    }
}

/// Seconds with six decimals, from microseconds.
fn secs(out: &mut Vec<u8>, us: u64) {
    json::uint(out, us / 1_000_000);
    let mut frac = *b".000000";
    let mut f = us % 1_000_000;
    for d in frac[1..].iter_mut().rev() {
        *d = b'0' + (f % 10) as u8;
        f /= 10;
    }
    out.extend_from_slice(&frac);
}

/// `s` as Zeek's ASCII writer writes it: control bytes, DEL, backslashes
/// and `also` (the set separator inside a set) as `\xNN`; scanned eight
/// bytes at a time, runs of other bytes copied whole.
fn escape(out: &mut Vec<u8>, s: &str, also: u8) {
    json::replace_bytes(
        out,
        s.as_bytes(),
        |w| {
            json::control_bytes(w)
                | json::bytes_equal(w, 0x7f)
                | json::bytes_equal(w, b'\\')
                | json::bytes_equal(w, also)
        },
        |b| (b < 0x20 || b == 0x7f || b == b'\\' || b == also).then(|| json::hex_escape(b"\\x", b)),
    );
}

/// `bytes`: each run of valid UTF-8 written by `text`, each byte of an
/// invalid sequence as `prefix` and two hexadecimal digits.
fn utf8_or_hex(out: &mut Vec<u8>, bytes: &[u8], prefix: &[u8], text: fn(&mut Vec<u8>, &str)) {
    for chunk in bytes.utf8_chunks() {
        text(out, chunk.valid());
        for &b in chunk.invalid() {
            out.extend_from_slice(json::hex_escape(prefix, b).as_bytes());
        }
    }
}

/// Zeek's `missed_bytes`: the sequence-space bytes of both sides that
/// reassembly delivered as gaps (0 without TCP reassembly).
fn missed_bytes(summary: &FlowSummary) -> u64 {
    summary.tcp.map_or(0, |sides| {
        sides
            .iter()
            .map(|s| s.counters.gap_bytes)
            .fold(0, u64::saturating_add)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_have_six_decimals() {
        for (us, text) in [
            (0, "0.000000"),
            (7, "0.000007"),
            (1_234_567, "1.234567"),
            (1_700_000_000_000_001, "1700000000.000001"),
            (u64::MAX, "18446744073709.551615"),
        ] {
            let mut out = Vec::new();
            secs(&mut out, us);
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
    }

    #[test]
    fn escapes_control_bytes_backslashes_and_the_separator_only() {
        // Every ASCII byte, alone and between runs of plain text, against
        // the rule written out byte by byte.
        for (b, at) in (0u8..=127).flat_map(|b| (0..20).map(move |at| (b, at))) {
            let mut s: Vec<char> = "abcdefghij,klmnopqrst".chars().collect();
            s[at] = b as char;
            s.push(b as char);
            let s: String = s.into_iter().collect();
            let want: String = s
                .bytes()
                .map(|c| {
                    if c < 0x20 || c == 0x7f || c == b'\\' || c == b',' {
                        format!("\\x{c:02x}")
                    } else {
                        (c as char).to_string()
                    }
                })
                .collect();
            let mut out = Vec::new();
            escape(&mut out, &s, b',');
            assert_eq!(String::from_utf8(out).unwrap(), want, "byte {b:#x} at {at}");
        }
        let mut out = Vec::new();
        escape(&mut out, "é\\t,", b'\\');
        assert_eq!(out, "é\\x5ct,".as_bytes());
    }

    #[test]
    fn uids_are_base62() {
        let uid = |n| uid_text(n).as_str().to_owned();
        assert_eq!(uid(0), "C0");
        assert_eq!(uid(61), "Cz");
        assert_eq!(uid(62), "C10");
        assert_eq!(uid(u128::from(u64::MAX)), "CLygHa16AHYF");
        // 96 bits: at most 17 digits, as Zeek's.
        assert_eq!(uid((1 << 96) - 1).len(), 18);
        assert_eq!(uid(u128::MAX), "C7n42DGM5Tflk9n8mt7Fhc7");
        let mapped: std::net::IpAddr = "::ffff:255.255.255.255".parse().unwrap();
        let text = Short::<ADDR_TEXT>::of(format_args!("{mapped}"));
        assert_eq!(text.as_str(), "::ffff:255.255.255.255");
        let longest: std::net::IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
        assert_eq!(
            Short::<ADDR_TEXT>::of(format_args!("{longest}"))
                .as_str()
                .len(),
            39
        );
    }

    #[test]
    fn uids_are_per_flow_hashes() {
        let flow = |flow_id| FlowHeader {
            flow_id,
            key: FiveTupleKey::from_v4([192, 0, 2, 1].into(), 1, [198, 51, 100, 2].into(), 2, 6),
            initiator: crate::extractor::Orientation::Forward,
            l4: L4Proto::Tcp,
        };
        assert_eq!(uid(&flow(1)), uid(&flow(1)), "stable for the flow");
        assert_ne!(uid(&flow(1)), uid(&flow(2)), "one per flow");
        // The random key: not the flow ID in base 62.
        assert_ne!(uid(&flow(1)), "C1");
        assert!(uid(&flow(1)).len() > 10);
    }

    #[test]
    fn the_connection_cache_gives_each_flow_its_own_fields() {
        let flow = |flow_id, port| FlowHeader {
            flow_id,
            key: FiveTupleKey::from_v4([192, 0, 2, 1].into(), port, [198, 51, 100, 2].into(), 2, 6),
            initiator: crate::extractor::Orientation::Forward,
            l4: L4Proto::Tcp,
        };
        let text = |c: ConnId| (c.uid.as_str().to_owned(), c.orig_p);
        let mut cache = ConnCache::new();
        // Flows 1 and 1 + CONN_CACHE share a slot; 1 << 48 is another worker's.
        let flows = [
            flow(1, 1000),
            flow(1 + CONN_CACHE as u64, 2000),
            flow(1 << 48 | 1, 3000),
        ];
        for round in 0..3 {
            for f in &flows {
                assert_eq!(
                    text(cache.of(f)),
                    text(ConnId::of(f)),
                    "flow {} in round {round}",
                    f.flow_id
                );
            }
        }
    }

    #[test]
    fn icmp_bytes_follow_the_header_and_empty_history_is_unset() {
        use crate::extractor::Orientation;
        use crate::tracker::FlowState;
        let side = |at: u64| SideStats {
            packets: 2,
            bytes: 2 * 98,
            payload_bytes: 2 * 64,
            ip_bytes: 2 * 84,
            first_seen: Timestamp(at),
            last_seen: Timestamp(at + 1_000_000_000),
            ..SideStats::default()
        };
        let flow = FlowRecord {
            key: FiveTupleKey::from_v4([192, 0, 2, 1].into(), 0, [198, 51, 100, 2].into(), 0, 1),
            flow_id: 62,
            l4: L4Proto::Icmp,
            initiator: Orientation::Forward,
            vlan: [0; 2],
            sides: [side(1_000_000_000), side(1_500_000_000)],
            state: FlowState::Active,
            history: Default::default(),
            tcp: Default::default(),
            continued: false,
            carries: None,
            tunnel: None,
        };
        let mut w = ZeekConnWriter::new(Vec::new(), ZeekFormat::Tsv).unwrap();
        w.write_flow_summary(&flow, None, None, None, None).unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let row: Vec<&str> = out.lines().nth(8).unwrap().split('\t').collect();
        let field = |name: &str| row[column(&FIELDS, name)];
        assert_eq!(field("uid"), uid(&FlowHeader::of(&flow)));
        assert_eq!(field("proto"), "icmp");
        assert_eq!(field("duration"), "1.500000");
        // 64-byte messages: 56 bytes after each 8-byte header.
        assert_eq!((field("orig_bytes"), field("resp_bytes")), ("112", "112"));
        // 84-byte IP packets (20-byte header, 64-byte message).
        assert_eq!(
            (field("orig_ip_bytes"), field("resp_ip_bytes")),
            ("168", "168")
        );
        assert_eq!(field("history"), "-");
        assert_eq!(field("conn_state"), "OTH");
        // ICMP has no stream to miss bytes of: 0, as Zeek writes.
        assert_eq!(field("missed_bytes"), "0");
        // A TCP flow no reassembly saw: nothing is known about its gaps.
        let tcp = FlowRecord {
            l4: L4Proto::Tcp,
            ..flow
        };
        let mut w = ZeekConnWriter::new(Vec::new(), ZeekFormat::Tsv).unwrap();
        w.write_flow_summary(&tcp, None, None, None, None).unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let row: Vec<&str> = out.lines().nth(8).unwrap().split('\t').collect();
        let missed = column(&FIELDS, "missed_bytes");
        assert_eq!(row[missed], "-");
    }

    #[test]
    fn missed_bytes_are_both_sides_gaps() {
        use crate::l7::session::SessionState;
        use crate::pipeline::SideReassembly;
        let side = |gap_bytes| SideReassembly {
            counters: crate::reassembly::SideCounters {
                gap_bytes,
                ..Default::default()
            },
            ..SideReassembly::default()
        };
        let tcp = FlowSummary {
            session: SessionState::Probing,
            tcp: Some([side(1460), side(7)]),
        };
        let udp = FlowSummary { tcp: None, ..tcp };
        assert_eq!(missed_bytes(&tcp), 1467);
        assert_eq!(missed_bytes(&udp), 0);
    }

    #[test]
    fn header_matches_zeek() {
        let w = ZeekConnWriter::new(Vec::new(), ZeekFormat::Tsv).unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "#separator \\x09");
        assert!(lines[5].starts_with("#open\t20"), "{}", lines[5]);
        assert_eq!(lines[5].len(), "#open\t2024-01-01-00-00-00".len());
        assert!(lines[6].starts_with("#fields\tts\tuid\tid.orig_h"));
        assert!(lines[8].starts_with("#close\t"));
    }
}
