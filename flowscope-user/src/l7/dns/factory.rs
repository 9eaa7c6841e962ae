//! DNS in the session layer: [`DatagramParser`] (UDP) and [`SessionParser`]
//! (TCP) for [`DnsParser`], and their factories; and the factories that
//! recognise mDNS and LLMNR, which carry DNS messages on ports of their own
//! and are reported as themselves (Suricata's `mdns` and `llmnr`), without
//! records.

use super::{DnsConfig, DnsParser, DnsRecord, message};
use crate::l7::session::{
    DatagramParser, DatagramParserFactory, ParseStatus, Probe, RecogniseFactory, RecordSink,
    SessionParser, SessionParserFactory, Side,
};
use crate::l7::{Convert, L7Counters};
use crate::view::Timestamp;

/// A message that parses and has at least one question is DNS. mDNS and
/// LLMNR announcements and answers often carry no question: with
/// `answer_alone`, a message with only answers may be theirs, on their port.
fn probe_message(msg: &[u8], answer_alone: bool) -> Probe {
    match message::shape(msg) {
        Ok(m) if m.question => Probe::Certain,
        Ok(m) if answer_alone && m.answers => Probe::Unsure,
        _ => Probe::NotForUs,
    }
}

impl<R: From<DnsRecord>> DatagramParser<R> for DnsParser {
    fn on_datagram(
        &mut self,
        _side: Side,
        payload: &[u8],
        _ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) -> ParseStatus {
        self.datagram(payload, &mut Convert(sink));
        ParseStatus::Continue
    }

    fn on_end(&mut self, _ts: Timestamp, _sink: &mut dyn RecordSink<R>) {
        self.end();
    }

    fn flush_counters(&mut self, into: &mut L7Counters) {
        into.dns.add(self.counters());
    }

    fn reset(&mut self) -> bool {
        DnsParser::reset(self);
        true
    }
}

impl<R: From<DnsRecord>> SessionParser<R> for DnsParser {
    fn on_data(
        &mut self,
        side: Side,
        data: &[u8],
        _ts: Timestamp,
        sink: &mut dyn RecordSink<R>,
    ) -> ParseStatus {
        self.feed(side, data, &mut Convert(sink));
        ParseStatus::Continue
    }

    fn on_gap(
        &mut self,
        side: Side,
        len: u64,
        _ts: Timestamp,
        _sink: &mut dyn RecordSink<R>,
    ) -> ParseStatus {
        self.gap(side, len);
        if self.is_stopped() {
            ParseStatus::Error
        } else {
            ParseStatus::Continue
        }
    }

    fn on_end(&mut self, side: Side, _ts: Timestamp, _sink: &mut dyn RecordSink<R>) {
        self.end_side(side);
        if self.is_stopped() {
            self.end();
        }
    }

    fn flush_counters(&mut self, into: &mut L7Counters) {
        into.dns.add(self.counters());
    }

    fn reset(&mut self) -> bool {
        DnsParser::reset(self);
        true
    }
}

/// Builds [`DnsParser`]s for UDP flows on port 53, or on any port no other
/// factory claims when the first datagram is a DNS message.
#[derive(Debug, Default, Clone)]
pub struct DnsFactory {
    /// Limits given to each parser.
    pub config: DnsConfig,
}

impl<R: From<DnsRecord> + 'static> DatagramParserFactory<R> for DnsFactory {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn is_well_known_port(&self, port: u16) -> bool {
        port == 53
    }

    fn probe(&self, _side: Side, payload: &[u8]) -> Probe {
        probe_message(payload, false)
    }

    fn new_parser(&mut self) -> Box<dyn DatagramParser<R>> {
        Box::new(DnsParser::new(self.config))
    }
}

/// Builds [`DnsParser`]s for TCP flows on port 53.
#[derive(Debug, Default, Clone)]
pub struct DnsTcpFactory {
    /// Limits given to each parser.
    pub config: DnsConfig,
}

impl<R: From<DnsRecord> + 'static> SessionParserFactory<R> for DnsTcpFactory {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn is_well_known_port(&self, port: u16) -> bool {
        port == 53
    }

    /// A length prefix followed by a whole message that parses.
    fn probe(&self, _side: Side, data: &[u8]) -> Probe {
        let [hi, lo, rest @ ..] = data else {
            return Probe::Unsure;
        };
        match rest.get(..usize::from(u16::from_be_bytes([*hi, *lo]))) {
            Some(msg) => probe_message(msg, false),
            None => Probe::Unsure,
        }
    }

    fn new_parser(&mut self) -> Box<dyn SessionParser<R>> {
        Box::new(DnsParser::new(self.config))
    }
}

/// mDNS (`mdns`, RFC 6762): DNS messages on port 5353, reported as itself
/// (as Suricata names it), without records.
///
/// Its probe accepts any DNS message with a question, as the DNS factory's
/// does: register it after [`DnsFactory`], which then keeps DNS on ports
/// nobody claims, while port 5353 puts this probe first.
pub const MDNS: RecogniseFactory = RecogniseFactory::new("mdns", &[5353], probe_variant);

/// LLMNR (`llmnr`, RFC 4795) on port 5355; like [`MDNS`].
pub const LLMNR: RecogniseFactory = RecogniseFactory::new("llmnr", &[5355], probe_variant);

/// The probe of [`MDNS`] and [`LLMNR`].
fn probe_variant(payload: &[u8]) -> Probe {
    probe_message(payload, true)
}
