//! The tshark L7 oracles of ../shared/pcaps/expected/oracles (and
//! ndpiReader's outputs), tshark run at test time on captures the tests
//! make or edit, and the HTTP, TLS, DNS and SSH comparisons the L7 tests
//! (the parser-level harness, the full pipeline, edited captures, live SSH
//! sessions) run against them.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use flowscope::l7::{DnsKind, DnsRecord, HttpRecord, SshRecord, TlsRecord};

/// The shared captures and their expected outputs.
pub const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// One row of a field dump, by column name.
pub type Row = HashMap<String, String>;

/// The rows of a tshark field dump (`l7/FILE` of `pcap`), by column name.
pub fn tsv(pcap: &str, file: &str) -> Vec<Row> {
    let path = format!("{PCAPS}/expected/oracles/{pcap}/l7/{file}");
    rows(&std::fs::read_to_string(path).expect("oracle file"))
}

/// tshark's `fields` of the frames of `path` that match `filter`, as rows
/// like [`tsv`]'s; `extra` are more tshark arguments (`-d` decode-as rules).
pub fn tshark_fields(path: &Path, filter: &str, fields: &[&str], extra: &[&str]) -> Vec<Row> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(path);
    cmd.args(["-Y", filter, "-T", "fields", "-E", "header=y"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark ({e}): install it with `cargo xtask deps`"));
    assert!(
        out.status.success(),
        "tshark on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    rows(&String::from_utf8_lossy(&out.stdout))
}

/// Tab-separated rows under a header line.
fn rows(text: &str) -> Vec<Row> {
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

/// Matches tshark's `dns.tsv` rows of `pcap` with `left` (our records) by
/// id, direction, name and type; checks answer counts and A/AAAA rdata.
/// Returns (rows, rows we lack).
pub fn check_dns(pcap: &str, mut left: Vec<&DnsRecord>) -> (usize, usize) {
    let key_of = |r: &DnsRecord| {
        (
            format!("0x{:04x}", r.id),
            r.kind == DnsKind::Answer,
            r.rrname().unwrap_or_default().to_owned(),
            r.rrtype().map_or(String::new(), |t| t.0.to_string()),
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
                r.answers().len().to_string(),
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
                .answers()
                .filter(|a| a.rrtype.name() == "A" || a.rrtype.name() == "AAAA")
            {
                let rdata = a.rdata.unwrap_or_default();
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
pub fn s(v: Option<&str>) -> String {
    v.unwrap_or_default().to_owned()
}

/// The fields of tshark's `http_requests` dumps.
pub const HTTP_REQUEST_FIELDS: [&str; 6] = [
    "frame.number",
    "http.request.method",
    "http.host",
    "http.request.uri",
    "http.request.version",
    "http.user_agent",
];

/// The fields of tshark's `http_responses` dumps.
pub const HTTP_RESPONSE_FIELDS: [&str; 4] = [
    "frame.number",
    "http.response.code",
    "http.content_type",
    "http.content_length_header",
];

/// Every request and response tshark lists in `http_requests{dump}.tsv`
/// and `http_responses{dump}.tsv` (`dump` is `""` or `".ooo"`) is among
/// `ours`, each matched once. Returns how many of each tshark lists.
pub fn check_http(pcap: &str, ours: &[&HttpRecord], dump: &str) -> (usize, usize) {
    let want = tsv(pcap, &format!("http_requests{dump}.tsv"));
    let want_responses = tsv(pcap, &format!("http_responses{dump}.tsv"));
    check_http_rows(pcap, ours, &want, &want_responses)
}

/// [`check_http`] against rows of [`HTTP_REQUEST_FIELDS`] and
/// [`HTTP_RESPONSE_FIELDS`] (`label` names the capture in failures).
pub fn check_http_rows(
    label: &str,
    ours: &[&HttpRecord],
    want: &[Row],
    want_responses: &[Row],
) -> (usize, usize) {
    let pcap = label;
    let mut requests: Vec<[String; 5]> = ours
        .iter()
        .filter(|r| r.http_method().is_some())
        .map(|r| {
            [
                s(r.http_method()),
                s(r.hostname()),
                s(r.url()),
                s(r.protocol()),
                s(r.http_user_agent()),
            ]
        })
        .collect();
    for row in want {
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
    for row in want_responses {
        let code: u16 = row["http.response.code"].parse().expect("code");
        let ctype = row["http.content_type"].clone();
        let length: Option<u64> = row["http.content_length_header"].parse().ok();
        let at = responses.iter().position(|r| {
            r.status == Some(code)
                && s(r.http_content_type()) == ctype
                // A response to HEAD has no body (RFC 9112 §6.3) whatever
                // its Content-Length says; tshark reports the header, we
                // the body.
                && length.is_none_or(|l| {
                    l == r.length || (r.http_method() == Some("HEAD") && r.length == 0)
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
        .filter_map(|r| r.ja3())
        .map(|j| j.hash)
        .collect();
    let ja3s: Vec<&str> = ours
        .iter()
        .filter_map(|r| r.ja3s())
        .map(|j| j.hash)
        .collect();
    let sni: Vec<&str> = ours.iter().filter_map(|r| r.sni()).collect();
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

/// tshark's SSH fields (`ssh.protocol`, `ssh.kex.hassh`,
/// `ssh.kex.hasshserver`, with their algorithm strings) of `path`;
/// `extra` are more tshark arguments (`-d tcp.port==2222,ssh`).
pub fn tshark_ssh(path: &Path, extra: &[&str]) -> Vec<Row> {
    tshark_fields(
        path,
        "ssh.protocol or ssh.kex.hassh or ssh.kex.hasshserver",
        &[
            "frame.number",
            "tcp.srcport",
            "tcp.dstport",
            "ssh.protocol",
            "ssh.kex.hassh",
            "ssh.kex.hassh_algorithms",
            "ssh.kex.hasshserver",
            "ssh.kex.hasshserver_algorithms",
        ],
        extra,
    )
}

/// Every identification line and HASSH / HASSH-server tshark finds in
/// `rows` (from [`tshark_ssh`]) is in `ours`, on the side that sent it
/// (servers listen on `server_ports`): the line as `SSH-proto-software`
/// plus, after a space, comments that EVE leaves out. Returns how many
/// lines and fingerprints were checked.
pub fn check_ssh(label: &str, ours: &[&SshRecord], rows: &[Row], server_ports: &[u16]) -> usize {
    let mut checked = 0;
    for row in rows {
        let from_server = server_ports
            .iter()
            .any(|p| row["tcp.srcport"] == p.to_string());
        let sides: Vec<_> = ours
            .iter()
            .filter_map(|r| if from_server { r.server() } else { r.client() })
            .collect();
        let frame = &row["frame.number"];
        let line = &row["ssh.protocol"];
        if !line.is_empty() {
            checked += 1;
            assert!(
                sides.iter().any(|e| {
                    let eve = format!(
                        "SSH-{}-{}",
                        e.proto_version.unwrap_or_default(),
                        e.software_version.unwrap_or_default()
                    );
                    line.strip_prefix(&eve)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
                        && e.banner == Some(line.as_str())
                }),
                "{label}: identification line {line:?} (frame {frame}) not found"
            );
        }
        for (hash, string) in [
            ("ssh.kex.hassh", "ssh.kex.hassh_algorithms"),
            ("ssh.kex.hasshserver", "ssh.kex.hasshserver_algorithms"),
        ] {
            let h = &row[hash];
            if h.is_empty() {
                continue;
            }
            checked += 1;
            assert!(
                sides.iter().any(|e| e.hassh.is_some_and(|f| {
                    f.hash == *h && (row[string].is_empty() || f.string == row[string])
                })),
                "{label}: {hash} {h} (frame {frame}) not found"
            );
        }
    }
    checked
}

/// Suricata's EVE schema (../shared/schemas).
const EVE_SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/schemas/suricata-eve.schema.json"
);

/// The protocol object of an EVE L7 record (`http`, `tls`, `dns`, `ssh`
/// under its `event_type`) has only the fields Suricata's EVE schema
/// allows where it forbids others, with the schema's types (a subset of
/// JSON Schema: `type`, `properties`, `additionalProperties: false`,
/// `items`). Flow records carry fields of flowscope's own and are left out.
pub fn check_eve_l7_schema(record: &serde_json::Value) {
    static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    let schema = SCHEMA.get_or_init(|| {
        serde_json::from_str(&std::fs::read_to_string(EVE_SCHEMA).expect("EVE schema"))
            .expect("EVE schema is JSON")
    });
    let Some(kind) = record["event_type"].as_str().filter(|&k| k != "flow") else {
        return;
    };
    let object = &schema["properties"][kind];
    assert!(
        object.is_object(),
        "EVE event type {kind} not in the schema"
    );
    check_against(object, &record[kind], kind);
}

fn check_against(schema: &serde_json::Value, v: &serde_json::Value, at: &str) {
    use serde_json::Value;
    let ok = match schema["type"].as_str() {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_u64() || v.is_i64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    };
    assert!(ok, "EVE {at}: {v} is not of type {}", schema["type"]);
    match v {
        Value::Object(fields) => {
            for (k, field) in fields {
                let path = format!("{at}.{k}");
                match schema["properties"].get(k) {
                    Some(s) => check_against(s, field, &path),
                    None => assert!(
                        schema["additionalProperties"] != Value::Bool(false),
                        "EVE {path}: not in Suricata's schema"
                    ),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_against(&schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

/// The EVE records `flowscope read --l7` (and `args`) writes for `path`;
/// the L7 ones checked against Suricata's schema.
pub fn read_l7(path: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .args(["read", "--l7"])
        .args(args)
        .arg(path)
        .output()
        .expect("run flowscope read");
    assert!(
        out.status.success(),
        "flowscope read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("EVE line is JSON");
            check_eve_l7_schema(&v);
            v
        })
        .collect()
}
