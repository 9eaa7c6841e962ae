//! Session parser traits and the driver that picks a parser per flow.
//!
//! Two parser families, one instance per flow:
//!
//! - [`SessionParser`] for stream protocols over TCP (HTTP/1.x, TLS,
//!   DNS over TCP). It is fed each side's bytes in order, as the reassembler
//!   delivers them, plus explicit [gaps](SessionParser::on_gap) (bytes that
//!   were never seen) and the end of each side's stream.
//! - [`DatagramParser`] for datagram protocols over UDP (DNS, QUIC): one L4 payload
//!   at a time, with its side.
//!
//! A factory per protocol ([`SessionParserFactory`], [`DatagramParserFactory`])
//! says which ports are the protocol's well-known ones, [probes](Probe) the
//! first bytes of a flow, and builds a parser once the driver has chosen it.
//! The [`SessionDriver`] / [`DatagramDriver`] make that choice (content
//! probe, with the port as a hint, so HTTP on 8080, TLS on 8443 and SSH on
//! 2222 are found; the first bytes of each direction are probed, so a
//! server that speaks first is recognised too) and enforce a per-flow parser
//! budget in bytes, after which parsing stops while the flow is still
//! tracked. Some datagram protocols are only [recognised](recognise): their
//! flows get a protocol name and no records.
//!
//! # The record type `R`
//!
//! The traits are generic over the record type `R` the parsers emit; this
//! module does not define it. The L7 module defines its own record type
//! (e.g. an `L7Record` enum with one variant per protocol) and implements
//! `SessionParser<L7Record>`; a pipeline that wants only one protocol may use
//! that protocol's record type directly. Parsers emit records into a
//! caller-supplied [`RecordSink`], and write a record's text into a buffer
//! the sink hands out ([`RecordSink::spare_text`]): once the writer stage
//! hands written records' buffers back, a record allocates nothing.
//!
//! # Hot-path contract
//!
//! Every method here runs on the worker's hot path: no locks, no syscalls,
//! no panics on input bytes. Bytes passed in are borrowed for the duration
//! of the call only; a parser that must keep bytes copies them into bounded
//! storage of its own.

mod driver;
mod probe_window;
pub mod recognise;
mod spares;
mod texts;

pub use driver::{
    DATAGRAM_PROBES, DatagramDriver, DatagramSession, Driver, DriverConfig, FlowPorts, MAX_PARSERS,
    SessionCounters, SessionDriver, SessionState, StopReason, StreamSession, TooManyParsers,
};
pub use probe_window::PROBE_WINDOW_BYTES;
pub use recognise::{RecogniseFactory, Recognised};
pub use spares::{POOL_BYTES, SPARE_TEXT_BYTES, TextPool};
pub use texts::Texts;
pub(crate) use texts::push_lossy;

use crate::l7::L7Counters;
use crate::view::Timestamp;

/// Direction of a flow's traffic, relative to the side that opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Bytes sent by the flow's initiator (the client, for TCP the SYN sender).
    Initiator,
    /// Bytes sent by the responder (the server).
    Responder,
}

impl Side {
    /// Both sides, initiator first.
    pub const BOTH: [Side; 2] = [Side::Initiator, Side::Responder];

    /// 0 for the initiator, 1 for the responder: an index into per-side arrays.
    pub const fn index(self) -> usize {
        match self {
            Side::Initiator => 0,
            Side::Responder => 1,
        }
    }

    /// The other side.
    pub const fn other(self) -> Side {
        match self {
            Side::Initiator => Side::Responder,
            Side::Responder => Side::Initiator,
        }
    }

    /// Static label for logs and metrics (`side` label).
    pub const fn label(self) -> &'static str {
        match self {
            Side::Initiator => "initiator",
            Side::Responder => "responder",
        }
    }
}

/// A factory's verdict on the first bytes of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// These bytes are this protocol (e.g. an HTTP method and a space, a TLS
    /// handshake record header).
    Certain,
    /// Too few bytes to tell, or ambiguous: the driver waits for more bytes,
    /// and falls back to the port hint when its probe window is full.
    Unsure,
    /// These bytes are not this protocol.
    NotForUs,
}

/// What a parser wants after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseStatus {
    /// Keep feeding this flow.
    Continue,
    /// The parser has all it wants from this flow (e.g. TLS after the
    /// handshake); the driver stops feeding it. Not an error.
    Done,
    /// The bytes cannot be parsed any further (framing lost, not the
    /// protocol after all, a gap the parser cannot skip); the driver stops
    /// feeding it and counts a parse error.
    Error,
}

/// Receives the records a parser emits.
///
/// Implemented for `Vec<R>`; a pipeline typically implements it on a small
/// adapter that tags each record with the flow key and pushes it to a ring.
pub trait RecordSink<R> {
    /// Takes one record.
    fn emit(&mut self, record: R);

