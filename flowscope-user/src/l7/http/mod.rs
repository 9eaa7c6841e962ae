//! HTTP/1.x session parser: requests and responses of one TCP flow, paired in
//! order (pipelining included) into one [`HttpRecord`] per exchange.
//!
//! Each side is a small state machine (head → body → head …) fed in-order
//! bytes in arbitrary splits. Heads are parsed in place by `httparse`; only
//! an incomplete head is copied into a per-side buffer bounded by
//! [`HttpConfig::max_header_bytes`]. Bodies are skipped without copying.
//!
//! Loss: a gap inside a body with known length is skipped. A gap anywhere
//! else (inside a head, a chunk-size line, or past the body's end) makes the
//! side resynchronise: it scans for the next line that starts a message
//! (`METHOD ` on the client side, `HTTP/1.` on the server side) and goes on
//! from there ([`HttpCounters::resyncs`]). A gap stops only its own side's
//! message: the other side goes on, so requests after a hole in the
//! responses are all reported. The first response after a server-side hole
//! answers the latest request (a client that does not pipeline sends its
//! next request only after the previous answer), and the requests before it,
//! whose responses were lost, are emitted unanswered; once the client has
//! been seen pipelining, it answers the oldest instead (best effort).
//! Requests beyond [`HttpConfig::max_pending_requests`] push the oldest out
//! unanswered, so none is lost.
//! The answer to an HTTP/0.9 request (a request line without a version)
//! that starts with no status line is that request's response body, up to
//! the close. Any other side whose first bytes are not HTTP stops
//! ([`HttpCounters::not_http`]),
//! and so do both sides after `101 Switching Protocols` or a successful
//! `CONNECT` ([`HttpCounters::tunnels`]).

mod body;
mod factory;
mod head;
mod queue;

pub use self::factory::HttpFactory;

use serde::Serialize;

use self::body::{Body, BodyStep, Chunk};
use self::head::{Framing, Parsed, Start};
use self::queue::Requests;
use super::carry::Carry;
use crate::l7::session::{RecordSink, Side, Texts};
use crate::view::Timestamp;

/// A text field of an [`HttpRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpField {
    /// `Host` header of the request, as sent (port included; EVE writes
    /// the host part, as Suricata, and the port as `http_port`).
    Hostname,
    /// Request target.
    Url,
    /// Request method.
    Method,
    /// Request protocol version (`HTTP/1.1`).
    Protocol,
    /// `User-Agent` header of the request.
    UserAgent,
    /// `Referer` header of the request.
    Refer,
    /// `X-Forwarded-For` header of the request.
    Xff,
    /// `Content-Type` header of the response.
    ContentType,
    /// Reason phrase of the final response (Zeek's `status_msg`; not in EVE).
    StatusMsg,
    /// Protocol version of the final response (`HTTP/1.1`; `HTTP/0.9`
    /// for a bare body answering a request without a version; Zeek's
    /// `version` is the response's; not in EVE).
    ResponseProtocol,
    /// `Origin` header of the request (Zeek's `origin`; not in EVE).
    Origin,
    /// The user name of the request's `Authorization` or
    /// `Proxy-Authorization` header of the `Basic` scheme (Zeek's
    /// `username`; not in EVE); `<problem-decoding> (VALUE)` when the
    /// decoded credentials hold no `:`, as Zeek writes it.
    Username,
    /// The request's proxy headers (Zeek's `HTTP::proxy_headers`), a list
    /// of `NAME -> value` in upper-case names, each once (Zeek's `proxied`
    /// set; not in EVE).
    Proxied,
    /// Reason phrase of the last informational (1xx) response (Zeek's
    /// `info_msg`; not in EVE).
    InfoMsg,
    /// `Location` header of the final response (EVE's `redirect`).
    Redirect,
}

/// The [`HttpField::ResponseProtocol`] of an HTTP/0.9 answer: a bare body,
/// no status line.
const HTTP_09: &str = "HTTP/0.9";

/// How many [`HttpField`]s there are.
const HTTP_FIELDS: usize = HttpField::Redirect as usize + 1;

