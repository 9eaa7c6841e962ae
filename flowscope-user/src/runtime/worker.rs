//! The flow worker: a [`FrameHandler`] that runs the whole pipeline
//! (tracker, fragment and stream reassembly, session parsers) on its own
//! socket's frames and sends flow and L7 records down its ring.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowscope_common::XdpMeta;

use super::records::RecordMsg;
use super::shard::{Shard, TOP_FLOWS, TopFlow};
use crate::capture::{FrameCtx, FrameHandler, HANDLER_BATCH, RxFrame};
use crate::extract::{FiveTuple, FiveTupleKey, FrameHint};
use crate::l7::L7Record;
use crate::obs::Log2Histogram;
use crate::pipeline::{FlowSummary, Pipeline, PipelineConfig, PipelineSink};
use crate::tracker::{EndReason, FlowEvent, FlowRecord};
use crate::view::{PacketView, Timestamp};

/// How often a worker copies its counters into its shard.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// Counters the worker's sink keeps.
#[derive(Default)]
struct SinkCounters {
    sent: u64,
    dropped: u64,
    top: [Option<TopFlow>; TOP_FLOWS],
}

/// Pushes records into the ring (a full ring drops and counts: the worker
/// never waits for the writer); keeps the heaviest flows.
struct RingSink<'a> {
    ring: &'a mut rtrb::Producer<RecordMsg>,
    c: &'a mut SinkCounters,
}

impl RingSink<'_> {
    fn push(&mut self, msg: RecordMsg) {
        match self.ring.push(msg) {
            Ok(()) => self.c.sent += 1,
            Err(_) => self.c.dropped += 1,
        }
    }
}

impl PipelineSink<FiveTupleKey> for RingSink<'_> {
    fn event(&mut self, event: &FlowEvent<'_, FiveTupleKey>) {
        if let FlowEvent::Packet { flow, .. } = event {
            let bytes = flow.bytes();
            let top = &mut self.c.top;
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
    }

    fn l7(&mut self, flow: &FlowRecord<FiveTupleKey>, ts: Timestamp, record: L7Record) {
        self.push(RecordMsg::l7(flow, ts, record));
    }

    fn flow_ended(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
        summary: Option<&FlowSummary>,
    ) {
        self.push(RecordMsg::flow(flow, reason, summary));
    }
}

/// Collects records at shutdown, to be sent without dropping.
struct Collect(Vec<RecordMsg>);

impl PipelineSink<FiveTupleKey> for Collect {
    fn l7(&mut self, flow: &FlowRecord<FiveTupleKey>, ts: Timestamp, record: L7Record) {
        self.0.push(RecordMsg::l7(flow, ts, record));
    }

    fn flow_ended(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
        summary: Option<&FlowSummary>,
    ) {
        self.0.push(RecordMsg::flow(flow, reason, summary));
    }
}

/// A worker's pipeline, its ring to the writer, its shard.
pub struct FlowWorker {
    /// None for a bare receiver that only counts and returns frames.
    pipeline: Option<Pipeline<FiveTuple>>,
    ring: rtrb::Producer<RecordMsg>,
    sink: SinkCounters,
    shard: Arc<Mutex<Shard>>,
    batch_sizes: Log2Histogram,
    in_batch: u64,
    frames_with_meta: u64,
    last_publish: Timestamp,
}

impl FlowWorker {
    /// A worker with its own pipeline (`config`), the producer end of its
    /// ring and the shard it publishes to. Without a config it is a bare
    /// receiver that only counts and returns frames (the benchmark's upper
    /// bound of the capture path).
    pub fn new(
        config: Option<PipelineConfig>,
        ring: rtrb::Producer<RecordMsg>,
        shard: Arc<Mutex<Shard>>,
    ) -> Self {
        Self {
            pipeline: config.map(|c| Pipeline::new(FiveTuple::bidirectional(), c)),
            ring,
            sink: SinkCounters::default(),
            shard,
            batch_sizes: Log2Histogram::default(),
            in_batch: 0,
            frames_with_meta: 0,
            last_publish: Timestamp::default(),
        }
    }

