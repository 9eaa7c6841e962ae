//! `--decap` in EVE: every flow taken out of a tunnel names it in a
//! `tunnel` object (Suricata's fields), and the tunnel's own flow has a
//! record, checked against tshark's view of each frame's layers on the
//! shared captures of GRE, VXLAN, Geneve and 6in4.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use flowscope::pcap::PcapReader;
use flowscope::runtime::RunConfig;
use serde_json::Value;

use common::filters::PCAPS;

/// One tunnelled frame as tshark dissects it (IPv4 outside).
#[derive(Debug)]
struct Frame {
    /// Outer addresses and IP protocol.
    outer: (String, String, u8),
    /// Outer UDP ports, when the tunnel is over UDP.
    ports: Option<(u16, u16)>,
    /// Innermost addresses.
    inner: (String, String),
}

/// The frames of `capture` with an IP packet inside an IP packet.
fn tunnelled_frames(capture: &str) -> Vec<Frame> {
    let out = Command::new("tshark")
        .args(["-n", "-r", &format!("{PCAPS}/{capture}"), "-T", "fields"])
        .args(["-E", "occurrence=a", "-E", "aggregator=,"])
        .args(["-e", "ip.src", "-e", "ip.dst", "-e", "ip.proto"])
        .args(["-e", "ipv6.src", "-e", "ipv6.dst"])
        .args(["-e", "udp.srcport", "-e", "udp.dstport"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark ({e}): install it with `cargo xtask deps`"));
    assert!(out.status.success(), "tshark on {capture}");
    let mut frames = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<Vec<&str>> = line
            .split('\t')
            .map(|c| c.split(',').filter(|s| !s.is_empty()).collect())
            .collect();
        let (src, dst, proto, src6, dst6, sport, dport) =
            (&f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]);
        // The packet right inside the outer one (tshark also lists the
        // packets ICMP errors quote, after it).
        let inner = match (src6.first(), dst6.first()) {
            _ if src.len() >= 2 => (src[1].to_owned(), dst[1].to_owned()),
            (Some(s), Some(d)) if !src.is_empty() => (s.to_string(), d.to_string()),
            _ => continue,
        };
        let proto: u8 = proto[0].parse().expect("ip.proto");
        let ports = (proto == 17).then(|| {
            (
                sport[0].parse().expect("port"),
                dport[0].parse().expect("port"),
            )
        });
        frames.push(Frame {
            outer: (src[0].to_owned(), dst[0].to_owned(), proto),
            ports,
            inner,
        });
    }
    frames
}

fn pair(a: &str, b: &str) -> BTreeSet<String> {
    BTreeSet::from([a.to_owned(), b.to_owned()])
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// Our EVE records of `capture` with `--decap`.
fn records(capture: &str) -> Vec<Value> {
    let bytes = std::fs::read(format!("{PCAPS}/{capture}")).expect("capture");
    let run = RunConfig {
        decap: true,
        ..RunConfig::default()
    };
    let (lines, report) = common::read_eve(PcapReader::new(&bytes[..]).expect("header"), run, 1);
    assert!(report.error.is_none(), "{capture}: read whole");
    lines
        .into_iter()
        .filter(|r| r["event_type"] == "flow")
        .collect()
}

/// The flow records of `capture` against tshark's frames; `app_proto`:
/// what the carriers' records say.
fn check(capture: &str, proto: &str, app_proto: Option<&str>) {
    let frames = tunnelled_frames(capture);
    assert!(!frames.is_empty(), "{capture}: tunnelled frames");
    let recs = records(capture);
    let inner: Vec<&Value> = recs.iter().filter(|r| r.get("tunnel").is_some()).collect();
    for r in &inner {
        let t = &r["tunnel"];
        let ctx = format!("{capture}: {r}");
        assert_eq!(text(&t["proto"]), proto, "{ctx}");
        assert_eq!(t["depth"], 1, "{ctx}");
        let carried: Vec<&Frame> = frames
            .iter()
            .filter(|f| {
                pair(&f.inner.0, &f.inner.1) == pair(text(&r["src_ip"]), text(&r["dest_ip"]))
                    && pair(&f.outer.0, &f.outer.1) == pair(text(&t["src_ip"]), text(&t["dest_ip"]))
                    && f.ports.is_none_or(|(s, d)| {
                        BTreeSet::from([s, d])
                            == BTreeSet::from([
                                t["src_port"].as_u64().unwrap_or(0) as u16,
                                t["dest_port"].as_u64().unwrap_or(0) as u16,
                            ])
                    })
            })
            .collect();
        assert!(!carried.is_empty(), "{ctx}: no frame carries it so");
        if carried[0].ports.is_none() {
            assert_eq!((&t["src_port"], &t["dest_port"]), (&0.into(), &0.into()));
        }
        // The carrier's record: the same endpoints, its initiator first.
        let carrier = recs
            .iter()
            .find(|c| {
                c["src_ip"] == t["src_ip"]
                    && c["dest_ip"] == t["dest_ip"]
                    && c.get("src_port").unwrap_or(&0.into()) == &t["src_port"]
                    && c.get("dest_port").unwrap_or(&0.into()) == &t["dest_port"]
            })
            .unwrap_or_else(|| panic!("{ctx}: no record of its carrier"));
        assert!(carrier.get("tunnel").is_none());
        assert_eq!(carrier["app_proto"].as_str(), app_proto, "{ctx}");
        assert_eq!(text(&carrier["proto"]), proto, "{ctx}");
    }
    // Every connection tshark sees inside a tunnel has a record naming it.
    for f in &frames {
        assert!(
            inner
                .iter()
                .any(|r| pair(&f.inner.0, &f.inner.1)
                    == pair(text(&r["src_ip"]), text(&r["dest_ip"]))),
            "{capture}: {f:?} in no record with a tunnel"
        );
    }
}

#[test]
fn gre() {
    check("zeek__tunnels_gre-sample.pcap", "GRE", None);
}

#[test]
fn vxlan() {
    check(
        "zeek__tunnels_vxlan-encapsulated-http.pcap",
        "UDP",
        Some("vxlan"),
    );
    check("tcpdump__vxlan.pcap", "UDP", Some("vxlan"));
}

#[test]
fn geneve() {
    check("tcpdump__geneve.pcap", "UDP", Some("geneve"));
}

#[test]
fn six_in_four() {
    check("ndpi__6in4tunnel.pcap", "IPv6", None);
}

/// Without `--decap` no record has a tunnel.
#[test]
fn no_tunnel_without_decap() {
    let bytes = std::fs::read(format!("{PCAPS}/zeek__tunnels_gre-sample.pcap")).expect("capture");
    let (lines, _) = common::read_eve(
        PcapReader::new(&bytes[..]).expect("header"),
        RunConfig::default(),
        1,
    );
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|r| r.get("tunnel").is_none()));
}
