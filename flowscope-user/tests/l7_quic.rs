//! QUIC on real captures through the offline path `flowscope read --l7`
//! uses (pcap → pipeline → EVE lines), against three independent
//! expectations:
//!
//! - tshark, run here: every ClientHello it decrypts and every gQUIC CHLO
//!   it reads has a `quic` record on the same flow, from the same client,
//!   with the same SNI, ALPN list, user agent and (GREASE aside) JA3;
//! - ndpiReader 4.2's expected output (`expected/ndpiReader-4.2`): SNI,
//!   ALPN, user agent and JA3 per QUIC flow — the only oracle for the QUIC
//!   v2 draft capture, which tshark 4.0 cannot decrypt;
//! - Suricata's EVE schema (`schemas/suricata-eve.schema.json`): every
//!   `quic` line validates.
//!
//! Each flow with a record is reported with app_proto `quic`, whatever its
//! port (three captures use 4443).

mod common;
mod l7_oracles;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use flowscope::pcap::PcapReader;
use flowscope::runtime::RunConfig;
use l7_oracles::PCAPS;
use serde_json::Value;

/// The QUIC captures, and the other shared captures holding gQUIC.
const CAPTURES: [&str; 10] = [
    "ndpi__quic-27.pcap",
    "ndpi__quic-29.pcap",
    "ndpi__quic-mvfst-27.pcapng",
    "ndpi__quic-v2-00.pcapng",
    "ndpi__quic_0RTT.pcap",
    "ndpi__quic_frags_ch_in_multiple_packets.pcapng",
    "ndpi__quic_q46.pcap",
    "ndpi__quic_t51.pcap",
    "ndpi__http_ipv6.pcap",
    "ws__many_interfaces.1.pcapng",
];

/// A flow as the client sees it: (client, port, server, port).
type Flow = (IpAddr, u16, IpAddr, u16);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("address {s:?}: {e}"))
}

/// The EVE lines of `read` (L7 on, one worker) on a capture.
fn eve(capture: &str) -> Vec<Value> {
    let reader = PcapReader::open(format!("{PCAPS}/{capture}")).expect("open capture");
    let (lines, report) = common::read_eve(reader, RunConfig::default(), 1);
    assert!(report.error.is_none(), "{capture} reads to the end");
    lines
}

fn flow_of(line: &Value) -> Flow {
    let port = |k: &str| line[k].as_u64().expect("port") as u16;
    (
        ip(line["src_ip"].as_str().expect("src_ip")),
        port("src_port"),
        ip(line["dest_ip"].as_str().expect("dest_ip")),
        port("dest_port"),
    )
}

/// Our `quic` objects by flow, and each flow's app_proto.
struct Ours {
    quic: HashMap<Flow, Value>,
    app_proto: HashMap<Flow, String>,
    lines: Vec<Value>,
}