    /// Copies the counters into the shard (the pipeline's snapshot
    /// allocates a little: a few times per second, never per packet).
    pub fn publish(&mut self) {
        let counters = self.pipeline.as_ref().map(Pipeline::counters);
        let (flows, capacity) = self
            .pipeline
            .as_ref()
            .map_or((0, 0), |p| (p.tracker().len(), p.tracker().capacity()));
        let Ok(mut shard) = self.shard.lock() else {
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
        shard.top.extend(self.sink.top.iter().flatten());
        shard.top.sort_by_key(|t| std::cmp::Reverse(t.bytes));
        self.sink.top = [None; TOP_FLOWS];
    }

    /// Ends every live flow `ForceClosed` and sends its records, waiting
    /// (bounded by `deadline`) for ring space instead of dropping them.
    pub fn finish(&mut self, deadline: std::time::Instant) {
        let mut pending = Collect(Vec::new());
        if let Some(p) = self.pipeline.as_mut() {
            p.finish(&mut pending);
        }
        for mut msg in pending.0 {
            loop {
                match self.ring.push(msg) {
                    Ok(()) => {
                        self.sink.sent += 1;
                        break;
                    }
                    Err(rtrb::PushError::Full(back)) if std::time::Instant::now() < deadline => {
                        msg = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(_) => {
                        self.sink.dropped += 1;
                        break;
                    }
                }
            }
        }
        self.publish();
    }
}

impl FrameHandler for FlowWorker {
    fn on_frame(&mut self, frame: &[u8], meta: Option<&XdpMeta>, ctx: &FrameCtx) {
        let meta = meta.copied();
        self.on_frames(&[RxFrame { frame, meta }], ctx);
    }

    /// The frames as one batch through the pipeline (the tracker prefetches
    /// across it).
    fn on_frames(&mut self, frames: &[RxFrame<'_>], ctx: &FrameCtx) {
        let mut views = [PacketView::new(&[], ctx.timestamp); HANDLER_BATCH];
        for chunk in frames.chunks(HANDLER_BATCH) {
            for (view, f) in views.iter_mut().zip(chunk) {
                self.frames_with_meta += u64::from(f.meta.is_some());
                *view = PacketView::new(f.frame, ctx.timestamp).with_hint(
                    f.meta
                        .as_ref()
                        .and_then(|m| FrameHint::from_meta(m, f.frame.len())),
                );
            }
            self.in_batch += chunk.len() as u64;
            if let Some(p) = self.pipeline.as_mut() {
                p.process_batch(
                    views.get(..chunk.len()).unwrap_or_default(),
                    &mut RingSink {
                        ring: &mut self.ring,
                        c: &mut self.sink,
                    },
                );
            }
        }
    }

    fn on_tick(&mut self, now: Timestamp) {
        if self.in_batch > 0 {
            self.batch_sizes.record(self.in_batch);
            self.in_batch = 0;
        }
        if let Some(p) = self.pipeline.as_mut() {
            p.advance(
                now,
                &mut RingSink {
                    ring: &mut self.ring,
                    c: &mut self.sink,
                },
            );
        }
        if now.saturating_sub(self.last_publish) >= PUBLISH_EVERY {
            self.last_publish = now;
            self.publish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_ring_drops_and_counts_instead_of_blocking() {
        let (mut ring, _consumer) = rtrb::RingBuffer::<RecordMsg>::new(3);
        let mut c = SinkCounters::default();
        let mut sink = RingSink {
            ring: &mut ring,
            c: &mut c,
        };
        for flow in super::super::test_records::records(5) {
            sink.flow_ended(&flow, EndReason::IdleTimeout, None);
        }
        assert_eq!((c.sent, c.dropped), (3, 2));
    }
}
