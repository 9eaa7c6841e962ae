//! Outputs that fail, as a user meets them with `flowscope read`: a full
//! disk (`/dev/full`), a collector that refuses connections, one that
//! accepts and then stops reading, and a process killed with SIGKILL in
//! the middle of a large write. Every case ends with a non-zero exit, one
//! error line naming the output and the cause, and balanced books: for each
//! output, records taken = written + dropped + failed, with the written
//! ones really in the file.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::temp::TempDir;
use common::{flowscope, stderr};

const ECHO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/pcaps/zeek__echo-connections.pcap"
);

/// One output's counts from its summary line
/// `output NAME (SPEC): R records, W written, D dropped, F failed`.
#[derive(Debug, PartialEq, Eq)]
struct Books {
    records: u64,
    written: u64,
    dropped: u64,
    failed: u64,
}

fn books(err: &str, name: &str) -> Books {
    let line = err
        .lines()
        .find(|l| l.starts_with(&format!("output {name} (")))
        .unwrap_or_else(|| panic!("no summary line for {name}:\n{err}"));
    let counts = line.rsplit_once("): ").unwrap().1;
    let n: Vec<u64> = counts
        .split(", ")
        .map(|p| p.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    let b = Books {
        records: n[0],
        written: n[1],
        dropped: n[2],
        failed: n[3],
    };
    assert_eq!(
        b.records,
        b.written + b.dropped + b.failed,
        "{name}: {line}"
    );
    b
}

/// The one error line (`error: …`), which must contain every needle.
fn one_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "must fail:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "one error line:\n{err}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} missing from {:?}", lines[0]);
    }
}

/// Flow records in the summary (`flows: N records`).
fn flows(err: &str) -> u64 {
    err.lines()
        .find_map(|l| l.strip_prefix("flows: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("flows line")
}

#[test]
fn a_full_disk_fails_its_output_and_the_other_gets_everything() {
    let dir = TempDir::new("faults-full");
    let d = dir.path();
    let eve = d.join("eve.json");
    let o = flowscope(&[
        "read",
        "--no-l7",
        "-o",
        "eve:/dev/full",
        "-o",
        &format!("eve:{}", eve.display()),
        ECHO,
    ]);
    one_error(
        &o,
        &["output eve0 (eve:/dev/full)", "No space left on device"],
    );
    let err = stderr(&o);
    let n = flows(&err);
    let full = books(&err, "eve0");
    assert_eq!((full.records, full.written), (n, 0));
    assert!(full.failed > 0, "the writes that reached the disk failed");
    let file = books(&err, "eve1");
    assert_eq!((file.written, file.dropped, file.failed), (n, 0, 0));
    let lines = std::fs::read_to_string(&eve).unwrap().lines().count() as u64;
    assert_eq!(lines, n);
}

#[test]
fn a_refusing_collector_fails_every_record_and_the_exit_says_so() {
    // A port nothing listens on: bound, then closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = format!("ipfix:tcp://127.0.0.1:{port}");
    let o = flowscope(&["read", "--no-l7", "--close-wait", "0.5", "-o", &spec, ECHO]);
    one_error(&o, &["output ipfix0 (ipfix:tcp://127.0.0.1:", "not sent"]);
    let err = stderr(&o);
    let b = books(&err, "ipfix0");
    assert_eq!((b.records, b.written), (flows(&err), 0));
}

/// A synthetic capture of `n` one-packet UDP flows (documentation
/// addresses), 1 ms apart.
fn many_flows(n: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(24 + n as usize * 58);
    for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        if x == 0x0004_0002 {
            v.extend_from_slice(&2u16.to_le_bytes());
            v.extend_from_slice(&4u16.to_le_bytes());
        } else {
            v.extend_from_slice(&x.to_le_bytes());
        }
    }
    for i in 0..n {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let src = [198, 51, (100 + (i >> 16)) as u8, (i >> 8) as u8];
        f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[203, 0, 113, 1]);
        f.extend_from_slice(&(1024 + (i & 0xff) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 53, 0, 8, 0, 0]);
        let (sec, usec) = (1_000 + i / 1000, (i % 1000) * 1000);
        for x in [sec, usec, f.len() as u32, f.len() as u32] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(&f);
    }
    v
}

#[test]
fn a_stalled_collector_is_given_up_after_close_wait_with_its_records_counted() {
    const N: u32 = 100_000;
    let dir = TempDir::new("faults-stall");
    let d = dir.path();
    let pcap = d.join("many.pcap");
    std::fs::write(&pcap, many_flows(N)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // A small receive buffer: the collector's kernel takes little before
    // the window closes.
    let small: libc::c_int = 4096;
    // SAFETY: setsockopt on our listener's fd with a c_int of its size.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const small).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    let port = listener.local_addr().unwrap().port();
    // Accepts, then never reads.
    let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .args(["read", "--no-l7", "--workers", "1", "--close-wait", "1"])
        .args(["-o", &format!("ipfix:tcp://127.0.0.1:{port}")])
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A hang guard, not a timing claim: a stalled collector must not hold
    // the exit forever.
    let guard = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < guard, "flowscope never gave up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let _stream = held.join().unwrap().expect("flowscope connected");
    one_error(&o, &["output ipfix0", "not sent"]);
    let err = stderr(&o);
    let b = books(&err, "ipfix0");
    assert_eq!(b.records, u64::from(N), "{err}");
    assert_eq!(flows(&err), u64::from(N));
    assert!(
        b.failed + b.dropped > 0,
        "a stalled collector loses records: {err}"
    );
}

/// SIGKILL in the middle of a large write: records are written in whole
/// lines, and a later run appending to the file first trims whatever
/// partial line the kill left, so the file holds only whole JSON lines.
#[test]
fn kill_9_mid_write_leaves_only_whole_json_lines() {
    let dir = TempDir::new("faults-kill9");
    let d = dir.path();
    let eve = d.join("eve.json");
    let bytes = many_flows(300_000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .args(["read", "--no-l7", "--workers", "1", "--udp-timeout", "0.5"])
        .args(["-o", &format!("eve:{}", eve.display()), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Feed until the file has grown well past one write buffer, so the
    // writer is in the middle of its stream of writes.
    let mut fed = 0;
    for chunk in bytes.chunks(64 << 10) {
        stdin.write_all(chunk).unwrap();
        fed += chunk.len();
        if std::fs::metadata(&eve).map_or(0, |m| m.len()) > 1 << 20 {
            break;
        }
    }
    assert!(fed < bytes.len(), "the file grew while reading");
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    let text = std::fs::read(&eve).unwrap();
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let before = String::from_utf8(text[..whole].to_vec()).unwrap();
    let killed = before.lines().count();
    assert!(killed > 1000, "{killed} lines before the kill");
    for l in before.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("a whole JSON line");
    }
    // The next run appends: any partial line is trimmed first.
    let o = flowscope(&[
        "read",
        "--no-l7",
        "-o",
        &format!("eve:{}", eve.display()),
        ECHO,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let trimmed = (text.len() - whole) as u64;
    if trimmed > 0 {
        assert!(
            err.contains(&format!("partial last line of {trimmed} bytes")),
            "{err}"
        );
    }
    let after = std::fs::read_to_string(&eve).unwrap();
    assert!(after.starts_with(&before));
    let lines: Vec<&str> = after.lines().collect();
    for l in &lines {
        serde_json::from_str::<serde_json::Value>(l).expect("only whole JSON lines");
    }
    assert_eq!(
        lines.len() as u64,
        killed as u64 + books(&err, "eve0").written
    );
}