/// One request/response exchange, in Suricata EVE `http` names.
///
/// Its text fields ([`HttpField`]) share one [`Texts`], taken from the
/// sink's spares when the request is parsed: a record costs no allocation
/// once the writer stage hands them back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRecord {
    text: Texts,
    /// The port the `Host` header names, if any.
    pub http_port: Option<u16>,
    /// Status of the last informational (1xx) response (Zeek's
    /// `info_code`; not in EVE).
    pub info_code: Option<u16>,
    /// Packet time of the bytes that completed its request's first line
    /// (its response's status line, for a response without request): when
    /// the exchange began, Zeek's http.log `ts` (not in EVE, whose record
    /// is stamped when it completes). Zero from a parser no one told the
    /// time ([`HttpParser::set_time`]).
    pub started: Timestamp,
    /// Final response status; absent for an unanswered request.
    pub status: Option<u16>,
    /// Response body bytes seen (after de-chunking; gaps inside it included).
    pub length: u64,
    /// Request body bytes seen, counted the same way (Zeek's
    /// `request_body_len`; not in EVE).
    pub request_body_len: u64,
    /// The request's place in its connection, from 1 (Zeek's `trans_depth`;
    /// not in EVE).
    pub trans_depth: u32,
}

impl Default for HttpRecord {
    fn default() -> Self {
        Self::on(Texts::default())
    }
}

impl HttpRecord {
    /// A record with no field set, its text written into `text`.
    pub fn on(mut text: Texts) -> Self {
        text.reset(HTTP_FIELDS);
        Self {
            text,
            http_port: None,
            info_code: None,
            started: Timestamp(0),
            status: None,
            length: 0,
            request_body_len: 0,
            trans_depth: 0,
        }
    }

    /// A text field, if set.
    pub fn get(&self, field: HttpField) -> Option<&str> {
        self.text.get(field as usize)
    }

    /// Sets a text field.
    pub fn set(&mut self, field: HttpField, value: &str) {
        self.text.set(field as usize, value);
    }

    /// Unsets a text field.
    pub fn unset(&mut self, field: HttpField) {
        self.text.unset(field as usize);
    }

    /// This record with `field` set to `value`.
    #[must_use]
    pub fn with(mut self, field: HttpField, value: &str) -> Self {
        self.set(field, value);
        self
    }

    /// Its text storage (to prefetch before it is written).
    pub(crate) fn texts(&self) -> &Texts {
        &self.text
    }

    /// The storage its text fields were written into, for another record.
    pub fn into_buffer(self) -> Texts {
        self.text
    }

    fn set_lossy(&mut self, field: HttpField, value: Option<&[u8]>) {
        if let Some(v) = value {
            self.text.set_lossy(field as usize, v);
        }
    }

    fn set_some(&mut self, field: HttpField, value: Option<&str>) {
        if let Some(v) = value {
            self.set(field, v);
        }
    }

    /// `info_code` and [`HttpField::InfoMsg`] from an informational (1xx)
    /// response.
    fn set_informational(&mut self, status: u16, reason: Option<&str>) {
        self.info_code = Some(status);
        self.set_some(HttpField::InfoMsg, reason);
    }

