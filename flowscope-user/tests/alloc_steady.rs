//! Zero allocations per packet in steady state, counted by a global allocator.
//!
//! This binary holds only this test so no other test allocates concurrently.

mod alloc_support;

use flowscope::extract::FiveTuple;
use flowscope::tracker::{FlowEvent, FlowTracker, TrackerConfig};
use flowscope::{PacketView, Timestamp};

/// Ethernet/IPv4/UDP from 10.0.x.y:port to 10.1.0.1:53 (checksum left 0).
fn udp_frame(host: u16, port: u16, reply: bool) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8 + 16];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&(20u16 + 8 + 16).to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    let client = [10, 0, (host >> 8) as u8, host as u8];
    let server = [10, 1, 0, 1];
    let (src, dst, sp, dp) = if reply {
        (server, client, 53, port)
    } else {
        (client, server, port, 53)
    };
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    f[34..36].copy_from_slice(&sp.to_be_bytes());
    f[36..38].copy_from_slice(&dp.to_be_bytes());
    f[38..40].copy_from_slice(&24u16.to_be_bytes());
    f
}

#[test]
fn steady_state_tracking_allocates_nothing() {
    // 3000 distinct flows in a table of 1000: creation, eviction, idle expiry
    // (UDP timeout 1 s; 1 666 new flows per second of packet time) and batches all run.
    let frames: Vec<Vec<u8>> = (0..3000u16)
        .flat_map(|i| [udp_frame(i, 1024 + i, false), udp_frame(i, 1024 + i, true)])
        .collect();
    let cfg = TrackerConfig {
        max_flows: 1000,
        idle_timeout_udp: std::time::Duration::from_secs(1),
        ..TrackerConfig::default()
    };
    let mut tracker = FlowTracker::with_config(FiveTuple::bidirectional(), cfg);
    let mut ended = 0u64;
    let mut sink = |e: FlowEvent<'_, _>| {
        if let FlowEvent::Ended { .. } = e {
            ended += 1;
        }
    };
    let views: Vec<PacketView<'_>> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| PacketView::new(f, Timestamp(i as u64 * 300_000)))
        .collect();
    // Warm-up: fills every slot once.
    tracker.track_batch(&views, &mut sink);
    let later: Vec<PacketView<'_>> = views
        .iter()
        .map(|v| PacketView {
            timestamp: Timestamp(v.timestamp.0 + 60_000_000_000),
            ..*v
        })
        .collect();

    let before = alloc_support::allocations();
    for chunk in later.chunks(64) {
        tracker.track_batch(chunk, &mut sink);
    }
    for v in &later {
        tracker.track(
            PacketView {
                timestamp: Timestamp(v.timestamp.0 + 60_000_000_000),
                ..*v
            },
            &mut sink,
        );
    }
    let after = alloc_support::allocations();

    assert_eq!(tracker.counters().packets, 3 * views.len() as u64);
    assert!(
        ended > 3000,
        "flows were created and ended during the measured phase"
    );
    assert!(tracker.counters().flows_ended[4] > 0, "evictions happened");
    assert_eq!(
        after - before,
        0,
        "allocations while tracking {} packets",
        2 * later.len()
    );
}
