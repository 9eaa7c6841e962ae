//! Target `tracker`: arbitrary frames through a small [`FlowTracker`]
//! (evictions, every timeout, TCP close linger), one at a time or in
//! batches, with the clock driven by packet time and [`FlowTracker::advance`].
//!
//! Input: a header (table size, timeouts, batching), then frames, each with
//! a flags byte (link type, advance the clock after it), a 16-bit length, a
//! signed time step in 100 ms units (time may go backwards, as in damaged
//! captures) and the bytes.
//!
//! Checked after every step: every packet counted once as matched or
//! unmatched, `created = ended + active`, `active` is the table's size, and
//! the events agree with the counters; after [`FlowTracker::finish`] the
//! table is empty and every record ended.

use std::time::Duration;

use flowscope::extract::{AutoDetectEncap, FiveTuple, FiveTupleKey};
use flowscope::tracker::{FlowEvent, FlowTracker, TrackerConfig};
use flowscope::{PacketView, Timestamp};

use super::frame::{LINK_TYPES, check_extracted};
use super::input::Input;

/// Header byte bit: frames go through [`FlowTracker::track_batch`].
pub const MODE_BATCH: u8 = 0x01;
/// Frame flags bit: call [`FlowTracker::advance`] after the frame.
pub const FRAME_ADVANCE: u8 = 0x08;

/// Most frames in one batch.
const BATCH: usize = 8;

/// Events seen, by kind.
#[derive(Default)]
struct Seen {
    started: u64,
    ended: u64,
    packets: u64,
    /// Packet events of a tunnelled packet in its carrier (the tracker's
    /// totals count the packet once, in the flow inside).
    carried: u64,
    /// The last packet event may be a carrier's.
    carrier_last: bool,
}

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let secs = |b: u8| Duration::from_millis(500 * (1 + u64::from(b)));
    let config = TrackerConfig {
        max_flows: 1 + usize::from(input.u8() % 16),
        idle_timeout_tcp: secs(input.u8()),
        idle_timeout_udp: secs(input.u8()),
        idle_timeout_other: secs(input.u8()),
        active_timeout: match input.u8() {
            0 => None,
            b => Some(secs(b)),
        },
        tcp_close_linger: Duration::from_millis(100 * u64::from(input.u8())),
        timer_tick: Duration::from_millis(100 * (1 + u64::from(input.u8() % 20))),
        ..TrackerConfig::default()
    };
    let mut tracker =
        FlowTracker::with_config(AutoDetectEncap::new(FiveTuple::bidirectional()), config);
    let mut seen = Seen::default();
    let mut sink = |e: FlowEvent<'_, FiveTupleKey>| match e {
        FlowEvent::Started { .. } => seen.started += 1,
        FlowEvent::Ended { .. } => seen.ended += 1,
        FlowEvent::Packet {
            flow,
            extracted,
            view,
            ..
        } => {
            seen.packets += 1;
            check_extracted(view.frame, extracted);
            // A tunnelled packet comes to its carrier first, then to the
            // flow inside.
            if extracted.tunnel.is_some() && seen.carrier_last {
                seen.carried += 1;
            }
            seen.carrier_last = flow.carries.is_some() && extracted.tunnel.is_none();
        }
        _ => {}
    };
    let mut now = Timestamp::new(1_600_000_000, 0).0;
    let mut tracked = 0u64;
    let mut batch: Vec<PacketView<'_>> = Vec::with_capacity(BATCH);
    while !input.is_empty() {
        let flags = input.u8();
        let len = usize::from(input.u16());
        let step = i64::from(input.u8() as i8) * 100_000_000;
        now = now.saturating_add_signed(step);
        let frame = input.bytes(len);
        let snapped = frame.len() as u32 + u32::from(flags >> 4) * 100;
        let view = PacketView::new(frame, Timestamp(now))
            .with_link(LINK_TYPES[usize::from(flags & 7) % LINK_TYPES.len()])
            .with_orig_len(snapped);
        tracked += 1;
        if mode & MODE_BATCH != 0 {
            batch.push(view);
            if batch.len() == BATCH || flags & FRAME_ADVANCE != 0 || input.is_empty() {
                tracker.track_batch(&batch, &mut sink);
                batch.clear();
            }
        } else {
            tracker.track(view, &mut sink);
        }
        if flags & FRAME_ADVANCE != 0 {
            tracker.advance(Timestamp(now), &mut sink);
        }
        if batch.is_empty() {
            check(&tracker, tracked);
        }
    }
    tracker.finish(&mut sink);
    check(&tracker, tracked);
    let c = tracker.counters();
    assert!(tracker.is_empty(), "finish left flows in the table");
    assert_eq!(c.flows_active, 0);
    assert_eq!(c.created_total(), c.ended_total());
    assert_eq!(
        (seen.started, seen.ended),
        (c.created_total(), c.ended_total())
    );
    assert_eq!(seen.packets - seen.carried, c.packets_matched);
}

fn check(tracker: &FlowTracker<AutoDetectEncap<FiveTuple>>, tracked: u64) {
    let c = tracker.counters();
    assert_eq!(c.packets, tracked, "every packet counted");
    assert_eq!(
        c.packets_matched + c.unmatched_total(),
        c.packets,
        "matched + unmatched"
    );
    assert_eq!(
        c.created_total(),
        c.ended_total() + c.flows_active,
        "created = ended + active"
    );
    assert_eq!(c.flows_active, tracker.len() as u64, "active = table size");
    assert!(tracker.len() <= tracker.capacity());
}

/// Encodes a frame for the seed generator: Ethernet, `step` × 100 ms after
/// the previous one.
pub fn encode_frame(out: &mut Vec<u8>, frame: &[u8], step: i8, advance: bool) {
    out.push(if advance { FRAME_ADVANCE } else { 0 });
    out.extend_from_slice(&(frame.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.push(step as u8);
    out.extend_from_slice(&frame[..frame.len().min(usize::from(u16::MAX))]);
}
