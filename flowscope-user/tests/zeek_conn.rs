//! The conn.log and ssh.log of `flowscope read FILE --output zeek:DIR` (and
//! `zeek-json:`) against Zeek's own baselines (`../shared/pcaps/expected/zeek`),
//! row by row, keyed by (orig_h, orig_p, resp_h, resp_p, proto).
//!
//! Every field is compared. Where our definition differs from Zeek's, the
//! difference itself is asserted, with its reason; flows one side has and
//! the other lacks are named, with theirs. btest masks `ts` and the
//! `#open`/`#close` times; the baselines' uids are Zeek's (seeded random).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::filters::PCAPS;
use common::zeek::{Key, Log, Row, micros, parse_tsv};

/// Zeek's baseline conn.log (one row per connection).
fn zeek(capture: &str, log: &str) -> Log {
    let z = common::zeek::zeek(capture, log);
    assert_eq!(z.repeated_keys, 0, "{capture} {log}: one row per key");
    z
}

/// The private address space, which Zeek's baselines call local
/// (`Site::private_address_space_is_local`).
const PRIVATE: &str =
    "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,127.0.0.0/8,fc00::/7,fe80::/10,::1/128";

/// Our TSV logs of `capture` (one conn.log row per connection), the
/// private address space local as in the baselines.
fn ours_logs(capture: &str, args: &[&str]) -> BTreeMap<String, Log> {
    let mut args = args.to_vec();
    args.extend(["--local-nets", PRIVATE]);
    let logs = common::zeek::ours_logs(capture, &args);
    let conn = logs.get("conn.log").expect("conn.log");
    assert_eq!(conn.repeated_keys, 0, "{capture} conn.log: one row per key");
    logs
}

/// Our TSV conn.log of `capture`.
fn ours(capture: &str, args: &[&str]) -> Log {
    let mut logs = ours_logs(capture, args);
    logs.remove("conn.log").expect("conn.log")
}

