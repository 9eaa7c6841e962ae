//! The conn.log and ssh.log of `flowscope read FILE --output zeek:DIR` (and
//! `zeek-json:`) against Zeek's own baselines (`../shared/pcaps/expected/zeek`),
//! row by row, keyed by (orig_h, orig_p, resp_h, resp_p, proto).
//!
//! Every field is compared. Where our definition differs from Zeek's, the
//! difference itself is asserted, with its reason; flows one side has and
//! the other lacks are named, with theirs. btest masks `ts` and the
//! `#open`/`#close` times; the baselines' uids are Zeek's (seeded random).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// A conn.log row key: (orig_h, orig_p, resp_h, resp_p, proto).
type Key = (String, u16, String, u16, String);

/// A row: field name → value as written in TSV.
type Row = BTreeMap<String, String>;

/// A parsed TSV log.
struct Log {
    /// `#` lines but the times (`#open`, `#close`) and btest's banner.
    header: Vec<String>,
    /// `#fields`.
    fields: Vec<String>,
    /// `#types`, by field.
    types: BTreeMap<String, String>,
    rows: BTreeMap<Key, Row>,
}

fn key_of(row: &Row) -> Key {
    let port = |f: &str| row[f].parse::<u16>().expect("port");
    (
        row["id.orig_h"].clone(),
        port("id.orig_p"),
        row["id.resp_h"].clone(),
        port("id.resp_p"),
        // ssh.log has no proto: its connections are TCP.
        row.get("proto")
            .cloned()
            .unwrap_or_else(|| "tcp".to_owned()),
    )
}

fn parse_tsv(text: &str) -> Log {
    let mut header = Vec::new();
    let (mut fields, mut types) = (Vec::new(), Vec::new());
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('#') {
            if rest.starts_with("##") || rest.starts_with("open") || rest.starts_with("close") {
                continue;
            }
            if let Some(f) = rest.strip_prefix("fields\t") {
                fields = f.split('\t').map(str::to_owned).collect();
            }
            if let Some(t) = rest.strip_prefix("types\t") {
                types = t.split('\t').map(str::to_owned).collect();
            }
            header.push(line.to_owned());
            continue;
        }
        let values: Vec<&str> = line.split('\t').collect();
        assert_eq!(values.len(), fields.len(), "row {line:?}");
        let row: Row = fields
            .iter()
            .cloned()
            .zip(values.iter().map(|v| (*v).to_owned()))
            .collect();
        assert!(rows.insert(key_of(&row), row).is_none(), "duplicate key");
    }
    assert_eq!(fields.len(), types.len(), "#fields and #types");
    let types = fields.iter().cloned().zip(types).collect();
    Log {
        header,
        fields,
        types,
        rows,
    }
}

