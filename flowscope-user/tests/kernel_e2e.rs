//! Tier 3: the whole datapath on a multi-queue veth pair in namespaces.
//!
//! `fsgen` sends exactly N frames of M flows, both directions, over 2 TX
//! queues (so 2 RX queues on the capturing end); flowscope captures with 2
//! AF_XDP sockets per queue. The books must balance exactly, with the
//! metadata block as this kernel allows it and with it forced off
//! (`--no-xdp-meta`), where workers parse every frame themselves. With a
//! filter expression (issue 22) the frames it rejects are counted and
//! never redirected, and reach the host's stack only with `pass`.

mod common;

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::mpsc,
    time::{Duration, Instant},
};

use common::{fsgen, kernel_tests_enabled, netns::TestBed, tap::StackTap};
use flowscope::{
    LinkType,
    capture::{
        Capture, CaptureConfig, FilterAction, FilterSpec, FrameCtx, FrameHandler, Metadata,
        RingSizes, WorkerId,
    },
    filter::Filter,
};
use flowscope_common::{Counter, XdpMeta, hash::xsk_slot, meta::FLAG_L4_VALID};

const SEED: u32 = 0x5eed_0001;
const S: u32 = 2;

/// Directional 5-tuple as seen in a frame.
type Tuple = (IpAddr, u16, IpAddr, u16, u8);

/// Records what one worker received.
struct Recorder {
    id: WorkerId,
    seen: HashMap<Tuple, (u64, u64)>,
    with_meta: u64,
    without_meta: u64,
    wrong_slot: u64,
    parser_mismatch: u64,
}

impl FrameHandler for Recorder {
    fn on_frame(&mut self, frame: &[u8], meta: Option<&XdpMeta>, _ctx: &FrameCtx) {
        let parsed = flowscope::wire::classify(frame, SEED);
        match meta {
            Some(m) => {
                self.with_meta += 1;
                self.parser_mismatch += u64::from(parsed != *m);
            }
            None => self.without_meta += 1,
        }
        let m = &parsed;
        self.wrong_slot += u64::from(xsk_slot(self.id.queue, S, m.steer_hash) != self.id.slot);
        let e = self.seen.entry(tuple(frame, m)).or_default();
        e.0 += 1;
        e.1 += frame.len() as u64;
    }
}

fn tuple(f: &[u8], m: &XdpMeta) -> Tuple {
    let l3 = usize::from(m.l3_offset);
    let (src, dst): (IpAddr, IpAddr) = if f[l3] >> 4 == 4 {
        let a: [u8; 4] = f[l3 + 12..l3 + 16].try_into().unwrap();
        let b: [u8; 4] = f[l3 + 16..l3 + 20].try_into().unwrap();
        (a.into(), b.into())
    } else {
        let a: [u8; 16] = f[l3 + 8..l3 + 24].try_into().unwrap();
        let b: [u8; 16] = f[l3 + 24..l3 + 40].try_into().unwrap();
        (a.into(), b.into())
    };
    let l4 = usize::from(m.l4_offset);
    let (sp, dp) = if m.flags & FLAG_L4_VALID != 0 {
        (
            u16::from_be_bytes([f[l4], f[l4 + 1]]),
            u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]),
        )
    } else {
        (0, 0)
    };
    (src, sp, dst, dp, m.ip_proto)
}

#[test]
fn every_frame_of_every_flow_reaches_exactly_one_socket() {
    if !kernel_tests_enabled("every_frame_of_every_flow_reaches_exactly_one_socket") {
        return;
    }
    let allowed = common::xdp::features()
        .get(flowscope::capture::Feature::XdpMeta)
        .is_yes();
    every_frame_once(true, allowed);
}

#[test]
fn every_frame_of_every_flow_reaches_exactly_one_socket_without_metadata() {
    if !kernel_tests_enabled(
        "every_frame_of_every_flow_reaches_exactly_one_socket_without_metadata",
    ) {
        return;
    }
    every_frame_once(false, false);
}

