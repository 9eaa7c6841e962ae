//! Plain per-worker counters: what the tracker counts, merged on scrape
//! and written out by [`crate::obs`].

use super::{AnomalyKind, EndReason, FlowRecord, FlowSide};
use crate::extractor::Unmatched;
use crate::histogram::Log2Histogram;

/// Everything a tracker counts. Indexes: `l4` by the order of
/// [`L4_LABELS`](Self::L4_LABELS), reasons by [`EndReason::index`], unmatched
/// reasons by their position in [`Unmatched::ALL`], sides by
/// [`FlowSide::index`], anomalies by [`AnomalyKind::index`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackerCounters {
    /// Packets given to the tracker.
    pub packets: u64,
    /// Packets counted in a flow.
    pub packets_matched: u64,
    /// Packets in no flow, per reason.
    pub packets_unmatched: [u64; Unmatched::ALL.len()],
    /// Flow records created, per `l4`.
    pub flows_created: [u64; 6],
    /// Flow records ended, per reason.
    pub flows_ended: [u64; 8],
    /// Flows in the table now.
    pub flows_active: u64,
    /// Frame bytes, per side.
    pub bytes: [u64; 2],
    /// Anomalies, per kind.
    pub anomalies: [u64; 5],
    /// Durations of ended records, in nanoseconds.
    pub flow_duration_ns: Log2Histogram,
    /// Packets of ended records.
    pub flow_packets: Log2Histogram,
    /// Bytes of ended records.
    pub flow_bytes: Log2Histogram,
    /// Out-of-order segments the reassembler dropped, per side.
    pub reassembly_dropped_ooo: [u64; 2],
    /// Bytes the reassembler dropped over its cap, per side.
    pub reassembly_bytes_dropped_oversize: [u64; 2],
    /// TCP payload bytes neither reassembled nor parsed (past the stream
    /// depth, or after the flow's parser stopped), per side.
    pub reassembly_bypassed_bytes: [u64; 2],
    /// Peak reassembler buffer per ended flow, per side.
    pub reassembler_high_watermark_bytes: [Log2Histogram; 2],
}

impl TrackerCounters {
    /// `l4` label values, in index order.
    pub const L4_LABELS: [&'static str; 6] = super::L4_LABELS;

    /// Counts an unmatched packet.
    pub fn count_unmatched(&mut self, reason: Unmatched) {
        let i = Unmatched::ALL
            .iter()
            .position(|&r| r == reason)
            .unwrap_or(0);
        if let Some(c) = self.packets_unmatched.get_mut(i) {
            *c += 1;
        }
    }

    /// Packets in no flow, all reasons.
    pub fn unmatched_total(&self) -> u64 {
        self.packets_unmatched.iter().sum()
    }

    /// Flow records created, all protocols.
    pub fn created_total(&self) -> u64 {
        self.flows_created.iter().sum()
    }

    /// Flow records ended, all reasons.
    pub fn ended_total(&self) -> u64 {
        self.flows_ended.iter().sum()
    }

    /// Ended records for one reason.
    pub fn ended(&self, reason: EndReason) -> u64 {
        self.flows_ended[reason.index()]
    }

    /// Anomalies of one kind.
    pub fn anomaly(&self, kind: AnomalyKind) -> u64 {
        self.anomalies[kind.index()]
    }

    /// Counts an ended record (reason, histograms).
    pub(crate) fn count_ended<K>(&mut self, flow: &FlowRecord<K>, reason: EndReason) {
        self.flows_ended[reason.index()] += 1;
        self.flow_duration_ns
            .record(u64::try_from(flow.duration().as_nanos()).unwrap_or(u64::MAX));
        self.flow_packets.record(flow.packets());
        self.flow_bytes.record(flow.bytes());
    }

    /// Adds a frame to a side's byte counter.
    pub(crate) fn count_bytes(&mut self, side: FlowSide, bytes: u64) {
        self.bytes[side.index()] += bytes;
    }

    /// Adds `other` (another worker's shard) into `self`. `flows_active`
    /// adds up too: each shard holds its own flows.
    pub fn merge(&mut self, other: &Self) {
        fn add<const N: usize>(a: &mut [u64; N], b: &[u64; N]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.packets += other.packets;
        self.packets_matched += other.packets_matched;
        add(&mut self.packets_unmatched, &other.packets_unmatched);
        add(&mut self.flows_created, &other.flows_created);
        add(&mut self.flows_ended, &other.flows_ended);
        self.flows_active += other.flows_active;
        add(&mut self.bytes, &other.bytes);
        add(&mut self.anomalies, &other.anomalies);
        self.flow_duration_ns.merge(&other.flow_duration_ns);
        self.flow_packets.merge(&other.flow_packets);
        self.flow_bytes.merge(&other.flow_bytes);
        add(
            &mut self.reassembly_dropped_ooo,
            &other.reassembly_dropped_ooo,
        );
        add(
            &mut self.reassembly_bytes_dropped_oversize,
            &other.reassembly_bytes_dropped_oversize,
        );
        add(
            &mut self.reassembly_bypassed_bytes,
            &other.reassembly_bypassed_bytes,
        );
        for (a, b) in self
            .reassembler_high_watermark_bytes
            .iter_mut()
            .zip(&other.reassembler_high_watermark_bytes)
        {
            a.merge(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_every_field() {
        let mut a = TrackerCounters {
            packets: 3,
            ..TrackerCounters::default()
        };
        a.count_unmatched(Unmatched::Fragment);
        a.flow_packets.record(5);
        let mut b = a.clone();
        b.flows_active = 2;
        b.merge(&a);
        assert_eq!(b.packets, 6);
        assert_eq!(b.packets_unmatched[4], 2);
        assert_eq!(b.unmatched_total(), 2);
        assert_eq!(b.flow_packets.count(), 2);
        assert_eq!(b.flow_packets.sum(), 10);
        assert_eq!(b.flows_active, 2);
    }
}
