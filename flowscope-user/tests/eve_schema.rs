//! Every EVE record `flowscope read` writes for every shared capture, with
//! the default options (L7 on), with `--decap` and with `--no-l7`, validates against Suricata's own
//! schema (see `common/eve_schema.rs`), and the fields Suricata defines
//! mean what they mean in Suricata: `flow.reason`, `flow.alerted`, `proto`
//! names, ICMP type and code instead of ports, DNS version 2, `flow_id`
//! shared by a flow's records and new on every run. flowscope's own fields
//! appear with `--eve-extras` only.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::eve_schema::{assert_valid, flowscope_read, records};
use common::temp::TempDir;
use serde_json::Value;

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// `flowscope read FILE ARGS -o eve:OUT`.
fn read(capture: &Path, args: &[&str], out: &Path) {
    let o = flowscope_read(capture, args, out);
    // A damaged capture ends early with a message; its records are written.
    assert!(
        out.exists(),
        "{}: {}",
        capture.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The EVE files of every shared capture, default options, `--decap` and
/// `--no-l7`, written once for all the tests of this file.
fn outputs() -> &'static (TempDir, Vec<PathBuf>) {
    static OUT: OnceLock<(TempDir, Vec<PathBuf>)> = OnceLock::new();
    OUT.get_or_init(|| {
        let dir = TempDir::new("eve-schema");
        let mut files = Vec::new();
        for capture in common::shared_captures() {
            let name = capture.file_name().unwrap().to_string_lossy().into_owned();
            for (tag, args) in [
                ("plain", &[][..]),
                ("decap", &["--decap"][..]),
                ("no-l7", &["--no-l7"][..]),
            ] {
                let out = dir.path().join(format!("{name}.{tag}.json"));
                read(&capture, args, &out);
                files.push(out);
            }
        }
        (dir, files)
    })
}

#[test]
fn the_schema_is_a_draft_7_schema() {
    common::eve_schema::check_schema();
}

#[test]
fn every_record_of_every_capture_validates() {
    let (_, files) = outputs();
    let report = assert_valid("read, read --decap, read --no-l7 of every capture", files);
    // Every kind flowscope writes by default was among them.
    for kind in ["flow", "dns", "http", "tls", "quic", "ssh", "anomaly"] {
        assert!(
            report["checked"][kind].as_u64().unwrap_or(0) > 0,
            "no {kind} record was checked"
        );
    }
}

fn is_icmp(r: &Value) -> bool {
    r["proto"] == "ICMP" || r["proto"] == "IPv6-ICMP"
}

#[test]
fn fields_mean_what_suricata_means() {
    let (_, files) = outputs();
    let mut reasons = HashSet::new();
    let mut icmp_flows = 0;
    for file in files {
        let recs = records(file);
        let mut flow_ids: HashMap<u64, &Value> = HashMap::new();
        for r in recs.iter().filter(|r| r["event_type"] == "flow") {
            let f = &r["flow"];
            assert_eq!(
                f["alerted"],
                false,
                "{}: no rules, no alerts",
                file.display()
            );
            reasons.insert(f["reason"].as_str().unwrap().to_owned());
            let id = r["flow_id"].as_u64().unwrap();
            assert!(id < 1 << 53, "flow_id exact as a JSON double");
            // One flow record per flow here (no active timeout).
            assert!(
                flow_ids.insert(id, r).is_none(),
                "{}: flow_id {id} of two flows",
                file.display()
            );
            if is_icmp(r) {
                icmp_flows += 1;
                assert!(r.get("src_port").is_none() && r.get("dest_port").is_none());
                assert!(r["icmp_type"].is_u64() && r["icmp_code"].is_u64());
                // Suricata writes the responder's type and code once it sent.
                assert_eq!(
                    r.get("response_icmp_type").is_some(),
                    f["pkts_toclient"].as_u64().unwrap() > 0,
                    "{r}"
                );
            } else {
                assert!(r.get("icmp_type").is_none());
            }
            for extra in [
                "history",
                "conn_state",
                "end_reason",
                "reassembly",
                "bounds",
            ] {
                assert!(r.get(extra).is_none(), "{extra} is an extra");
            }
        }
        // Every other record of a flow carries its flow's ID and endpoints.
        for r in recs.iter().filter(|r| r["event_type"] != "flow") {
            let id = r["flow_id"].as_u64().unwrap();
            let flow = flow_ids
                .get(&id)
                .unwrap_or_else(|| panic!("{}: {r} has no flow record", file.display()));
            for k in ["src_ip", "dest_ip", "proto", "community_id"] {
                assert_eq!(r[k], flow[k], "{}: {k} of {r}", file.display());
            }
            if r["event_type"] == "dns" {
                let dns = &r["dns"];
                assert_eq!(dns["version"], 2);
                if dns["type"] == "answer" {
                    assert_eq!(dns["qr"], true);
                    assert!(dns["flags"].as_str().is_some_and(|f| f.len() <= 4));
                }
            }
        }
    }
    // Files end every open flow at the end of input: `shutdown`; closed
    // and idle flows: `timeout`.
    assert_eq!(
        reasons,
        HashSet::from(["shutdown".to_owned(), "timeout".to_owned()])
    );
    assert!(icmp_flows > 20, "ICMP flows checked: {icmp_flows}");
}

/// Suricata writes every IP protocol by name: GRE, not 47.
#[test]
fn protocols_by_name() {
    let (dir, _) = outputs();
    let recs = records(&dir.path().join("zeek__tunnels_gre-sample.pcap.plain.json"));
    assert!(recs.iter().any(|r| r["proto"] == "GRE"));
    for r in records(&dir.path().join("ndpi__6in4tunnel.pcap.plain.json")) {
        // 6in4: IPv6 in IPv4 (protocol 41), keyed on the outer packets.
        assert_eq!(r["proto"], "IPv6", "{r}");
    }
}

/// Two runs over one capture share no `flow_id` (unique across restarts),
/// and each run's records of a flow share theirs.
#[test]
fn flow_ids_are_new_on_every_run() {
    let dir = TempDir::new("eve-flow-ids");
    let capture = PathBuf::from(PCAPS).join("zeek__http_methods.pcap");
    let ids = |n: usize| {
        let out = dir.path().join(format!("run{n}.json"));
        read(&capture, &[], &out);
        let recs = records(&out);
        let by_flow: HashMap<String, u64> = recs
            .iter()
            .filter(|r| r["event_type"] == "flow")
            .map(|r| {
                (
                    r["community_id"].as_str().unwrap().to_owned(),
                    r["flow_id"].as_u64().unwrap(),
                )
            })
            .collect();
        for r in &recs {
            let cid = r["community_id"].as_str().unwrap();
            assert_eq!(r["flow_id"].as_u64().unwrap(), by_flow[cid]);
        }
        by_flow
    };
    let (a, b) = (ids(1), ids(2));
    assert_eq!(a.len(), 49);
    assert_eq!(
        a.keys().collect::<HashSet<_>>(),
        b.keys().collect::<HashSet<_>>()
    );
    let a_ids: HashSet<u64> = a.values().copied().collect();
    assert_eq!(a_ids.len(), 49, "one flow_id per flow");
    assert!(
        b.values().all(|id| !a_ids.contains(id)),
        "no flow_id reused"
    );
}

/// `--eve-extras` adds flowscope's own fields (which Suricata's schema
/// rejects, so they are off by default).
#[test]
fn extras_on_request() {
    let dir = TempDir::new("eve-extras");
    let out = dir.path().join("extras.json");
    let capture = PathBuf::from(PCAPS).join("zeek__http_methods.pcap");
    read(&capture, &["--eve-extras"], &out);
    let recs = records(&out);
    let flows: Vec<&Value> = recs.iter().filter(|r| r["event_type"] == "flow").collect();
    assert_eq!(flows.len(), 49);
    for r in flows {
        assert!(r["history"].is_string() && r["conn_state"].is_string());
        assert!(r["reassembly"].is_object());
        // The tracker's finer reason beside Suricata's.
        let (end, reason) = (r["end_reason"].as_str().unwrap(), &r["flow"]["reason"]);
        let want = match end {
            "force_closed" => "shutdown",
            "evicted" | "buffer_overflow" | "parse_error" => "forced",
            _ => "timeout",
        };
        assert_eq!(reason, want, "{end}");
    }
    let report = common::eve_schema::validate(&[out]);
    assert!(
        report["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["message"].as_str().unwrap().contains("history")),
        "the schema rejects the extras: that is why they are optional"
    );
}

/// EVE's `http.redirect` is the response's `Location` header, as
/// Suricata writes it: every one tshark reads in the shared captures that
/// carry one, with its status, and valid against Suricata's schema.
#[test]
fn http_redirect_is_the_location_tshark_reads() {
    let dir = TempDir::new("eve-redirect");
    for (capture, n) in [("ndpi__6in4tunnel.pcap", 1), ("ndpi__WebattackXSS.pcap", 6)] {
        let out = dir.path().join(format!("{capture}.json"));
        let run = flowscope_read(&PathBuf::from(PCAPS).join(capture), &["--decap"], &out);
        assert!(run.status.success(), "{capture}: {run:?}");
        assert_valid(capture, std::slice::from_ref(&out));
        let mut ours: Vec<(String, String)> = records(&out)
            .iter()
            .filter_map(|r| {
                let h = r.get("http")?;
                Some((
                    h["status"].to_string(),
                    h.get("redirect")?.as_str()?.to_owned(),
                ))
            })
            .collect();
        let tshark = std::process::Command::new("tshark")
            .args([
                "-n",
                "-r",
                &format!("{PCAPS}/{capture}"),
                "-Y",
                "http.location",
            ])
            .args([
                "-T",
                "fields",
                "-e",
                "http.response.code",
                "-e",
                "http.location",
            ])
            .output()
            .expect("tshark runs");
        let mut want: Vec<(String, String)> = String::from_utf8_lossy(&tshark.stdout)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(code, location)| (code.to_owned(), location.to_owned()))
            .collect();
        ours.sort();
        want.sort();
        assert_eq!(want.len(), n, "{capture}: tshark's Location headers");
        assert_eq!(ours, want, "{capture}");
    }
}
