//! The tshark L7 oracles of ../shared/pcaps/expected/oracles (and
//! ndpiReader's outputs), and the HTTP, TLS and DNS comparisons both L7
//! capture tests (the parser-level harness and the full pipeline) run
//! against them.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::HashMap;

use flowscope::l7::{DnsKind, DnsRecord, HttpRecord, TlsRecord};

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

/// `None` as the empty string, as tshark prints an absent field.
pub fn s(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// Every request and response tshark lists in `http_requests{dump}.tsv`
/// and `http_responses{dump}.tsv` (`dump` is `""` or `".ooo"`) is among
/// `ours`, each matched once. Returns how many of each tshark lists.
pub fn check_http(pcap: &str, ours: &[&HttpRecord], dump: &str) -> (usize, usize) {
    let mut requests: Vec<[String; 5]> = ours
        .iter()
        .filter(|r| r.http_method.is_some())
        .map(|r| {
            [
                s(&r.http_method),
                s(&r.hostname),
                s(&r.url),
                s(&r.protocol),
                s(&r.http_user_agent),
            ]
        })
        .collect();
    let want = tsv(pcap, &format!("http_requests{dump}.tsv"));
    for row in &want {
        let key = [
            "http.request.method",
            "http.host",
            "http.request.uri",
            "http.request.version",
            "http.user_agent",
        ]
        .map(|k| row[k].clone());
        let at = requests.iter().position(|r| *r == key);
        assert!(
            at.is_some(),
            "{pcap}: request {key:?} (frame {}) not found",
            row["frame.number"]
        );
        requests.swap_remove(at.unwrap_or_default());
    }
    let mut responses: Vec<&&HttpRecord> = ours.iter().filter(|r| r.status.is_some()).collect();
    let want_responses = tsv(pcap, &format!("http_responses{dump}.tsv"));
    for row in &want_responses {
        let code: u16 = row["http.response.code"].parse().expect("code");
        let ctype = row["http.content_type"].clone();
        let length: Option<u64> = row["http.content_length_header"].parse().ok();
        let at = responses.iter().position(|r| {
            r.status == Some(code)
                && s(&r.http_content_type) == ctype
                // A response to HEAD has no body (RFC 9112 §6.3) whatever
                // its Content-Length says; tshark reports the header, we
                // the body.
                && length.is_none_or(|l| {
                    l == r.length || (r.http_method.as_deref() == Some("HEAD") && r.length == 0)
                })
        });
        assert!(
            at.is_some(),
            "{pcap}: response {code} {ctype} {length:?} (frame {}) not found",
            row["frame.number"]
        );
        responses.swap_remove(at.unwrap_or_default());
    }
    (want.len(), want_responses.len())
}

/// `[KEY: value]` fields of ndpiReader's flow lines for `pcap`; none for
/// captures that are not ndpi's own (only those have ndpiReader output).
pub fn ndpi_fields(pcap: &str, key: &str) -> Vec<String> {
    if !pcap.starts_with("ndpi__") {
        return Vec::new();
    }
    let path = format!("{PCAPS}/expected/ndpiReader-4.2/{pcap}.out");
    let text = std::fs::read_to_string(path).expect("ndpi output");
    let tag = format!("[{key}: ");
    text.lines()
        .filter_map(|l| {
            let start = l.find(&tag)? + tag.len();
            let end = l[start..].find(']')? + start;
            Some(l[start..end].to_owned())
        })
        .collect()
}

/// Every ClientHello JA3 and SNI and ServerHello JA3S of tshark (and of
/// ndpiReader, for its captures) is among ours. Returns the hello count.
pub fn check_tls(pcap: &str, ours: &[&TlsRecord]) -> usize {
    let ja3: Vec<&str> = ours
        .iter()
        .filter_map(|r| r.ja3.as_ref())
        .map(|j| j.hash.as_str())
        .collect();
    let ja3s: Vec<&str> = ours
        .iter()
        .filter_map(|r| r.ja3s.as_ref())
        .map(|j| j.hash.as_str())
        .collect();
    let sni: Vec<&str> = ours.iter().filter_map(|r| r.sni.as_deref()).collect();
    let hellos = tsv(pcap, "tls_client_hello.tsv");
    for row in &hellos {
        // A frame with several ClientHellos lists each value, comma-joined.
        for h in row["tls.handshake.ja3"]
            .split(',')
            .filter(|v| !v.is_empty())
        {
            assert!(ja3.contains(&h), "{pcap}: JA3 {h} not found in {ja3:?}");
        }
        let name = &row["tls.handshake.extensions_server_name"];
        assert!(
            name.is_empty() || sni.contains(&name.as_str()),
            "{pcap}: SNI {name} not found"
        );
    }
    for row in &tsv(pcap, "tls_server_hello.tsv") {
        for h in row["tls.handshake.ja3s"]
            .split(',')
            .filter(|v| !v.is_empty())
        {
            assert!(ja3s.contains(&h), "{pcap}: JA3S {h} not found in {ja3s:?}");
        }
    }
    for h in ndpi_fields(pcap, "JA3C") {
        assert!(ja3.contains(&h.as_str()), "{pcap}: ndpi JA3C {h} not found");
    }
    for h in ndpi_fields(pcap, "JA3S") {
        assert!(
            ja3s.contains(&h.as_str()),
            "{pcap}: ndpi JA3S {h} not found"
        );
    }
    for h in ndpi_fields(pcap, "Hostname/SNI") {
        assert!(sni.contains(&h.as_str()), "{pcap}: ndpi SNI {h} not found");
    }
    hellos.len()
}
