//! A shutdown in the middle of traffic loses no flow: every flow that had
//! arrived is written exactly once, and the records account for every frame
//! the XDP program redirected before it was detached.

mod common;

use std::{
    collections::HashSet,
    process::Stdio,
    sync::mpsc,
    time::{Duration, Instant},
};

use common::{fsgen, kernel_tests_enabled, netns::TestBed};
use flowscope::capture::{CaptureConfig, RingSizes};
use flowscope::pipeline::PipelineConfig;
use flowscope::runtime::LiveCapture;
use flowscope_common::Counter;

#[test]
fn stop_mid_traffic_writes_every_flow_once() {
    if !kernel_tests_enabled("stop_mid_traffic_writes_every_flow_once") {
        return;
    }
    const N: u64 = 400_000;
    const M: u32 = 500;
    let bed = TestBed::new(2);
    let out = std::env::temp_dir().join(format!("{}.eve.json", bed.cap_ns));
    let (cap_if, path) = (bed.cap_if.clone(), out.clone());
    let (ready_tx, ready_rx) = mpsc::channel();
    let capture = bed.in_cap_ns(move || {
        let cfg = CaptureConfig {
            queues: Some(2),
            sockets_per_queue: 1,
            rings: RingSizes {
                rx_ring: 8192,
                fill_ring: 16384,
                ..RingSizes::default()
            },
            ..CaptureConfig::new(cap_if)
        };
        let run = common::eve_run(PipelineConfig::default(), 1 << 16, path);
        let live = LiveCapture::start(&cfg, &run).expect("live capture starts");
        ready_tx.send(()).unwrap();
        // Stop once a good part, but not all, of the traffic went through.
        let deadline = Instant::now() + Duration::from_secs(60);
        while live.snapshot().unwrap().xdp.get(Counter::All).packets < N / 10
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        live.stop().unwrap()
    });
    ready_rx.recv().unwrap();
    let mut gen_proc = fsgen::command(&bed, N, M, 2)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let report = capture.join().expect("capture thread");
    assert!(gen_proc.wait().unwrap().success());

    let redirected = report.last.xdp.get(Counter::Redirected).packets;
    assert!(
        redirected > 0 && redirected < N,
        "stopped mid-traffic: {redirected} of {N}"
    );
    let socket_drops: u64 = report
        .last
        .sockets
        .iter()
        .map(|w| w.socket.rx_dropped + w.socket.rx_ring_full)
        .sum();
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let mut keys = HashSet::new();
    let mut packets = 0u64;
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (
            r["src_ip"].to_string(),
            r["src_port"].to_string(),
            r["dest_ip"].to_string(),
            r["dest_port"].to_string(),
        );
        assert!(keys.insert(key), "a flow written twice: {line}");
        packets += r["flow"]["pkts_toserver"].as_u64().unwrap()
            + r["flow"]["pkts_toclient"].as_u64().unwrap();
    }
    // fsgen sends its flows round-robin, so after N/10 frames every one had
    // arrived: every flow is there, once.
    assert_eq!(keys.len(), M as usize);
    assert_eq!(report.writer.records, u64::from(M));
    assert_eq!(report.last.total.records_dropped, 0);
    // Every redirected frame reached a record, or a counted socket drop.
    assert_eq!(
        packets + socket_drops,
        redirected,
        "records {packets} + drops {socket_drops} vs redirected {redirected}"
    );
}