/// The connection of each uid a log set names: conn.log's and
/// tunnel.log's rows.
fn connections(logs: &[&Log]) -> BTreeMap<String, Key> {
    logs.iter()
        .flat_map(|l| &l.all)
        .map(|r| (r["uid"].clone(), common::zeek::key_of(r)))
        .collect()
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
const PARSED: [&str; 6] = ["http", "dns", "ssl", "ssh", "ntp", "vxlan"];

/// Compares the rows of `keys` field by field; `tunnels`: Zeek's and our
/// tunnel.log, whose uids `tunnel_parents` may name.
fn compare_rows(
    capture: &str,
    zeek: &Log,
    ours: &Log,
    keys: &[Key],
    tunnels: Option<(&Log, &Log)>,
) {
    assert_eq!(ours.header, zeek.header, "{capture}: header lines");
    let (zeek_uids, our_uids) = match tunnels {
        Some((z, o)) => (connections(&[zeek, z]), connections(&[ours, o])),
        None => (connections(&[zeek]), connections(&[ours])),
    };
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
                // Zeek's are random; ours are keyed hashes of the flow, in
                // Zeek's form (C and 96 bits in base 62).
                "uid" => {
                    assert!(zv.starts_with('C'), "{ctx}: Zeek uid {zv}");
                    assert!(
                        (12..=18).contains(&ov.len())
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
                // Payload bytes seen equal Zeek's sequence-space bytes when
                // nothing was missed or retransmitted.
                "orig_bytes" | "resp_bytes" => {
                    assert_eq!(z["missed_bytes"], "0", "{ctx}: no gaps");
                    assert_eq!(ov, zv, "{ctx}: {f}");
                }
                // Uids differ; the connections they name are the same.
                "tunnel_parents" => {
                    let named = |uids: &BTreeMap<String, Key>, v: &str| {
                        (v != "-").then(|| {
                            uids.get(v)
                                .unwrap_or_else(|| panic!("{ctx}: parent {v} is in no log"))
                                .clone()
                        })
                    };
                    let (z, o) = (named(&zeek_uids, zv), named(&our_uids, ov));
                    let tunnel = |k: Key| (k.0, k.1, k.2, k.3);
                    assert_eq!(o.map(tunnel), z.map(tunnel), "{ctx}: {f}");
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
    compare_rows(capture, &z, &o, &keys, None);
}

#[test]
fn vlan_mpls() {
    // L7 (and with it `service`) is on by default.
    compare_all("zeek__mixed-vlan-mpls.pcap", "core.vlan-mpls.conn.log", &[]);
}

/// Without `--local-nets`, `local_orig`/`local_resp` are unset, as Zeek
/// leaves them with an empty `Site::local_nets`.
#[test]
fn no_local_nets_leaves_locality_unset() {
    let o = common::zeek::ours_log("zeek__q-in-q.pcap", "conn.log", &[]);
    assert!(!o.all.is_empty());
    for row in &o.all {
        assert_eq!(
            (row["local_orig"].as_str(), row["local_resp"].as_str()),
            ("-", "-")
        );
    }
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
    let both = [outer.clone(), inner.clone()];
    assert_eq!(
        z.rows.keys().collect::<Vec<_>>(),
        [&outer, &inner],
        "Zeek logs both"
    );
    assert_eq!(z.rows[&inner]["tunnel_parents"], z.rows[&outer]["uid"]);
    // Without --decap the tracker keys the outer packets only.
    let plain = ours(capture, &["--l7"]);
    assert_eq!(plain.rows.keys().collect::<Vec<_>>(), [&outer]);
    assert_eq!(plain.rows[&outer]["service"], "-", "no tunnel known");
    // With it, both, as Zeek: the carrier (service vxlan) and the
    // connection inside, which names it in tunnel_parents.
    let logs = ours_logs(capture, &["--l7", "--decap"]);
    let decap = &logs["conn.log"];
    compare_rows(capture, &z, decap, &both, None);
    assert_eq!(decap.rows.keys().cloned().collect::<Vec<_>>(), both);
    // tunnel.log (Zeek's test writes none: it runs bare): the tunnel found,
    // and closed when its carrier's record ends with the run.
    let tunnel = &logs["tunnel.log"];
    let rows: Vec<[&str; 3]> = tunnel
        .all
        .iter()
        .map(|r| [r["uid"].as_str(), &r["tunnel_type"], &r["action"]])
        .collect();
    let uid = decap.rows[&outer]["uid"].as_str();
    assert_eq!(
        rows,
        [
            [uid, "Tunnel::VXLAN", "Tunnel::DISCOVER"],
            [uid, "Tunnel::VXLAN", "Tunnel::CLOSE"]
        ]
    );
    let k = |r: &Row| {
        let k = common::zeek::key_of(r);
        (k.0, k.1, k.2, k.3)
    };
    assert!(tunnel.all.iter().all(|r| k(r) == k(&decap.rows[&outer])));
}

#[test]
fn gre_inner_flows_and_tunnel() {
    let capture = "zeek__tunnels_gre-sample.pcap";
    let z = zeek(capture, "core.tunnels.gre.conn.log");
    let zt = zeek(capture, "core.tunnels.gre.tunnel.log");
    let logs = ours_logs(capture, &["--l7", "--decap"]);
    let (o, ot) = (&logs["conn.log"], &logs["tunnel.log"]);
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
    // The GRE carrier has no conn.log row, in Zeek or here.
    let all: Vec<Key> = z.rows.keys().cloned().collect();
    assert_eq!(
        o.rows.keys().cloned().collect::<BTreeSet<_>>(),
        all.iter().cloned().collect::<BTreeSet<_>>(),
        "{capture}: Zeek's flows, ICMP included"
    );
    compare_rows(capture, &z, o, &all, Some((&zt, ot)));
    // tunnel.log: the tunnel found, nothing when the run ends.
    assert_eq!(ot.header, zt.header, "{capture}: tunnel.log header lines");
    assert_eq!(
        ot.all.iter().map(common::zeek::key_of).collect::<Vec<_>>(),
        zt.all.iter().map(common::zeek::key_of).collect::<Vec<_>>()
    );
    for (or, zr) in ot.all.iter().zip(&zt.all) {
        for f in &zt.fields {
            match f.as_str() {
                "ts" => assert!(micros(&or[f]) > 0),
                // Named by every connection inside (compared above).
                "uid" => assert!(o.all.iter().all(|r| r["tunnel_parents"] == or[f])),
                _ => assert_eq!(or[f], zr[f], "{capture} tunnel.log {f}"),
            }
        }
    }
    // Without --decap the tracker keys the GRE packets themselves: one
    // unknown_transport flow.
    let plain = ours(capture, &["--l7"]);
    let rows: Vec<&Row> = plain.rows.values().collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["proto"].as_str(), rows[0]["ip_proto"].as_str()),
        ("unknown_transport", "47")
    );
    assert_eq!(
        (rows[0]["id.orig_h"].as_str(), rows[0]["id.resp_h"].as_str()),
        ("172.27.1.66", "66.59.109.137"),
        "the tunnel of Zeek's tunnel.log"
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
    use flowscope::pipeline::{Carrier, FlowSummary, Pipeline, PipelineConfig, PipelineSink};
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
            _carrier: Option<&Carrier>,
        ) {
            self.0
                .write_flow_summary(flow, None, summary, None, None)
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
        // Every flow of Zeek's: ICMP has none to miss (0, as Zeek).
        for (k, zr) in &z.rows {
            assert_eq!(
                o.rows[k]["missed_bytes"], zr["missed_bytes"],
                "{capture} {k:?}: missed_bytes"
            );
            compared += 1;
        }
    }
    assert!(compared >= 14, "{compared} flows compared");
}

#[test]
fn gre_ssh_log() {
    let capture = "zeek__tunnels_gre-sample.pcap";
    let z = zeek(capture, "core.tunnels.gre.ssh.log");
    // conn.log and ssh.log of one run: uids differ from run to run.
    let logs = common::zeek::ours_logs(capture, &["--l7", "--decap"]);
    let (o, conn) = (&logs["ssh.log"], &logs["conn.log"]);
    assert_eq!(o.header, z.header, "{capture}: ssh.log header lines");
    assert_eq!(
        o.rows.keys().collect::<Vec<_>>(),
        z.rows.keys().collect::<Vec<_>>()
    );
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
