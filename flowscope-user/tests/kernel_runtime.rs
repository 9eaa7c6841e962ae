//! The multi-core runtime on a 2-queue veth with 2 sockets per queue: every
//! flow's record comes from exactly one worker with the counts that were
//! sent, and the Prometheus scrape equals the merged shards and the traffic:
//! text that promtool accepts, the same series in the same order in every
//! scrape, histograms whose buckets are the shards' log2 buckets.
//! Ring fill levels: a worker held on its first frame while a burst arrives
//! samples exactly the backlog and the fill ring that burst implies.

mod common;

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::mpsc,
    time::{Duration, Instant},
};

use common::scrape::{get, promtool_accepts, scrape};
use common::{fsgen, kernel_tests_enabled, netns::TestBed};
use flowscope::capture::{Capture, CaptureConfig, FrameCtx, FrameHandler, RingSizes, WorkerStats};
use flowscope::obs::Log2Histogram;
use flowscope::output::{EveOptions, OutputSpec};
use flowscope::runtime::{LiveCapture, LiveSnapshot, MetricsServer, RunConfig, prometheus};
use flowscope_common::Counter;

const S: u32 = 2;

/// Publishes `snap` as the CLI does, then scrapes.
fn publish_and_scrape(
    server: &MetricsServer,
    snap: &LiveSnapshot,
    info: &flowscope::capture::DatapathInfo,
) -> String {
    server.publish(prometheus::render(snap, info));
    scrape(server.local_addr())
}

/// The series of a scrape in order (sample lines without their values),
/// with every family's HELP and TYPE before its first series.
fn series(text: &str) -> Vec<&str> {
    let mut typed: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(!typed.contains(&name), "{name} typed twice");
            typed.push(name);
        } else if !l.starts_with('#') {
            let (key, _value) = l.rsplit_once(' ').unwrap();
            let name = key.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| typed.last() == Some(f)))
                .unwrap_or(name);
            assert_eq!(typed.last(), Some(&family), "{key} outside its family");
            out.push(key);
        }
    }
    let helped = text.lines().filter(|l| l.starts_with("# HELP ")).count();
    assert_eq!(helped, typed.len(), "a HELP line for every family");
    out
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

/// The histogram `name{labels}` of a scrape is `h`, exported in units of
/// `per_unit` recorded ones: cumulative buckets, each `le` a bound between
/// log2 buckets counting exactly the samples up to it, `+Inf` and `_count`
/// all of them, `_sum` their sum.
fn histogram_is(text: &str, name: &str, labels: &str, h: &Log2Histogram, per_unit: f64) {
    let prefix = format!("{name}_bucket{{{labels}");
    let buckets: Vec<(String, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|l| {
            let le = l.split("le=\"").nth(1).unwrap();
            let (le, value) = le.split_once("\"} ").unwrap();
            (le.to_owned(), value.parse().unwrap())
        })
        .collect();
    assert!(buckets.len() > 1, "no buckets for {prefix}");
    let (inf, finite) = buckets.split_last().unwrap();
    assert_eq!(inf, &("+Inf".to_owned(), h.count()), "{prefix}");
    let mut previous = (-1.0, 0);
    for (le, n) in finite {
        let bound = (le.parse::<f64>().unwrap() * per_unit).round() as u64;
        assert!(bound as f64 > previous.0, "{prefix}: le={le} out of order");
        assert!(*n >= previous.1, "{prefix}: not cumulative at le={le}");
        // The bound splits no log2 bucket: it is exact.
        let want: u64 = (0..h.buckets.len())
            .filter(|&i| Log2Histogram::upper_bound(i) <= bound)
            .map(|i| h.buckets[i])
            .sum();
        assert!((0..h.buckets.len()).all(|i| h.buckets[i] == 0
            || Log2Histogram::upper_bound(i) <= bound
            || Log2Histogram::lower_bound(i) > bound));
        assert_eq!(*n, want, "{prefix}: le={le}");
        previous = (bound as f64, *n);
    }
    let tail = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", labels.trim_end_matches(','))
    };
    let value = |suffix: &str| -> f64 {
        let key = format!("{name}{suffix}{tail} ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&key))
            .unwrap_or_else(|| panic!("no {key}"));
        line[key.len()..].parse().unwrap()
    };
    assert_eq!(value("_count"), h.count() as f64, "{name}_count{tail}");
    assert_eq!(value("_sum"), h.sum() as f64 / per_unit, "{name}_sum{tail}");
}