/// The whole run with the metadata block asked for (`xdp_meta`) or forced
/// off; `expect_meta`: whether frames must arrive with it.
fn every_frame_once(xdp_meta: bool, expect_meta: bool) {
    const N: u64 = 40_000;
    const M: u32 = 400;
    let bed = TestBed::new(2);
    let cap_if = bed.cap_if.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel::<u64>();
    let capture = bed.in_cap_ns(move || {
        let cfg = CaptureConfig {
            queues: Some(2),
            sockets_per_queue: S,
            hash_seed: SEED,
            // Rings deep enough to hold a whole burst even in a debug build.
            rings: RingSizes {
                rx_ring: 8192,
                fill_ring: 16384,
                ..RingSizes::default()
            },
            xdp_meta,
            ..CaptureConfig::new(cap_if)
        };
        let cap = Capture::start(&cfg, |id| Recorder {
            id: id.clone(),
            seen: HashMap::new(),
            with_meta: 0,
            without_meta: 0,
            wrong_slot: 0,
            parser_mismatch: 0,
        })
        .expect("capture starts");
        assert!(
            cap.info().zero_copy.iter().all(|zc| !zc),
            "veth offers copy mode only"
        );
        match (&cap.info().metadata, xdp_meta, expect_meta) {
            (Metadata::On, true, true)
            | (Metadata::Refused(_), true, false)
            | (Metadata::Disabled, false, false) => {}
            (m, ..) => panic!("metadata {m:?} with xdp_meta {xdp_meta}"),
        }
        ready_tx.send(()).unwrap();
        let sent = sent_rx.recv().unwrap();
        // Wait, bounded, until every frame has been through a worker.
        let deadline = Instant::now() + Duration::from_secs(60);
        while cap
            .worker_stats()
            .iter()
            .map(|w| w.socket.rx_packets)
            .sum::<u64>()
            < sent
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let stopped = cap.stop().unwrap();
        (stopped.xdp, stopped.workers)
    });
    ready_rx.recv().expect("capture thread ready");

    let flows = fsgen::send(&bed, N, M, 2, 200_000);
    sent_tx.send(N).unwrap();
    let (xdp, reports) = capture.join().expect("capture thread");
    assert_eq!(flows.len(), M as usize);
    assert_eq!(
        flows.iter().map(|f| f.frames_ab + f.frames_ba).sum::<u64>(),
        N
    );

    // The kernel saw and redirected every frame, and nothing else.
    assert_eq!(
        xdp.get(Counter::All).packets,
        N,
        "per-CPU XDP counters sum to N"
    );
    assert_eq!(xdp.get(Counter::Redirected).packets, N);
    assert_eq!(xdp.get(Counter::PassFallback).packets, 0);
    // The sockets received exactly N frames, without a drop.
    assert_eq!(reports.iter().map(|r| r.stats.rx_packets).sum::<u64>(), N);
    for r in &reports {
        let s = &r.stats;
        assert_eq!(
            (s.rx_dropped, s.rx_ring_full, s.invalid_descs),
            (0, 0, 0),
            "worker {} drops",
            r.id.index
        );
        assert_eq!(
            (r.handler.wrong_slot, r.handler.parser_mismatch),
            (0, 0),
            "worker {}",
            r.id.index
        );
        let frames = r.handler.with_meta + r.handler.without_meta;
        assert_eq!(
            if expect_meta {
                r.handler.with_meta
            } else {
                r.handler.without_meta
            },
            frames,
            "worker {}: every frame with metadata: {expect_meta}",
            r.id.index
        );
    }
    // Both queues carried traffic.
    for q in 0..2 {
        let got: u64 = reports
            .iter()
            .filter(|r| r.id.queue == q)
            .map(|r| r.stats.rx_packets)
            .sum();
        let want: u64 = flows
            .iter()
            .filter(|f| f.queue == q)
            .map(|f| f.frames_ab + f.frames_ba)
            .sum();
        assert!(want > 0, "the generator used queue {q}");
        assert_eq!(got, want, "queue {q}");
    }
    // Every flow, both directions, at exactly one socket, counts exact.
    for f in &flows {
        let ab = (f.a, f.a_port, f.b, f.b_port, f.proto);
        let ba = (f.b, f.b_port, f.a, f.a_port, f.proto);
        let holders: Vec<&_> = reports
            .iter()
            .filter(|r| r.handler.seen.contains_key(&ab) || r.handler.seen.contains_key(&ba))
            .collect();
        assert_eq!(
            holders.len(),
            1,
            "flow {ab:?} seen by {} sockets",
            holders.len()
        );
        let r = holders[0];
        assert_eq!(
            r.id.queue, f.queue,
            "flow {ab:?} arrived on the queue it was sent to"
        );
        let get = |t: &Tuple| r.handler.seen.get(t).copied().unwrap_or_default();
        assert_eq!(get(&ab), (f.frames_ab, f.bytes_ab), "flow {ab:?} A→B");
        assert_eq!(get(&ba), (f.frames_ba, f.bytes_ba), "flow {ab:?} B→A");
    }
    // Both sockets of each queue got a share of the flows.
    for r in &reports {
        assert!(
            !r.handler.seen.is_empty(),
            "worker {} (slot {}) received no flow",
            r.id.index,
            r.id.slot
        );
    }
}

