//! The live runtime: one flow worker per AF_XDP socket, per-worker metric
//! shards merged by the control thread, records through bounded
//! single-producer rings to one writer, Prometheus, and graceful shutdown.
//!
//! Workers own everything they touch per packet (tracker, counters, their
//! ring's producer); the only shared state is a per-worker shard snapshot
//! they copy under a mutex a few times per second, and the ring.

mod live;
mod metrics_server;
pub mod prometheus;
mod records;
mod shard;
mod worker;

pub use live::{LiveCapture, LiveReport, LiveSnapshot};
pub use metrics_server::{METRICS_PATH, MetricsServer};
pub use records::{Destination, RecordMsg, RecordWriter, WriterStats};
pub use shard::{Shard, TopFlow};
pub use worker::FlowWorker;

#[cfg(test)]
pub(crate) mod test_records {
    //! Real flow records for the runtime's unit tests: `n` UDP flows built
    //! byte by byte, run through a tracker and ended.

    use crate::extract::{FiveTuple, FiveTupleKey};
    use crate::tracker::{FlowEvent, FlowRecord, FlowTracker};
    use crate::view::{PacketView, Timestamp};

    pub(crate) fn records(n: u16) -> Vec<FlowRecord<FiveTupleKey>> {
        let mut tracker = FlowTracker::new(FiveTuple::bidirectional());
        let mut out = Vec::new();
        for i in 0..n {
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
            f.extend_from_slice(&[
                0x45, 0, 0, 29, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1,
            ]);
            f.extend_from_slice(&(10_000 + i).to_be_bytes());
            f.extend_from_slice(&[0, 53, 0, 9, 0, 0, 0xaa]);
            tracker.track(
                PacketView::new(&f, Timestamp::new(1, 0)),
                &mut |_: FlowEvent<'_, FiveTupleKey>| {},
            );
        }
        tracker.finish(&mut |e: FlowEvent<'_, FiveTupleKey>| {
            if let FlowEvent::Ended { flow, .. } = e {
                out.push(*flow);
            }
        });
        assert_eq!(out.len(), usize::from(n));
        out
    }
}