/// Zeek's baseline `log` of `capture`.
fn zeek(capture: &str, log: &str) -> Log {
    let path = format!("{PCAPS}/expected/zeek/{capture}/{log}");
    parse_tsv(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// Runs the binary on `capture` with `args`, writing `kind:DIR`; returns
/// DIR/`log`.
fn flowscope(capture: &str, kind: &str, log: &str, args: &[&str]) -> String {
    // One directory per run: tests run the same capture in parallel.
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "flowscope-zeek-{}-{run}-{capture}-{kind}",
        std::process::id(),
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .arg("read")
        .arg(format!("{PCAPS}/{capture}"))
        .args(args)
        .arg("--output")
        .arg(format!("{kind}:{}", dir.display()))
        .output()
        .expect("flowscope runs");
    assert!(
        out.status.success(),
        "flowscope read {capture} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join(log)).unwrap_or_else(|e| panic!("{log}: {e}"));
    std::fs::remove_dir_all(&dir).expect("temporary directory removed");
    text
}

/// Our TSV conn.log of `capture`, checked against our JSON one.
fn ours(capture: &str, args: &[&str]) -> Log {
    ours_log(capture, "conn.log", args)
}

/// Our TSV `log` of `capture`, checked against our JSON one.
fn ours_log(capture: &str, log: &str, args: &[&str]) -> Log {
    let text = flowscope(capture, "zeek", log, args);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("#open\t")),
        "{capture}: #open"
    );
    assert!(
        lines.last().is_some_and(|l| l.starts_with("#close\t")),
        "{capture}: the log ends with #close"
    );
    let json = flowscope(capture, "zeek-json", log, args);
    let parsed = parse_tsv(&text);
    assert_json_equals_tsv(capture, &json, &parsed);
    parsed
}

/// Each JSON line is the TSV row of the same key: unset fields absent,
/// `(empty)` as `""`, counts, ports, times and intervals as numbers.
fn assert_json_equals_tsv(capture: &str, json: &str, tsv: &Log) {
    let mut seen = BTreeSet::new();
    for line in json.lines() {
        let obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{capture}: {line}: {e}"));
        let mut as_tsv = Row::new();
        for (k, v) in &obj {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                other => panic!("{capture}: {k} is {other}"),
            };
            as_tsv.insert(k.clone(), s);
        }
        let key = key_of(&as_tsv);
        let row = tsv
            .rows
            .get(&key)
            .unwrap_or_else(|| panic!("{capture}: JSON row {key:?} not in TSV"));
        for f in &tsv.fields {
            let (t, j) = (&row[f], obj.get(f));
            match (t.as_str(), j) {
                ("-", None) => {}
                ("-", Some(v)) => panic!("{capture} {key:?} {f}: unset in TSV, {v} in JSON"),
                (_, None) => panic!("{capture} {key:?} {f}: {t} in TSV, absent in JSON"),
                (t, Some(v)) => match tsv.types[f].as_str() {
                    "time" | "interval" => {
                        let (a, b) = (t.parse::<f64>().expect("secs"), v.as_f64().expect("secs"));
                        assert!((a - b).abs() < 5e-7, "{capture} {key:?} {f}: {t} vs {v}");
                    }
                    "count" | "port" => assert_eq!(
                        Some(t.parse::<u64>().expect("count")),
                        v.as_u64(),
                        "{capture} {key:?} {f}"
                    ),
                    _ => {
                        let t = if t == "(empty)" { "" } else { t };
                        assert_eq!(Some(t), v.as_str(), "{capture} {key:?} {f}");
                    }
                },
            }
        }
        assert!(
            obj.keys().all(|k| tsv.fields.contains(k)),
            "{capture}: {obj:?}"
        );
        seen.insert(key);
    }
    assert_eq!(
        seen,
        tsv.rows.keys().cloned().collect(),
        "{capture}: JSON rows"
    );
}

/// Seconds with six decimals, in microseconds.
fn micros(s: &str) -> u64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<6}");
    secs.parse::<u64>().expect("secs") * 1_000_000 + frac[..6].parse::<u64>().expect("micros")
}

