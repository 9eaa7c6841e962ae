//! The multi-core runtime on a 2-queue veth with 2 sockets per queue: every
//! flow's record comes from exactly one worker with the counts that were
//! sent, and the Prometheus scrape equals the merged shards and the traffic.
//! Ring fill levels: a worker held on its first frame while a burst arrives
//! samples exactly the backlog and the fill ring that burst implies.

mod common;

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{IpAddr, TcpStream},
    sync::mpsc,
    time::{Duration, Instant},
};

use common::{fsgen, kernel_tests_enabled, netns::TestBed};
use flowscope::capture::{Capture, CaptureConfig, FrameCtx, FrameHandler, RingSizes, WorkerStats};
use flowscope::obs::Log2Histogram;
use flowscope::pipeline::PipelineConfig;
use flowscope::runtime::{Destination, LiveCapture, prometheus};
use flowscope_common::Counter;

const S: u32 = 2;

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to /metrics");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body
}

/// Sum of every sample of `name` whose labels contain `label` (or all).
fn metric(text: &str, name: &str, label: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(label)
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

#[test]
fn records_from_one_worker_each_and_scrape_equals_shards() {
    if !kernel_tests_enabled("records_from_one_worker_each_and_scrape_equals_shards") {
        return;
    }
    const N: u64 = 30_000;
    const M: u32 = 300;
    let bed = TestBed::new(2);
    let out = std::env::temp_dir().join(format!("{}.eve.json", bed.cap_ns));
    let (cap_if, path) = (bed.cap_if.clone(), out.clone());
    let zeek_dir = std::env::temp_dir().join(format!("{}.zeek", bed.cap_ns));
    let conn_log = zeek_dir.join("conn.log");
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel::<u64>();
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let addr = format!("127.0.0.1:{port}");
    let metrics_addr = addr.clone();
    let capture = bed.in_cap_ns(move || {
        prometheus::install(metrics_addr.parse().unwrap()).expect("metrics listener");
        let cfg = CaptureConfig {
            queues: Some(2),
            sockets_per_queue: S,
            ..CaptureConfig::new(cap_if)
        };
        let dest = Destination::File {
            path,
            rotate_bytes: None,
            rotate_after: None,
        };
        // Flow records also go to a Zeek conn.log, through the same writer.
        let zeek = vec![format!("zeek:{}", zeek_dir.display()).parse().unwrap()];
        let live = LiveCapture::start(&cfg, Some(&PipelineConfig::default()), dest, 4096, &zeek)
            .expect("live capture starts");
        ready_tx.send(()).unwrap();
        let sent = sent_rx.recv().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        // Until every frame went through a worker and its shard is published.
        let snap = loop {
            let snap = live.snapshot().unwrap();
            if snap.total.tracker.packets >= sent || Instant::now() > deadline {
                break snap;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        prometheus::publish(&snap, &mut flowscope::obs::MetricsPublisher::new());
        prometheus::publish_datapath(live.info());
        let info = live.info().clone();
        let text = scrape(&metrics_addr);
        let report = live.stop().unwrap();
        // The final figures: every batch's ring samples are published.
        prometheus::publish(&report.last, &mut flowscope::obs::MetricsPublisher::new());
        (snap, text, report, scrape(&metrics_addr), info)
    });
    ready_rx.recv().unwrap();
    let flows = fsgen::send(&bed, N, M, 2, 50_000);
    sent_tx.send(N).unwrap();
    let (snap, text, report, last_text, info) = capture.join().expect("capture thread");
    // What the datapath obtained, as one info series with static labels.
    let want = format!(
        "flowscope_datapath_info{{xdp_mode=\"drv\",metadata=\"{}\",attach=\"link\",zero_copy=\"false\"}} 1",
        info.metadata.label()
    );
    assert!(text.lines().any(|l| l == want), "no {want} in {text}");
    ring_levels_scraped(&last_text, &report.last.sockets);

    // The scrape equals the merged shards and the traffic.
    assert_eq!(
        metric(&text, "flowscope_xdp_packets_total", "class=\"all\""),
        N
    );
    assert_eq!(metric(&text, "flowscope_xsk_rx_packets_total", ""), N);
    assert_eq!(
        metric(&text, "flowscope_flows_created_total", ""),
        snap.total.tracker.created_total()
    );
    assert_eq!(snap.total.tracker.created_total(), u64::from(M));
    assert_eq!(metric(&text, "flowscope_flows_active", ""), u64::from(M));
    assert_eq!(metric(&text, "flowscope_xsk_drops_total", ""), 0);
    assert_eq!(metric(&text, "flowscope_records_dropped_total", ""), 0);
    assert_eq!(
        metric(&text, "flowscope_bytes_total", ""),
        snap.total.tracker.bytes.iter().sum::<u64>()
    );

    // Every flow sent appears exactly once, from the worker of its queue.
    assert_eq!(report.writer.written, u64::from(M));
    assert_eq!(report.writer.outputs.len(), 1);
    assert_eq!(
        (
            report.writer.outputs[0].written,
            report.writer.outputs[0].dropped
        ),
        (u64::from(M), 0)
    );
    let conn = std::fs::read_to_string(&conn_log).unwrap();
    let _ = std::fs::remove_dir_all(conn_log.parent().unwrap());
    assert_eq!(
        conn.lines().filter(|l| !l.starts_with('#')).count(),
        M as usize,
        "one conn.log row per flow"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let mut seen: HashMap<(IpAddr, u16, IpAddr, u16), serde_json::Value> = HashMap::new();
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(r["event_type"], "flow");
        let key = (
            r["src_ip"].as_str().unwrap().parse().unwrap(),
            r["src_port"].as_u64().unwrap() as u16,
            r["dest_ip"].as_str().unwrap().parse().unwrap(),
            r["dest_port"].as_u64().unwrap() as u16,
        );
        assert!(seen.insert(key, r).is_none(), "flow {key:?} written twice");
    }
    for f in &flows {
        let r = seen
            .get(&(f.a, f.a_port, f.b, f.b_port))
            .unwrap_or_else(|| {
                panic!("no record for {}:{} -> {}:{}", f.a, f.a_port, f.b, f.b_port)
            });
        let flow = &r["flow"];
        assert_eq!(
            (
                flow["pkts_toserver"].as_u64(),
                flow["pkts_toclient"].as_u64()
            ),
            (Some(f.frames_ab), Some(f.frames_ba))
        );
        assert_eq!(
            (
                flow["bytes_toserver"].as_u64(),
                flow["bytes_toclient"].as_u64()
            ),
            (Some(f.bytes_ab), Some(f.bytes_ba))
        );
        assert_eq!(flow["reason"], "force_closed");
        // Worker w serves queue w / S; its flow ids carry w in the top bits.
        let worker = r["flow_id"].as_u64().unwrap() >> 48;
        assert_eq!(
            worker as u32 / S,
            f.queue,
            "record of a queue-{} flow from worker {worker}",
            f.queue
        );
    }
    assert_eq!(seen.len(), flows.len());
}

/// Per worker and ring, the final scrape shows the ring's size, one sample
/// per batch the worker read, and levels within the ring.
fn ring_levels_scraped(text: &str, sockets: &[WorkerStats]) {
    let batches: u64 = sockets.iter().map(|w| w.socket.batches).sum();
    assert!(batches > 0);
    for w in sockets {
        let s = &w.socket;
        for (ring, level, size) in [
            ("rx", &s.rings.rx, RingSizes::default().rx_ring),
            ("fill", &s.rings.fill, RingSizes::default().fill_ring),
        ] {
            let labels = format!("ring=\"{ring}\",worker=\"{}\"", w.id.index);
            assert_eq!(level.size, size);
            assert_eq!(
                metric(text, "flowscope_xsk_ring_size", &labels),
                u64::from(size)
            );
            assert_eq!(
                metric(text, "flowscope_xsk_ring_samples_total", &labels),
                s.batches,
                "{ring} ring of worker {}: one sample per batch",
                w.id.index
            );
            assert_eq!(level.entries.count(), s.batches);
            let last = metric(text, "flowscope_xsk_ring_entries", &labels);
            assert_eq!(last, u64::from(level.last));
            assert!(last <= u64::from(size));
            // Every sample lies within the ring: no bucket above its size.
            let le_max = text
                .lines()
                .filter(|l| {
                    l.starts_with("flowscope_xsk_ring_samples_total{") && l.contains(&labels)
                })
                .map(|l| {
                    let v = l.split("entries_le=\"").nth(1).unwrap();
                    v[..v.find('"').unwrap()].parse::<u64>().unwrap()
                })
                .max()
                .unwrap();
            assert!(le_max < 2 * u64::from(size), "{ring}: bucket ≤ {le_max}");
        }
        // Every RX sample counts at least the batch it was taken for.
        assert_eq!(s.rings.rx.entries.buckets[0], 0);
    }
}

/// Holds its worker on the first frame until released; records the size of
/// every batch it is handed.
struct Gate {
    hold: Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>,
    in_batch: u64,
    batches: Vec<u64>,
}

impl FrameHandler for Gate {
    fn on_frame(&mut self, _: &[u8], _: Option<&flowscope_common::XdpMeta>, _: &FrameCtx) {
        if let Some((held, release)) = self.hold.take() {
            held.send(()).unwrap();
            release.recv().unwrap();
        }
        self.in_batch += 1;
    }

    fn on_tick(&mut self, _: flowscope::Timestamp) {
        if self.in_batch > 0 {
            self.batches.push(self.in_batch);
            self.in_batch = 0;
        }
    }
}

#[test]
fn ring_levels_show_the_backlog_of_a_held_worker() {
    if !kernel_tests_enabled("ring_levels_show_the_backlog_of_a_held_worker") {
        return;
    }
    // Fewer frames than the RX ring holds: the burst queues up, nothing drops.
    const N: u64 = 1500;
    // A fill ring (and UMEM) just above the burst, so that the fill samples
    // spread over several buckets.
    let rings = RingSizes {
        fill_ring: 2048,
        ..RingSizes::default()
    };
    let (rx_size, fill_size) = (u64::from(rings.rx_ring), u64::from(rings.fill_ring));
    assert!(N < rx_size && N < fill_size);
    let bed = TestBed::new(1);
    let cap_if = bed.cap_if.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel::<()>();
    let capture = bed.in_cap_ns(move || {
        let cfg = CaptureConfig {
            queues: Some(1),
            rings,
            ..CaptureConfig::new(cap_if)
        };
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        let mut hold = Some((held_tx, release_rx));
        let cap = Capture::start(&cfg, |_| Gate {
            hold: hold.take(),
            in_batch: 0,
            batches: Vec::new(),
        })
        .expect("capture starts");
        ready_tx.send(()).unwrap();
        sent_rx.recv().unwrap();
        held_rx.recv().unwrap();
        // Every frame redirected (the program counts it before the
        // redirect), then a moment for the driver's end-of-poll flush into
        // the RX ring.
        let deadline = Instant::now() + Duration::from_secs(10);
        while cap.xdp_counters().unwrap().get(Counter::Redirected).packets < N
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        release_tx.send(()).unwrap();
        while cap.worker_stats()[0].socket.rx_packets < N && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        cap.stop().unwrap()
    });
    ready_rx.recv().unwrap();
    fsgen::send(&bed, N, 10, 1, 200_000);
    sent_tx.send(()).unwrap();
    let stopped = capture.join().expect("capture thread");
    assert_eq!(stopped.xdp.get(Counter::Redirected).packets, N);
    let [w] = &stopped.workers[..] else {
        panic!("one worker")
    };
    let s = &w.stats;
    assert_eq!(s.rx_packets, N);
    assert_eq!((s.rx_dropped, s.rx_ring_full, s.fill_ring_empty), (0, 0, 0));
    let sizes = &w.handler.batches;
    assert_eq!(sizes.iter().sum::<u64>(), N);
    assert_eq!(sizes.len() as u64, s.batches);
    let (rx, fill) = (&s.rings.rx, &s.rings.fill);
    assert_eq!(
        (u64::from(rx.size), u64::from(fill.size)),
        (rx_size, fill_size)
    );

    // Batch k is read with the whole rest of the burst queued (N minus the
    // frames before it) and refills a ring missing exactly those frames.
    // The first batch was read while the burst was still arriving: its RX
    // sample is only known to lie between its size and N.
    let mut want_rx = Log2Histogram::default();
    let mut want_fill = Log2Histogram::default();
    let mut before = 0;
    for (k, n) in sizes.iter().enumerate() {
        if k > 0 {
            want_rx.record(N - before);
        }
        want_fill.record(fill_size - (N - before));
        before += n;
    }
    assert_eq!(fill.entries, want_fill, "fill ring samples");
    assert_eq!(u64::from(fill.last), fill_size - sizes.last().unwrap());
    assert_eq!(u64::from(rx.last), *sizes.last().unwrap());
    assert!(sizes.len() > 1);
    assert!(
        u64::from(rx.last) < N - sizes[0],
        "the held-back burst is the largest backlog"
    );
    let extra: Vec<usize> = (0..want_rx.buckets.len())
        .flat_map(|i| {
            let n = rx.entries.buckets[i]
                .checked_sub(want_rx.buckets[i])
                .unwrap_or_else(|| panic!("missing RX samples in bucket {i}"));
            std::iter::repeat_n(i, n as usize)
        })
        .collect();
    let bucket = |v: u64| (u64::BITS - v.leading_zeros()) as usize;
    assert!(
        matches!(extra[..], [i] if (bucket(sizes[0])..=bucket(N)).contains(&i)),
        "one first-batch RX sample in [{}, {N}], got extra buckets {extra:?}",
        sizes[0]
    );
    // The backlog the held worker found is in the histogram: a level of
    // N minus its first batch, far above anything a free-running worker sees.
    assert!(rx.entries.buckets[bucket(N - sizes[0])] >= 1);
}
