//! The multi-core runtime on a 2-queue veth with 2 sockets per queue: every
//! flow's record comes from exactly one worker with the counts that were
//! sent, and the Prometheus scrape equals the merged shards and the traffic.

mod common;

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{IpAddr, TcpStream},
    sync::mpsc,
    time::{Duration, Instant},
};

use common::{fsgen, kernel_tests_enabled, netns::TestBed};
use flowscope::capture::CaptureConfig;
use flowscope::pipeline::PipelineConfig;
use flowscope::runtime::{Destination, LiveCapture, prometheus};

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
        let text = scrape(&metrics_addr);
        (snap, text, live.stop().unwrap())
    });
    ready_rx.recv().unwrap();
    let flows = fsgen::send(&bed, N, M, 2, 50_000);
    sent_tx.send(N).unwrap();
    let (snap, text, report) = capture.join().expect("capture thread");

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