/// The filter of `--filter`: it keeps TCP and IPv6, so of fsgen's flows it
/// rejects the IPv4 UDP ones (a quarter of them).
const FILTER: &str = "tcp or ip6";

/// Whether [`FILTER`] keeps a flow of the manifest (decided here from what
/// was sent, not by any filter code).
fn kept(f: &fsgen::ManifestFlow) -> bool {
    f.proto == 6 || f.a.is_ipv6()
}

#[test]
fn filtered_frames_are_counted_and_passed_to_the_stack_never_redirected() {
    if !kernel_tests_enabled("filtered_frames_are_counted_and_passed_to_the_stack_never_redirected")
    {
        return;
    }
    filtered_run(FilterAction::Pass);
}

#[test]
fn filtered_frames_are_counted_and_dropped_never_redirected() {
    if !kernel_tests_enabled("filtered_frames_are_counted_and_dropped_never_redirected") {
        return;
    }
    filtered_run(FilterAction::Drop);
}

/// A capture with [`FILTER`] and `action`: the frames of the flows it
/// rejects are counted in `filter_rejected` and never reach a socket; the
/// others all do, at exactly one socket, counts exact. A packet socket on
/// the capturing interface sees what the host's stack receives: with
/// `pass` exactly the rejected frames, with `drop` none at all.
fn filtered_run(action: FilterAction) {
    const N: u64 = 20_000;
    const M: u32 = 200;
    let bed = TestBed::new(2);
    let cap_if = bed.cap_if.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel::<(u64, u64)>();
    let capture = bed.in_cap_ns(move || {
        let tap = StackTap::open(&cap_if);
        let filter = Filter::compile(FILTER, LinkType::Ethernet).unwrap();
        let cfg = CaptureConfig {
            queues: Some(2),
            sockets_per_queue: S,
            hash_seed: SEED,
            rings: RingSizes {
                rx_ring: 8192,
                fill_ring: 16384,
                ..RingSizes::default()
            },
            filter: Some(FilterSpec { filter, action }),
            ..CaptureConfig::new(cap_if)
        };
        let cap = Capture::start(&cfg, |id| Recorder {
            id: id.clone(),
            seen: HashMap::new(),
            with_meta: 0,
            without_meta: 0,
            wrong_slot: 0,
            parser_mismatch: 0,
        })
        .expect("capture starts");
        ready_tx.send(()).unwrap();
        let (accepted, rejected) = sent_rx.recv().unwrap();
        // Wait, bounded, until XDP has seen every frame and the sockets
        // have the ones it kept.
        let deadline = Instant::now() + Duration::from_secs(60);
        while (cap.xdp_counters().unwrap().get(Counter::All).packets < accepted + rejected
            || cap
                .worker_stats()
                .iter()
                .map(|w| w.socket.rx_packets)
                .sum::<u64>()
                < accepted)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let stopped = cap.stop().unwrap();
        let want = if action == FilterAction::Pass {
            rejected
        } else {
            0
        };
        let stack = tap.incoming(want as usize, Duration::from_secs(2));
        (stopped.xdp, stopped.workers, stack, tap.drops())
    });
    ready_rx.recv().expect("capture thread ready");

    let flows = fsgen::send(&bed, N, M, 2, 200_000);
    let frames = |keep: bool| -> (u64, u64) {
        flows
            .iter()
            .filter(|f| kept(f) == keep)
            .fold((0, 0), |(n, b), f| {
                (n + f.frames_ab + f.frames_ba, b + f.bytes_ab + f.bytes_ba)
            })
    };
    let (accepted, rejected) = (frames(true), frames(false));
    assert!(
        accepted.0 > 0 && rejected.0 > 0,
        "{accepted:?} {rejected:?}"
    );
    sent_tx.send((accepted.0, rejected.0)).unwrap();
    let (xdp, reports, stack, tap_drops) = capture.join().expect("capture thread");

    // XDP counted every frame, the rejected ones in filter_rejected, and
    // redirected exactly the others.
    assert_eq!(xdp.get(Counter::All).packets, N);
    let counted = |c: Counter| (xdp.get(c).packets, xdp.get(c).bytes);
    assert_eq!(counted(Counter::FilterRejected), rejected, "{action:?}");
    assert_eq!(counted(Counter::Redirected), accepted, "{action:?}");
    assert_eq!(xdp.get(Counter::PassFallback).packets, 0);
    // The sockets received exactly the accepted frames: every kept flow at
    // one socket with its exact counts, no frame of a rejected flow.
    assert_eq!(
        reports.iter().map(|r| r.stats.rx_packets).sum::<u64>(),
        accepted.0
    );
    for f in &flows {
        let ab = (f.a, f.a_port, f.b, f.b_port, f.proto);
        let ba = (f.b, f.b_port, f.a, f.a_port, f.proto);
        let holders: Vec<_> = reports
            .iter()
            .filter(|r| r.handler.seen.contains_key(&ab) || r.handler.seen.contains_key(&ba))
            .collect();
        if !kept(f) {
            assert!(holders.is_empty(), "rejected flow {ab:?} reached a socket");
            continue;
        }
        assert_eq!(
            holders.len(),
            1,
            "flow {ab:?} seen by {} sockets",
            holders.len()
        );
        let get = |t: &Tuple| holders[0].handler.seen.get(t).copied().unwrap_or_default();
        assert_eq!(get(&ab), (f.frames_ab, f.bytes_ab), "flow {ab:?} A→B");
        assert_eq!(get(&ba), (f.frames_ba, f.bytes_ba), "flow {ab:?} B→A");
    }
    // The host's stack: the rejected frames with `pass`, nothing with
    // `drop`; never a frame of a kept flow.
    assert_eq!(tap_drops, 0, "the packet socket kept up");
    let mut at_stack: HashMap<Tuple, (u64, u64)> = HashMap::new();
    for frame in &stack {
        let e = at_stack
            .entry(tuple(frame, &flowscope::wire::classify(frame, SEED)))
            .or_default();
        e.0 += 1;
        e.1 += frame.len() as u64;
    }
    for f in &flows {
        let ab = (f.a, f.a_port, f.b, f.b_port, f.proto);
        let ba = (f.b, f.b_port, f.a, f.a_port, f.proto);
        let want = |frames, bytes| match (kept(f), action) {
            (false, FilterAction::Pass) => (frames, bytes),
            _ => (0, 0),
        };
        let mut got = |t: &Tuple| at_stack.remove(t).unwrap_or_default();
        assert_eq!(
            got(&ab),
            want(f.frames_ab, f.bytes_ab),
            "{action:?}: flow {ab:?} A→B at the stack"
        );
        assert_eq!(
            got(&ba),
            want(f.frames_ba, f.bytes_ba),
            "{action:?}: flow {ab:?} B→A at the stack"
        );
    }
    assert!(
        at_stack.is_empty(),
        "frames of no flow sent at the stack: {at_stack:?}"
    );
    println!(
        "{FILTER:?}, {action:?}: {N} frames, {} rejected ({} at the stack), {} redirected",
        rejected.0,
        stack.len(),
        accepted.0
    );
}