    /// [`HttpField::Username`] from an `Authorization` value, as Zeek's
    /// `http_header` handler reads it: the `Basic` scheme (any case, then
    /// a space), its credentials decoded from base64 and cut at the first
    /// `:`; `<problem-decoding> (VALUE)` when they hold none or do not
    /// decode (a character outside the alphabet fails Zeek's decoder).
    /// Only the first 1 KiB of credentials is decoded: a longer user name
    /// than 767 bytes is not found. Other schemes leave it unset.
    fn set_username(&mut self, value: &[u8]) {
        use base64::Engine;
        const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                .with_decode_allow_trailing_bits(true),
        );
        let (Some(scheme), Some(rest)) = (value.get(..6), value.get(6..)) else {
            return;
        };
        if !(scheme[..5].eq_ignore_ascii_case(b"basic") && scheme[5] == b' ') {
            return;
        }
        let encoded = rest.trim_ascii_start();
        let valid = encoded
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        // A last lone character holds no whole byte (Zeek pads it away).
        let n = encoded.len().min(1024);
        let n = n - usize::from(n % 4 == 1);
        let mut decoded = [0u8; 768];
        let userpass = match BASE64.decode_slice(&encoded[..n], &mut decoded) {
            Ok(k) if valid => &decoded[..k],
            _ => &[],
        };
        match userpass.iter().position(|&b| b == b':') {
            Some(colon) => self.set_lossy(HttpField::Username, Some(&userpass[..colon])),
            None => self.text.write(HttpField::Username as usize, |buf| {
                buf.push_str("<problem-decoding> (");
                crate::l7::session::push_lossy(buf, value);
                buf.push(')');
            }),
        }
    }

    /// [`HttpField::Proxied`] from the proxy headers, each `NAME -> value`
    /// once.
    fn set_proxied(&mut self, headers: &[(&str, &[u8])]) {
        let unique = headers
            .iter()
            .enumerate()
            .filter(|&(i, h)| !headers[..i].contains(h))
            .map(|(_, h)| h);
        self.text
            .set_list(HttpField::Proxied as usize, unique, |buf, (name, value)| {
                buf.push_str(name);
                buf.push_str(" -> ");
                crate::l7::session::push_lossy(buf, value);
            });
    }

    /// [`HttpField::Hostname`].
    pub fn hostname(&self) -> Option<&str> {
        self.get(HttpField::Hostname)
    }

    /// The host part of [`HttpField::Hostname`], without its port (EVE's
    /// `hostname`, as Suricata writes it).
    pub fn host(&self) -> Option<&str> {
        self.hostname().map(|h| split_host(h).0)
    }

    /// [`HttpField::Url`].
    pub fn url(&self) -> Option<&str> {
        self.get(HttpField::Url)
    }

    /// [`HttpField::Method`].
    pub fn http_method(&self) -> Option<&str> {
        self.get(HttpField::Method)
    }

    /// [`HttpField::Protocol`].
    pub fn protocol(&self) -> Option<&str> {
        self.get(HttpField::Protocol)
    }

    /// [`HttpField::UserAgent`].
    pub fn http_user_agent(&self) -> Option<&str> {
        self.get(HttpField::UserAgent)
    }

    /// [`HttpField::Refer`].
    pub fn http_refer(&self) -> Option<&str> {
        self.get(HttpField::Refer)
    }

    /// [`HttpField::Xff`].
    pub fn xff(&self) -> Option<&str> {
        self.get(HttpField::Xff)
    }

    /// [`HttpField::ContentType`].
    pub fn http_content_type(&self) -> Option<&str> {
        self.get(HttpField::ContentType)
    }

    /// [`HttpField::StatusMsg`].
    pub fn status_msg(&self) -> Option<&str> {
        self.get(HttpField::StatusMsg)
    }

    /// [`HttpField::ResponseProtocol`].
    pub fn response_protocol(&self) -> Option<&str> {
        self.get(HttpField::ResponseProtocol)
    }

    /// [`HttpField::Origin`].
    pub fn origin(&self) -> Option<&str> {
        self.get(HttpField::Origin)
    }

    /// [`HttpField::Username`].
    pub fn username(&self) -> Option<&str> {
        self.get(HttpField::Username)
    }

    /// [`HttpField::Proxied`], in the order the headers came.
    pub fn proxied(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.text.list(HttpField::Proxied as usize)
    }

    /// [`HttpField::InfoMsg`].
    pub fn info_msg(&self) -> Option<&str> {
        self.get(HttpField::InfoMsg)
    }

    /// [`HttpField::Redirect`].
    pub fn redirect(&self) -> Option<&str> {
        self.get(HttpField::Redirect)
    }

    /// Whether the response was an HTTP/0.9 answer: a bare body, no status
    /// line.
    pub fn answered_as_http09(&self) -> bool {
        self.response_protocol() == Some(HTTP_09)
    }
}

