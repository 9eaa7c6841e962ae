//! A SYN flood of distinct spoofed flows through a 2-queue veth into a live
//! capture whose flow table is far smaller than the flood: the table never
//! holds more than its capacity, every flow beyond it is evicted and
//! counted, and long connections sent during the flood, which completed
//! their handshake, are never evicted: each has one record with exactly the
//! frames and bytes fsgen sent, ended by its FINs.

mod common;

use std::{
    collections::HashMap,
    net::IpAddr,
    process::Command,
    sync::mpsc,
    time::{Duration, Instant},
};

use common::{fsgen::ManifestFlow, kernel_tests_enabled, netns::TestBed};
use flowscope::capture::{CaptureConfig, RingSizes};
use flowscope::pipeline::PipelineConfig;
use flowscope::runtime::LiveCapture;
use flowscope::tracker::EndReason;

/// Flood SYNs, each a distinct flow.
const FLOOD: u64 = 300_000;
/// Long connections sent during the flood.
const ESTABLISHED: u32 = 20;
/// Flow table capacity of each of the two workers.
const MAX_FLOWS: usize = 2048;
const QUEUES: u32 = 2;

/// Runs `fsgen --syn-flood` in the sending namespace; returns the frames
/// sent and the connections' manifest.
fn send_flood(bed: &TestBed) -> (u64, Vec<ManifestFlow>) {
    let fsgen = std::env::var("FLOWSCOPE_FSGEN")
        .expect("FLOWSCOPE_FSGEN: path of the fsgen binary (cargo xtask test sets it)");
    let manifest = std::env::temp_dir().join(format!("{}.flood.manifest", bed.gen_ns));
    let out = Command::new("ip")
        .args(["netns", "exec", &bed.gen_ns, &fsgen, "--iface", &bed.gen_if])
        .args(["--syn-flood", "--frames", &FLOOD.to_string()])
        .args(["--established", &ESTABLISHED.to_string(), "--size", "300"])
        .args(["--queues", &QUEUES.to_string()])
        // Debug builds of the pipeline are slow; the test checks
        // accounting, not speed.
        .args(["--rate", "40000", "--manifest", manifest.to_str().unwrap()])
        .output()
        .expect("run fsgen");
    assert!(
        out.status.success(),
        "fsgen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("fsgen prints one JSON line");
    let conns: Vec<ManifestFlow> = std::fs::read_to_string(&manifest)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let _ = std::fs::remove_file(&manifest);
    (report["sent"].as_u64().unwrap(), conns)
}

#[test]
fn flood_evicts_unanswered_flows_and_keeps_established_ones() {
    if !kernel_tests_enabled("flood_evicts_unanswered_flows_and_keeps_established_ones") {
        return;
    }
    let bed = TestBed::new(QUEUES);
    let out = std::env::temp_dir().join(format!("{}.flood.eve.json", bed.cap_ns));
    let (cap_if, path) = (bed.cap_if.clone(), out.clone());
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel::<u64>();
    let capture = bed.in_cap_ns(move || {
        // Rings as deep as the benchmarks', so a busy machine does not
        // drop frames.
        let cfg = CaptureConfig {
            queues: Some(QUEUES),
            rings: RingSizes {
                rx_ring: 8192,
                fill_ring: 16384,
                ..RingSizes::default()
            },
            ..CaptureConfig::new(cap_if)
        };
        let mut pipeline = PipelineConfig::default();
        pipeline.tracker.max_flows = MAX_FLOWS;
        let run = common::eve_run(pipeline, 1 << 16, path);
        let live = LiveCapture::start(&cfg, &run).expect("live capture starts");
        ready_tx.send(()).unwrap();
        // Occupancy sampled through the flood, until every frame went
        // through a worker (or nothing moved for 3 s: frames were lost).
        let mut most_active = 0;
        let mut sent = None;
        let (mut seen, mut moved) = (0, Instant::now());
        let snap = loop {
            let snap = live.snapshot().unwrap();
            for s in &snap.shards {
                assert!(s.flows_active <= MAX_FLOWS as u64, "{s:?}");
                most_active = most_active.max(s.flows_active);
            }
            sent = sent.or_else(|| sent_rx.try_recv().ok());
            let packets = snap.total.tracker.packets;
            if packets != seen {
                (seen, moved) = (packets, Instant::now());
            }
            let stalled = sent.is_some() && moved.elapsed() > Duration::from_secs(3);
            if sent.is_some_and(|n| packets >= n) || stalled {
                break snap;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (snap, most_active, live.stop().unwrap())
    });
    ready_rx.recv().unwrap();
    let (sent, conns) = send_flood(&bed);
    sent_tx.send(sent).unwrap();
    let (snap, most_active, report) = capture.join().expect("capture thread");

    // Every frame arrived and was tracked.
    let conn_frames: u64 = conns.iter().map(|c| c.frames_ab + c.frames_ba).sum();
    assert_eq!(sent, FLOOD + conn_frames);
    let received: u64 = report
        .last
        .sockets
        .iter()
        .map(|w| w.socket.rx_packets)
        .sum();
    assert_eq!(received, sent);
    let t = &snap.total.tracker;
    assert_eq!(t.packets, sent);

    // Every flood frame made a flow; the table filled and stayed bounded.
    let capacity = MAX_FLOWS as u64 * u64::from(QUEUES);
    assert_eq!(t.created_total(), FLOOD + u64::from(ESTABLISHED));
    assert_eq!(t.created_total(), t.ended_total() + t.flows_active);
    assert_eq!(most_active, MAX_FLOWS as u64);
    for s in &snap.shards {
        assert_eq!(s.flow_capacity, MAX_FLOWS as u64);
        assert_eq!(s.flows_active, MAX_FLOWS as u64);
    }
    assert_eq!(snap.total.flows_active, capacity);
    // Each flow beyond the capacity evicted one, and only evictions ended
    // flows during the flood.
    assert_eq!(t.ended(EndReason::Evicted), t.created_total() - capacity);
    assert_eq!(t.ended_total(), t.ended(EndReason::Evicted));

    // After the stop every flow ended once, and every record was written
    // or counted as dropped.
    let end = &report.last.total;
    assert_eq!(end.tracker.created_total(), end.tracker.ended_total());
    assert_eq!(
        end.records_sent + end.records_dropped,
        end.tracker.ended_total()
    );
    assert_eq!(report.writer.records, end.records_sent);

    // Each connection: one record with exactly what was sent, ended by FINs.
    assert_eq!(conns.len(), ESTABLISHED as usize);
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let mut records: HashMap<(IpAddr, u16, IpAddr, u16), Vec<serde_json::Value>> = HashMap::new();
    let mut evicted = 0;
    for line in text.lines() {
        // Most lines are evicted flood flows: counted without parsing.
        if line.contains("\"evicted\"") {
            evicted += 1;
            continue;
        }
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        if r["event_type"] != "flow" {
            continue;
        }
        assert_ne!(r["end_reason"], "evicted", "{line}");
        let key = (
            r["src_ip"].as_str().unwrap().parse().unwrap(),
            r["src_port"].as_u64().unwrap() as u16,
            r["dest_ip"].as_str().unwrap().parse().unwrap(),
            r["dest_port"].as_u64().unwrap() as u16,
        );
        records.entry(key).or_default().push(r);
    }
    // Every eviction has its record, unless the ring to the writer was full.
    let evictions = end.tracker.ended(EndReason::Evicted);
    assert!(evicted <= evictions && evictions <= evicted + end.records_dropped);
    for c in &conns {
        assert_eq!(c.proto, 6);
        let rs = records
            .get(&(c.a, c.a_port, c.b, c.b_port))
            .unwrap_or_else(|| {
                panic!("no record for {}:{} -> {}:{}", c.a, c.a_port, c.b, c.b_port)
            });
        assert_eq!(rs.len(), 1, "{rs:?}");
        let flow = &rs[0]["flow"];
        // Closed by FINs: Suricata's `timeout` (its closed-state timeout).
        assert_eq!(rs[0]["end_reason"], "fin", "{flow}");
        assert_eq!(flow["reason"], "timeout", "{flow}");
        assert_eq!(
            (
                flow["pkts_toserver"].as_u64(),
                flow["pkts_toclient"].as_u64()
            ),
            (Some(c.frames_ab), Some(c.frames_ba))
        );
        assert_eq!(
            (
                flow["bytes_toserver"].as_u64(),
                flow["bytes_toclient"].as_u64()
            ),
            (Some(c.bytes_ab), Some(c.bytes_ba))
        );
    }
}
