//! ICMP and ICMPv6 flows keyed by type and code, as Zeek and the Community
//! ID spec key them: an echo reply belongs to its request's flow, an
//! unreachable between the same hosts is a flow of its own. Checked on
//! frames built byte by byte (EVE, Zeek conn.log, Community IDs) and on a
//! real capture against tshark's reading of it.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use common::eve_schema::{assert_valid, flowscope_read, records};
use common::frames::{cat, checksum, eth, ipv4, ipv6, pcap, udp, v4a, v4b, v6};
use common::temp::TempDir;
use flowscope::community_id::CommunityId;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_flowscope");
const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// An ICMP message: type, code, checksum (over the message), then `rest`.
fn icmp(t: u8, c: u8, rest: &[u8]) -> Vec<u8> {
    let mut m = cat(&[&[t, c, 0, 0], rest]);
    let sum = checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

fn v4_frame(src: [u8; 4], dst: [u8; 4], msg: &[u8]) -> Vec<u8> {
    cat(&[
        &eth(&[], 0x0800),
        &ipv4(src, dst, 1, &[], msg.len(), 0),
        msg,
    ])
}

fn v6_frame(src: [u8; 16], dst: [u8; 16], msg: &[u8]) -> Vec<u8> {
    // The ICMPv6 checksum covers a pseudo-header flowscope does not check.
    cat(&[&eth(&[], 0x86dd), &ipv6(src, dst, 58, msg.len()), msg])
}

/// The frames of the built capture and the (type, code) of each.
fn built() -> Vec<(Vec<u8>, (u8, u8))> {
    let (a, b) = (v4a(1), v4b(2));
    let (c, d) = (v6(1), v6(2));
    let echo = |seq: u8| [0, 7, 0, seq, b'p', b'i', b'n', b'g'];
    // What a port unreachable quotes: the offending IPv4 header and UDP header.
    let quoted = cat(&[&ipv4(a, b, 17, &[], 8, 0), &udp(40_000, 33_434, 0)]);
    let v4 = |s, d, t, c, rest: &[u8]| (v4_frame(s, d, &icmp(t, c, rest)), (t, c));
    let v6f = |s, d, t, c, rest: &[u8]| (v6_frame(s, d, &icmp(t, c, rest)), (t, c));
    vec![
        v4(a, b, 8, 0, &echo(1)),
        v4(b, a, 0, 0, &echo(1)),
        v4(b, a, 3, 3, &cat(&[&[0; 4], &quoted])),
        v4(a, b, 8, 0, &echo(2)),
        v4(b, a, 0, 0, &echo(2)),
        v4(a, b, 13, 0, &[0; 16]),
        v4(a, b, 3, 1, &cat(&[&[0; 4], &quoted])),
        v6f(c, d, 128, 0, &echo(1)),
        v6f(d, c, 129, 0, &echo(1)),
        v6f(c, d, 135, 0, &cat(&[&[0; 4], &d])),
        v6f(d, c, 136, 0, &cat(&[&[0x60, 0, 0, 0], &d])),
    ]
}

/// `flowscope read` of `capture` with `args`: the EVE records, checked
/// against Suricata's schema.
fn read(dir: &Path, capture: &Path, args: &[&str]) -> Vec<Value> {
    let out = dir.join(format!("eve{}.json", args.join("")));
    let o = flowscope_read(capture, args, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_valid(&capture.display().to_string(), std::slice::from_ref(&out));
    records(&out)
}

/// A flow record's identity and counts: proto, source, destination, type,
/// code, response type and code (`-` when none), packets each way.
fn summary(r: &Value) -> String {
    let f = &r["flow"];
    let opt = |k: &str| r.get(k).map_or("-".to_owned(), Value::to_string);
    format!(
        "{} {}>{} {}/{} {}/{} {}+{}",
        r["proto"].as_str().unwrap(),
        r["src_ip"].as_str().unwrap(),
        r["dest_ip"].as_str().unwrap(),
        r["icmp_type"],
        r["icmp_code"],
        opt("response_icmp_type"),
        opt("response_icmp_code"),
        f["pkts_toserver"],
        f["pkts_toclient"]
    )
}

#[test]
fn built_frames_key_by_type_and_code() {
    let dir = TempDir::new("icmp-built");
    let frames = built();
    let capture = dir.path().join("icmp.pcap");
    let only: Vec<Vec<u8>> = frames.iter().map(|(f, _)| f.clone()).collect();
    std::fs::write(&capture, pcap(&only, 1_000_000)).unwrap();
    let recs = read(dir.path(), &capture, &["--workers", "1"]);
    let mut got: Vec<String> = recs.iter().map(summary).collect();
    got.sort();
    let mut want = vec![
        // Two echo exchanges: one flow, replies to the client.
        "ICMP 192.0.2.1>198.51.100.2 8/0 0/0 2+2",
        // The port unreachable B sent A: a flow of its own, one-way.
        "ICMP 198.51.100.2>192.0.2.1 3/3 -/- 1+0",
        // Timestamp request, unanswered.
        "ICMP 192.0.2.1>198.51.100.2 13/0 -/- 1+0",
        // Host unreachable A sent B: not the other unreachable's flow.
        "ICMP 192.0.2.1>198.51.100.2 3/1 -/- 1+0",
        "IPv6-ICMP 2001:db8::1>2001:db8::2 128/0 129/0 1+1",
        "IPv6-ICMP 2001:db8::1>2001:db8::2 135/0 136/0 1+1",
    ];
    want.sort();
    assert_eq!(got, want);
    // Each packet's own Community ID (from its addresses, type and code)
    // is its flow's: one ID per flow, whichever side sent.
    for (frame, (t, c)) in &frames {
        let v6 = frame[12..14] == [0x86, 0xdd];
        let (src, dst, proto): (IpAddr, IpAddr, u8) = if v6 {
            let a = |at: usize| <[u8; 16]>::try_from(&frame[at..at + 16]).unwrap().into();
            (a(22), a(38), 58)
        } else {
            let a = |at: usize| <[u8; 4]>::try_from(&frame[at..at + 4]).unwrap().into();
            (a(26), a(30), 1)
        };
        let id = CommunityId::default()
            .compute(src, dst, proto, (*t).into(), (*c).into())
            .unwrap();
        let flow = recs
            .iter()
            .find(|r| {
                r["community_id"] == id.as_str()
                    && [&r["src_ip"], &r["dest_ip"]].contains(&&Value::from(src.to_string()))
            })
            .unwrap_or_else(|| panic!("no flow has the ID of {src}>{dst} {t}/{c}"));
        let (ft, fc) = (
            flow["icmp_type"].as_u64().unwrap(),
            flow["icmp_code"].as_u64().unwrap(),
        );
        let rt = flow.get("response_icmp_type").and_then(Value::as_u64);
        assert!(
            (u64::from(*t), u64::from(*c)) == (ft, fc) || Some(u64::from(*t)) == rt,
            "{src}>{dst} {t}/{c} in {flow}"
        );
    }
    // ICMP steers by address pair: the same flows on two workers.
    let mut two: Vec<String> = read(dir.path(), &capture, &["--workers", "2"])
        .iter()
        .map(summary)
        .collect();
    two.sort();
    assert_eq!(two, want);
}

#[test]
fn zeek_ports_are_type_and_counterpart_or_code() {
    let dir = TempDir::new("icmp-zeek");
    let only: Vec<Vec<u8>> = built().into_iter().map(|(f, _)| f).collect();
    let capture = dir.path().join("icmp.pcap");
    std::fs::write(&capture, pcap(&only, 1_000_000)).unwrap();
    let logs = dir.path().join("zeek");
    let o = Command::new(BIN)
        .arg("read")
        .arg(&capture)
        .args(["--workers", "1", "-o"])
        .arg(format!("zeek-json:{}", logs.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut got: Vec<String> = std::fs::read_to_string(logs.join("conn.log"))
        .unwrap()
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {}:{} > {}:{}",
                r["proto"].as_str().unwrap(),
                r["id.orig_h"].as_str().unwrap(),
                r["id.orig_p"],
                r["id.resp_h"].as_str().unwrap(),
                r["id.resp_p"]
            )
        })
        .collect();
    got.sort();
    // Zeek's conn.log ports for these messages (ICMP4_counterpart,
    // ICMP6_counterpart): request type and reply type, or type and code.
    let mut want = vec![
        "icmp 192.0.2.1:8 > 198.51.100.2:0",
        "icmp 198.51.100.2:3 > 192.0.2.1:3",
        "icmp 192.0.2.1:13 > 198.51.100.2:14",
        "icmp 192.0.2.1:3 > 198.51.100.2:1",
        "icmp 2001:db8::1:128 > 2001:db8::2:129",
        "icmp 2001:db8::1:135 > 2001:db8::2:136",
    ];
    want.sort();
    assert_eq!(got, want);
}

/// The counterpart of an ICMPv4 request/reply type (RFC 792, RFC 950,
/// RFC 1256), written out here for the oracle.
fn counterpart_v4(t: u8) -> Option<u8> {
    [(8, 0), (13, 14), (15, 16), (17, 18), (10, 9)]
        .iter()
        .find_map(|&(a, b)| (t == a).then_some(b).or((t == b).then_some(a)))
}

/// ws__dns+icmp.pcapng: the ICMP flows tshark's fields make when grouped
/// by address pair and type/counterpart, with their packets each way, are
/// the EVE flow records'.
#[test]
fn real_capture_matches_tshark() {
    let capture = Path::new(PCAPS).join("ws__dns+icmp.pcapng");
    let o = match Command::new("tshark")
        .arg("-r")
        .arg(&capture)
        .args(["-Y", "icmp", "-T", "fields"])
        .args([
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "icmp.type",
            "-e",
            "icmp.code",
        ])
        .output()
    {
        Ok(o) if o.status.success() => o,
        _ => return common::skipped("real_capture_matches_tshark", "tshark is not installed"),
    };
    // (client, server, request type) -> [to server, to client]
    let mut want: BTreeMap<(String, String, u8, u8), [u64; 2]> = BTreeMap::new();
    for line in String::from_utf8(o.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (t, c): (u8, u8) = (f[2].parse().unwrap(), f[3].parse().unwrap());
        let (src, dst) = (f[0].to_owned(), f[1].to_owned());
        // Replies count towards their request's flow, to the client.
        let entry = match counterpart_v4(t) {
            Some(req) if [0, 14, 16, 18, 9].contains(&t) => (dst, src, req, 0, 1),
            Some(_) => (src, dst, t, 0, 0),
            None => (src, dst, t, c, 0),
        };
        want.entry((entry.0, entry.1, entry.2, entry.3))
            .or_default()[entry.4] += 1;
    }
    assert_eq!(want.values().flatten().sum::<u64>(), 22);
    let dir = TempDir::new("icmp-real");
    let recs = read(dir.path(), &capture, &[]);
    let got: BTreeMap<(String, String, u8, u8), [u64; 2]> = recs
        .iter()
        .filter(|r| r["event_type"] == "flow" && r["proto"] == "ICMP")
        .map(|r| {
            let n = |k: &str| r["flow"][k].as_u64().unwrap();
            (
                (
                    r["src_ip"].as_str().unwrap().to_owned(),
                    r["dest_ip"].as_str().unwrap().to_owned(),
                    r["icmp_type"].as_u64().unwrap() as u8,
                    r["icmp_code"].as_u64().unwrap() as u8,
                ),
                [n("pkts_toserver"), n("pkts_toclient")],
            )
        })
        .collect();
    assert_eq!(got, want);
}