/// A value of the EVE `http` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EveValue<'a> {
    /// A string.
    Text(&'a str),
    /// A number.
    Count(u64),
}

impl Serialize for EveValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(t) => s.serialize_str(t),
            Self::Count(n) => s.serialize_u64(*n),
        }
    }
}

impl HttpRecord {
    /// The fields of its EVE `http` object in Suricata's order, `None`
    /// for those left out: what both its `Serialize` and the EVE encoder
    /// write.
    pub fn eve_fields(&self) -> [(&'static str, Option<EveValue<'_>>); 12] {
        fn text(t: Option<&str>) -> Option<EveValue<'_>> {
            t.map(EveValue::Text)
        }
        let count = |n: Option<u16>| n.map(|n| EveValue::Count(u64::from(n)));
        [
            ("hostname", text(self.host())),
            ("http_port", count(self.http_port)),
            ("url", text(self.url())),
            ("http_method", text(self.http_method())),
            ("protocol", text(self.protocol())),
            ("status", count(self.status)),
            // Suricata writes it only with a status.
            (
                "redirect",
                text(self.redirect().filter(|_| self.status.is_some())),
            ),
            ("http_user_agent", text(self.http_user_agent())),
            ("http_refer", text(self.http_refer())),
            ("xff", text(self.xff())),
            ("http_content_type", text(self.http_content_type())),
            ("length", Some(EveValue::Count(self.length))),
        ]
    }
}

/// The EVE `http` object.
impl Serialize for HttpRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (name, value) in self.eve_fields() {
            if let Some(v) = value {
                map.serialize_entry(name, &v)?;
            }
        }
        map.end()
    }
}

/// A `Host` header's host and port: `example.org:8080` is
/// (`example.org`, 8080), `[2001:db8::1]:80` is (`[2001:db8::1]`, 80); a
/// value without a valid port is all host.
fn split_host(value: &str) -> (&str, Option<u16>) {
    match value.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (value, None),
        },
        _ => (value, None),
    }
}

/// Limits of one HTTP parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Largest message head buffered across segments, in bytes.
    pub max_header_bytes: usize,
    /// Most requests waiting for their response; beyond it the oldest is
    /// emitted unanswered and counted.
    pub max_pending_requests: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_pending_requests: 32,
        }
    }
}

/// What happened inside one HTTP parser; add them up per worker.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HttpCounters {
    /// Request heads parsed.
    pub requests: u64,
    /// Final response heads parsed.
    pub responses: u64,
    /// Interim (1xx other than 101) responses skipped.
    pub interim_responses: u64,
    /// Responses that found no pending request.
    pub responses_without_request: u64,
    /// Requests emitted unanswered: at the server side's end, after a
    /// server-side hole, or pushed out of a full queue.
    pub unanswered_requests: u64,
    /// Of those, requests pushed out because the pending queue was full.
    pub pending_evicted: u64,
    /// Heads that did not parse.
    pub header_errors: u64,
    /// Heads larger than the buffer limit.
    pub header_overflows: u64,
    /// Broken chunked framing.
    pub body_errors: u64,
    /// Times a side lost sync and scanned for the next message.
    pub resyncs: u64,
    /// Missing bytes skipped inside bodies.
    pub gap_bytes_skipped: u64,
    /// Sides that stopped because their first bytes were not HTTP.
    pub not_http: u64,
    /// Flows that switched to another protocol (101, CONNECT).
    pub tunnels: u64,
}

impl HttpCounters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Self) {
        add_counters!(self += other: Self {
            requests,
            responses,
            interim_responses,
            responses_without_request,
            unanswered_requests,
            pending_evicted,
            header_errors,
            header_overflows,
            body_errors,
            resyncs,
            gap_bytes_skipped,
            not_http,
            tunnels,
        });
    }
}

/// Where one side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Body(Body),
    /// Scanning for the next message start; `line_start` when the next byte
    /// begins a line (or follows a gap).
    Resync {
        line_start: bool,
    },
    Stopped,
}

/// One direction of the flow.
#[derive(Debug)]
struct Half {
    carry: Carry,
    phase: Phase,
    /// A message head was parsed on this side.
    seen: bool,
}

