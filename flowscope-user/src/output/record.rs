//! [`Record`]: the one type every record takes from a worker to the writer
//! stage, live and offline: flow records (final and interim), L7 records,
//! per-flow anomalies and the control thread's anomaly intervals.
//!
//! Flow records travel inline (a ring of records is preallocated, so a flow
//! record costs no allocation); an L7 record carries its flow's identity
//! ([`FlowHeader`]) rather than the whole flow. The writer stage computes
//! each flow's Community ID once.

use crate::anomaly::AnomalyInterval;
use crate::extract::FiveTupleKey;
use crate::extractor::{L4Proto, Orientation};
use crate::l7::L7Record;
use crate::pipeline::{FlowAnomaly, FlowSummary};
use crate::tracker::{EndReason, FlowRecord};
use crate::view::Timestamp;

/// A flow record that ended (`ActiveTimeout`: an interim record; the flow
/// goes on in a new one).
#[derive(Debug, Clone, Copy)]
pub struct FlowEnd {
    /// The record, copied out of the worker's table.
    pub flow: FlowRecord<FiveTupleKey>,
    /// Why it ended.
    pub reason: EndReason,
    /// What reassembly and parsing did (absent for flows the pipeline kept
    /// no state for).
    pub summary: Option<FlowSummary>,
}

/// What every record of a flow says about the flow: enough to join records
/// on `flow_id` and to print the endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowHeader {
    /// The flow's ID.
    pub flow_id: u64,
    /// Its key.
    pub key: FiveTupleKey,
    /// Orientation, relative to the key, of the initiator's packets.
    pub initiator: Orientation,
    /// Transport protocol.
    pub l4: L4Proto,
}

impl FlowHeader {
    /// The header of `flow`'s records.
    pub fn of(flow: &FlowRecord<FiveTupleKey>) -> Self {
        Self {
            flow_id: flow.flow_id,
            key: flow.key,
            initiator: flow.initiator,
            l4: flow.l4,
        }
    }

    /// The key with the initiator as source.
    pub fn oriented(&self) -> FiveTupleKey {
        self.key.oriented(self.initiator)
    }
}

/// One record on its way to the outputs.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "flow records, the common message, travel inline in the preallocated ring: boxing them would allocate per flow"
)]
pub enum Record {
    /// A flow record ended.
    Flow(FlowEnd),
    /// A record a session parser emitted.
    L7 {
        /// Its flow.
        header: FlowHeader,
        /// Packet time of the packet that completed it.
        ts: Timestamp,
        /// The record (boxed: parsers allocate per record, never per packet).
        record: Box<L7Record>,
    },
    /// An irregularity of one side of a flow, reported when its record ends.
    Anomaly {
        /// Its flow.
        header: FlowHeader,
        /// The end of the flow record it belongs to.
        ts: Timestamp,
        /// What, which side, how many times.
        anomaly: FlowAnomaly,
    },
    /// One interval of the XDP program's anomaly counting (live).
    Interval(Box<AnomalyInterval>),
}

impl Record {
    /// A flow record.
    pub fn flow(
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
        summary: Option<&FlowSummary>,
    ) -> Self {
        Self::Flow(FlowEnd {
            flow: *flow,
            reason,
            summary: summary.copied(),
        })
    }
}
