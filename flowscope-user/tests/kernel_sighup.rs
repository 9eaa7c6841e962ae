//! SIGHUP in the middle of a capture with traffic flowing, as logrotate
//! does it: rename every file output, then `kill -HUP`. The capture goes
//! on; each reopen starts new files at the same paths; no record is lost
//! or written twice across the reopens (every SYN of the flood is one flow
//! record, in exactly one of the EVE files and one of the conn.logs); and
//! the books balance per output in `--summary-json`.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::capture::start;
use common::{kernel_tests_enabled, netns::TestBed};

/// Record lines of every file in `dir` whose name starts with `prefix`.
fn lines(dir: &Path, prefix: &str) -> (usize, Vec<String>) {
    let mut files = 0;
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p.file_name().unwrap().to_str().unwrap().starts_with(prefix) {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&p).unwrap();
        out.extend(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    (files, out)
}

#[test]
fn sighup_reopens_every_file_and_loses_or_repeats_no_record() {
    if !kernel_tests_enabled("sighup_reopens_every_file_and_loses_or_repeats_no_record") {
        return;
    }
    const N: u64 = 8_000;
    const HUPS: usize = 4;
    let bed = TestBed::new(2);
    let dir = std::env::temp_dir().join(format!("{}.sighup", bed.cap_ns));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (eve, zeek, summary) = (dir.join("eve.json"), dir.join("zeek"), dir.join("sum.json"));
    let capture = start(
        &bed,
        &[
            "--plain",
            "--tcp-timeout",
            "0.5",
            "-o",
            &format!("eve:{}", eve.display()),
            "-o",
            &format!("zeek:{}", zeek.display()),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    );
    let fsgen = std::env::var("FLOWSCOPE_FSGEN").expect("FLOWSCOPE_FSGEN");
    // Bounded: N SYNs at 2000 per second.
    let mut sender = Command::new("ip")
        .args(["netns", "exec", &bed.gen_ns, &fsgen, "--iface", &bed.gen_if])
        .args(["--frames", &N.to_string(), "--syn-flood", "--queues", "2"])
        .args(["--rate", "2000"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for i in 0..HUPS {
        std::thread::sleep(Duration::from_millis(700));
        // logrotate's rename, then its postrotate `kill -HUP`.
        std::fs::rename(&eve, dir.join(format!("eve.json.{i}"))).unwrap();
        std::fs::rename(zeek.join("conn.log"), zeek.join(format!("conn.log.{i}"))).unwrap();
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(capture.id() as i32, libc::SIGHUP) }, 0);
    }
    assert!(sender.wait().unwrap().success());
    // Let the last SYNs time out, then stop.
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(capture.id() as i32, libc::SIGINT) };
    let o = capture.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "the capture survived every SIGHUP: {err}"
    );
    assert_eq!(
        err.matches("SIGHUP: reopening every file output").count(),
        HUPS,
        "{err}"
    );
    // EVE: every flow exactly once across the files.
    let (files, eve_lines) = lines(&dir, "eve.json");
    assert_eq!(files, HUPS + 1, "one file per reopen, and the last");
    let mut seen = HashSet::new();
    let mut flows = 0u64;
    for l in &eve_lines {
        let r: serde_json::Value = serde_json::from_str(l).expect("whole JSON lines");
        if r["event_type"] == "flow" {
            flows += 1;
            let key = format!("{}:{}", r["src_ip"], r["src_port"]);
            assert!(seen.insert(key), "a flow written twice: {l}");
        }
    }
    assert_eq!(flows, N, "every SYN's flow written once");
    // The reopens really split the stream: records on both sides of them.
    let with_flows = (0..HUPS)
        .map(|i| dir.join(format!("eve.json.{i}")))
        .chain([eve.clone()])
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("\"event_type\":\"flow\"")
        })
        .count();
    assert!(with_flows >= 3, "flow records in only {with_flows} files");
    // conn.log: the same, and every rotated log closed.
    let (files, conn_lines) = lines(&zeek, "conn.log");
    assert_eq!(files, HUPS + 1);
    assert_eq!(conn_lines.len() as u64, N);
    let uniq: HashSet<&String> = conn_lines.iter().collect();
    assert_eq!(uniq.len() as u64, N, "no conn.log line twice");
    for i in 0..HUPS {
        let t = std::fs::read_to_string(zeek.join(format!("conn.log.{i}"))).unwrap();
        assert!(
            t.lines().last().unwrap().starts_with("#close"),
            "conn.log.{i}"
        );
    }
    // The books, per output.
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["reopens"], HUPS as u64);
    let outs = s["outputs"].as_array().unwrap();
    assert_eq!(outs[0]["output"], "eve0");
    assert_eq!(outs[0]["written"], eve_lines.len() as u64);
    assert_eq!(outs[1]["output"], "zeek1");
    assert_eq!(outs[1]["written"], N);
    for o in outs {
        assert_eq!(o["records"], o["written"], "{o}");
        assert_eq!(
            (o["dropped"].as_u64(), o["failed"].as_u64()),
            (Some(0), Some(0)),
            "{o}"
        );
    }
    assert_eq!(s["records_dropped"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