impl Half {
    fn new(limit: usize) -> Self {
        Self {
            carry: Carry::new(limit),
            phase: Phase::Head,
            seen: false,
        }
    }
}

/// State shared by both sides: the pairing queue and the outputs.
#[derive(Debug)]
struct Pairing {
    max_pending: usize,
    pending: Requests,
    /// Exchange whose response body is being read.
    current: Option<HttpRecord>,
    counters: HttpCounters,
    tunnel: bool,
    /// The server side lost responses to a gap; the next final response
    /// pairs by the rule in the module docs.
    responses_lost: bool,
    /// A response came while several requests waited: the client pipelines.
    pipelining: bool,
    /// Requests parsed so far on this connection.
    requests: u32,
    /// Packet time of the bytes being fed ([`HttpParser::set_time`]).
    now: Timestamp,
    /// Packet time of the bytes that ended the first line of the head in
    /// progress, by side (responses, requests), once a packet left the
    /// head partial after that line.
    line_at: [Option<Timestamp>; 2],
}

impl Pairing {
    /// When the head of this side that just completed began, as Zeek
    /// stamps it: the packet that completed its first line (the request
    /// or status line).
    fn head_started(&mut self, request: bool) -> Timestamp {
        self.line_at[usize::from(request)]
            .take()
            .unwrap_or(self.now)
    }

    /// A head of this side is still partial after `b`: note when its first
    /// line ended, if `b` holds it and this is the first time.
    fn head_partial(&mut self, request: bool, b: &[u8]) {
        let at = &mut self.line_at[usize::from(request)];
        if at.is_none() && b.contains(&b'\n') {
            *at = Some(self.now);
        }
    }

    /// What this side began was no head: whatever line it began with is no
    /// start.
    fn head_invalid(&mut self, request: bool) {
        self.line_at[usize::from(request)] = None;
    }

    fn finish_current(&mut self, out: &mut dyn RecordSink<HttpRecord>) {
        if let Some(rec) = self.current.take() {
            out.emit(rec);
        }
    }

    /// Emits the oldest pending request unanswered.
    fn unanswered(&mut self, out: &mut dyn RecordSink<HttpRecord>) {
        if let Some(rec) = self.pending.pop_front() {
            self.counters.unanswered_requests += 1;
            out.emit(rec);
        }
    }

    /// The request a final response answers (see the module docs).
    fn answered(&mut self, out: &mut dyn RecordSink<HttpRecord>) -> Option<HttpRecord> {
        if std::mem::take(&mut self.responses_lost) {
            if !self.pipelining {
                while self.pending.len() > 1 {
                    self.unanswered(out);
                }
            }
        } else if self.pending.len() > 1 {
            self.pipelining = true;
        }
        self.pending.pop_front()
    }
}

/// HTTP/1.x parser of one flow.
#[derive(Debug)]
pub struct HttpParser {
    client: Half,
    server: Half,
    pairing: Pairing,
}

impl Default for HttpParser {
    fn default() -> Self {
        Self::new(HttpConfig::default())
    }
}

impl HttpParser {
    /// A parser with these limits.
    pub fn new(config: HttpConfig) -> Self {
        Self {
            client: Half::new(config.max_header_bytes),
            server: Half::new(config.max_header_bytes),
            pairing: Pairing {
                max_pending: config.max_pending_requests,
                pending: Requests::default(),
                current: None,
                counters: HttpCounters::default(),
                tunnel: false,
                responses_lost: false,
                pipelining: false,
                requests: 0,
                now: Timestamp(0),
                line_at: [None; 2],
            },
        }
    }

