//! The runtime: flow workers fed by a frame source, per-worker metric
//! shards, records through bounded single-producer rings to one writer
//! thread. One runtime for both frame sources:
//!
//! - live (`LiveCapture`, Linux, feature `live`): AF_XDP sockets, one
//!   pinned worker per socket, the XDP program steering flows to sockets,
//!   Prometheus, and a graceful shutdown;
//! - capture files ([`offline`]): a reader thread steering frames by the
//!   XDP program's policy to per-worker rings, on every core.
//!
//! Either way the workers are [`FlowWorker`]s running the same pipeline
//! with the same options ([`RunConfig`]), and every record goes through
//! the same writer stage ([`Outputs`](crate::output::Outputs)).
//!
//! Workers own everything they touch per packet (pipeline, counters, their
//! ring's producer); the only shared state is a per-worker shard snapshot
//! they copy under a mutex a few times per second (live), and the rings.

mod config;
pub mod frames;
#[cfg(live)]
mod live;
#[cfg(live)]
mod metrics_server;
pub mod offline;
mod out;
#[cfg(live)]
pub mod prometheus;
mod shard;
mod worker;
mod writer;

pub use config::{MAX_WORKERS, RunConfig};
#[cfg(live)]
pub use live::{LiveCapture, LiveReport, LiveSnapshot, LiveWorker};
#[cfg(live)]
pub use metrics_server::{METRICS_PATH, MetricsServer};
pub use out::{Backpressure, InlineOut, RecordOut, RecordRing, WriterEnd};
pub use shard::{Shard, TopFlow};
pub use worker::{FlowWorker, WorkerConfig};
pub use writer::{WriterThread, rings};

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
