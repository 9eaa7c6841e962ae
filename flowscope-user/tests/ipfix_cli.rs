//! `flowscope read --output`: several outputs at once (EVE file, Zeek
//! conn.log, IPFIX to a real nfcapd), a summary line per output, and EVE to
//! standard output by default. Flow records only (`--no-l7`): the L7
//! records go to EVE alone.

mod ipfix_support;

use std::path::Path;
use std::process::{Command, Output};

use flowscope::tracker::TrackerConfig;
use ipfix_support::*;

const CAPTURE: &str = "zeek__http_methods.pcap";

fn read(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .args(["read", "--no-l7"])
        .args(args)
        .arg(Path::new(PCAPS).join(CAPTURE))
        .output()
        .expect("run flowscope")
}

#[test]
fn every_output_gets_every_record() {
    let recs = records(CAPTURE, TrackerConfig::default());
    let directions: usize = recs
        .iter()
        .map(|(f, _)| f.sides.iter().filter(|s| s.packets > 0).count())
        .sum();
    let dir = TempDir::new("ipfix-cli");
    let eve = dir.path().join("flows.json");
    let zeek = dir.path().join("zeek");
    let mut nf = Nfcapd::start("ipfix-cli-nfcapd");
    let specs = [
        format!("eve:{}", eve.display()),
        format!("zeek:{}", zeek.display()),
        format!("ipfix:udp://127.0.0.1:{}?mode=uni&domain=9", nf.port),
    ];
    let o = read(&["-o", &specs[0], "-o", &specs[1], "-o", &specs[2]]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        o.stdout.is_empty(),
        "nothing on stdout when it is not an output"
    );
    // One summary line per output, in the order given, nothing dropped.
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("output ")).collect();
    assert_eq!(lines.len(), 3, "{err}");
    for (i, (line, spec)) in lines.iter().zip(&specs).enumerate() {
        let n = recs.len();
        let want = format!("): {n} records, {n} written, 0 dropped, 0 failed");
        assert!(line.ends_with(&want), "{line:?} lacks {want:?}");
        let kind = &spec[..spec.find(':').unwrap_or(0)];
        assert!(
            line.starts_with(&format!("output {kind}{i} ({kind}:")),
            "{line}"
        );
    }
    // The EVE file: a flow record per line.
    let eve_text = std::fs::read_to_string(&eve).expect("eve file");
    let flows = eve_text
        .lines()
        .filter(|l| l.contains("\"event_type\":\"flow\""))
        .count();
    assert_eq!(flows, recs.len());
    // conn.log: a line per record between the header and #close.
    let conn = std::fs::read_to_string(zeek.join("conn.log")).expect("conn.log");
    assert_eq!(
        conn.lines().filter(|l| !l.starts_with('#')).count(),
        recs.len()
    );
    assert!(conn.lines().last().is_some_and(|l| l.starts_with("#close")));
    // nfcapd stored one record per direction that sent packets.
    let file = nf.stop();
    let out = Command::new("nfdump")
        .args(["-N", "-q", "-6", "-o", "fmt:%sa|%da|%ipkt", "-r"])
        .arg(&file)
        .output()
        .expect("nfdump");
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains('|'))
        .count();
    assert_eq!(rows, directions);
}

#[test]
fn default_output_is_eve_on_stdout() {
    let o = read(&[]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    let n = text.lines().count();
    assert!(n > 0 && text.lines().all(|l| l.starts_with('{')), "{text}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "output eve0 (-): {n} records, {n} written, 0 dropped, 0 failed"
        )),
        "{err}"
    );
}

#[test]
fn bad_output_spec_is_one_error() {
    for (spec, needle) in [
        ("ipfx:udp://h:1", "ipfx"),
        ("ipfix:udp://127.0.0.1", "127.0.0.1"),
        ("zeek:", "directory"),
    ] {
        let o = read(&["-o", spec]);
        assert!(!o.status.success(), "{spec}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(needle) && !err.contains("panicked"),
            "{spec}: {err}"
        );
        assert!(o.stdout.is_empty(), "{spec}");
    }
}
