//! The flow worker: a [`FrameHandler`] that runs the tracker on its own
//! socket's frames and sends finished records down its ring.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowscope_common::XdpMeta;

use super::records::RecordMsg;
use super::shard::{Shard, TOP_FLOWS, TopFlow};
use crate::capture::{FrameCtx, FrameHandler};
use crate::extract::{FiveTuple, FiveTupleKey};
use crate::obs::Log2Histogram;
use crate::tracker::{EventSink, FlowEvent, FlowTracker, TrackerConfig};
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

/// Pushes ended records into the ring; keeps the heaviest flows.
struct RingSink<'a> {
    ring: &'a mut rtrb::Producer<RecordMsg>,
    c: &'a mut SinkCounters,
    worker: u16,
}

impl EventSink<FiveTupleKey> for RingSink<'_> {
    fn event(&mut self, event: FlowEvent<'_, FiveTupleKey>) {
        match event {
            FlowEvent::Packet { flow, .. } => {
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
            FlowEvent::Ended { flow, reason } => {
                let icmp = None;
                match self.ring.push(RecordMsg {
                    flow: *flow,
                    reason,
                    icmp,
                    worker: self.worker,
                }) {
                    Ok(()) => self.c.sent += 1,
                    Err(_) => self.c.dropped += 1,
                }
            }
            _ => {}
        }
    }
}

/// A worker's pipeline: the tracker, its ring to the writer, its shard.
pub struct FlowWorker {
    tracker: FlowTracker<FiveTuple>,
    ring: rtrb::Producer<RecordMsg>,
    sink: SinkCounters,
    shard: Arc<Mutex<Shard>>,
    worker: u16,
    batch_sizes: Log2Histogram,
    in_batch: u64,
    frames_with_meta: u64,
    last_publish: Timestamp,
}

impl FlowWorker {
    /// A worker with its own tracker (`config`), the producer end of its ring
    /// and the shard it publishes to.
    pub fn new(
        worker: u16,
        config: TrackerConfig,
        ring: rtrb::Producer<RecordMsg>,
        shard: Arc<Mutex<Shard>>,
    ) -> Self {
        Self {
            tracker: FlowTracker::with_config(FiveTuple::bidirectional(), config),
            ring,
            sink: SinkCounters::default(),
            shard,
            worker,
            batch_sizes: Log2Histogram::default(),
            in_batch: 0,
            frames_with_meta: 0,
            last_publish: Timestamp::default(),
        }
    }

    fn sink(&mut self) -> (&mut FlowTracker<FiveTuple>, RingSink<'_>) {
        (
            &mut self.tracker,
            RingSink {
                ring: &mut self.ring,
                c: &mut self.sink,
                worker: self.worker,
            },
        )
    }

    /// Copies the counters into the shard.
    pub fn publish(&mut self) {
        let Ok(mut shard) = self.shard.lock() else {
            return;
        };
        shard.tracker.clone_from(self.tracker.counters());
        shard.batch_sizes = self.batch_sizes;
        shard.frames_with_meta = self.frames_with_meta;
        shard.records_sent = self.sink.sent;
        shard.records_dropped = self.sink.dropped;
        shard.flows_active = self.tracker.len() as u64;
        shard.flow_capacity = self.tracker.capacity() as u64;
        shard.top.clear();
        shard.top.extend(self.sink.top.iter().flatten());
        shard.top.sort_by_key(|t| std::cmp::Reverse(t.bytes));
        self.sink.top = [None; TOP_FLOWS];
    }

    /// Ends every live flow `ForceClosed` and sends the records, waiting
    /// (bounded by `deadline`) for ring space instead of dropping them.
    pub fn finish(&mut self, deadline: std::time::Instant) {
        let mut pending = Vec::new();
        self.tracker.finish(&mut |e: FlowEvent<'_, FiveTupleKey>| {
            if let FlowEvent::Ended { flow, reason } = e {
                pending.push(RecordMsg {
                    flow: *flow,
                    reason,
                    icmp: None,
                    worker: 0,
                });
            }
        });
        for mut msg in pending {
            msg.worker = self.worker;
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
        self.in_batch += 1;
        self.frames_with_meta += u64::from(meta.is_some());
        let view = PacketView::new(frame, ctx.timestamp);
        let (tracker, mut sink) = self.sink();
        tracker.track(view, &mut sink);
    }

    fn on_tick(&mut self, now: Timestamp) {
        if self.in_batch > 0 {
            self.batch_sizes.record(self.in_batch);
            self.in_batch = 0;
        }
        let (tracker, mut sink) = self.sink();
        tracker.advance(now, &mut sink);
        if now.saturating_sub(self.last_publish) >= PUBLISH_EVERY {
            self.last_publish = now;
            self.publish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::EndReason;

    #[test]
    fn a_full_ring_drops_and_counts_instead_of_blocking() {
        let (mut ring, _consumer) = rtrb::RingBuffer::<RecordMsg>::new(3);
        let mut c = SinkCounters::default();
        let mut sink = RingSink {
            ring: &mut ring,
            c: &mut c,
            worker: 7,
        };
        for flow in super::super::test_records::records(5) {
            sink.event(FlowEvent::Ended {
                flow: &flow,
                reason: EndReason::IdleTimeout,
            });
        }
        assert_eq!((c.sent, c.dropped), (3, 2));
    }
}
