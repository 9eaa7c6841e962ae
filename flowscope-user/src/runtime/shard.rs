//! What a worker publishes for the control thread: a copy of its counters,
//! taken a few times per second, never per packet.

use crate::extract::FiveTupleKey;
use crate::obs::{Log2Histogram, TrackerCounters};
use crate::pipeline::PipelineCounters;

/// A flow among a worker's heaviest in the current interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopFlow {
    /// Its key.
    pub key: FiveTupleKey,
    /// Its bytes so far (both directions).
    pub bytes: u64,
}

/// Flows kept in a worker's top list.
pub const TOP_FLOWS: usize = 5;

/// One worker's figures.
#[derive(Debug, Clone, Default)]
pub struct Shard {
    /// The tracker's counters (with the reassembly figures folded in).
    pub tracker: TrackerCounters,
    /// Everything the pipeline counts (absent for bare receivers).
    pub pipeline: Option<PipelineCounters>,
    /// Frames per receive batch.
    pub batch_sizes: Log2Histogram,
    /// Frames that carried valid XDP metadata.
    pub frames_with_meta: u64,
    /// Records handed to the writer.
    pub records_sent: u64,
    /// Records dropped because the ring to the writer was full.
    pub records_dropped: u64,
    /// Flows in the table now.
    pub flows_active: u64,
    /// Table capacity.
    pub flow_capacity: u64,
    /// Heaviest flows of the last interval, heaviest first.
    pub top: Vec<TopFlow>,
}

impl Shard {
    /// Adds `other` into `self` (top lists are concatenated then cut).
    pub fn merge(&mut self, other: &Shard) {
        self.tracker.merge(&other.tracker);
        match (&mut self.pipeline, &other.pipeline) {
            (Some(a), Some(b)) => a.merge(b),
            (a @ None, Some(b)) => *a = Some(b.clone()),
            _ => {}
        }
        self.batch_sizes.merge(&other.batch_sizes);
        self.frames_with_meta += other.frames_with_meta;
        self.records_sent += other.records_sent;
        self.records_dropped += other.records_dropped;
        self.flows_active += other.flows_active;
        self.flow_capacity += other.flow_capacity;
        self.top.extend_from_slice(&other.top);
        self.top.sort_by_key(|t| std::cmp::Reverse(t.bytes));
        self.top.truncate(TOP_FLOWS);
    }
}
