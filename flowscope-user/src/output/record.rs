//! [`Record`]: the one type every record takes from a worker to the writer
//! stage, live and offline: flow records (final and interim), L7 records,
//! per-flow anomalies and the control thread's anomaly intervals.
//!
//! Flow records travel inline (a ring of records is preallocated, so a flow
//! record costs no allocation); an L7 record carries its flow's identity
//! ([`FlowHeader`]) rather than the whole flow. The writer stage computes
//! each flow's Community ID once.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::anomaly::AnomalyInterval;
use crate::extract::FiveTupleKey;
use crate::extractor::{Encap, L4Proto, Orientation};
use crate::l7::L7Record;
use crate::pipeline::{Carrier, FlowAnomaly, FlowSummary};
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
    /// The tunnel the flow was taken out of (`--decap`).
    pub carrier: Option<Carrier>,
}

impl FlowEnd {
    /// The application protocol: what a parser recognised, or the tunnel
    /// a UDP carrier carries.
    pub fn app_proto(&self) -> Option<&'static str> {
        let tunnel = self
            .flow
            .carries
            .filter(|e| e.over_udp())
            .map(|e| e.label());
        self.summary
            .as_ref()
            .and_then(FlowSummary::app_proto)
            .or(tunnel)
    }
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
    /// The header of the records of `carrier`'s flow.
    pub fn of_carrier(carrier: &Carrier) -> Self {
        Self {
            flow_id: carrier.flow_id,
            key: carrier.key,
            initiator: carrier.initiator,
            l4: carrier.l4,
        }
    }

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

    /// SHA-256 of a key drawn at random once per process, the flow ID
    /// (unique in the process, the same in all the flow's records) and the
    /// oriented key: the same for every record of the flow, unrelated
    /// across runs and sensors. Zeek's `uid` is its first 96 bits; an
    /// identifier of another format can take its own share.
    pub fn digest(&self) -> [u8; 32] {
        let k = self.oriented();
        let mut h = Sha256::new();
        h.update(process_key());
        h.update(self.flow_id.to_le_bytes());
        for ip in [k.src_ip(), k.dst_ip()] {
            match ip {
                IpAddr::V4(a) => h.update(a.octets()),
                IpAddr::V6(a) => h.update(a.octets()),
            }
        }
        h.update(k.src_port().to_le_bytes());
        h.update(k.dst_port().to_le_bytes());
        h.update([self.l4.number()]);
        h.finalize().into()
    }
}

/// This process's key for [`FlowHeader::digest`]: random (the standard
/// library's OS-seeded hash keys, the clock and the process ID), drawn once.
fn process_key() -> &'static [u8; 16] {
    static KEY: OnceLock<[u8; 16]> = OnceLock::new();
    KEY.get_or_init(|| {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = (clock, std::process::id());
        let a = RandomState::new().hash_one(seed);
        let b = RandomState::new().hash_one((a, seed));
        let mut key = [0; 16];
        key[..8].copy_from_slice(&a.to_le_bytes());
        key[8..].copy_from_slice(&b.to_le_bytes());
        key
    })
}

/// One record on its way to the outputs. Flow and L7 records travel
/// inline in the preallocated ring: neither allocates per record.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "records travel inline in a preallocated ring: boxing the flow record would allocate per record"
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
        /// The record (inline: smaller than a flow record).
        record: L7Record,
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
    /// A flow was first seen carrying a tunnel (Zeek's tunnel.log
    /// `DISCOVER`).
    TunnelFound {
        /// The carrier.
        header: FlowHeader,
        /// The tunnel's kind.
        encap: Encap,
        /// The packet that showed it.
        ts: Timestamp,
    },
    /// One interval of the XDP program's anomaly counting (live).
    Interval(Box<AnomalyInterval>),
}

impl Record {
    /// Prefetches the record and an L7 record's text, which lives apart
    /// from it: what encoding it reads first.
    #[inline]
    pub(crate) fn prefetch(&self) {
        crate::tracker::prefetch(self, size_of::<Self>());
        if let Self::L7 { record, .. } = self {
            record.texts().prefetch();
        }
    }

    /// The text storage of an L7 record, for another record (see
    /// [`L7Record::into_buffer`]); `None` for other records.
    pub fn into_buffer(self) -> Option<crate::l7::session::Texts> {
        match self {
            Self::L7 { record, .. } => Some(record.into_buffer()),
            _ => None,
        }
    }

    /// A flow record.
    pub fn flow(
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
        summary: Option<&FlowSummary>,
        carrier: Option<&Carrier>,
    ) -> Self {
        Self::Flow(FlowEnd {
            flow: *flow,
            reason,
            summary: summary.copied(),
            carrier: carrier.copied(),
        })
    }
}
