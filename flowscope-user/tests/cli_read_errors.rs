//! `flowscope read` on bad input: a missing file, damaged captures built
//! from a good capture's bytes, bad flags and an unwritable output. Each
//! must end with a non-zero exit and one error line naming the problem
//! (with the byte offset for file damage), never a panic, and the records
//! formed before the damage must still be written: exactly those written
//! for a clean file holding only the records before it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{flowscope, stderr};

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");
/// A classic little-endian pcap of three TCP flows.
const GOOD: &str = "tcpflow__test7-three-flows.pcap";
const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// A failed run: non-zero exit, no panic, exactly one error line, which
/// contains every one of `needles`. Returns that line.
fn assert_one_error(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "exit status {:?}; stderr:\n{err}",
        o.status
    );
    assert!(!err.contains("panicked"), "panic:\n{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("error") || l.starts_with("flowscope:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{err}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} missing from {:?}", lines[0]);
    }
    lines[0].to_owned()
}

/// The good capture's bytes and the byte offset of each record.
fn good() -> (Vec<u8>, Vec<usize>) {
    let bytes = std::fs::read(Path::new(PCAPS).join(GOOD)).expect("shared capture");
    assert_eq!(
        bytes[..4],
        [0xd4, 0xc3, 0xb2, 0xa1],
        "{GOOD} is little-endian pcap"
    );
    let mut offsets = Vec::new();
    let mut at = FILE_HEADER;
    while at + RECORD_HEADER <= bytes.len() {
        offsets.push(at);
        let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += RECORD_HEADER + incl;
    }
    assert_eq!(at, bytes.len(), "{GOOD} ends on a record boundary");
    assert!(offsets.len() > 8, "enough records to damage the middle");
    (bytes, offsets)
}

fn temp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowscope-read-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Reads `damaged`, expects an error naming `needles`, and checks that its
/// records are exactly those of the clean file cut at `clean_end`.
fn damaged_keeps_records(name: &str, damaged: &[u8], clean_end: usize, needles: &[&str]) {
    let path = temp(name, damaged);
    let out = flowscope(&["read", path.to_str().unwrap()]);
    assert_one_error(&out, needles);
    let clean = temp(&format!("{name}-clean"), &damaged[..clean_end]);
    let reference = flowscope(&["read", clean.to_str().unwrap()]);
    assert!(
        reference.status.success(),
        "clean prefix: {}",
        stderr(&reference)
    );
    // Workers write their records as they go: compare them as sets.
    let sorted = |b: Vec<u8>| {
        let mut lines = without_flow_ids(&b);
        lines.sort();
        lines
    };
    let records = sorted(out.stdout);
    assert!(!records.is_empty(), "no records written before the damage");
    assert_eq!(records, sorted(reference.stdout));
}

#[test]
fn missing_file() {
    let o = flowscope(&["read", "/nonexistent-flowscope-dir/none.pcap"]);
    assert_one_error(&o, &["/nonexistent-flowscope-dir/none.pcap"]);
}

#[test]
fn bad_magic() {
    let (mut bytes, _) = good();
    bytes[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    let path = temp("bad-magic.pcap", &bytes);
    let o = flowscope(&["read", path.to_str().unwrap()]);
    assert_one_error(&o, &["magic", "0xdeadbeef", "offset 0"]);
    assert!(o.stdout.is_empty());
}

#[test]
fn truncated_record_header() {
    let (bytes, offsets) = good();
    let at = offsets[offsets.len() / 2];
    let damaged = &bytes[..at + RECORD_HEADER - 5];
    damaged_keeps_records(
        "trunc-header.pcap",
        damaged,
        at,
        &["truncated header", &format!("offset {at}")],
    );
}

#[test]
fn truncated_packet() {
    let (bytes, offsets) = good();
    let at = offsets[offsets.len() / 2];
    let damaged = &bytes[..at + RECORD_HEADER + 3];
    damaged_keeps_records(
        "trunc-packet.pcap",
        damaged,
        at,
        &["truncated packet", &format!("offset {at}")],
    );
}

#[test]
fn corrupt_record_length() {
    let (mut bytes, offsets) = good();
    let at = offsets[offsets.len() / 2];
    bytes[at + 8..at + 12].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    damaged_keeps_records("long-record.pcap", &bytes, at, &[&format!("offset {at}")]);
}

/// The EVE lines of `out` without their `flow_id` (new on every run).
fn without_flow_ids(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| {
            let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
            r.as_object_mut().unwrap().remove("flow_id");
            r.to_string()
        })
        .collect()
}

