//! `flowscope read -` from a slow pipe, stopped by SIGINT or SIGTERM: it
//! stops reading, ends every open flow (`force_closed` unless its timeout
//! passed or it closed), writes every record, prints the summary and exits
//! with 128 + the signal's number, as a shell reports an interrupted
//! command.

use std::io::Write;
use std::process::{Command, Stdio};

const CAPTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/pcaps/zeek__echo-connections.pcap"
);

/// Bytes written before the signal: well past the pipe's buffer (64 KiB),
/// so that a blocking write returning means flowscope has read most of
/// them; well short of the whole file, so flows are still open.
const FED: usize = 2 << 20;

fn interrupted_by(signal: libc::c_int, workers: &str) {
    let bytes = std::fs::read(CAPTURE).expect("shared capture");
    assert!(bytes.len() > 2 * FED);
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .args(["read", "--workers", workers, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flowscope");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&bytes[..FED])
        .expect("flowscope reads the pipe");
    stdin.flush().unwrap();
    // The pipe stays open: flowscope now waits in read(2) for more.
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let out = child.wait_with_output().expect("flowscope exits");
    drop(stdin);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(128 + signal),
        "exit status for signal {signal}:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    // The summary, and the records it counts.
    let packets: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("packets: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("summary line");
    let flows: usize = err
        .lines()
        .find_map(|l| l.strip_prefix("flows: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("flows line");
    assert!(packets > 1000, "flowscope read the pipe: {err}");
    let text = String::from_utf8(out.stdout).unwrap();
    // The books balance: every record the output took was written.
    let n = text.lines().count();
    assert!(
        err.contains(&format!(
            "output eve0 (-): {n} records, {n} written, 0 dropped, 0 failed"
        )),
        "{err}"
    );
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole JSON lines"))
        .filter(|r: &serde_json::Value| r["event_type"] == "flow")
        .collect();
    assert_eq!(records.len(), flows, "every flow record written");
    let in_records: u64 = records
        .iter()
        .map(|r| {
            r["flow"]["pkts_toserver"].as_u64().unwrap()
                + r["flow"]["pkts_toclient"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(in_records, packets, "every packet read is in a record");
    // The echo connections last the whole capture: cut short, they are
    // open, and end as Suricata's open flows at shutdown.
    let forced = records
        .iter()
        .filter(|r| r["flow"]["reason"] == "shutdown")
        .count();
    assert!(forced > 100, "open flows ended at shutdown: {forced}");
}

#[test]
fn sigint_with_workers() {
    interrupted_by(libc::SIGINT, "2");
}

#[test]
fn sigterm_inline() {
    interrupted_by(libc::SIGTERM, "1");
}
