//! [`PipelineCounters`]: one plain, mergeable struct with everything a
//! pipeline counts (tracker, TCP reassembly, IP fragments, sessions, L7
//! parsers, anomalies). One per worker; merged on scrape. No atomics.

use crate::l7::counter_sum::add_counters;
use crate::l7::session::SessionCounters;
use crate::obs::{Log2Histogram, TrackerCounters};
use crate::reassembly::SideCounters;
use crate::reassembly::ipfrag::FragCounters;

use super::PipelineAnomaly;

/// TCP reassembly, summed over the flows that ended, per side
/// (initiator first), plus the shared budget.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReassemblyCounters {
    /// Per side; `high_watermark_bytes` is the largest of any one flow.
    pub sides: [SideCounters; 2],
    /// Overflows per side caused by the shared budget (the rest hit the
    /// per-side cap).
    pub global_overflows: [u64; 2],
    /// Flows whose reassembly hit a bound on either side.
    pub flows_overflowed: u64,
    /// Peak out-of-order payload per ended flow, per side.
    pub flow_high_watermark_bytes: [Log2Histogram; 2],
    /// Shared budget: bytes charged now.
    pub budget_used_bytes: u64,
    /// Shared budget: highest charge reached.
    pub budget_high_watermark_bytes: u64,
    /// Shared budget: requests refused.
    pub budget_refusals: u64,
    /// Segments with payload that bypassed reassembly and parsing (past
    /// the stream depth, or after the flow's parser stopped), per side.
    pub bypassed_segments: [u64; 2],
    /// Their payload bytes, per side.
    pub bypassed_bytes: [u64; 2],
}

impl ReassemblyCounters {
    /// Holes handed to the parsers as gaps, and the bytes they stood for,
    /// both sides.
    pub fn gaps(&self) -> (u64, u64) {
        let [a, b] = &self.sides;
        (a.gaps + b.gaps, a.gap_bytes + b.gap_bytes)
    }

    /// Adds one ended side's counters.
    pub(super) fn add_side(&mut self, side: usize, c: &SideCounters, global_overflows: u64) {
        if let Some(s) = self.sides.get_mut(side) {
            add_side_counters(s, c);
        }
        if let Some(g) = self.global_overflows.get_mut(side) {
            *g += global_overflows;
        }
        if let Some(h) = self.flow_high_watermark_bytes.get_mut(side) {
            h.record(c.high_watermark_bytes);
        }
    }

    /// Adds `other` into `self` (high watermarks: the larger).
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.sides.iter_mut().zip(&other.sides) {
            add_side_counters(a, b);
        }
        for i in 0..2 {
            self.global_overflows[i] += other.global_overflows[i];
            self.flow_high_watermark_bytes[i].merge(&other.flow_high_watermark_bytes[i]);
        }
        self.flows_overflowed += other.flows_overflowed;
        self.budget_used_bytes += other.budget_used_bytes;
        self.budget_high_watermark_bytes = self
            .budget_high_watermark_bytes
            .max(other.budget_high_watermark_bytes);
        self.budget_refusals += other.budget_refusals;
        for i in 0..2 {
            self.bypassed_segments[i] += other.bypassed_segments[i];
            self.bypassed_bytes[i] += other.bypassed_bytes[i];
        }
    }
}

fn add_side_counters(a: &mut SideCounters, b: &SideCounters) {
    add_counters!(a += b: SideCounters {
        bytes_delivered,
        ooo_segments,
        retransmits,
        inconsistent_retransmits,
        overflows,
        bytes_dropped_oversize,
        gaps,
        gap_bytes;
        max high_watermark_bytes
    });
}

/// Everything one pipeline counted. Per-flow counts (reassembly sides,
/// parser counters, anomalies) are added when the flow ends; the budget
/// and the tracker's counters are current.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineCounters {
    /// Frames given to [`Pipeline::process`](super::Pipeline::process).
    pub frames: u64,
    /// The tracker's counters, with its `reassembly_*` fields and the
    /// reassembly anomaly kinds filled from this pipeline (so
    /// [`MetricsPublisher`](crate::obs::MetricsPublisher) publishes the
    /// `flowscope_reassembly_*` metrics from it).
    pub tracker: TrackerCounters,
    /// TCP reassembly.
    pub reassembly: ReassemblyCounters,
    /// IP fragment reassembly.
    pub fragments: FragCounters,
    /// Stream (TCP) session driver, parser counters included.
    pub streams: SessionCounters,
    /// Datagram (UDP) session driver, parser counters included.
    pub datagrams: SessionCounters,
    /// Anomalies reported, one per flow, side and kind, by
    /// [`PipelineAnomaly::index`].
    pub anomalies: [u64; 4],
}

impl PipelineCounters {
    /// Anomalies of one kind (flows × sides that had it).
    pub fn anomaly(&self, kind: PipelineAnomaly) -> u64 {
        self.anomalies[kind.index()]
    }

    /// Adds `other` (another worker's pipeline) into `self`.
    pub fn merge(&mut self, other: &Self) {
        self.frames += other.frames;
        self.tracker.merge(&other.tracker);
        self.reassembly.merge(&other.reassembly);
        merge_frag(&mut self.fragments, &other.fragments);
        self.streams.merge(&other.streams);
        self.datagrams.merge(&other.datagrams);
        for (a, b) in self.anomalies.iter_mut().zip(&other.anomalies) {
            *a += b;
        }
    }
}

fn merge_frag(a: &mut FragCounters, b: &FragCounters) {
    add_counters!(a += b: FragCounters {
        fragments,
        duplicates,
        completed;
        max high_watermark_bytes;
        each dropped
    });
}
