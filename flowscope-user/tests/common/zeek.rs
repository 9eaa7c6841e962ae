//! Zeek logs in TSV: parsing, Zeek's baselines (`../shared/pcaps/expected/zeek`)
//! and the logs `flowscope read FILE --output zeek:DIR` writes (checked
//! against the `zeek-json:` logs of the same capture).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use super::filters::PCAPS;

/// A row key: (orig_h, orig_p, resp_h, resp_p, proto).
pub type Key = (String, u16, String, u16, String);

/// A row: field name → value as written in TSV.
pub type Row = BTreeMap<String, String>;

/// A parsed TSV log.
pub struct Log {
    /// `#` lines but the times (`#open`, `#close`) and btest's banner.
    pub header: Vec<String>,
    /// `#fields`.
    pub fields: Vec<String>,
    /// `#types`, by field.
    pub types: BTreeMap<String, String>,
    /// Every row, in order.
    pub all: Vec<Row>,
    /// The first row of each key.
    pub rows: BTreeMap<Key, Row>,
    /// Rows whose key an earlier row has (several HTTP requests or DNS
    /// queries of one connection).
    pub repeated_keys: usize,
}

/// The connection of a row; logs without `proto` are TCP (http, ssl, ssh),
/// UDP (quic) or a tunnel's (tunnel.log, whose proto is `tunnel` here).
pub fn key_of(row: &Row) -> Key {
    let port = |f: &str| row[f].parse::<u16>().expect("port");
    let proto = row.get("proto").cloned().unwrap_or_else(|| {
        if row.contains_key("client_initial_dcid") {
            "udp".to_owned()
        } else if row.contains_key("tunnel_type") {
            "tunnel".to_owned()
        } else {
            "tcp".to_owned()
        }
    });
    (
        row["id.orig_h"].clone(),
        port("id.orig_p"),
        row["id.resp_h"].clone(),
        port("id.resp_p"),
        proto,
    )
}

/// Parses a TSV log.
pub fn parse_tsv(text: &str) -> Log {
    let mut header = Vec::new();
    let (mut fields, mut types) = (Vec::new(), Vec::new());
    let (mut all, mut rows, mut repeated_keys) = (Vec::new(), BTreeMap::new(), 0);
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
        match rows.entry(key_of(&row)) {
            std::collections::btree_map::Entry::Occupied(_) => repeated_keys += 1,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(row.clone());
            }
        }
        all.push(row);
    }
    assert_eq!(fields.len(), types.len(), "#fields and #types");
    let types = fields.iter().cloned().zip(types).collect();
    Log {
        header,
        fields,
        types,
        all,
        rows,
        repeated_keys,
    }
}

