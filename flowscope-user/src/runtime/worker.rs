//! The flow worker: the pipeline (tracker, fragment and stream reassembly,
//! session parsers) of one share of the traffic, and the sink that turns
//! what it produces into [`Record`]s. Live, one runs per AF_XDP socket;
//! offline, one per steering slot, fed by the capture-file reader. Both
//! hand it batches of [`PacketView`]s and move its clock between batches.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::frames::{FrameTap, FrameTapCounts};
use super::out::{Backpressure, RecordOut, push_with};
use super::shard::{Shard, TOP_FLOWS, TopFlow};
use crate::extract::FiveTupleKey;
use crate::extractor::FlowExtractor;
use crate::l7::L7Record;
use crate::l7::session::Texts;
use crate::obs::Log2Histogram;
use crate::output::{FlowHeader, Record};
use crate::pipeline::{
    Carrier, FlowAnomaly, FlowSummary, Pipeline, PipelineConfig, PipelineCounters, PipelineSink,
};
use crate::tracker::{EndReason, FlowEvent, FlowRecord};
use crate::view::{PacketView, Timestamp};

/// How often (capture clock) a live worker copies its counters into its shard.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// What a worker is built with.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Its pipeline; `None` for a bare receiver that only counts frames
    /// (the capture benchmark's upper bound).
    pub pipeline: Option<PipelineConfig>,
    /// What to do when the way to the writer is full.
    pub backpressure: Backpressure,
}

/// What the worker's sink keeps besides the records.
#[derive(Default)]
struct SinkState {
    sent: u64,
    dropped: u64,
    /// Heaviest flows of the interval (live workers with a shard).
    top: Option<[Option<TopFlow>; TOP_FLOWS]>,
    /// Frames of chosen flows to the pcap writer (`--write-pcap`).
    tap: Option<FrameTap>,
    backpressure: Backpressure,
}

/// The pipeline's sink for one call: records to `out`.
struct Emit<'a, O> {
    out: &'a mut O,
    s: &'a mut SinkState,
}

impl<O: RecordOut> Emit<'_, O> {
    #[inline]
    fn push(&mut self, record: Record) {
        if push_with(self.out, record, self.s.backpressure) {
            self.s.sent += 1;
        } else {
            self.s.dropped += 1;
        }
    }
}

/// Keeps the `TOP_FLOWS` heaviest flows seen in packet events.
fn note_top(top: &mut [Option<TopFlow>; TOP_FLOWS], flow: &FlowRecord<FiveTupleKey>) {
    let bytes = flow.bytes();
    if let Some(slot) = top
        .iter_mut()
        .find(|t| t.is_some_and(|t| t.key == flow.key))
    {
        *slot = Some(TopFlow {
            key: flow.key,
            bytes,
        });
    } else if let Some(min) = top.iter_mut().min_by_key(|t| t.map_or(0, |t| t.bytes))
        && min.is_none_or(|t| t.bytes < bytes)
    {
        *min = Some(TopFlow {
            key: flow.key,
            bytes,
        });
    }
}

impl<O: RecordOut> PipelineSink<FiveTupleKey> for Emit<'_, O> {
    #[inline(always)]
    fn event(&mut self, event: &FlowEvent<'_, FiveTupleKey>) {
        if let (Some(top), FlowEvent::Packet { flow, .. }) = (&mut self.s.top, event) {
            note_top(top, flow);
        }
        match (&mut self.s.tap, event) {
            (Some(tap), FlowEvent::Packet { flow, view, .. }) => {
                tap.offer(flow, view, self.s.backpressure);
            }
            (
                Some(tap),
                FlowEvent::Anomaly {
                    flow: Some(flow), ..
                },
            ) => tap.anomaly(flow),
            _ => {}
        }
        if let FlowEvent::Tunnel { flow, ts } = event
            && let Some(encap) = flow.carries
        {
            self.push(Record::TunnelFound {
                header: FlowHeader::of(flow),
                encap,
                ts: *ts,
            });
        }
    }

    fn l7(&mut self, flow: &FlowRecord<FiveTupleKey>, ts: Timestamp, record: L7Record) {
        if let Some(tap) = &mut self.s.tap {
            tap.l7(flow, &record);
        }
        let header = FlowHeader::of(flow);
        self.push(Record::L7 { header, ts, record });
    }

    fn spare_text(&mut self) -> Texts {
        self.out.spare_text()
    }

    fn anomaly(&mut self, flow: &FlowRecord<FiveTupleKey>, anomaly: FlowAnomaly) {
        let header = FlowHeader::of(flow);
        self.push(Record::Anomaly {
            header,
            ts: flow.end(),
            anomaly,
        });
    }

    fn flow_ended(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
        summary: Option<&FlowSummary>,
        carrier: Option<&Carrier>,
    ) {
        if let Some(tap) = &mut self.s.tap {
            tap.ended(flow);
        }
        self.push(Record::flow(flow, reason, summary, carrier));
    }
}

/// A worker: the pipeline (tracker, fragment and stream reassembly, session
/// parsers) of one share of the traffic, its way to the writer, its metric
/// shard. One per AF_XDP socket live, one per steering slot offline.
pub struct FlowWorker<E: FlowExtractor<Key = FiveTupleKey>, O> {
    pipeline: Option<Pipeline<E>>,
    out: O,
    sink: SinkState,
    shard: Option<Arc<Mutex<Shard>>>,
    batch_sizes: Log2Histogram,
    in_batch: u64,
    frames_with_meta: u64,
    last_publish: Timestamp,
}