    /// Storage for the text of the next record: what a record already
    /// written gave back, so that building a record allocates nothing once
    /// they circulate. Default: a new, unallocated one.
    fn spare_text(&mut self) -> Texts {
        Texts::default()
    }
}

impl<R> RecordSink<R> for Vec<R> {
    fn emit(&mut self, record: R) {
        self.push(record);
    }
}

/// Parses one TCP flow's two byte streams. One instance per flow.
///
/// The driver guarantees for each side: bytes arrive in stream order, every
/// missing stretch is announced by exactly one [`on_gap`](Self::on_gap) at its
/// place in the stream, and [`on_end`](Self::on_end) is called at most once,
/// after which that side receives nothing more. Once a method returns
/// [`ParseStatus::Done`] or [`ParseStatus::Error`] the parser is dropped
/// without further calls. When the flow's parser budget runs out the driver
/// calls `on_end` for each side still open, then drops the parser.
pub trait SessionParser<R>: Send {
    /// In-order bytes of `side`, observed at `ts`.
    fn on_data(
        &mut self,
        side: Side,
        data: &[u8],
        ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) -> ParseStatus;

    /// `len` bytes of `side` were never seen (lost, or dropped by the
    /// reassembler) at this point of the stream.
    fn on_gap(
        &mut self,
        side: Side,
        len: u64,
        ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) -> ParseStatus;

    /// `side`'s stream has ended (FIN, RST, or the flow ended): emit what a
    /// half-complete message allows, if anything.
    fn on_end(&mut self, side: Side, ts: Timestamp, sink: &mut dyn RecordSink<R>);

    /// Adds what this parser counted into `into`. The driver calls it
    /// exactly once, right before dropping (or [resetting](Self::reset))
    /// the parser. Default: nothing.
    fn flush_counters(&mut self, into: &mut L7Counters) {
        let _ = into;
    }

    /// Makes this parser what its factory's `new_parser` gives, keeping
    /// the room of its buffers, so that the driver can hand it to another
    /// flow; false when it cannot (the driver drops it). Called after
    /// [`flush_counters`](Self::flush_counters). Default: false.
    fn reset(&mut self) -> bool {
        false
    }

    /// The flow's next bytes are due soon, and this parser is probably in
    /// the cache already: prefetch what it keeps elsewhere that they will
    /// read (the pipeline calls this a few packets ahead). Default:
    /// nothing.
    fn prefetch(&self) {}
}

/// Parses one UDP flow's datagrams. One instance per flow.
pub trait DatagramParser<R>: Send {
    /// One L4 payload sent by `side`, observed at `ts`.
    fn on_datagram(
        &mut self,
        side: Side,
        payload: &[u8],
        ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) -> ParseStatus;

    /// The flow has ended (idle timeout, eviction, shutdown): emit what is
    /// pending (e.g. queries that got no answer). Default: nothing.
    fn on_end(&mut self, ts: Timestamp, sink: &mut dyn RecordSink<R>) {
        let _ = (ts, sink);
    }

    /// Adds what this parser counted into `into`. The driver calls it
    /// exactly once, right before dropping (or [resetting](Self::reset))
    /// the parser. Default: nothing.
    fn flush_counters(&mut self, into: &mut L7Counters) {
        let _ = into;
    }

    /// As [`SessionParser::reset`]: makes this parser a fresh one, keeping
    /// its memory, for another flow; false when it cannot. Default: false.
    fn reset(&mut self) -> bool {
        false
    }
}

/// Recognises one stream protocol and builds its per-flow parsers.
pub trait SessionParserFactory<R>: Send {
    /// Protocol name, a static label for metrics and logs (`"http"`, `"tls"`).
    fn name(&self) -> &'static str;

    /// True if `port` is one of the protocol's usual server ports. Breaks
    /// ties between [`Probe::Unsure`] verdicts and orders the probes.
    fn is_well_known_port(&self, port: u16) -> bool;

    /// Judges the first bytes of a flow, sent by `side`. `data` holds at
    /// most [`PROBE_WINDOW_BYTES`] bytes.
    fn probe(&self, side: Side, data: &[u8]) -> Probe;

    /// A fresh parser for a flow this factory's probe accepted.
    fn new_parser(&mut self) -> Box<dyn SessionParser<R>>;
}

/// Recognises one datagram protocol and builds its per-flow parsers.
pub trait DatagramParserFactory<R>: Send {
    /// Protocol name, a static label for metrics and logs (`"dns"`).
    fn name(&self) -> &'static str;

    /// True if `port` is one of the protocol's usual server ports.
    fn is_well_known_port(&self, port: u16) -> bool;

    /// Judges one datagram sent by `side`.
    fn probe(&self, side: Side, payload: &[u8]) -> Probe;

    /// A fresh parser for a flow this factory's probe accepted.
    fn new_parser(&mut self) -> Box<dyn DatagramParser<R>>;
}
