//! Protocol detection by content (issue 19), through `flowscope read --l7`:
//! each flow's `app_proto` on real captures against nDPI's classification
//! and Zeek's SSH log, and HTTP, TLS, DNS and SSH found on ports no parser
//! claims (shared captures with a port rewritten at test time), with the
//! records tshark finds on the same edited files.

mod common;
mod l7_oracles;
mod pipeline_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::capture_edit::rewrite_port;
use common::temp::TempDir;
use flowscope::l7::{DnsRecord, HttpRecord, L7Record, SshRecord, TlsRecord};
use l7_oracles::{
    HTTP_REQUEST_FIELDS, HTTP_RESPONSE_FIELDS, PCAPS, check_dns, check_http_rows, check_ssh,
    check_tls, read_l7, tshark_fields, tshark_ssh,
};
use pipeline_support::Outcome;

fn shared(name: &str) -> PathBuf {
    Path::new(PCAPS).join(name)
}

fn http(r: &L7Record) -> Option<&HttpRecord> {
    match r {
        L7Record::Http(h) => Some(h),
        _ => None,
    }
}

fn tls(r: &L7Record) -> Option<&TlsRecord> {
    match r {
        L7Record::Tls(t) => Some(t),
        _ => None,
    }
}

fn dns(r: &L7Record) -> Option<&DnsRecord> {
    match r {
        L7Record::Dns(d) => Some(d),
        _ => None,
    }
}

fn ssh(r: &L7Record) -> Option<&SshRecord> {
    match r {
        L7Record::Ssh(s) => Some(s),
        _ => None,
    }
}

/// Our name for an nDPI protocol we detect, by its master protocol.
fn ours_of_ndpi(name: &str) -> Option<&'static str> {
    let master = name.split('.').next().unwrap_or_default();
    Some(match master {
        "TLS" => "tls",
        "HTTP" => "http",
        "DNS" => "dns",
        "SSH" => "ssh",
        "DHCP" => "dhcp",
        "NTP" => "ntp",
        "SSDP" => "ssdp",
        "MDNS" => "mdns",
        "LLMNR" => "llmnr",
        _ => return None,
    })
}

/// Every flow nDPI classified by content (`Confidence: DPI`) has our
/// app_proto for the protocols we detect, and `failed` for the others.
/// Returns how many flows of each of our protocols were checked.
fn check_against_ndpi(pcap: &str) -> HashMap<&'static str, usize> {
    let run = Outcome::of(&shared(pcap), false);
    let text = std::fs::read_to_string(format!("{PCAPS}/expected/ndpiReader-4.2/{pcap}.out"))
        .expect("ndpiReader output");
    let mut checked: HashMap<&'static str, usize> = HashMap::new();
    for line in text.lines().filter(|l| l.contains("[Confidence: DPI]")) {
        // `\tN\tUDP a:p <-> b:p [proto: 9/NTP][…`
        let words: Vec<&str> = line.split_whitespace().take(5).collect();
        let [_, "TCP" | "UDP", a, _, b] = words[..] else {
            continue;
        };
        let name = line
            .split("[proto: ")
            .nth(1)
            .and_then(|p| p.split(']').next())
            .and_then(|p| p.split('/').nth(1))
            .unwrap_or_default();
        let want = ours_of_ndpi(name).unwrap_or("failed");
        let got = run.proto(a, b);
        assert!(
            got.iter().all(|p| p == want),
            "{pcap}: {a} {b}: nDPI {name}, ours {got:?}"
        );
        *checked.entry(want).or_default() += 1;
    }
    checked
}

#[test]
fn app_proto_matches_ndpi_on_android_and_iphone() {
    let android = check_against_ndpi("ndpi__android.pcap");
    for (proto, flows) in [
        ("tls", 18),
        ("http", 3),
        ("dns", 21),
        ("dhcp", 2),
        ("ntp", 1),
        ("ssdp", 2),
        ("mdns", 2),
        ("failed", 3),
    ] {
        assert_eq!(android.get(proto), Some(&flows), "android {proto}");
    }
    let iphone = check_against_ndpi("ndpi__iphone.pcap");
    assert_eq!(iphone.get("mdns"), Some(&5), "iphone mdns");
    assert_eq!(iphone.get("dhcp"), Some(&2), "iphone dhcp");
}