/// A header with snap length 0 is read as libpcap reads it (no limit):
/// tshark counts every packet, and flowscope writes exactly the records of
/// the unchanged file.
#[test]
fn zero_snap_length_is_no_limit() {
    let (mut bytes, offsets) = good();
    bytes[16..20].copy_from_slice(&[0; 4]);
    let path = temp("snaplen0.pcap", &bytes);
    let tshark = Command::new("tshark")
        .args([
            "-r",
            path.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .expect("tshark");
    assert!(tshark.status.success(), "{}", stderr(&tshark));
    let frames = String::from_utf8_lossy(&tshark.stdout).lines().count();
    assert_eq!(frames, offsets.len(), "tshark reads every packet");
    let o = flowscope(&["read", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let clean = flowscope(&["read", Path::new(PCAPS).join(GOOD).to_str().unwrap()]);
    assert_eq!(without_flow_ids(&o.stdout), without_flow_ids(&clean.stdout));
    assert!(
        stderr(&o).contains(&format!("packets: {frames} ")),
        "{}",
        stderr(&o)
    );
}

/// A record whose captured length exceeds its original length is
/// malformed: counted unmatched (`caplen_over_len`) in the summary and in
/// no flow; the other records are read as before.
#[test]
fn captured_longer_than_original_is_counted_malformed() {
    let (mut bytes, offsets) = good();
    let at = offsets[offsets.len() / 2];
    let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
    bytes[at + 12..at + 16].copy_from_slice(&(caplen - 1).to_le_bytes());
    let path = temp("caplen-over-len.pcap", &bytes);
    let o = flowscope(&["read", path.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("unmatched: caplen_over_len=1"), "{err}");
    let n = offsets.len();
    assert!(
        err.contains(&format!("packets: {n} ({} in flows, 1 unmatched)", n - 1)),
        "{err}"
    );
}

/// `read FLAG VALUE` on the good capture refuses each value with one line
/// naming the flag, the value and the allowed `range`, and writes nothing.
fn refused(flag: &str, values: &[&str], range: &str) {
    let path = Path::new(PCAPS).join(GOOD);
    for v in values {
        let o = flowscope(&["read", flag, v, path.to_str().unwrap()]);
        assert_one_error(&o, &[flag, v, range]);
        assert!(o.stdout.is_empty(), "{flag} {v}: records written");
    }
}

/// Worker counts outside 1..=1024 are refused before any worker (and its
/// preallocated table) exists: a flow ID keeps its worker's index in 16
/// bits.
#[test]
fn worker_counts_out_of_range() {
    refused("--workers", &["0", "1025", "70000"], "1..=1024");
}

/// A table far larger than any memory is refused with its flag, not
/// attempted (every worker preallocates its table).
#[test]
fn flow_tables_out_of_range() {
    refused(
        "--max-flows",
        &["0", "16777217", "1000000000"],
        "1..=16777216",
    );
}

#[test]
fn unknown_format() {
    let path = Path::new(PCAPS).join(GOOD);
    let o = flowscope(&["read", "--format", "xml", path.to_str().unwrap()]);
    assert_one_error(&o, &["xml", "--format"]);
    assert!(o.stdout.is_empty());
}

#[test]
fn bad_timeouts() {
    let path = Path::new(PCAPS).join(GOOD);
    let file = path.to_str().unwrap();
    for flag in [
        "--tcp-timeout",
        "--udp-timeout",
        "--other-timeout",
        "--active-timeout",
    ] {
        for value in ["-1", "0", "abc", ""] {
            let arg = format!("{flag}={value}");
            let o = flowscope(&["read", &arg, file]);
            let line = assert_one_error(&o, &[flag]);
            assert!(
                o.stdout.is_empty(),
                "{arg}: records written despite the bad flag"
            );
            if !value.is_empty() {
                assert!(
                    line.contains(value),
                    "{arg}: {line:?} does not name the value"
                );
            }
        }
    }
}

#[test]
fn output_directory_missing() {
    let path = Path::new(PCAPS).join(GOOD);
    let o = flowscope(&[
        "read",
        "-o",
        "/nonexistent-flowscope-dir/out.json",
        path.to_str().unwrap(),
    ]);
    assert_one_error(&o, &["/nonexistent-flowscope-dir/out.json"]);
}

/// Outputs named wrongly: each is one error line that says what is wrong
/// (not the bare OS error), before anything is read or written.
#[test]
fn misnamed_outputs_say_what_is_wrong() {
    let good = Path::new(PCAPS).join(GOOD);
    let file = temp("not-a-dir", b"x");
    let dir = file.parent().unwrap().to_owned();
    let f = file.to_str().unwrap();
    let d = dir.to_str().unwrap();
    for (spec, needles) in [
        (
            vec![format!("zeek:{f}")],
            vec!["is a file, but a Zeek output needs a directory"],
        ),
        (
            vec![format!("eve:{d}")],
            vec!["is a directory; this output writes a file"],
        ),
        (
            vec![format!("{d}/a.json"), format!("eve:{d}/./a.json")],
            vec!["writes to the same place as", "name each output once"],
        ),
        (vec!["-".into(), "eve:-".into()], vec!["same place"]),
    ] {
        let mut args = vec!["read".to_owned()];
        for s in &spec {
            args.extend(["-o".to_owned(), s.clone()]);
        }
        args.push(good.to_str().unwrap().to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = flowscope(&args);
        assert_one_error(&o, &needles);
        assert!(o.stdout.is_empty(), "{spec:?}: nothing written");
        assert!(!dir.join("a.json").exists(), "{spec:?}: no file created");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"x", "the file is untouched");
}
