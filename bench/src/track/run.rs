//! One timed run of one contender over one workload: a fresh tracker, a
//! first pass (every flow created), then steady passes over the same frames.

use std::hint::black_box;
use std::time::Instant;

use flowscope::extract::FiveTuple;
use flowscope::tracker::{FlowEvent, FlowTracker, TrackerConfig};
use flowscope::{LinkType, PacketView, Timestamp};

use super::workload::Workload;

/// Packets handed to `track_batch` per call (a capture ring's batch).
const CALLER_BATCH: usize = 64;

/// Who tracks the frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// Our `FlowTracker::track`, one packet per call.
    Track,
    /// Our `FlowTracker::track_batch`, 64 packets per call (`CALLER_BATCH`).
    TrackBatch,
    /// flowscope 0.3.0's `FlowTracker::track`.
    V03,
}

impl Contender {
    /// Every contender, in table order.
    pub const ALL: [Contender; 3] = [Contender::Track, Contender::TrackBatch, Contender::V03];
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// ns/packet of the first pass.
    pub first: f64,
    /// ns/packet of the passes after the first.
    pub steady: f64,
    /// Flows in the table at the end.
    pub flows: usize,
}

/// Runs `c` over `w`: one first pass, then `steady_passes` passes. Both
/// trackers hold up to `capacity` flows, `FiveTuple` bidirectional.
pub fn run(c: Contender, w: &Workload, capacity: usize, steady_passes: u64) -> Sample {
    match c {
        Contender::Track => run_ours(w, capacity, steady_passes, false),
        Contender::TrackBatch => run_ours(w, capacity, steady_passes, true),
        Contender::V03 => run_v03(w, capacity, steady_passes),
    }
}

/// Times `pass(0)` (the first pass) and then `pass(1..=steady_passes)`:
/// ns/packet of each.
fn timed(w: &Workload, steady_passes: u64, mut pass: impl FnMut(u64)) -> (f64, f64) {
    let start = Instant::now();
    pass(0);
    let first = ns_per_packet(start, w.packets.len());
    let start = Instant::now();
    for p in 1..=steady_passes {
        pass(p);
    }
    let steady = ns_per_packet(start, w.packets.len() * steady_passes as usize);
    (first, steady)
}

fn ns_per_packet(start: Instant, packets: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / packets.max(1) as f64
}

fn run_ours(w: &Workload, capacity: usize, steady_passes: u64, batch: bool) -> Sample {
    let cfg = TrackerConfig {
        max_flows: capacity,
        ..TrackerConfig::default()
    };
    let mut tracker = FlowTracker::with_config(FiveTuple::bidirectional(), cfg);
    // The sink touches every event, as a real consumer would.
    let mut events = 0u64;
    let mut sink = |e: FlowEvent<'_, _>| {
        events += u64::from(matches!(e, FlowEvent::Packet { .. }));
    };
    let mut views: Vec<PacketView<'_>> = Vec::with_capacity(CALLER_BATCH);
    let mut pass = |pass: u64, tracker: &mut FlowTracker<FiveTuple>| {
        if batch {
            for chunk in w.packets.chunks(CALLER_BATCH) {
                views.clear();
                views.extend(chunk.iter().map(|p| PacketView {
                    frame: w.frame(p),
                    timestamp: Timestamp(w.time_ns(p, pass)),
                    link: LinkType::Ethernet,
                    orig_len: p.orig_len,
                    hint: None,
                }));
                tracker.track_batch(&views, &mut sink);
            }
        } else {
            for p in &w.packets {
                let view = PacketView {
                    frame: w.frame(p),
                    timestamp: Timestamp(w.time_ns(p, pass)),
                    link: LinkType::Ethernet,
                    orig_len: p.orig_len,
                    hint: None,
                };
                tracker.track(view, &mut sink);
            }
        }
    };
    let (first, steady) = timed(w, steady_passes, |p| pass(p, &mut tracker));
    black_box(events);
    Sample {
        first,
        steady,
        flows: tracker.len(),
    }
}

fn run_v03(w: &Workload, capacity: usize, steady_passes: u64) -> Sample {
    let mut cfg = flowscope03::FlowTrackerConfig::default();
    cfg.max_flows = capacity.max(cfg.max_flows);
    let mut tracker = flowscope03::FlowTracker::<flowscope03::extract::FiveTuple>::with_config(
        flowscope03::extract::FiveTuple::bidirectional(),
        cfg,
    );
    let mut events = 0u64;
    let mut pass = |pass: u64, tracker: &mut flowscope03::FlowTracker<_>| {
        for p in &w.packets {
            let ns = w.time_ns(p, pass);
            let ts = flowscope03::Timestamp::new(
                (ns / 1_000_000_000) as u32,
                (ns % 1_000_000_000) as u32,
            );
            let out = tracker.track(flowscope03::PacketView::new(w.frame(p), ts));
            events += out.len() as u64;
        }
    };
    let (first, steady) = timed(w, steady_passes, |p| pass(p, &mut tracker));
    black_box(events);
    Sample {
        first,
        steady,
        flows: tracker.flow_count(),
    }
}