    /// Makes this parser what [`HttpParser::new`] with its limits gives,
    /// keeping the room of its buffers and queue: the session driver
    /// reuses parsers across flows.
    pub fn reuse(&mut self) {
        let Self {
            client,
            server,
            pairing:
                Pairing {
                    max_pending: _,
                    pending,
                    current,
                    counters,
                    tunnel,
                    responses_lost,
                    pipelining,
                    requests,
                    now,
                    line_at,
                },
        } = self;
        for Half { carry, phase, seen } in [client, server] {
            carry.clear();
            *phase = Phase::Head;
            *seen = false;
        }
        pending.clear();
        *current = None;
        *counters = HttpCounters::default();
        (*tunnel, *responses_lost, *pipelining, *requests) = (false, false, false, 0);
        *now = Timestamp(0);
        *line_at = [None; 2];
    }

    /// The packet time of the bytes fed next: the records' [`started`]
    /// times.
    ///
    /// [`started`]: HttpRecord::started
    pub fn set_time(&mut self, ts: Timestamp) {
        self.pairing.now = ts;
    }

    /// Prefetches what the next message reads beyond the parser itself:
    /// the text of the request the next response answers.
    #[inline(always)]
    pub fn prefetch(&self) {
        self.pairing.pending.prefetch();
    }

    /// Counters of this flow so far.
    pub fn counters(&self) -> &HttpCounters {
        &self.pairing.counters
    }

    /// True when neither side will parse anything more.
    pub fn is_done(&self) -> bool {
        self.pairing.tunnel
            || (self.client.phase == Phase::Stopped && self.server.phase == Phase::Stopped)
    }

    /// Feeds the next in-order bytes of `side`; completed exchanges go to `out`.
    pub fn feed(&mut self, side: Side, bytes: &[u8], out: &mut dyn RecordSink<HttpRecord>) {
        if self.pairing.tunnel {
            return;
        }
        let request = side == Side::Initiator;
        let half = match side {
            Side::Initiator => &mut self.client,
            Side::Responder => &mut self.server,
        };
        let pairing = &mut self.pairing;
        let (phase, seen) = (&mut half.phase, &mut half.seen);
        let result = half
            .carry
            .drive(bytes, |b| step(request, phase, seen, pairing, b, out));
        if result.is_err() {
            pairing.counters.header_overflows += 1;
            lose_sync(half, pairing, out);
        }
    }

    /// `len` bytes of `side` are missing from the stream.
    pub fn gap(&mut self, side: Side, len: u64, out: &mut dyn RecordSink<HttpRecord>) {
        let half = match side {
            Side::Initiator => &mut self.client,
            Side::Responder => &mut self.server,
        };
        let pairing = &mut self.pairing;
        match &mut half.phase {
            Phase::Body(body) if half.carry.is_empty() => match body.gap(len) {
                Ok((data, done)) => {
                    pairing.counters.gap_bytes_skipped += data;
                    if side == Side::Responder
                        && let Some(rec) = &mut pairing.current
                    {
                        rec.length += data;
                    }
                    if done {
                        half.phase = Phase::Head;
                        if side == Side::Responder {
                            pairing.finish_current(out);
                        }
                    }
                }
                Err(body::Lost) => lose_sync(half, pairing, out),
            },
            Phase::Stopped => {}
            _ => lose_sync(half, pairing, out),
        }
        if side == Side::Responder && matches!(half.phase, Phase::Resync { .. }) {
            pairing.responses_lost = true;
        }
    }

    /// `side` ended (FIN, RST or flow end). At the server's end a
    /// close-delimited body completes and queued requests are emitted
    /// unanswered.
    pub fn end(&mut self, side: Side, out: &mut dyn RecordSink<HttpRecord>) {
        let half = match side {
            Side::Initiator => &mut self.client,
            Side::Responder => &mut self.server,
        };
        half.carry.clear();
        half.phase = Phase::Stopped;
        if side == Side::Responder {
            let p = &mut self.pairing;
            p.finish_current(out);
            p.counters.unanswered_requests += p.pending.len() as u64;
            for rec in p.pending.drain() {
                out.emit(rec);
            }
        }
    }
}

/// A side lost sync: emit the exchange in progress and scan for a new head.
fn lose_sync(half: &mut Half, pairing: &mut Pairing, out: &mut dyn RecordSink<HttpRecord>) {
    half.carry.clear();
    if matches!(half.phase, Phase::Body(_)) && pairing.current.is_some() {
        pairing.finish_current(out);
    }
    pairing.counters.resyncs += 1;
    half.phase = Phase::Resync { line_start: true };
}