fn ours(capture: &str) -> Ours {
    let lines = eve(capture);
    let mut quic = HashMap::new();
    let mut app_proto = HashMap::new();
    for line in &lines {
        match line["event_type"].as_str() {
            Some("quic") => {
                let previous = quic.insert(flow_of(line), line["quic"].clone());
                assert!(previous.is_none(), "{capture}: one record per flow");
            }
            Some("flow") => {
                if let Some(p) = line["app_proto"].as_str() {
                    app_proto.insert(flow_of(line), p.to_owned());
                }
            }
            _ => {}
        }
    }
    Ours {
        quic,
        app_proto,
        lines,
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// The ALPN list of a `quic` object (extension 16's values).
fn alpn(q: &Value) -> Vec<String> {
    q["extensions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == 16)
        .flat_map(|e| e["values"].as_array().cloned().unwrap_or_default())
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// GREASE (RFC 8701), and the 64250 Suricata writes for GREASE extensions.
fn is_grease(v: &str) -> bool {
    v.parse::<u16>()
        .is_ok_and(|v| v == 64250 || (v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff))
}

/// A JA3 string with GREASE values left out, as tshark and nDPI write it.
fn without_grease(ja3: &str) -> String {
    ja3.split(',')
        .map(|list| {
            list.split('-')
                .filter(|v| !is_grease(v))
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// What an oracle says of one flow's hello.
struct Said {
    flow: Flow,
    sni: String,
    alpn: Vec<String>,
    ua: String,
}

/// Our record on the flow of `said`, with its SNI, ALPN list and user
/// agent checked against it.
fn record_for<'a>(ours: &'a Ours, said: &Said, at: &str) -> &'a Value {
    let q = ours
        .quic
        .get(&said.flow)
        .unwrap_or_else(|| panic!("{at}: no quic record on {:?}", said.flow));
    assert_eq!(text(q, "sni"), said.sni, "{at}: SNI");
    assert_eq!(alpn(q), said.alpn, "{at}: ALPN");
    assert_eq!(text(q, "ua"), said.ua, "{at}: user agent");
    q
}

/// tshark's fields of one ClientHello or CHLO frame.
struct TsharkHello {
    frame: String,
    said: Said,
    ja3: String,
    ja3_full: String,
}

fn tshark(capture: &str) -> Vec<TsharkHello> {
    let fields = [
        "frame.number",
        "ip.src",
        "ipv6.src",
        "udp.srcport",
        "ip.dst",
        "ipv6.dst",
        "udp.dstport",
        "tls.handshake.extensions_server_name",
        "tls.handshake.extensions_alpn_str",
        "gquic.tag.sni",
        "tls.quic.parameter.google.user_agent",
        "gquic.tag.uaid",
        "tls.handshake.ja3",
        "tls.handshake.ja3_full",
    ];
    let filter = "udp and (tls.handshake.type == 1 or gquic.tag.sni)";
    common::tshark_fields(capture, &[], filter, &fields)
        .into_iter()
        .map(|row| {
            let c: Vec<&str> = row.iter().map(String::as_str).collect();
            let either = |a: &str, b: &str| if a.is_empty() { b } else { a }.to_owned();
            TsharkHello {
                frame: c[0].to_owned(),
                said: Said {
                    flow: (
                        ip(&either(c[1], c[2])),
                        c[3].parse().expect("port"),
                        ip(&either(c[4], c[5])),
                        c[6].parse().expect("port"),
                    ),
                    sni: either(c[7], c[9]),
                    alpn: c[8]
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    ua: either(c[10], c[11]),
                },
                ja3: c[12].to_owned(),
                ja3_full: c[13].to_owned(),
            }
        })
        .collect()
}

/// nDPI's fields of one QUIC flow line.
struct NdpiFlow {
    said: Said,
    ja3: String,
}

/// `A:p` or `[A]:p`.
fn endpoint(s: &str) -> (IpAddr, u16) {
    let (host, port) = s.rsplit_once(':').expect("host:port");
    (
        ip(host.trim_start_matches('[').trim_end_matches(']')),
        port.parse().expect("port"),
    )
}

fn ndpi(capture: &str) -> Vec<NdpiFlow> {
    let path = format!("{PCAPS}/expected/ndpiReader-4.2/{capture}.out");
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let rest = l.trim_start().split_once("UDP ")?.1;
            let (ends, fields) = rest.split_once(" [proto: ")?;
            if !fields.contains("QUIC") {
                return None;
            }
            let (a, b) = ends.split_once(" <-> ")?;
            let (a, b) = (endpoint(a), endpoint(b));
            let field = |name: &str| {
                fields
                    .split('[')
                    .find_map(|f| f.strip_prefix(&format!("{name}: ")))
                    .map(|v| v.trim_end_matches(']').to_owned())
                    .unwrap_or_default()
            };
            Some(NdpiFlow {
                said: Said {
                    flow: (a.0, a.1, b.0, b.1),
                    sni: field("Hostname/SNI"),
                    alpn: field("ALPN")
                        .split(';')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    ua: field("User-Agent"),
                },
                ja3: field("JA3C"),
            })
        })
        .collect()
}

#[test]
fn every_client_hello_tshark_decrypts_has_its_record() {
    let mut hellos = 0;
    for capture in CAPTURES {
        let ours = ours(capture);
        for t in tshark(capture) {
            hellos += 1;
            let at = format!("{capture} frame {}", t.frame);
            let q = record_for(&ours, &t.said, &at);
            if let Some(ja3) = q.get("ja3") {
                let string = text(ja3, "string");
                assert_eq!(without_grease(&string), t.ja3_full, "{at}: JA3 string");
                if string == t.ja3_full {
                    assert_eq!(text(ja3, "hash"), t.ja3, "{at}: JA3 hash");
                }
            } else {
                assert!(t.ja3.is_empty(), "{at}: no JA3 for a CHLO");
            }
        }
    }
    // Frames with a ClientHello or CHLO that tshark 4.0.17 reads in these
    // captures: one each, none in the v2 one, two in ndpi__quic-29 (before
    // and after its Retry) and in ws__many_interfaces (a repeated CHLO).
    assert_eq!(hellos, 11);
}

#[test]
fn ndpi_agrees_on_every_quic_flow_including_v2() {
    let mut flows = 0;
    for capture in CAPTURES {
        let ours = ours(capture);
        for n in ndpi(capture) {
            flows += 1;
            let at = format!("{capture} nDPI");
            let q = record_for(&ours, &n.said, &at);
            let ja3 = text(&q["ja3"], "string");
            if !n.ja3.is_empty() && ja3 == without_grease(&ja3) {
                assert_eq!(text(&q["ja3"], "hash"), n.ja3, "{at}: JA3");
            }
        }
    }
    // One QUIC flow in each nDPI output (ws__many_interfaces has none).
    assert_eq!(flows, 9);
}

#[test]
fn records_come_only_from_flows_the_oracles_know() {
    let mut non_standard_port = 0;
    for capture in CAPTURES {
        let ours = ours(capture);
        let known: HashSet<Flow> = tshark(capture)
            .iter()
            .map(|t| t.said.flow)
            .chain(ndpi(capture).iter().map(|n| n.said.flow))
            .collect();
        let with_record: HashSet<Flow> = ours.quic.keys().copied().collect();
        assert_eq!(with_record, known, "{capture}: flows with a quic record");
        for flow in &with_record {
            assert_eq!(
                ours.app_proto.get(flow).map(String::as_str),
                Some("quic"),
                "{capture} {flow:?}: app_proto"
            );
            if flow.3 != 443 {
                non_standard_port += 1;
            }
        }
    }
    // v2-00, 0-RTT and the split ClientHello talk to port 4443.
    assert_eq!(non_standard_port, 3);
}

/// Checks `v` against the JSON schema `schema` (the keywords Suricata's
/// schema uses: type, properties, additionalProperties, items, minItems,
/// required, $ref into $defs); `root` resolves references.
fn validate(v: &Value, schema: &Value, root: &Value, at: &str) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/$defs/");
        return validate(v, &root["$defs"][name], root, at);
    }
    let ty = |t: &str| match t {
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        other => panic!("schema type {other}"),
    };
    match &schema["type"] {
        Value::String(t) => assert!(ty(t), "{at}: {v} is not {t}"),
        Value::Array(ts) => assert!(
            ts.iter().any(|t| ty(t.as_str().unwrap_or_default())),
            "{at}: {v} is none of {ts:?}"
        ),
        _ => {}
    }
    if let Some(obj) = v.as_object() {
        for (k, x) in obj {
            match schema["properties"].get(k) {
                Some(s) => validate(x, s, root, &format!("{at}.{k}")),
                None => assert!(
                    schema["additionalProperties"] != false,
                    "{at}: {k} is not in the schema"
                ),
            }
        }
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap_or_default();
            assert!(obj.contains_key(r), "{at}: {r} is required");
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(min) = schema["minItems"].as_u64() {
            assert!(items.len() as u64 >= min, "{at}: fewer than {min} items");
        }
        for (i, x) in items.iter().enumerate() {
            validate(x, &schema["items"], root, &format!("{at}[{i}]"));
        }
    }
}

#[test]
fn quic_lines_follow_suricatas_eve_schema() {
    let path = format!("{PCAPS}/../schemas/suricata-eve.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("JSON");
    let mut checked = 0;
    for capture in CAPTURES {
        for line in ours(capture).lines {
            if line["event_type"] == "quic" {
                validate(&line, &schema, &schema, capture);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 10);
}
