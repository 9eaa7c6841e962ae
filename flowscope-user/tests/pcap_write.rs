//! `--write-pcap` through `read`, checked with tshark and tcpdump: every
//! file tshark reads without a warning; the frames written (time to the
//! nanosecond, lengths, bytes) are exactly the input frames of the chosen
//! flows, in order; `--pcap-flow-bytes` keeps each flow's first bytes;
//! rotation and the total bound keep the newest frames and count the
//! files removed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

fn capture(name: &str) -> PathBuf {
    Path::new(PCAPS).join(name)
}

/// A fresh path of this test process (tests run in parallel: each call
/// gets its own).
fn temp(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("fs-pcap-write-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// Runs `flowscope read FILE` (one worker, flows to /dev/null) with
/// `extra`; its summary JSON.
fn read(file: &Path, extra: &[&str]) -> serde_json::Value {
    let summary = temp("summary.json");
    let o: Output = Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .arg("read")
        .arg(file)
        .args(["--workers", "1", "-o", "eve:/dev/null", "--summary-json"])
        .arg(&summary)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let _ = std::fs::remove_file(&summary);
    s
}

/// tshark's view of each frame of `file`: time, length on the wire,
/// captured length, MD5 of the bytes. Fails on any warning.
fn frames(file: &Path) -> Vec<String> {
    let o = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-o", "frame.generate_md5_hash:TRUE", "-T", "fields"])
        .args(["-e", "frame.time_epoch", "-e", "frame.len"])
        .args(["-e", "frame.cap_len", "-e", "frame.md5_hash"])
        .output()
        .expect("tshark (cargo xtask deps installs it)");
    let err = String::from_utf8_lossy(&o.stderr);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("Running as user"))
        .collect();
    assert!(
        o.status.success() && warnings.is_empty(),
        "tshark on {}: {err}",
        file.display()
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `got` equals `want`, frame by frame (the first difference shown).
fn same(got: &[String], want: &[String], what: &str) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!("{what}: frame {i}: {} instead of {}", got[i], want[i]);
    }
    assert_eq!(got.len(), want.len(), "{what}: frames");
}

/// The pcapng files of `dir`, oldest first.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let n = p
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.rsplit('-').next())
                .and_then(|n| n.parse().ok())
                .expect("flowscope-<run>-<n>.pcapng");
            (n, p)
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// What libpcap keeps of `file` for `expr` (tcpdump -w).
fn tcpdump(file: &Path, expr: &str) -> PathBuf {
    let out = temp("tcpdump.pcap");
    let o = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(file)
        .arg("-w")
        .arg(&out)
        .arg(expr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn every_frame_of_every_flow_is_written_as_read() {
    // Captures whose only frames in no flow are non-IP ones.
    for name in [
        "ndpi__android.pcap",
        "tcpflow__test7-three-flows.pcap",
        "zeek__http_methods.pcap",
        "sanders__tcp_retransmissions.pcapng",
    ] {
        let dir = temp(name);
        let s = read(&capture(name), &["--write-pcap", dir.to_str().unwrap()]);
        for (reason, n) in s["packets_unmatched"].as_object().unwrap() {
            assert!(reason == "not_ip" || n == 0, "{name}: unmatched {reason}");
        }
        let ip = tcpdump(&capture(name), "ip or ip6 or (vlan and (ip or ip6))");
        let want = frames(&ip);
        let written: Vec<String> = files(&dir).iter().flat_map(|f| frames(f)).collect();
        same(&written, &want, name);
        assert_eq!(s["pcap"]["frames_written"], want.len());
        assert_eq!(s["pcap"]["frames_ring_full"], 0);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&ip);
    }
}

#[test]
fn pcap_flows_chooses_flows_by_their_first_frame() {
    let file = capture("ndpi__WebattackXSS.pcap");
    let expr = "host 172.16.0.1 and (port 59042 or port 58360)";
    let dir = temp("flows");
    read(
        &file,
        &["--write-pcap", dir.to_str().unwrap(), "--pcap-flows", expr],
    );
    let kept = tcpdump(&file, expr);
    let want = frames(&kept);
    assert!(want.len() > 400, "{}", want.len());
    let written: Vec<String> = files(&dir).iter().flat_map(|f| frames(f)).collect();
    same(&written, &want, expr);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&kept);
}