/// tshark's times (µs) of a TCP connection's frames and of the FIN that
/// closed its second direction.
fn tcp_last_and_second_fin(capture: &str, k: &Key) -> (u64, u64) {
    let filter = format!(
        "(tcp.srcport=={p} && tcp.dstport=={q}) || (tcp.srcport=={q} && tcp.dstport=={p})",
        p = k.1,
        q = k.3
    );
    let out = Command::new("tshark")
        .args(["-n", "-r", &format!("{PCAPS}/{capture}"), "-Y", &filter])
        .args([
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "tcp.srcport",
        ])
        .args(["-e", "tcp.flags.fin"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark ({e}): install it with `cargo xtask deps`"));
    assert!(out.status.success(), "tshark on {capture}");
    let (mut last, mut fins) = (0, BTreeMap::new());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let t = micros(f[0]);
        last = last.max(t);
        if f[2] == "1" || f[2] == "True" {
            fins.entry(f[1].to_owned()).or_insert(t);
        }
    }
    assert_eq!(fins.len(), 2, "{capture} {k:?}: a FIN each way");
    (last, fins.into_values().max().unwrap_or_default())
}

/// Application protocols we parse or recognise (Zeek's `service` names).
const PARSED: [&str; 5] = ["http", "dns", "ssl", "ssh", "ntp"];

/// Compares the rows of `keys` field by field.
fn compare_rows(capture: &str, zeek: &Log, ours: &Log, keys: &[Key]) {
    assert_eq!(ours.header, zeek.header, "{capture}: header lines");
    let mut uids = BTreeSet::new();
    for k in keys {
        let z = &zeek.rows[k];
        let o = ours
            .rows
            .get(k)
            .unwrap_or_else(|| panic!("{capture}: no row {k:?}"));
        let ctx = format!("{capture} {k:?}");
        for f in &zeek.fields {
            let (zv, ov) = (z[f].as_str(), o[f].as_str());
            match f.as_str() {
                // btest masks Zeek's; ours is the first packet's time.
                "ts" => {
                    assert_eq!(zv, "XXXXXXXXXX.XXXXXX", "{ctx}: masked");
                    assert!(micros(ov) > 0, "{ctx}: ts {ov}");
                }
                // Zeek's are random; ours are C and the flow ID in base 62.
                "uid" => {
                    assert!(zv.starts_with('C'), "{ctx}: Zeek uid {zv}");
                    assert!(
                        ov.len() > 1
                            && ov.starts_with('C')
                            && ov[1..].bytes().all(|b| b.is_ascii_alphanumeric()),
                        "{ctx}: uid {ov}"
                    );
                    assert!(uids.insert(ov.to_owned()), "{ctx}: uid {ov} repeated");
                }
                // Without parsers for them (Zeek's vxlan), ours is unset.
                "service" if !PARSED.contains(&zv) => assert_eq!(ov, "-", "{ctx}: service"),
                // Zeek stops the clock of a TCP connection once both sides
                // have closed (TCPSessionAdapter sets last_time only while
                // one is open); our duration runs to the last packet, here
                // the final ACK after the second FIN.
                "duration" if k.4 == "tcp" && z["conn_state"] == "SF" => {
                    let (last, second_fin) = tcp_last_and_second_fin(capture, k);
                    assert_eq!(
                        micros(ov),
                        micros(zv) + (last - second_fin),
                        "{ctx}: duration = Zeek's + time after the second FIN"
                    );
                }
                // ICMP has no stream to miss bytes of: Zeek writes 0; the
                // writer leaves missed_bytes unset for every flow no
                // reassembly saw.
                "missed_bytes" if k.4 == "icmp" => {
                    assert_eq!(zv, "0", "{ctx}: Zeek's {f}");
                    assert_eq!(ov, "-", "{ctx}: {f} unset");
                }
                // Payload bytes seen equal Zeek's sequence-space bytes when
                // nothing was missed or retransmitted.
                "orig_bytes" | "resp_bytes" => {
                    assert_eq!(z["missed_bytes"], "0", "{ctx}: no gaps");
                    assert_eq!(ov, zv, "{ctx}: {f}");
                }
                // We know no local networks (the baselines come from Zeek's
                // Site::private_address_space_is_local); with decapsulation
                // the outer tunnel connection is not logged, so it is no
                // parent.
                "local_orig" | "local_resp" | "tunnel_parents" => {
                    assert_ne!(zv, "", "{ctx}: Zeek's {f}");
                    assert_eq!(ov, "-", "{ctx}: {f} unset");
                }
                _ => assert_eq!(ov, zv, "{ctx}: {f}"),
            }
        }
    }
}

fn key(orig: (&str, u16), resp: (&str, u16), proto: &str) -> Key {
    (
        orig.0.to_owned(),
        orig.1,
        resp.0.to_owned(),
        resp.1,
        proto.to_owned(),
    )
}

/// Every row of the baseline, and no other, in ours.
fn compare_all(capture: &str, log: &str, args: &[&str]) {
    let (z, o) = (zeek(capture, log), ours(capture, args));
    let keys: Vec<Key> = z.rows.keys().cloned().collect();
    assert_eq!(
        o.rows.keys().cloned().collect::<Vec<_>>(),
        keys,
        "{capture}: the same flows"
    );
    compare_rows(capture, &z, &o, &keys);
}

#[test]
fn vlan_mpls() {
    compare_all(
        "zeek__mixed-vlan-mpls.pcap",
        "core.vlan-mpls.conn.log",
        &["--l7"],
    );
}

#[test]
fn q_in_q() {
    compare_all("zeek__q-in-q.pcap", "core.q-in-q.conn.log", &["--l7"]);
}

#[test]
fn missing_syn() {
    compare_all(
        "zeek__tcp_missing-syn.pcap",
        "core.tcp.missing-syn.conn.log",
        &["--l7"],
    );
}

#[test]
fn vxlan_outer_and_inner() {
    let capture = "zeek__tunnels_vxlan-encapsulated-http.pcap";
    let z = zeek(capture, "core.tunnels.analyzer-confirmation.conn.log");
    let outer = key(("10.1.200.131", 50000), ("10.1.1.172", 4789), "udp");
    let inner = key(("172.16.11.201", 40354), ("54.86.237.188", 80), "tcp");
    assert_eq!(
        z.rows.keys().collect::<Vec<_>>(),
        [&outer, &inner],
        "Zeek logs both"
    );
    assert_eq!(z.rows[&inner]["tunnel_parents"], z.rows[&outer]["uid"]);
    // Zeek logs the tunnel and the connection inside it; we key either on
    // the outer packets or (--decap) on the inner ones: each run has one.
    let plain = ours(capture, &["--l7"]);
    assert_eq!(plain.rows.keys().collect::<Vec<_>>(), [&outer]);
    compare_rows(capture, &z, &plain, &[outer]);
    let decap = ours(capture, &["--l7", "--decap"]);
    assert_eq!(decap.rows.keys().collect::<Vec<_>>(), [&inner]);
    compare_rows(capture, &z, &decap, &[inner]);
}

#[test]
fn gre_inner_flows() {
    let capture = "zeek__tunnels_gre-sample.pcap";
    let z = zeek(capture, "core.tunnels.gre.conn.log");
    let o = ours(capture, &["--l7", "--decap"]);
    // Zeek keys ICMP by type and code (in the port fields): the echo
    // exchange (8/0) and the port unreachables sent back (3/3) are two
    // connections, and so are they here, with Zeek's ports.
    let echo = key(("66.59.111.190", 8), ("172.28.2.3", 0), "icmp");
    let unreach = key(("172.28.2.3", 3), ("66.59.111.190", 3), "icmp");
    assert_eq!(
        z.rows
            .keys()
            .filter(|k| k.4 == "icmp")
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([&echo, &unreach])
    );
    let all: Vec<Key> = z.rows.keys().cloned().collect();
    assert_eq!(
        o.rows.keys().cloned().collect::<BTreeSet<_>>(),
        all.iter().cloned().collect::<BTreeSet<_>>(),
        "{capture}: Zeek's flows, ICMP included"
    );
    compare_rows(capture, &z, &o, &all);
    // Without --decap the tracker keys the GRE packets themselves: one
    // unknown_transport flow, which Zeek writes to tunnel.log, not conn.log.
    let plain = ours(capture, &["--l7"]);
    let rows: Vec<&Row> = plain.rows.values().collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["proto"].as_str(), rows[0]["ip_proto"].as_str()),
        ("unknown_transport", "47")
    );
    let tunnel = std::fs::read_to_string(format!(
        "{PCAPS}/expected/zeek/{capture}/core.tunnels.gre.tunnel.log"
    ))
    .expect("tunnel.log");
    let (a, b) = (&rows[0]["id.orig_h"], &rows[0]["id.resp_h"]);
    assert!(
        tunnel
            .lines()
            .any(|l| l.contains(a.as_str()) && l.contains(b.as_str()) && l.contains("GRE")),
        "the GRE tunnel {a} - {b} is in Zeek's tunnel.log"
    );
}

