//! Plain per-worker counters: what the tracker counts, merged on scrape.

use crate::extractor::Unmatched;
use crate::tracker::{AnomalyKind, EndReason, FlowRecord, FlowSide};

/// A histogram with one bucket per power of two: bucket 0 holds 0, bucket
/// `i` holds values in `[2^(i-1), 2^i)`; with the exact sum of the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Log2Histogram {
    /// Sample count per bucket.
    pub buckets: [u64; 65],
    sum: u128,
}

impl Default for Log2Histogram {
    fn default() -> Self {
        Self {
            buckets: [0; 65],
            sum: 0,
        }
    }
}

impl Log2Histogram {
    /// Counts one sample.
    pub fn record(&mut self, value: u64) {
        self.buckets[Self::bucket_of(value)] += 1;
        self.sum += u128::from(value);
    }

    /// The bucket that holds `value`.
    pub const fn bucket_of(value: u64) -> usize {
        (u64::BITS - value.leading_zeros()) as usize
    }

    /// Lower bound of bucket `i`.
    pub const fn lower_bound(i: usize) -> u64 {
        if i == 0 { 0 } else { 1u64 << (i - 1) }
    }

    /// The largest value bucket `i` holds (`2^i - 1`).
    pub const fn upper_bound(i: usize) -> u64 {
        if i >= 64 { u64::MAX } else { (1u64 << i) - 1 }
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Sum of the samples (exact: a `u128` cannot overflow from `u64` samples
    /// in any run).
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// Adds `other`'s samples.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
        self.sum += other.sum;
    }
}

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
    pub const L4_LABELS: [&'static str; 6] = crate::tracker::L4_LABELS;

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
    fn log2_buckets() {
        let mut h = Log2Histogram::default();
        for v in [0, 1, 2, 3, 4, 1023, 1024, u64::MAX] {
            h.record(v);
        }
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[2], 2);
        assert_eq!(h.buckets[3], 1);
        assert_eq!(h.buckets[10], 1);
        assert_eq!(h.buckets[11], 1);
        assert_eq!(h.buckets[64], 1);
        assert_eq!(Log2Histogram::lower_bound(11), 1024);
        assert_eq!(h.count(), 8);
        assert_eq!(h.sum(), 1 + 2 + 3 + 4 + 1023 + 1024 + u128::from(u64::MAX));
        // Every value lies within its bucket's bounds.
        for v in [0, 1, 2, 3, 1023, 1024, u64::MAX] {
            let i = Log2Histogram::bucket_of(v);
            assert!((Log2Histogram::lower_bound(i)..=Log2Histogram::upper_bound(i)).contains(&v));
        }
    }

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