/// What the capture thread of the runtime test saw.
struct Scrapes {
    /// Scraped before any traffic.
    idle: String,
    /// Scraped once every frame sent was counted.
    text: String,
    /// Scraped right after `text`, nothing published in between.
    again: String,
    /// Scraped after the stop.
    last: String,
    /// Status lines of GETs on paths other than /metrics.
    elsewhere: Vec<String>,
    snap: LiveSnapshot,
    report: flowscope::runtime::LiveReport,
    info: flowscope::capture::DatapathInfo,
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
    let capture = bed.in_cap_ns(move || {
        let server =
            MetricsServer::start("127.0.0.1:0".parse().unwrap()).expect("metrics listener");
        let addr = server.local_addr();
        let cfg = CaptureConfig {
            queues: Some(2),
            sockets_per_queue: S,
            ..CaptureConfig::new(cap_if)
        };
        // Flow records also go to a Zeek conn.log, through the same writer.
        let run = RunConfig {
            record_ring: 4096,
            outputs: vec![
                OutputSpec::Eve(Some(path)),
                format!("zeek:{}", zeek_dir.display()).parse().unwrap(),
            ],
            // The tracker's flow IDs say which worker wrote a record.
            eve: EveOptions {
                extras: true,
                in_iface: None,
            },
            ..RunConfig::default()
        };
        let live = LiveCapture::start(&cfg, &run).expect("live capture starts");
        let info = live.info().clone();
        // Before any traffic, as the CLI publishes at start.
        let idle = publish_and_scrape(&server, &live.snapshot().unwrap(), &info);
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
        let text = publish_and_scrape(&server, &snap, &info);
        let again = scrape(addr);
        let elsewhere: Vec<_> = ["/", "/metric", "/metrics/x", "/index.html"]
            .iter()
            .map(|p| get(addr, p).0)
            .collect();
        let report = live.stop().unwrap();
        // The final figures: every flow ended, every batch's ring samples.
        let last = publish_and_scrape(&server, &report.last, &report.datapath);
        Scrapes {
            idle,
            text,
            again,
            last,
            elsewhere,
            snap,
            report,
            info,
        }
    });
    ready_rx.recv().unwrap();
    let flows = fsgen::send(&bed, N, M, 2, 50_000);
    sent_tx.send(N).unwrap();
    let Scrapes {
        idle,
        text,
        again,
        last: last_text,
        elsewhere,
        snap,
        report,
        info,
    } = capture.join().expect("capture thread");
    // Prometheus's own checker accepts the live scrapes as they are.
    promtool_accepts(&text);
    promtool_accepts(&last_text);
    // The same series in the same order in every scrape, none twice: idle,
    // under traffic, twice in a row, after the stop.
    let order = series(&text);
    let mut unique = order.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), order.len(), "a series listed twice");
    assert_eq!(again, text, "two scrapes in a row");
    assert_eq!(series(&idle), order);
    assert_eq!(series(&last_text), order);
    // Only /metrics serves the metrics.
    assert!(
        elsewhere.iter().all(|s| s == "HTTP/1.1 404 Not Found"),
        "{elsewhere:?}"
    );
    // What the datapath obtained, as one info series with static labels.
    let want = format!(
        "flowscope_datapath_info{{xdp_mode=\"drv\",metadata=\"{}\",attach=\"link\",zero_copy=\"false\"}} 1",
        info.metadata.label()
    );
    assert!(text.lines().any(|l| l == want), "no {want} in {text}");
    ring_levels_scraped(&last_text, &report.last.sockets);
    // Every histogram is the merged shards' log2 histogram, bucket by bucket.
    let t = &report.last.total;
    histogram_is(
        &last_text,
        "flowscope_xsk_batch_frames",
        "",
        &t.batch_sizes,
        1.0,
    );
    let ended = &t.tracker;
    let durations = &ended.flow_duration_ns;
    histogram_is(
        &last_text,
        "flowscope_flow_duration_seconds",
        "",
        durations,
        1e9,
    );
    for (side, h) in ["initiator", "responder"]
        .iter()
        .zip(&ended.reassembler_high_watermark_bytes)
    {
        let labels = format!("side=\"{side}\",");
        histogram_is(
            &last_text,
            "flowscope_reassembler_high_watermark_bytes",
            &labels,
            h,
            1.0,
        );
    }

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
    assert_eq!(report.writer.records, u64::from(M));
    assert_eq!(report.writer.outputs.len(), 2, "EVE and Zeek");
    for o in &report.writer.outputs {
        assert_eq!((o.written, o.dropped), (u64::from(M), 0), "{}", o.spec);
    }
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
        assert_eq!(flow["reason"], "shutdown");
        assert_eq!(r["end_reason"], "force_closed");
        assert_eq!(r["in_iface"], bed.cap_if.as_str());
        // Worker w serves queue w / S; its flow ids carry w in the top bits.
        let worker = r["tracker_flow_id"].as_u64().unwrap() >> 48;
        assert_eq!(
            worker as u32 / S,
            f.queue,
            "record of a queue-{} flow from worker {worker}",
            f.queue
        );
    }
    assert_eq!(seen.len(), flows.len());
    // Per flow sent, its frames and bytes in the scraped histograms.
    let (mut packets, mut bytes) = (Log2Histogram::default(), Log2Histogram::default());
    for f in &flows {
        packets.record(f.frames_ab + f.frames_ba);
        bytes.record(f.bytes_ab + f.bytes_ba);
    }
    histogram_is(&last_text, "flowscope_flow_packets", "", &packets, 1.0);
    histogram_is(&last_text, "flowscope_flow_bytes", "", &bytes, 1.0);
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
            assert_eq!(level.entries.count(), s.batches);
            let name = "flowscope_xsk_ring_batch_entries";
            assert_eq!(
                metric(text, &format!("{name}_count"), &labels),
                s.batches,
                "{ring} ring of worker {}: one sample per batch",
                w.id.index
            );
            histogram_is(text, name, &format!("{labels},"), &level.entries, 1.0);
            let last = metric(text, "flowscope_xsk_ring_entries", &labels);
            assert_eq!(last, u64::from(level.last));
            assert!(last <= u64::from(size));
            // Every sample lies within the ring: all counted at the first
            // bound at or above its size.
            let le = Log2Histogram::upper_bound(Log2Histogram::bucket_of(u64::from(size)));
            let at_size = format!("{name}_bucket{{{labels},le=\"{le}\"}} {}", s.batches);
            assert!(text.lines().any(|l| l == at_size), "no {at_size}");
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