/// Every zeek__ capture with a conn.log baseline is compared above.
#[test]
fn every_baseline_is_compared() {
    let dir = format!("{PCAPS}/expected/zeek");
    let mut with_conn: Vec<String> = std::fs::read_dir(&dir)
        .expect("baselines")
        .filter_map(|e| {
            let e = e.ok()?;
            let has = std::fs::read_dir(e.path())
                .ok()?
                .filter_map(Result::ok)
                .any(|f| f.file_name().to_string_lossy().ends_with(".conn.log"));
            has.then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    with_conn.sort();
    assert_eq!(
        with_conn,
        [
            "zeek__mixed-vlan-mpls.pcap",
            "zeek__q-in-q.pcap",
            "zeek__tcp_missing-syn.pcap",
            "zeek__tunnels_gre-sample.pcap",
            "zeek__tunnels_vxlan-encapsulated-http.pcap",
        ]
    );
}

/// `missed_bytes` of the conn.log the pipeline's reassembly feeds (what
/// `write_flow_summary` is given) equals Zeek's for every flow both logs
/// have: the bytes of sequence gaps never filled.
#[test]
fn missed_bytes_from_reassembly_match_zeek() {
    use flowscope::extract::{AutoDetectEncap, FiveTuple, FiveTupleKey};
    use flowscope::extractor::FlowExtractor;
    use flowscope::l7::L7Record;
    use flowscope::output::zeek::{ZeekConnWriter, ZeekFormat};
    use flowscope::pcap::PcapReader;
    use flowscope::pipeline::{FlowSummary, Pipeline, PipelineConfig, PipelineSink};
    use flowscope::tracker::{EndReason, FlowRecord};
    use flowscope::view::Timestamp;

    struct Conn(ZeekConnWriter<Vec<u8>>);
    impl PipelineSink<FiveTupleKey> for Conn {
        fn l7(&mut self, _: &FlowRecord<FiveTupleKey>, _: Timestamp, _: L7Record) {}

        fn flow_ended(
            &mut self,
            flow: &FlowRecord<FiveTupleKey>,
            _reason: EndReason,
            summary: Option<&FlowSummary>,
        ) {
            self.0
                .write_flow_summary(flow, None, summary)
                .expect("write");
        }
    }
    fn conn_log<E: FlowExtractor<Key = FiveTupleKey>>(capture: &str, extractor: E) -> Log {
        let mut reader = PcapReader::open(format!("{PCAPS}/{capture}")).expect("open");
        let mut pipeline = Pipeline::new(extractor, PipelineConfig::default());
        let mut sink = Conn(ZeekConnWriter::new(Vec::new(), ZeekFormat::Tsv).expect("writer"));
        while let Some(view) = reader.next_packet().expect("read") {
            pipeline.process(view, &mut sink);
        }
        pipeline.finish(&mut sink);
        parse_tsv(&String::from_utf8(sink.0.finish().expect("finish")).expect("utf-8"))
    }

    let cases = [
        (
            "zeek__mixed-vlan-mpls.pcap",
            "core.vlan-mpls.conn.log",
            false,
        ),
        ("zeek__q-in-q.pcap", "core.q-in-q.conn.log", false),
        (
            "zeek__tcp_missing-syn.pcap",
            "core.tcp.missing-syn.conn.log",
            false,
        ),
        (
            "zeek__tunnels_gre-sample.pcap",
            "core.tunnels.gre.conn.log",
            true,
        ),
        (
            "zeek__tunnels_vxlan-encapsulated-http.pcap",
            "core.tunnels.analyzer-confirmation.conn.log",
            true,
        ),
    ];
    let mut compared = 0;
    for (capture, log, decap) in cases {
        let z = zeek(capture, log);
        let o = if decap {
            conn_log(capture, AutoDetectEncap::new(FiveTuple::bidirectional()))
        } else {
            conn_log(capture, FiveTuple::bidirectional())
        };
        // Keys only one side has (the tunnel connection with --decap) and
        // ICMP (no reassembly) are compared in the tests above.
        for (k, zr) in z
            .rows
            .iter()
            .filter(|(k, _)| o.rows.contains_key(*k) && k.4 != "icmp")
        {
            assert_eq!(
                o.rows[k]["missed_bytes"], zr["missed_bytes"],
                "{capture} {k:?}: missed_bytes"
            );
            compared += 1;
        }
    }
    assert!(compared >= 10, "{compared} flows compared");
}

#[test]
fn gre_ssh_log() {
    let capture = "zeek__tunnels_gre-sample.pcap";
    let z = zeek(capture, "core.tunnels.gre.ssh.log");
    let o = ours_log(capture, "ssh.log", &["--l7", "--decap"]);
    assert_eq!(o.header, z.header, "{capture}: ssh.log header lines");
    assert_eq!(
        o.rows.keys().collect::<Vec<_>>(),
        z.rows.keys().collect::<Vec<_>>()
    );
    let conn = ours(capture, &["--l7", "--decap"]);
    for (k, zr) in &z.rows {
        let or = &o.rows[k];
        for f in &z.fields {
            let (zv, ov) = (zr[f].as_str(), or[f].as_str());
            match f.as_str() {
                "ts" => assert!(micros(ov) > 0, "{k:?}: ts {ov}"),
                // Joined to our conn.log by uid.
                "uid" => assert_eq!(ov, conn.rows[k]["uid"], "{k:?}: uid"),
                // Zeek counts auth attempts from the sizes of encrypted
                // packets, sets direction from its local networks and
                // fingerprints the host key of the key exchange reply; the
                // parser stops before all three.
                "auth_attempts" | "direction" | "host_key_fingerprint" => {
                    assert_ne!(zv, "-", "{k:?}: Zeek's {f}");
                    assert_eq!(ov, "-", "{k:?}: {f} unset");
                }
                _ => assert_eq!(ov, zv, "{k:?}: {f}"),
            }
        }
    }
}