#[test]
fn pcap_flow_bytes_keeps_each_flows_first_bytes() {
    const LIMIT: u64 = 1000;
    let file = capture("ndpi__android.pcap");
    let dir = temp("flow-bytes");
    let limit = LIMIT.to_string();
    let s = read(
        &file,
        &[
            "--write-pcap",
            dir.to_str().unwrap(),
            "--pcap-flow-bytes",
            &limit,
        ],
    );
    let written = s["pcap"]["frames_written"].as_u64().unwrap();
    let past = s["pcap"]["frames_past_flow_bytes"].as_u64().unwrap();
    assert_eq!(written + past, s["packets_in_flows"].as_u64().unwrap());
    assert!(past > 0 && written > 0);
    // Read back: each flow holds its first LIMIT bytes (or all it had),
    // and not a frame more than crossing the limit takes.
    let whole = flows(&file);
    let out = files(&dir);
    assert_eq!(out.len(), 1);
    let cut = flows(&out[0]);
    assert_eq!(cut.len(), whole.len(), "every flow keeps its first frame");
    for (key, (pkts, bytes)) in &cut {
        let (all_pkts, all_bytes) = whole[key];
        assert!(*pkts <= all_pkts, "{key}");
        assert!(
            *bytes >= all_bytes.min(LIMIT),
            "{key}: {bytes} of {all_bytes}"
        );
        assert!(*bytes < LIMIT + 1514, "{key}: {bytes}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each flow of `file` (sorted endpoints) with its packets and bytes.
fn flows(file: &Path) -> std::collections::BTreeMap<String, (u64, u64)> {
    let eve = temp("flows.json");
    let o = Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .arg("read")
        .arg(file)
        .args(["--workers", "1", "--no-l7", "-o"])
        .arg(format!("eve:{}", eve.display()))
        .output()
        .unwrap();
    assert!(o.status.success());
    let text = std::fs::read_to_string(&eve).unwrap();
    let _ = std::fs::remove_file(&eve);
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event_type"] == "flow")
        .map(|r| {
            let mut ends = [
                format!("{}:{}", r["src_ip"], r["src_port"]),
                format!("{}:{}", r["dest_ip"], r["dest_port"]),
            ];
            ends.sort();
            let f = &r["flow"];
            let n = |k: &str| f[k].as_u64().unwrap();
            (
                format!("{} {} {}", r["proto"], ends[0], ends[1]),
                (
                    n("pkts_toserver") + n("pkts_toclient"),
                    n("bytes_toserver") + n("bytes_toclient"),
                ),
            )
        })
        .collect()
}

#[test]
fn rotation_and_the_total_bound_keep_the_newest_frames() {
    const FILE: u64 = 200_000;
    const MAX: u64 = 1_000_000;
    let file = capture("ndpi__WebattackXSS.pcap");
    let dir = temp("rotate");
    let s = read(
        &file,
        &[
            "--write-pcap",
            dir.to_str().unwrap(),
            "--pcap-rotate-bytes",
            &FILE.to_string(),
            "--pcap-max-bytes",
            &MAX.to_string(),
        ],
    );
    let p = &s["pcap"];
    let left = files(&dir);
    let removed = p["files_removed"].as_u64().unwrap();
    assert!(removed > 0, "{p}");
    assert_eq!(p["files"].as_u64().unwrap(), left.len() as u64 + removed);
    let total: u64 = left
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(total <= MAX + FILE + 2000, "{total}");
    // What is left is the end of the stream, frame for frame.
    let all = frames(&file);
    let kept: Vec<String> = left.iter().flat_map(|f| frames(f)).collect();
    assert!(!kept.is_empty());
    same(&kept, &all[all.len() - kept.len()..], "the newest frames");
    assert_eq!(p["frames_written"], all.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pcap_options_without_write_pcap_are_refused() {
    let o = Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .arg("read")
        .arg(capture("ndpi__android.pcap"))
        .args(["--pcap-flows", "tcp"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("need --write-pcap DIR"), "{err}");
}

/// `--pcap-flows sni:DOMAIN`: the flows whose ClientHello (as tshark reads
/// it) names a server in the domain, each from the moment its TLS record
/// is formed to its end, and nothing of any other flow.
#[test]
fn pcap_flows_sni_writes_the_rest_of_the_flows_in_the_domain() {
    let file = capture("ndpi__android.pcap");
    let dir = temp("sni");
    read(
        &file,
        &[
            "--write-pcap",
            dir.to_str().unwrap(),
            "--pcap-flows",
            "sni:google.com",
        ],
    );
    // Each TCP flow's frames (by client and server port) in order, and the
    // server names tshark finds in the hellos.
    let rows = |f: &Path, extra: &[&str]| -> Vec<Vec<String>> {
        let o = Command::new("tshark")
            .arg("-r")
            .arg(f)
            .args(["-o", "frame.generate_md5_hash:TRUE", "-T", "fields"])
            .args([
                "-e",
                "tcp.srcport",
                "-e",
                "tcp.dstport",
                "-e",
                "frame.md5_hash",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    };
    let key = |r: &[String]| {
        let mut p = [r[0].clone(), r[1].clone()];
        p.sort();
        p.join("-")
    };
    let mut input: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in rows(&file, &["-Y", "tcp"]) {
        input.entry(key(&r)).or_default().push(r[2].clone());
    }
    let hellos = rows(
        &file,
        &[
            "-Y",
            "tls.handshake.type == 1",
            "-e",
            "tls.handshake.extensions_server_name",
        ],
    );
    let chosen: std::collections::BTreeSet<String> = hellos
        .iter()
        .filter(|r| r[3] == "google.com" || r[3].ends_with(".google.com"))
        .map(|r| key(r))
        .collect();
    assert!(chosen.len() >= 5, "{chosen:?}");
    let mut written: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in files(&dir) {
        for r in rows(&f, &[]) {
            written.entry(key(&r)).or_default().push(r[2].clone());
        }
    }
    assert_eq!(
        written
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        chosen,
        "the flows in the domain, and only those"
    );
    for (k, frames) in &written {
        let all = &input[k];
        assert!(frames.len() < all.len(), "{k}: not before its hello");
        same(frames, &all[all.len() - frames.len()..], k);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