/// Consumes bytes at the start of `b` for one side; 0 means "need more".
fn step(
    request: bool,
    phase: &mut Phase,
    seen: &mut bool,
    p: &mut Pairing,
    b: &[u8],
    out: &mut dyn RecordSink<HttpRecord>,
) -> usize {
    loop {
        match phase {
            Phase::Stopped => return b.len(),
            _ if p.tunnel => {
                *phase = Phase::Stopped;
                return b.len();
            }
            Phase::Resync { line_start } => {
                let mut at = if *line_start {
                    Some(0)
                } else {
                    b.iter().position(|&c| c == b'\n').map(|nl| nl + 1)
                };
                loop {
                    let Some(pos) = at else {
                        // Consumed all; a line starts next if `b` ended one.
                        *phase = Phase::Resync {
                            line_start: b.last() == Some(&b'\n'),
                        };
                        return b.len();
                    };
                    match head::looks_like_start(b.get(pos..).unwrap_or_default(), request) {
                        Start::Yes if pos == 0 => {
                            *phase = Phase::Head;
                            break;
                        }
                        Start::Maybe if pos == 0 => return 0,
                        Start::Yes | Start::Maybe => {
                            *line_start = true;
                            return pos;
                        }
                        Start::No => {
                            at = b
                                .get(pos..)
                                .and_then(|rest| rest.iter().position(|&c| c == b'\n'))
                                .map(|nl| pos + nl + 1)
                        }
                    }
                }
            }
            Phase::Body(body) => {
                return match body.step(b) {
                    BodyStep::Took { used, data, done } => {
                        if !request && let Some(rec) = &mut p.current {
                            rec.length += data;
                        } else if request && let Some(rec) = p.pending.back_mut() {
                            rec.request_body_len += data;
                        }
                        if done {
                            *phase = Phase::Head;
                            if !request {
                                p.finish_current(out);
                            }
                        }
                        used
                    }
                    BodyStep::NeedMore => 0,
                    BodyStep::Invalid => {
                        p.counters.body_errors += 1;
                        if !request {
                            p.finish_current(out);
                        }
                        p.counters.resyncs += 1;
                        *phase = Phase::Resync { line_start: false };
                        continue;
                    }
                };
            }
            Phase::Head => {
                if b.is_empty() {
                    return 0;
                }
                let used = if request {
                    request_head(phase, p, b, out)
                } else {
                    response_head(phase, p, b, out)
                };
                if used.is_none() {
                    p.head_invalid(request);
                }
                match used {
                    Some(0) => {
                        p.head_partial(request, b);
                        return 0;
                    }
                    Some(n) => {
                        *seen = true;
                        return n;
                    }
                    None if *seen => {
                        p.counters.header_errors += 1;
                        p.counters.resyncs += 1;
                        *phase = Phase::Resync { line_start: false };
                    }
                    // An HTTP/0.9 request (no version) is answered by the
                    // bare body, up to the close (RFC 1945, section 3.1;
                    // Zeek logs it so); a status line still parses first.
                    None if !request
                        && p.pending.front().is_some_and(|r| r.protocol().is_none()) =>
                    {
                        *seen = true;
                        p.counters.responses += 1;
                        p.current = p.answered(out);
                        if let Some(rec) = p.current.as_mut() {
                            rec.set(HttpField::ResponseProtocol, HTTP_09);
                        }
                        *phase = Phase::Body(Body::UntilClose);
                    }
                    None => {
                        p.counters.header_errors += 1;
                        p.counters.not_http += 1;
                        *phase = Phase::Stopped;
                    }
                }
            }
        }
    }
}

/// Body state for a message with this framing; `None` when it has no body.
fn body_of(framing: Framing, until_close: bool) -> Option<Body> {
    if framing.chunked {
        Some(Body::Chunked(Chunk::Size))
    } else {
        match framing.content_length {
            Some(0) => None,
            Some(n) => Some(Body::Length(n)),
            None if until_close => Some(Body::UntilClose),
            None => None,
        }
    }
}

