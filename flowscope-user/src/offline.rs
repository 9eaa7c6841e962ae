//! Offline mode: a pcap/pcapng file through the whole pipeline.
//!
//! Packets are tracked in file order with packet time as the clock, so
//! timeouts behave as they would have live. At the end of the input — also
//! when the file turns out truncated or corrupt — every flow still in the
//! table is ended, so every record already formed is delivered; the read
//! error is returned afterwards for the caller to report.
//!
//! [`track_capture`] runs the tracker alone (flow records);
//! [`process_capture`] runs the whole [`Pipeline`] (fragments, TCP
//! reassembly, L7 records). [`EveSink`] writes either's output.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use crate::community_id::{CommunityId, CommunityIdValue};
use crate::extract::FiveTupleKey;
use crate::extractor::{FlowExtractor, L4Proto};
use crate::l7::L7Record;
use crate::output::{EveEndpoints, EveWriter};
use crate::pcap::{PcapError, PcapReader};
use crate::pipeline::{FlowSummary, Pipeline, PipelineSink};
use crate::tracker::{EndReason, EventSink, FlowEvent, FlowRecord, FlowTracker};
use crate::view::Timestamp;

/// Tracks every packet of `reader`, then ends every flow, giving all events to `sink`.
///
/// # Errors
///
/// The reader's error (truncated or corrupt file, I/O), returned after the
/// flows were ended.
pub fn track_capture<R: Read, E: FlowExtractor>(
    reader: &mut PcapReader<R>,
    tracker: &mut FlowTracker<E>,
    sink: &mut impl EventSink<E::Key>,
) -> Result<(), PcapError> {
    let result = loop {
        match reader.next_packet() {
            Ok(Some(view)) => tracker.track(view, sink),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    tracker.finish(sink);
    result
}

/// Processes every packet of `reader` through `pipeline`, then ends every
/// flow, giving all output to `sink`.
///
/// # Errors
///
/// The reader's error (truncated or corrupt file, I/O), returned after the
/// flows were ended.
pub fn process_capture<R: Read, E: FlowExtractor<Key = FiveTupleKey>>(
    reader: &mut PcapReader<R>,
    pipeline: &mut Pipeline<E>,
    sink: &mut impl PipelineSink<FiveTupleKey>,
) -> Result<(), PcapError> {
    let result = loop {
        match reader.next_packet() {
            Ok(Some(view)) => pipeline.process(view, sink),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    pipeline.finish(sink);
    result
}

/// The EVE endpoints of a five-tuple record: source = initiator.
pub fn endpoints(flow: &FlowRecord<FiveTupleKey>) -> EveEndpoints {
    let k = flow.key.oriented(flow.initiator);
    EveEndpoints {
        src_ip: k.src_ip(),
        src_port: k.src_port(),
        dest_ip: k.dst_ip(),
        dest_port: k.dst_port(),
    }
}

/// The Community ID of a record; ICMP flows need their first packet's type
/// and code, which the key does not hold.
pub fn community_id(
    flow: &FlowRecord<FiveTupleKey>,
    icmp_type_code: Option<(u8, u8)>,
) -> CommunityIdValue {
    CommunityId::default().for_key(&flow.key, flow.initiator, icmp_type_code)
}

/// Type and code of the first packet of each live ICMP flow, by flow ID:
/// what an ICMP record's Community ID needs beyond its key. At most one
/// entry per flow in the tracker.
#[derive(Debug, Default)]
pub struct IcmpFirstPackets(HashMap<u64, (u8, u8)>);

impl IcmpFirstPackets {
    /// Notes the type and code of an ICMP flow's first packet.
    pub fn observe(&mut self, event: &FlowEvent<'_, FiveTupleKey>) {
        if let FlowEvent::Packet {
            flow,
            extracted,
            view,
            ..
        } = event
            && matches!(flow.l4, L4Proto::Icmp | L4Proto::IcmpV6)
            && flow.packets() == 1
        {
            let at = extracted.payload_offset as usize;
            if let Some(&[t, c]) = view.frame.get(at..).and_then(|b| b.first_chunk::<2>()) {
                self.0.entry(flow.flow_id).or_insert((t, c));
            }
        }
    }

    /// The first packet's type and code of a flow whose record ended for
    /// `reason`; forgotten unless the flow lives on (active timeout).
    pub fn take(&mut self, flow: &FlowRecord<FiveTupleKey>, reason: EndReason) -> Option<(u8, u8)> {
        if reason == EndReason::ActiveTimeout {
            self.0.get(&flow.flow_id).copied()
        } else {
            self.0.remove(&flow.flow_id)
        }
    }
}

/// An [`EventSink`] writing one EVE record per ended flow record, with its
/// Community ID. Keeps the first write error (later records are not
/// attempted).
#[derive(Debug)]
pub struct EveSink<W: Write> {
    writer: EveWriter<W>,
    error: Option<io::Error>,
    icmp_first: IcmpFirstPackets,
}

impl<W: Write> EveSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        Self {
            writer: EveWriter::new(out),
            error: None,
            icmp_first: IcmpFirstPackets::default(),
        }
    }

    /// Records written.
    pub fn records(&self) -> u64 {
        self.writer.records()
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    ///
    /// The first write error, or the flush's.
    pub fn finish(self) -> io::Result<W> {
        match self.error {
            Some(e) => Err(e),
            None => self.writer.into_inner(),
        }
    }
}

impl<W: Write> EveSink<W> {
    /// Writes the record of an ended flow (keeps the first error).
    fn ended(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
        summary: Option<&FlowSummary>,
    ) {
        let icmp = self.icmp_first.take(flow, reason);
        if self.error.is_none() {
            let id = community_id(flow, icmp);
            let ep = endpoints(flow);
            if let Err(e) =
                self.writer
                    .write_flow_summary(flow, reason, &ep, Some(id.as_str()), summary)
            {
                self.error = Some(e);
            }
        }
    }
}

impl<W: Write> PipelineSink<FiveTupleKey> for EveSink<W> {
    fn event(&mut self, event: &FlowEvent<'_, FiveTupleKey>) {
        EventSink::event(self, *event);
    }

    fn l7(&mut self, flow: &FlowRecord<FiveTupleKey>, ts: Timestamp, record: L7Record) {
        if self.error.is_none() {
            let id = community_id(flow, None);
            let ep = endpoints(flow);
            if let Err(e) = self
                .writer
                .write_l7(flow, ts, &ep, Some(id.as_str()), &record)
            {
                self.error = Some(e);
            }
        }
    }

    fn flow_ended(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
        summary: Option<&FlowSummary>,
    ) {
        self.ended(flow, reason, summary);
    }
}

impl<W: Write> EventSink<FiveTupleKey> for EveSink<W> {
    fn event(&mut self, event: FlowEvent<'_, FiveTupleKey>) {
        self.icmp_first.observe(&event);
        if let FlowEvent::Ended { flow, reason } = event {
            self.ended(flow, reason, None);
        }
    }
}