/// Zeek's baseline `log` of `capture`.
pub fn zeek(capture: &str, log: &str) -> Log {
    let path = format!("{PCAPS}/expected/zeek/{capture}/{log}");
    parse_tsv(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// Runs the binary on `capture` with `args`, writing `kind:DIR`; returns
/// each log of DIR (file name → text).
fn flowscope(capture: &str, kind: &str, args: &[&str]) -> BTreeMap<String, String> {
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
    let logs = std::fs::read_dir(&dir)
        .expect("the log directory")
        .map(|e| {
            let e = e.expect("entry");
            let text = std::fs::read_to_string(e.path()).expect("log");
            (e.file_name().to_string_lossy().into_owned(), text)
        })
        .collect();
    std::fs::remove_dir_all(&dir).expect("temporary directory removed");
    logs
}

/// Our TSV logs of `capture` (file name → log), each checked against our
/// JSON one of another run.
pub fn ours_logs(capture: &str, args: &[&str]) -> BTreeMap<String, Log> {
    let (tsv, json) = (
        flowscope(capture, "zeek", args),
        flowscope(capture, "zeek-json", args),
    );
    assert_eq!(
        tsv.keys().collect::<Vec<_>>(),
        json.keys().collect::<Vec<_>>(),
        "{capture}: the same logs in TSV and JSON"
    );
    let mut uids = BTreeMap::new();
    tsv.iter()
        .map(|(name, text)| {
            let lines: Vec<&str> = text.lines().collect();
            assert!(
                lines.iter().any(|l| l.starts_with("#open\t")),
                "{capture} {name}: #open"
            );
            assert!(
                lines.last().is_some_and(|l| l.starts_with("#close\t")),
                "{capture} {name}: the log ends with #close"
            );
            let parsed = parse_tsv(text);
            assert_json_equals_tsv(
                &format!("{capture} {name}"),
                &json[name],
                &parsed,
                &mut uids,
            );
            (name.clone(), parsed)
        })
        .collect()
}

/// Our TSV `log` of `capture`.
pub fn ours_log(capture: &str, log: &str, args: &[&str]) -> Log {
    ours_logs(capture, args)
        .remove(log)
        .unwrap_or_else(|| panic!("{capture}: no {log}"))
}

/// Each JSON line is the TSV row of the same place: unset fields absent,
/// `(empty)` as `""` or `[]`, counts, ports, times and intervals as
/// numbers, bools as booleans, sets and vectors as arrays. The two runs
/// draw different uid keys: `uids` maps each TSV uid to one JSON uid.
fn assert_json_equals_tsv(ctx: &str, json: &str, tsv: &Log, uids: &mut BTreeMap<String, String>) {
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), tsv.all.len(), "{ctx}: JSON rows");
    // Flows that end together may come in either order from run to run:
    // rows pair on their connection, in order within it.
    let mut by_key: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
    for row in &tsv.all {
        by_key.entry(key_of(row)).or_default().push(row);
    }
    for line in &lines {
        let obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{ctx}: {line}: {e}"));
        let text = |f: &str| match &obj[f] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let key = (
            text("id.orig_h"),
            text("id.orig_p").parse().expect("port"),
            text("id.resp_h"),
            text("id.resp_p").parse().expect("port"),
            obj.get("proto")
                .map_or_else(|| key_of(&tsv.all[0]).4, |_| text("proto")),
        );
        let rows = by_key
            .get_mut(&key)
            .unwrap_or_else(|| panic!("{ctx}: JSON row {key:?} not in TSV"));
        assert!(!rows.is_empty(), "{ctx}: more JSON rows of {key:?}");
        let row = rows.remove(0);
        assert!(obj.keys().all(|k| tsv.fields.contains(k)), "{ctx}: {obj:?}");
        for f in &tsv.fields {
            let (t, j) = (row[f].as_str(), obj.get(f));
            let ty = tsv.types[f].as_str();
            match (t, j) {
                ("-", None) => {}
                ("-", Some(v)) => panic!("{ctx} {f}: unset in TSV, {v} in JSON"),
                (_, None) => panic!("{ctx} {f}: {t} in TSV, absent in JSON"),
                (t, Some(v)) if f == "uid" => {
                    let j = v.as_str().expect("uid");
                    assert_eq!(
                        uids.entry(t.to_owned()).or_insert_with(|| j.to_owned()),
                        j,
                        "{ctx}: uid {t} is one uid in JSON"
                    );
                }
                (t, Some(v)) if f == "tunnel_parents" => {
                    let items = v.as_array().expect("a set");
                    assert_eq!(t.split(',').count(), items.len(), "{ctx} {f}");
                    for (t, j) in t.split(',').zip(items) {
                        let j = j.as_str().expect("uid");
                        assert_eq!(
                            uids.entry(t.to_owned()).or_insert_with(|| j.to_owned()),
                            j,
                            "{ctx}: parent {t} is one uid in JSON"
                        );
                    }
                }
                (t, Some(v)) => assert_value(ctx, f, ty, t, v),
            }
        }
    }
}

fn assert_value(ctx: &str, f: &str, ty: &str, t: &str, v: &serde_json::Value) {
    match ty {
        "time" | "interval" => {
            let (a, b) = (t.parse::<f64>().expect("secs"), v.as_f64().expect("secs"));
            assert!((a - b).abs() < 5e-7, "{ctx} {f}: {t} vs {v}");
        }
        "count" | "port" => assert_eq!(
            Some(t.parse::<u64>().expect("count")),
            v.as_u64(),
            "{ctx} {f}"
        ),
        "bool" => assert_eq!(Some(t == "T"), v.as_bool(), "{ctx} {f}: {t} vs {v}"),
        _ if ty.starts_with("vector[") || ty.starts_with("set[") => {
            let items = v.as_array().unwrap_or_else(|| panic!("{ctx} {f}: {v}"));
            let elem = &ty[ty.find('[').unwrap_or(0) + 1..ty.len() - 1];
            let tsv_items: Vec<&str> = if t == "(empty)" {
                Vec::new()
            } else {
                t.split(',').collect()
            };
            assert_eq!(tsv_items.len(), items.len(), "{ctx} {f}: {t} vs {v}");
            for (t, v) in tsv_items.iter().zip(items) {
                assert_value(ctx, f, elem, t, v);
            }
        }
        _ => {
            let t = if t == "(empty)" { "" } else { t };
            // TSV escapes control bytes, backslashes (and, in sets, commas)
            // as \xNN.
            let unescaped = unescape(t);
            assert_eq!(Some(unescaped.as_str()), v.as_str(), "{ctx} {f}");
        }
    }
}

/// Zeek's `\xNN` escapes undone.
fn unescape(t: &str) -> String {
    let mut out = Vec::new();
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && i + 4 <= b.len()
            && let Ok(n) = u8::from_str_radix(&t[i + 2..i + 4], 16)
        {
            out.push(n);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Seconds with six decimals, in microseconds.
pub fn micros(s: &str) -> u64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<6}");
    secs.parse::<u64>().expect("secs") * 1_000_000 + frac[..6].parse::<u64>().expect("micros")
}