/// Parses a request head; `Some(bytes used)` (0 = partial) or `None` if invalid.
fn request_head(
    phase: &mut Phase,
    p: &mut Pairing,
    b: &[u8],
    out: &mut dyn RecordSink<HttpRecord>,
) -> Option<usize> {
    match head::parse_request(b) {
        Parsed::Complete(len, h) => {
            let started = p.head_started(true);
            p.counters.requests += 1;
            if p.pending.len() >= p.max_pending {
                p.counters.pending_evicted += 1;
                p.unanswered(out);
            }
            p.requests = p.requests.saturating_add(1);
            let mut rec = HttpRecord::on(out.spare_text());
            rec.trans_depth = p.requests;
            rec.started = started;
            let f = &h.fields;
            rec.set_lossy(HttpField::Hostname, f.host);
            rec.http_port = rec.hostname().and_then(|v| split_host(v).1);
            rec.set_some(HttpField::Url, h.uri.as_deref());
            rec.set(HttpField::Method, h.method);
            rec.set_some(HttpField::Protocol, h.protocol.as_deref());
            rec.set_lossy(HttpField::UserAgent, f.user_agent);
            rec.set_lossy(HttpField::Refer, f.referer);
            rec.set_lossy(HttpField::Xff, f.xff);
            rec.set_lossy(HttpField::Origin, f.origin);
            if let Some(auth) = f.authorization {
                rec.set_username(auth);
            }
            if f.proxied_len > 0 {
                rec.set_proxied(f.proxied());
            }
            p.pending.push_back(rec);
            *phase = body_of(h.fields.framing, false).map_or(Phase::Head, Phase::Body);
            Some(len)
        }
        Parsed::Partial => Some(0),
        Parsed::Invalid => None,
    }
}

/// Parses a response head and pairs it with the request it answers.
fn response_head(
    phase: &mut Phase,
    p: &mut Pairing,
    b: &[u8],
    out: &mut dyn RecordSink<HttpRecord>,
) -> Option<usize> {
    match head::parse_response(b) {
        Parsed::Complete(len, h) => {
            let started = p.head_started(false);
            if (100..200).contains(&h.status) && h.status != 101 {
                p.counters.interim_responses += 1;
                // Zeek logs the last one with the request it answers.
                if let Some(r) = p.pending.front_mut() {
                    r.set_informational(h.status, h.reason);
                }
                return Some(len);
            }
            p.counters.responses += 1;
            let mut rec = p.answered(out).unwrap_or_else(|| {
                p.counters.responses_without_request += 1;
                p.requests = p.requests.saturating_add(1);
                let mut rec = HttpRecord::on(out.spare_text());
                rec.trans_depth = p.requests;
                rec.started = started;
                rec
            });
            rec.status = Some(h.status);
            if h.status == 101 {
                // Zeek's `info_*` hold every 1xx response, 101 too.
                rec.set_informational(h.status, h.reason);
            }
            rec.set_some(HttpField::StatusMsg, h.reason);
            rec.set_some(HttpField::ResponseProtocol, h.protocol);
            rec.set_lossy(HttpField::ContentType, h.fields.content_type);
            rec.set_lossy(HttpField::Redirect, h.fields.location);
            let method = rec.http_method().unwrap_or_default();
            let no_body = method == "HEAD" || h.status == 204 || h.status == 304;
            let tunnel = h.status == 101 || (method == "CONNECT" && (200..300).contains(&h.status));
            p.current = Some(rec);
            if tunnel {
                p.counters.tunnels += 1;
                p.tunnel = true;
                p.finish_current(out);
                *phase = Phase::Stopped;
            } else if let Some(body) = body_of(h.fields.framing, true).filter(|_| !no_body) {
                *phase = Phase::Body(body);
            } else {
                p.finish_current(out);
                *phase = Phase::Head;
            }
            Some(len)
        }
        Parsed::Partial => Some(0),
        Parsed::Invalid => None,
    }
}

#[cfg(test)]
mod tests;
