//! Lossless accounting: with every drop point forced (a stalled worker
//! behind a tiny RX ring, a record ring of one slot), the books still
//! balance stage by stage: sent = seen by XDP = redirected + pass-fallback;
//! redirected = received by sockets + socket drops; frames received = frames
//! tracked; flows created = records written + records dropped.

mod common;

use std::{
    sync::mpsc,
    time::{Duration, Instant},
};

use common::{fsgen, kernel_tests_enabled, netns::TestBed};
use flowscope::capture::{Capture, CaptureConfig, FrameCtx, FrameHandler, RingSizes};
use flowscope::pipeline::PipelineConfig;
use flowscope::runtime::{Destination, LiveCapture};
use flowscope_common::Counter;

/// A worker that stalls 2 ms after every batch: 64-frame batches cap it
/// far below the generator's rate.
struct Stalled;

impl FrameHandler for Stalled {
    fn on_frame(&mut self, _: &[u8], _: Option<&flowscope_common::XdpMeta>, _: &FrameCtx) {}
    fn on_tick(&mut self, _: flowscope::Timestamp) {
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn socket_drops_are_counted_when_a_worker_stalls() {
    if !kernel_tests_enabled("socket_drops_are_counted_when_a_worker_stalls") {
        return;
    }
    const N: u64 = 50_000;
    let bed = TestBed::new(2);
    let cap_if = bed.cap_if.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel::<()>();
    let capture = bed.in_cap_ns(move || {
        let cfg = CaptureConfig {
            queues: Some(2),
            rings: RingSizes {
                rx_ring: 64,
                fill_ring: 128,
                ..RingSizes::default()
            },
            ..CaptureConfig::new(cap_if)
        };
        let cap = Capture::start(&cfg, |_| Stalled).expect("capture starts");
        ready_tx.send(()).unwrap();
        sent_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        cap.stop().unwrap()
    });
    ready_rx.recv().unwrap();
    fsgen::run(fsgen::command(&bed, N, 100, 2));
    sent_tx.send(()).unwrap();
    let stopped = capture.join().unwrap();
    let xdp = |c: Counter| stopped.xdp.get(c).packets;
    assert_eq!(xdp(Counter::All), N);
    assert_eq!(xdp(Counter::Redirected) + xdp(Counter::PassFallback), N);
    let received: u64 = stopped.workers.iter().map(|w| w.stats.rx_packets).sum();
    // The kernel counts a frame refused for a full RX ring in rx_ring_full,
    // and one refused for any other reason (no fill-ring frame, too long)
    // in rx_dropped (net/xdp/xsk.c).
    let dropped: u64 = stopped
        .workers
        .iter()
        .map(|w| w.stats.rx_dropped + w.stats.rx_ring_full)
        .sum();
    assert!(dropped > 0, "a stalled worker behind 64 slots must drop");
    assert_eq!(
        received + dropped,
        xdp(Counter::Redirected),
        "redirected = received + socket drops"
    );
}

#[test]
fn books_balance_at_every_drop_point() {
    if !kernel_tests_enabled("books_balance_at_every_drop_point") {
        return;
    }
    const N: u64 = 40_000;
    const M: u32 = 2_000;
    let bed = TestBed::new(2);
    let cap_if = bed.cap_if.clone();
    let fifo = std::env::temp_dir().join(format!("{}.eve.fifo", bed.cap_ns));
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
    let (reader_path, fifo_path) = (fifo.clone(), fifo.clone());
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = 0u64;
        for line in std::io::BufReader::new(std::fs::File::open(&reader_path).unwrap()).lines() {
            line.unwrap();
            lines += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        lines
    });
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel::<()>();
    let capture = bed.in_cap_ns(move || {
        let cfg = CaptureConfig {
            queues: Some(2),
            sockets_per_queue: 1,
            // 64-slot RX rings against a full-speed burst: the kernel must
            // drop for want of ring space, and count it.
            rings: RingSizes {
                rx_ring: 64,
                fill_ring: 128,
                ..RingSizes::default()
            },
            ..CaptureConfig::new(cap_if)
        };
        // Flows end 100 ms after their last frame, while traffic still
        // arrives: records pour out faster than a one-slot ring can pass.
        let mut quick = PipelineConfig::default();
        let t = &mut quick.tracker;
        (t.idle_timeout_tcp, t.idle_timeout_udp, t.idle_timeout_other) = (
            Duration::from_millis(100),
            Duration::from_millis(100),
            Duration::from_millis(100),
        );
        // One-slot record rings into a writer held back by a slow reader
        // (one line per 20 ms): 2 000 flows ending within about a second
        // cannot all pass, whatever the machine's load, so records are
        // dropped, and counted.
        let dest = Destination::File {
            path: fifo_path,
            rotate_bytes: None,
            rotate_after: None,
        };
        let live = LiveCapture::start(&cfg, Some(&quick), dest, 1, &[]).expect("capture starts");
        ready_tx.send(()).unwrap();
        sent_rx.recv().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = 0;
        // Until the sockets stop receiving.
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let got: u64 = live
                .snapshot()
                .unwrap()
                .sockets
                .iter()
                .map(|w| w.socket.rx_packets)
                .sum();
            if got == last || Instant::now() > deadline {
                break;
            }
            last = got;
        }
        live.stop().unwrap()
    });
    ready_rx.recv().unwrap();
    fsgen::run(fsgen::command(&bed, N, M, 2));
    sent_tx.send(()).unwrap();
    let r = capture.join().expect("capture thread");
    let last = &r.last;

    let xdp = |c: Counter| last.xdp.get(c).packets;
    assert_eq!(xdp(Counter::All), N, "XDP saw every frame sent");
    assert_eq!(xdp(Counter::Redirected) + xdp(Counter::PassFallback), N);
    let sum = |f: fn(&flowscope::capture::SocketStats) -> u64| {
        last.sockets.iter().map(|w| f(&w.socket)).sum::<u64>()
    };
    let received = sum(|s| s.rx_packets);
    // Refused for a full RX ring: rx_ring_full; for anything else:
    // rx_dropped (net/xdp/xsk.c).
    let socket_drops = sum(|s| s.rx_dropped + s.rx_ring_full);
    assert_eq!(
        received + socket_drops,
        xdp(Counter::Redirected),
        "redirected = received + socket drops"
    );
    // Every frame received was given to a flow or counted unmatched.
    let t = &last.total.tracker;
    assert_eq!(t.packets, received);
    // Every flow created ended in a record written or a counted drop.
    assert!(
        last.total.records_dropped > 0,
        "the one-slot rings must have dropped records"
    );
    assert_eq!(
        last.total.records_sent + last.total.records_dropped,
        t.ended_total()
    );
    assert_eq!(
        t.created_total(),
        t.ended_total(),
        "every flow ended at stop"
    );
    assert_eq!(r.writer.written, last.total.records_sent);
    assert_eq!(
        reader.join().unwrap(),
        r.writer.written,
        "every line written was read"
    );
    let _ = std::fs::remove_file(&fifo);
}