#[test]
fn ssh_in_the_gre_sample_matches_tshark_and_zeek() {
    let path = shared("zeek__tunnels_gre-sample.pcap");
    let run = Outcome::of(&path, true);
    // Both identification lines and both fingerprints.
    assert_eq!(
        check_ssh("gre", &run.records(ssh), &tshark_ssh(&path, &[]), &[22]),
        4
    );
    // Zeek's ssh.log of this capture names the same lines.
    let [r] = run.records(ssh)[..] else {
        panic!("{:?}", run.records(ssh))
    };
    assert_eq!(
        r.client().and_then(|e| e.banner),
        Some("SSH-2.0-OpenSSH_3.6.1p1")
    );
    assert_eq!(
        r.server().and_then(|e| e.banner),
        Some("SSH-1.99-OpenSSH_3.1p1")
    );
    assert_eq!(run.proto("66.59.111.190:40264", "172.28.2.3:22"), ["ssh"]);
    assert_eq!(run.proto("66.59.111.190:123", "18.26.4.105:123"), ["ntp"]);
    assert_eq!(run.proto("66.59.111.190:37675", "172.28.2.3:53"), ["dns"]);
}

#[test]
fn ssh_eve_records_have_suricatas_shape() {
    let records = read_l7(&shared("zeek__tunnels_gre-sample.pcap"), &["--decap"]);
    let ssh: Vec<_> = records
        .iter()
        .filter(|r| r["event_type"] == "ssh")
        .collect();
    let [r] = ssh[..] else { panic!("{ssh:?}") };
    assert_eq!(r["ssh"]["client"]["proto_version"], "2.0");
    assert_eq!(r["ssh"]["client"]["software_version"], "OpenSSH_3.6.1p1");
    assert_eq!(r["ssh"]["server"]["proto_version"], "1.99");
    // tshark's ssh.kex.hasshserver of this capture.
    assert_eq!(
        r["ssh"]["server"]["hassh"]["hash"],
        "6e3242d64766f4154c11858bbd654415"
    );
    let flow = records
        .iter()
        .find(|f| f["event_type"] == "flow" && f["flow_id"] == r["flow_id"])
        .expect("the flow record");
    assert_eq!(flow["app_proto"], "ssh");
}

/// `pcap` with port `from` rewritten to `to`, in `dir`.
fn moved(dir: &TempDir, pcap: &str, from: u16, to: u16) -> PathBuf {
    let path = dir.path().join(format!("{pcap}.{to}.pcap"));
    rewrite_port(&shared(pcap), &path, from, to);
    path
}

#[test]
fn http_on_a_port_nobody_claims() {
    let dir = TempDir::new("detect-http");
    let path = moved(&dir, "zeek__http_pipelined-requests.pcap", 80, 8888);
    let run = Outcome::of(&path, false);
    let decode = ["-d", "tcp.port==8888,http"];
    let (requests, responses) = check_http_rows(
        "pipelined on 8888",
        &run.records(http),
        &tshark_fields(&path, "http.request", &HTTP_REQUEST_FIELDS, &decode),
        &tshark_fields(&path, "http.response", &HTTP_RESPONSE_FIELDS, &decode),
    );
    assert_eq!((requests, responses), (5, 5));
    assert!(run.protos.values().flatten().all(|p| p == "http"));
}

#[test]
fn tls_on_a_port_nobody_claims() {
    let dir = TempDir::new("detect-tls");
    let path = moved(&dir, "ndpi__tls_long_cert.pcap", 443, 4433);
    let run = Outcome::of(&path, false);
    // The stored tshark and nDPI outputs of the original capture: the
    // handshake bytes are the same.
    assert_eq!(check_tls("ndpi__tls_long_cert.pcap", &run.records(tls)), 1);
    assert!(run.protos.values().flatten().any(|p| p == "tls"));
}

#[test]
fn dns_on_a_udp_port_nobody_claims() {
    let dir = TempDir::new("detect-dns");
    let path = moved(&dir, "ws__dns+icmp.pcapng", 53, 5300);
    let run = Outcome::of(&path, false);
    assert_eq!(check_dns("ws__dns+icmp.pcapng", run.records(dns)), (11, 0));
    let on_5300: Vec<&String> = run
        .protos
        .iter()
        .filter(|((_, b), _)| b.ends_with(":5300"))
        .flat_map(|(_, p)| p)
        .collect();
    assert!(
        !on_5300.is_empty() && on_5300.iter().all(|p| *p == "dns"),
        "{on_5300:?}"
    );
}

#[test]
fn ssh_on_port_2222() {
    let dir = TempDir::new("detect-ssh");
    let path = moved(&dir, "zeek__tunnels_gre-sample.pcap", 22, 2222);
    let run = Outcome::of(&path, true);
    let rows = tshark_ssh(&path, &["-d", "tcp.port==2222,ssh"]);
    assert_eq!(
        check_ssh("gre on 2222", &run.records(ssh), &rows, &[2222]),
        4
    );
    assert_eq!(run.proto("66.59.111.190:40264", "172.28.2.3:2222"), ["ssh"]);
}
