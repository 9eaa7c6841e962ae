//! The tshark L7 oracles of ../shared/pcaps/expected/oracles, and the DNS
//! comparison both L7 capture tests (the parser-level harness and the
//! full pipeline) run against them.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::HashMap;

use flowscope::l7::{DnsKind, DnsRecord};

/// The shared captures and their expected outputs.
pub const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// The rows of a tshark field dump (`l7/FILE` of `pcap`), by column name.
pub fn tsv(pcap: &str, file: &str) -> Vec<HashMap<String, String>> {
    let path = format!("{PCAPS}/expected/oracles/{pcap}/l7/{file}");
    let text = std::fs::read_to_string(path).expect("oracle file");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t').chain(std::iter::repeat("")))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The numeric DNS type tshark prints for a type name.
pub fn type_code(name: &str) -> String {
    let code = match name {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "OPT" => 41,
        "DS" => 43,
        "RRSIG" => 46,
        "NSEC" => 47,
        "DNSKEY" => 48,
        "ANY" => 255,
        other => return other.trim_start_matches("TYPE").to_owned(),
    };
    code.to_string()
}

/// Matches tshark's `dns.tsv` rows of `pcap` with `left` (our records) by
/// id, direction, name and type; checks answer counts and A/AAAA rdata.
/// Returns (rows, rows we lack).
pub fn check_dns(pcap: &str, mut left: Vec<&DnsRecord>) -> (usize, usize) {
    let key_of = |r: &DnsRecord| {
        (
            format!("0x{:04x}", r.id),
            r.kind == DnsKind::Answer,
            r.rrname.clone().unwrap_or_default(),
            type_code(r.rrtype.as_deref().unwrap_or_default()),
        )
    };
    let rows = tsv(pcap, "dns.tsv");
    let mut missing = 0;
    for row in &rows {
        let key = (
            row["dns.id"].clone(),
            row["dns.flags.response"] == "1",
            row["dns.qry.name"].clone(),
            row["dns.qry.type"].clone(),
        );
        let Some(at) = left.iter().position(|r| key_of(r) == key) else {
            missing += 1;
            eprintln!("{pcap}: missing {key:?} (frame {})", row["frame.number"]);
            continue;
        };
        let r = left.swap_remove(at);
        if key.1 {
            assert_eq!(
                r.answers.len().to_string(),
                row["dns.count.answers"],
                "{pcap}: {key:?}"
            );
            // tshark's dns.a / dns.aaaa also list authority and additional
            // records; ours hold the answer section only: inclusion.
            let listed: Vec<&str> = row["dns.a"]
                .split(',')
                .chain(row["dns.aaaa"].split(','))
                .collect();
            for a in r
                .answers
                .iter()
                .filter(|a| a.rrtype == "A" || a.rrtype == "AAAA")
            {
                let rdata = a.rdata.as_deref().unwrap_or_default();
                assert!(
                    listed.contains(&rdata),
                    "{pcap}: {key:?}: {rdata} not in {listed:?}"
                );
            }
        }
    }
    (rows.len(), missing)
}