impl<E: FlowExtractor<Key = FiveTupleKey>, O: RecordOut> FlowWorker<E, O> {
    /// A worker keying flows with `extractor`, sending its records to
    /// `out`. With a `shard` it keeps its heaviest flows and publishes its
    /// counters there at once (so that a scrape before any traffic lists
    /// every series, the parsers' included) and then a few times per
    /// second (live).
    pub fn new(
        extractor: E,
        config: WorkerConfig,
        out: O,
        shard: Option<Arc<Mutex<Shard>>>,
    ) -> Self {
        let mut worker = Self {
            pipeline: config.pipeline.map(|c| Pipeline::new(extractor, c)),
            out,
            sink: SinkState {
                top: shard.is_some().then_some([None; TOP_FLOWS]),
                backpressure: config.backpressure,
                ..SinkState::default()
            },
            shard,
            batch_sizes: Log2Histogram::default(),
            in_batch: 0,
            frames_with_meta: 0,
            last_publish: Timestamp::default(),
        };
        worker.publish();
        worker
    }

    /// Hands the frames of chosen flows to `tap` (`--write-pcap`).
    #[must_use]
    pub fn with_tap(mut self, tap: Option<FrameTap>) -> Self {
        self.sink.tap = tap;
        self
    }

    /// The frame tap's counts.
    pub fn tap_counts(&self) -> FrameTapCounts {
        self.sink
            .tap
            .as_ref()
            .map(FrameTap::counts)
            .unwrap_or_default()
    }

    /// Processes one batch of frames, in order (`with_meta`: how many of
    /// them carried XDP metadata).
    #[inline]
    pub fn process(&mut self, views: &[PacketView<'_>], with_meta: u64) {
        self.frames_with_meta += with_meta;
        self.in_batch += views.len() as u64;
        if let Some(p) = self.pipeline.as_mut() {
            p.process_batch(
                views,
                &mut Emit {
                    out: &mut self.out,
                    s: &mut self.sink,
                },
            );
        }
    }

    /// Moves the clock to `now` (ends timed-out flows), closes the batch
    /// size sample, and publishes to the shard when due.
    pub fn tick(&mut self, now: Timestamp) {
        if self.in_batch > 0 {
            self.batch_sizes.record(self.in_batch);
            self.in_batch = 0;
        }
        if let Some(p) = self.pipeline.as_mut() {
            p.advance(
                now,
                &mut Emit {
                    out: &mut self.out,
                    s: &mut self.sink,
                },
            );
        }
        if self.shard.is_some() && now.saturating_sub(self.last_publish) >= PUBLISH_EVERY {
            self.last_publish = now;
            self.publish();
        }
    }

    /// Ends every flow (`ForceClosed` unless closed) and hands every record
    /// on under `backpressure` (shutdown waits for room instead of
    /// dropping), then publishes.
    pub fn finish(&mut self, backpressure: Backpressure) {
        let normal = self.sink.backpressure;
        self.sink.backpressure = backpressure;
        if let Some(p) = self.pipeline.as_mut() {
            p.finish(&mut Emit {
                out: &mut self.out,
                s: &mut self.sink,
            });
        }
        self.sink.backpressure = normal;
        self.publish();
    }

    /// Everything the pipeline counted (allocates: not per packet).
    pub fn counters(&self) -> Option<PipelineCounters> {
        self.pipeline.as_ref().map(Pipeline::counters)
    }

    /// Gives back the record output (inline: the writer stage).
    pub fn into_out(self) -> O {
        self.out
    }

    /// Copies the counters into the shard (the pipeline's snapshot
    /// allocates a little: a few times per second, never per packet).
    pub fn publish(&mut self) {
        let Some(shard) = &self.shard else { return };
        let counters = self.pipeline.as_ref().map(Pipeline::counters);
        let (flows, capacity) = self
            .pipeline
            .as_ref()
            .map_or((0, 0), |p| (p.tracker().len(), p.tracker().capacity()));
        let Ok(mut shard) = shard.lock() else {
            return;
        };
        if let Some(c) = counters {
            shard.tracker = c.tracker.clone();
            shard.pipeline = Some(c);
        }
        shard.batch_sizes = self.batch_sizes;
        shard.frames_with_meta = self.frames_with_meta;
        shard.records_sent = self.sink.sent;
        shard.records_dropped = self.sink.dropped;
        shard.flows_active = flows as u64;
        shard.flow_capacity = capacity as u64;
        shard.top.clear();
        if let Some(top) = &mut self.sink.top {
            shard.top.extend(top.iter().flatten());
            *top = [None; TOP_FLOWS];
        }
        shard.top.sort_by_key(|t| std::cmp::Reverse(t.bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::FiveTuple;

    #[test]
    fn a_full_ring_drops_and_counts_instead_of_blocking() {
        let (ring, _writer) = super::super::out::record_ring(3);
        let config = WorkerConfig {
            pipeline: Some(PipelineConfig::default()),
            backpressure: Backpressure::Drop,
        };
        let mut w = FlowWorker::new(FiveTuple::bidirectional(), config, ring, None);
        let mut emit = Emit {
            out: &mut w.out,
            s: &mut w.sink,
        };
        for flow in super::super::test_records::records(5) {
            emit.flow_ended(&flow, EndReason::IdleTimeout, None, None);
        }
        assert_eq!((w.sink.sent, w.sink.dropped), (3, 2));
    }
}
