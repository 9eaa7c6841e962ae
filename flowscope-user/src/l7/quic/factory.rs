//! QUIC in the session layer: [`DatagramParser`] for [`QuicParser`] and
//! the factory that recognises a QUIC long header (or a gQUIC public
//! header) of a known version on any UDP port.

use super::packet::{self, Packet};
use super::{QuicConfig, QuicParser, QuicRecord};
use crate::l7::session::{
    DatagramParser, DatagramParserFactory, ParseStatus, Probe, RecordSink, Side,
};
use crate::l7::{Convert, L7Counters};
use crate::view::Timestamp;

impl<R: From<QuicRecord>> DatagramParser<R> for QuicParser {
    fn on_datagram(
        &mut self,
        side: Side,
        payload: &[u8],
        _ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) -> ParseStatus {
        self.datagram(side, payload, &mut Convert(sink));
        if self.is_done() {
            ParseStatus::Done
        } else {
            ParseStatus::Continue
        }
    }

    fn on_end(&mut self, _ts: Timestamp, _sink: &mut dyn RecordSink<R>) {
        self.end();
    }

    fn flush_counters(&mut self, into: &mut L7Counters) {
        into.quic.add(self.counters());
    }

    fn reset(&mut self) -> bool {
        self.reuse();
        true
    }
}

/// Builds [`QuicParser`]s; well-known port 443, and any port whose first
/// datagram is a QUIC packet of a version read here.
#[derive(Debug, Default, Clone)]
pub struct QuicFactory {
    /// Limits given to each parser.
    pub config: QuicConfig,
}

impl<R: From<QuicRecord> + 'static> DatagramParserFactory<R> for QuicFactory {
    fn name(&self) -> &'static str {
        "quic"
    }

    fn is_well_known_port(&self, port: u16) -> bool {
        port == 443
    }

    /// Certain for a long header of a version read here whose lengths fit
    /// the datagram (or a gQUIC packet with its version); unsure for other
    /// long headers (Version Negotiation, versions not read here).
    fn probe(&self, _side: Side, payload: &[u8]) -> Probe {
        match packet::parse(payload) {
            Some(Packet::Protected { .. } | Packet::Clear { .. }) => Probe::Certain,
            Some(Packet::Unsupported(_) | Packet::VersionNegotiation) => Probe::Unsure,
            Some(Packet::Short | Packet::Padding) | None => Probe::NotForUs,
        }
    }

    fn new_parser(&mut self) -> Box<dyn DatagramParser<R>> {
        Box::new(QuicParser::new(self.config))
    }
}
