//! `flowscope read --filter EXPR` against libpcap's own filter: tcpdump
//! (`tcpdump -r FILE -w OUT EXPR`) writes the frames libpcap keeps, and
//! reading that file without a filter must give exactly the flows (keys,
//! packets and bytes each way) that `read --filter` gives on the original;
//! the frames `read` says it filtered out are the ones tcpdump dropped.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::flowscope;

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// Captures and expressions: hosts, nets, ports, protocols, VLAN, TCP
/// flags and IPv6, on Ethernet, tunnelled, VLAN-tagged and IPv6 traffic.
const CASES: &[(&str, &str)] = &[
    (
        "ndpi__WebattackXSS.pcap",
        "tcp port 80 and (port 59042 or port 58360)",
    ),
    ("ndpi__android.pcap", "udp or icmp"),
    ("ndpi__android.pcap", "tcp[tcpflags] & tcp-syn != 0"),
    ("zeek__mixed-vlan-mpls.pcap", "vlan"),
    ("zeek__q-in-q.pcap", "vlan and vlan and udp port 47808"),
    ("ndpi__http_ipv6.pcap", "ip6 and tcp src port 443"),
    (
        "zeek__tunnels_gre-sample.pcap",
        "host 172.27.1.66 and less 120",
    ),
    (
        "sanders__ipv6_fragments.pcapng",
        "ip6[6] == 44 and ip6[40] == 58",
    ),
    ("zeek__ipv4_fragmented-3.pcap", "ip[6:2] & 0x1fff == 0"),
    ("ws__dns+icmp.pcapng", "icmp or icmp6"),
];

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fs-read-filter-{}-{name}", std::process::id()))
}

/// Flow records' keys with packets and bytes each way, counted.
type Flows = BTreeMap<String, u32>;

/// The flows `read` writes for `file` (one worker, no L7: the flow set
/// alone), with `extra` flags; its summary JSON.
fn read(file: &Path, extra: &[&str]) -> (Flows, serde_json::Value) {
    let eve = temp("eve.json");
    let summary = temp("summary.json");
    let _ = std::fs::remove_file(&eve);
    let mut args = vec![
        "read".to_owned(),
        file.display().to_string(),
        "--workers".into(),
        "1".into(),
        "--no-l7".into(),
        "-o".into(),
        format!("eve:{}", eve.display()),
        "--summary-json".into(),
        summary.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = flowscope(&args);
    assert!(
        o.status.success(),
        "flowscope {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut flows = Flows::new();
    for line in std::fs::read_to_string(&eve).unwrap().lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        if r["event_type"] != "flow" {
            continue;
        }
        let f = &r["flow"];
        let key = format!(
            "{} {} {} {} {} | {} {} {} {}",
            r["proto"],
            r["src_ip"],
            r["src_port"],
            r["dest_ip"],
            r["dest_port"],
            f["pkts_toserver"],
            f["pkts_toclient"],
            f["bytes_toserver"],
            f["bytes_toclient"]
        );
        *flows.entry(key).or_default() += 1;
    }
    let s = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let _ = std::fs::remove_file(&eve);
    let _ = std::fs::remove_file(&summary);
    (flows, s)
}

#[test]
fn read_filter_keeps_what_libpcap_keeps() {
    for (name, expr) in CASES {
        let file = Path::new(PCAPS).join(name);
        let kept = temp(&format!("{name}.pcap"));
        let t = Command::new("tcpdump")
            .args(["-n", "-r"])
            .arg(&file)
            .arg("-w")
            .arg(&kept)
            .arg(expr)
            .output()
            .expect("tcpdump (cargo xtask deps installs it)");
        assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
        let (want, base) = read(&kept, &[]);
        let (got, s) = read(&file, &["--filter", expr]);
        let _ = std::fs::remove_file(&kept);
        assert!(!want.is_empty(), "{name} {expr:?}: libpcap kept no flow");
        assert_eq!(got, want, "{name} {expr:?}: flows");
        let rejected = s["filter"]["rejected_frames"].as_u64().unwrap();
        assert_eq!(s["filter"]["expression"], *expr);
        assert!(rejected > 0, "{name} {expr:?}: the filter rejected nothing");
        assert_eq!(
            s["frames_read"].as_u64().unwrap() - rejected,
            base["frames_read"].as_u64().unwrap(),
            "{name} {expr:?}: frames kept"
        );
        assert_eq!(s["packets"], base["packets"], "{name} {expr:?}");
    }
}

#[test]
fn a_bad_expression_is_one_line_before_reading() {
    let file = Path::new(PCAPS).join("ndpi__android.pcap");
    let o = flowscope(&["read", file.to_str().unwrap(), "--filter", "tcp port"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--filter") && err.contains("\"tcp port\"") && err.contains("syntax error"),
        "{err}"
    );
}
