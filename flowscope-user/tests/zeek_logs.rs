//! The http.log, dns.log and ssl.log of `flowscope read FILE --output
//! zeek:DIR` (and `zeek-json:`) against Zeek's own baselines
//! (`../shared/pcaps/expected/zeek`), row by row and field by field, and
//! quic.log against tshark's reading of the QUIC captures.
//!
//! Rows are matched on their connection and their place in it (HTTP:
//! `trans_depth`; DNS: `trans_id` and order; SSL: one per connection).
//! Every field is compared; each difference that remains is an explicit
//! allowance below, asserted as narrowly as it can be, with its reason.
//! Every L7 row's `uid` is the `uid` of its connection in the conn.log of
//! the same run.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::filters::PCAPS;
use common::tshark_fields;
use common::zeek::{Key, Log, Row, key_of, micros, ours_logs, zeek};

/// What identifies a row inside its connection.
fn place(log: &str, row: &Row) -> String {
    match log {
        "http" => row["trans_depth"].clone(),
        "dns" => row["trans_id"].clone(),
        _ => String::new(),
    }
}

/// Pairs Zeek's rows with ours: same connection, same place, in order.
fn pairs<'a>(ctx: &str, log: &str, z: &'a Log, o: &'a Log) -> Vec<(&'a Row, &'a Row)> {
    let mut ours: BTreeMap<(Key, String), Vec<&Row>> = BTreeMap::new();
    for r in &o.all {
        ours.entry((key_of(r), place(log, r))).or_default().push(r);
    }
    let out: Vec<_> = z
        .all
        .iter()
        .map(|zr| {
            let k = (key_of(zr), place(log, zr));
            let list = ours
                .get_mut(&k)
                .unwrap_or_else(|| panic!("{ctx}: no row for {k:?}"));
            assert!(!list.is_empty(), "{ctx}: too few rows for {k:?}");
            (zr, list.remove(0))
        })
        .collect();
    assert!(
        ours.values().all(Vec::is_empty),
        "{ctx}: rows Zeek does not have: {:?}",
        ours.values().flatten().collect::<Vec<_>>()
    );
    out
}

/// The `uid`s of Zeek's weird.log rows of `capture` that name `weird`.
fn zeek_weirds(capture: &str, log: &str, weirds: &[&str]) -> Vec<String> {
    zeek(capture, log)
        .all
        .iter()
        .filter(|r| weirds.contains(&r["name"].as_str()))
        .map(|r| r["uid"].clone())
        .collect()
}

/// tshark's responses of `capture` on the TCP connection from `port`, in
/// order: (Content-Encoding, Content-Length).
fn tshark_responses(capture: &str, port: u16) -> Vec<(String, String)> {
    let out = Command::new("tshark")
        .args(["-n", "-r", &format!("{PCAPS}/{capture}")])
        .args(["-Y", &format!("http.response && tcp.dstport=={port}")])
        .args(["-T", "fields", "-e", "http.content_encoding"])
        .args(["-e", "http.content_length"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark ({e}): install it with `cargo xtask deps`"));
    assert!(out.status.success(), "tshark on {capture}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap_or((l, ""));
            (a.to_owned(), b.to_owned())
        })
        .collect()
}

/// Fields every log shares: `ts` (masked by btest; ours the time the record
/// was complete) and `uid` (Zeek's random; ours the connection's in our
/// conn.log). True when `f` is one of them (and was checked).
fn common_field(ctx: &str, f: &str, zv: &str, ov: &str, ours: &Row, conn: &Log) -> bool {
    match f {
        "ts" => {
            assert_eq!(zv, "XXXXXXXXXX.XXXXXX", "{ctx}: masked");
            assert!(micros(ov) > 0, "{ctx}: ts {ov}");
            true
        }
        "uid" => {
            let k = key_of(ours);
            let c = conn
                .rows
                .get(&k)
                .unwrap_or_else(|| panic!("{ctx}: {k:?} not in conn.log"));
            assert_eq!(ov, c["uid"], "{ctx}: the uid of the connection");
            true
        }
        _ => false,
    }
}

/// Runs `capture` with `args` and compares our `log`.log with Zeek's
/// baseline `baseline`; `allow` judges each field that differs (true: an
/// allowed difference it asserted). Returns the number of fields compared
/// equal.
fn compare(
    capture: &str,
    baseline: &str,
    log: &str,
    args: &[&str],
    allow: impl Fn(&str, &str, &Row, &Row) -> bool,
) -> usize {
    let logs = ours_logs(capture, args);
    let (z, o, conn) = (
        zeek(capture, baseline),
        &logs[&format!("{log}.log")],
        &logs["conn.log"],
    );
    assert_eq!(o.header, z.header, "{capture}: {log}.log header lines");
    let mut equal = 0;
    for (zr, or) in pairs(capture, log, &z, o) {
        let ctx = format!("{capture} {log} {:?} {}", key_of(zr), place(log, zr));
        for f in &z.fields {
            let (zv, ov) = (zr[f].as_str(), or[f].as_str());
            if common_field(&ctx, f, zv, ov, or, conn) {
                continue;
            }
            if zv == ov {
                equal += 1;
                continue;
            }
            assert!(
                allow(f, &ctx, zr, or),
                "{ctx}: {f} is {ov:?}, Zeek's {zv:?}"
            );
        }
    }
    equal
}

/// Zeek's file-analysis fields: Zeek runs its file analysis (IDs, names,
/// libmagic sniffing) on message bodies; flowscope does not, and leaves
/// them unset.
fn file_analysis(f: &str, ours: &Row) -> bool {
    let files = f.ends_with("_fuids") || f.ends_with("_filenames") || f.ends_with("_mime_types");
    files && ours[f] == "-"
}

/// A request line without a version (`GET /HTTP/1.1`): Zeek takes it as
/// HTTP/0.9 and reads the answer as an HTTP/0.9 response (no status line:
/// status 0, `<empty>`, every byte a body byte, version 0.9); the parser
/// reads the status line the server sent.
fn http09_request(f: &str, zeek: &Row, ours: &Row) -> bool {
    let zeek_09 = zeek["version"] == "0.9" && zeek["status_code"] == "0";
    let no_version = ours["uri"].ends_with("HTTP/1.1") || ours["uri"] == "-";
    zeek_09
        && no_version
        && match f {
            "version" => ours[f] == "1.0" || ours[f] == "1.1",
            "status_code" => ours[f].parse::<u16>().is_ok_and(|s| s >= 200),
            "status_msg" => zeek[f] == "<empty>" && ours[f] != "-",
            "response_body_len" => {
                ours[f].parse::<u64>().expect("count") < zeek[f].parse::<u64>().expect("count")
            }
            _ => false,
        }
}

#[test]
fn http_pipelined() {
    let capture = "zeek__http_pipelined-requests.pcap";
    let responses = tshark_responses(capture, 1673);
    let equal = compare(
        capture,
        "scripts.base.protocols.http.http-pipelining.http.log",
        "http",
        &[],
        |f, ctx, z, o| {
            match f {
                // Zeek decompresses gzip bodies before counting them; the
                // parser counts the bytes sent, which tshark gives as the
                // Content-Length of these gzip responses.
                "response_body_len" => {
                    let depth: usize = z["trans_depth"].parse().expect("depth");
                    let (encoding, length) = &responses[depth - 1];
                    assert_eq!(encoding, "gzip", "{ctx}: only gzip bodies differ");
                    assert_eq!(&o[f], length, "{ctx}: the compressed length");
                    true
                }
                _ => file_analysis(f, o),
            }
        },
    );
    assert!(equal >= 5 * 15, "{equal} fields equal");
}

#[test]
fn http_methods() {
    let capture = "zeek__http_methods.pcap";
    // Connections where Zeek found the request line malformed (its
    // weird.log): it logs no method/host/uri for them, or an empty uri.
    let malformed = zeek_weirds(
        capture,
        "scripts.base.protocols.http.http-methods.weird.log",
        &["bad_HTTP_request", "missing_HTTP_uri"],
    );
    let baseline = zeek(capture, "scripts.base.protocols.http.http-methods.http.log");
    let zeek_uid: BTreeMap<Key, String> = baseline
        .all
        .iter()
        .map(|r| (key_of(r), r["uid"].clone()))
        .collect();
    let equal = compare(
        capture,
        "scripts.base.protocols.http.http-methods.http.log",
        "http",
        &[],
        |f, _ctx, z, o| {
            let flagged = malformed.contains(&zeek_uid[&key_of(z)]);
            match f {
                // A malformed request line: the parser (httparse, then the
                // first line's words) still reads a method, host or uri.
                "method" | "host" | "uri" if flagged => o[f] != "-",
                _ => http09_request(f, z, o) || file_analysis(f, o),
            }
        },
    );
    assert!(equal >= 49 * 15, "{equal} fields equal");
}

#[test]
fn http_vlan_mpls() {
    let capture = "zeek__mixed-vlan-mpls.pcap";
    // Every field of both exchanges, the HTTP/0.9 one (a bare body, logged
    // with version 0.9 and status 0 `<empty>`) included, equals Zeek's.
    let equal = compare(
        capture,
        "core.vlan-mpls.http.log",
        "http",
        &[],
        |f, _ctx, _z, o| file_analysis(f, o),
    );
    assert!(equal >= 2 * 17, "{equal} fields equal");
}

/// A URI percent-decoded (`%XX`; nothing else to decode in the capture
/// below) and written as Zeek's TSV writer writes it: UTF-8 as it is,
/// control bytes, `\\` and each byte of an invalid UTF-8 sequence as `\\xNN`.
fn zeek_uri(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut bytes = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(v) if b[i] == b'%' => {
                bytes.push(v);
                i += 3;
            }
            _ => {
                bytes.push(b[i]);
                i += 1;
            }
        }
    }
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\u{0}'..='\u{1f}' | '\u{7f}' | '\\' => out += &format!("\\x{:02x}", c as u32),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out += &format!("\\x{b:02x}");
        }
    }
    out
}

/// Zeek's http.log `uri` is the request target unescaped (main.zeek:
/// `c$http$uri = unescaped_URI`): every request of the XSS capture, 874 of
/// them with escapes, against tshark's raw targets decoded here.
#[test]
fn http_uris_unescaped() {
    let capture = "ndpi__WebattackXSS.pcap";
    let logs = ours_logs(capture, &[]);
    let mut ours: Vec<String> = logs["http.log"]
        .all
        .iter()
        .map(|r| r["uri"].clone())
        .filter(|u| u != "-")
        .collect();
    let raw = tshark_fields(capture, &[], "http.request", &["http.request.uri"]);
    let escaped = raw.iter().filter(|r| r[0].contains('%')).count();
    let mut want: Vec<String> = raw.iter().map(|r| zeek_uri(&r[0])).collect();
    ours.sort();
    want.sort();
    assert_eq!(ours.len(), 1778);
    assert_eq!(escaped, 874);
    assert!(ours == want, "unescaped URIs differ");
}

/// Zeek's http.log `ts` is when the exchange began: the time of the
/// packet that completed the request line, here (no head spans packets)
/// the frame tshark shows each request in, for every request of three
/// captures (pipelined requests share their packet's).
#[test]
fn http_ts_is_the_request_time() {
    for (capture, requests) in [
        ("ndpi__WebattackXSS.pcap", 1778),
        ("zeek__http_1000-requests-one-dropped-response.pcap", 1000),
        ("zeek__http_pipelined-requests.pcap", 5),
    ] {
        let logs = ours_logs(capture, &[]);
        let mut ours: Vec<u64> = logs["http.log"]
            .all
            .iter()
            .filter(|r| r["method"] != "-")
            .map(|r| micros(&r["ts"]))
            .collect();
        let fields = ["frame.time_epoch", "http.request.method"];
        let mut want: Vec<u64> = tshark_fields(capture, &[], "http.request", &fields)
            .iter()
            // A frame with several requests names each one's method.
            .flat_map(|r| std::iter::repeat_n(micros(&r[0]), r[1].split(',').count()))
            .collect();
        ours.sort_unstable();
        want.sort_unstable();
        assert_eq!(ours.len(), requests, "{capture}");
        assert_eq!(ours, want, "{capture}");
    }
}

#[test]
fn http_in_vxlan() {
    let capture = "zeek__tunnels_vxlan-encapsulated-http.pcap";
    compare(
        capture,
        "core.tunnels.analyzer-confirmation.http.log",
        "http",
        &["--decap"],
        |f, _ctx, _z, o| file_analysis(f, o),
    );
}

/// Zeek's `TXT <length> <string>` answers, each string of the record so;
/// the DNS parser joins a TXT record's strings into one: ours is
/// `TXT <total> <joined>`.
fn txt_joined(zeek: &str, ours: &str) -> bool {
    let mut joined = String::new();
    let mut rest = zeek;
    while let Some(r) = rest.strip_prefix("TXT ") {
        let (len, r) = r.split_once(' ').expect("TXT length");
        let len: usize = len.parse().expect("TXT length");
        joined.push_str(&r[..len]);
        rest = r[len..].strip_prefix(' ').unwrap_or(&r[len..]);
    }
    assert!(rest.is_empty(), "Zeek's TXT answer parsed whole");
    ours == format!("TXT {} {joined}", joined.len())
}

#[test]
fn dns_ipv6_fragments() {
    let equal = compare(
        "zeek__ipv6-fragmented-dns.pcap",
        "core.ipv6-frag.dns.log",
        "dns",
        &[],
        |f, _ctx, z, o| f == "answers" && txt_joined(&z[f], &o[f]),
    );
    assert!(equal >= 3 * 22, "{equal} fields equal");
}

#[test]
fn dns_in_gre() {
    let equal = compare(
        "zeek__tunnels_gre-sample.pcap",
        "core.tunnels.gre.dns.log",
        "dns",
        &["--decap"],
        |_, _, _, _| false,
    );
    assert_eq!(equal, 2 * 24, "every field but ts and uid equal");
}

#[test]
fn ssl_basic() {
    let equal = compare(
        "zeek__tls_tls-conn-with-extensions.pcap",
        "scripts.base.protocols.ssl.basic.ssl.log",
        "ssl",
        &[],
        |f, _ctx, z, o| {
            // The parser stops after the server's key exchange: it sees
            // neither the handshake's end (established, ssl_history) nor
            // the client's flight (client certificates); Zeek's name check
            // against the certificate is not made. All unset.
            matches!(
                f,
                "established" | "ssl_history" | "client_cert_chain_fps" | "sni_matches_cert"
            ) && z[f] != "-"
                && o[f] == "-"
        },
    );
    // The four id fields, version, cipher, curve, server_name, resumed,
    // last_alert, next_protocol and cert_chain_fps.
    assert_eq!(equal, 4 + 8, "fields equal");
}

/// A TCP connection: client address and port, server address and port.
type Conn = (String, u16, String, u16);

/// The frame number and the connection, sender first, of tshark's fields
/// `frame.number`, `ip.src`, `ipv6.src`, `tcp.srcport`, `ip.dst`,
/// `ipv6.dst`, `tcp.dstport` at the start of `f`.
fn frame_conn(f: &[String]) -> (u64, Conn) {
    let addr = |v4: &str, v6: &str| if v4.is_empty() { v6 } else { v4 }.to_owned();
    let port = |p: &str| p.parse::<u16>().expect("port");
    (
        f[0].parse().expect("frame number"),
        (
            addr(&f[1], &f[2]),
            port(&f[3]),
            addr(&f[4], &f[5]),
            port(&f[6]),
        ),
    )
}

/// tshark reassembling out-of-order segments, first fields only.
const REASSEMBLED: &[&str] = &[
    "-o",
    "tcp.reassemble_out_of_order:TRUE",
    "-E",
    "occurrence=f",
];

const FRAME_CONN: [&str; 7] = [
    "frame.number",
    "ip.src",
    "ipv6.src",
    "tcp.srcport",
    "ip.dst",
    "ipv6.dst",
    "tcp.dstport",
];

/// tshark's key exchange group of each TLS connection of `capture`, with
/// the frame that named it: the server's TLS 1.3 key share, or an ECDHE
/// ServerKeyExchange's named curve.
fn tshark_curves(capture: &str) -> BTreeMap<Conn, (u16, u64)> {
    let mut fields = FRAME_CONN.to_vec();
    fields.extend([
        "tls.handshake.extensions_key_share_group",
        "tls.handshake.server_named_curve",
    ]);
    let filter = "tls.handshake.type == 2 || tls.handshake.type == 12";
    let mut curves = BTreeMap::new();
    for f in tshark_fields(capture, REASSEMBLED, filter, &fields) {
        let (frame, (server, sport, client, cport)) = frame_conn(&f);
        let group = match (f[7].as_str(), f[8].as_str()) {
            (g, _) if !g.is_empty() => g.parse().expect("group"),
            (_, c) if !c.is_empty() => {
                u16::from_str_radix(c.trim_start_matches("0x"), 16).expect("curve")
            }
            _ => continue,
        };
        curves.insert((client, cport, server, sport), (group, frame));
    }
    curves
}

/// The first frame with RST of each TCP connection of `capture` (under
/// both orders of its endpoints).
fn tshark_resets(capture: &str) -> BTreeMap<Conn, u64> {
    let mut resets = BTreeMap::new();
    for f in tshark_fields(capture, REASSEMBLED, "tcp.flags.reset == 1", &FRAME_CONN) {
        let (frame, (a, ap, b, bp)) = frame_conn(&f);
        resets
            .entry((b.clone(), bp, a.clone(), ap))
            .or_insert(frame);
        resets.entry((a, ap, b, bp)).or_insert(frame);
    }
    resets
}

/// ssl.log `curve` of every TLS connection of the captures that hold
/// ServerHellos with a key share or ECDHE key exchanges, against tshark.
#[test]
fn ssl_curve_against_tshark() {
    let names = BTreeMap::from([
        ("secp256r1", 23),
        ("secp384r1", 24),
        ("secp521r1", 25),
        ("x25519", 29),
    ]);
    let (mut named, mut reset) = (0, 0);
    for capture in [
        "ndpi__android.pcap",
        "ndpi__iphone.pcap",
        "ndpi__reddit.pcap",
        "ndpi__http_ipv6.pcap",
        "ndpi__tls_long_cert.pcap",
        "zeek__tls_tls-conn-with-extensions.pcap",
    ] {
        let (theirs, resets) = (tshark_curves(capture), tshark_resets(capture));
        let logs = ours_logs(capture, &[]);
        for row in &logs["ssl.log"].all {
            let k = key_of(row);
            let conn = (k.0, k.1, k.2, k.3);
            let ours = match row["curve"].as_str() {
                "-" => None,
                n => Some(
                    *names
                        .get(n)
                        .unwrap_or_else(|| panic!("{capture}: curve {n}")),
                ),
            };
            match (ours, theirs.get(&conn)) {
                // The connection was reset before the frame that names
                // the curve: our stream ends at the RST, tshark dissects
                // what follows.
                (None, Some((_, at))) if resets.get(&conn).is_some_and(|r| r < at) => reset += 1,
                (ours, theirs) => {
                    assert_eq!(ours, theirs.map(|t| t.0), "{capture} {row:?}");
                    named += usize::from(ours.is_some());
                }
            }
        }
    }
    assert!(named >= 10, "{named} curves compared");
    assert!(
        reset * 10 <= named,
        "{reset} connections reset before their curve"
    );
}

/// tshark's first client Initial of each QUIC connection in `capture`:
/// (client port, version, DCID, SCID, SNI, first ALPN).
fn tshark_quic(capture: &str) -> BTreeMap<u16, (String, String, String, String, String)> {
    let out = Command::new("tshark")
        .args(["-n", "-r", &format!("{PCAPS}/{capture}")])
        .args([
            "-Y",
            "quic.long.packet_type == 0 && tls.handshake.type == 1",
        ])
        .args(["-T", "fields", "-E", "occurrence=f", "-e", "udp.srcport"])
        .args(["-e", "quic.version", "-e", "quic.dcid", "-e", "quic.scid"])
        .args(["-e", "tls.handshake.extensions_server_name"])
        .args(["-e", "tls.handshake.extensions_alpn_str"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark ({e}): install it with `cargo xtask deps`"));
    assert!(out.status.success(), "tshark on {capture}");
    let mut first = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<String> = line.split('\t').map(|s| s.replace(':', "")).collect();
        let port: u16 = f[0].parse().expect("port");
        let get = |i: usize| f.get(i).cloned().unwrap_or_default();
        first
            .entry(port)
            .or_insert((get(1), get(2), get(3), get(4), get(5)));
    }
    first
}

#[test]
fn quic_log_against_tshark() {
    let mut rows = 0;
    for capture in [
        "ndpi__quic-27.pcap",
        "ndpi__quic-29.pcap",
        "ndpi__quic-mvfst-27.pcapng",
        "ndpi__quic_0RTT.pcap",
        "ndpi__quic_frags_ch_in_multiple_packets.pcapng",
    ] {
        let logs = ours_logs(capture, &[]);
        let quic = &logs["quic.log"];
        let conn = &logs["conn.log"];
        let tshark = tshark_quic(capture);
        for r in &quic.all {
            let ctx = format!("{capture} {:?}", key_of(r));
            let port = r["id.orig_p"].parse::<u16>().expect("port");
            let (version, dcid, scid, sni, alpn) = tshark
                .get(&port)
                .unwrap_or_else(|| panic!("{ctx}: tshark sees no client Initial"));
            assert_eq!(r["uid"], conn.rows[&key_of(r)]["uid"], "{ctx}: uid");
            assert_eq!(&r["client_initial_dcid"], dcid, "{ctx}: DCID");
            let want_scid = if scid.is_empty() { "(empty)" } else { scid };
            assert_eq!(r["client_scid"], want_scid, "{ctx}: SCID");
            let or_unset = |s: &str| {
                if s.is_empty() {
                    "-".to_owned()
                } else {
                    s.to_owned()
                }
            };
            assert_eq!(r["server_name"], or_unset(sni), "{ctx}: SNI");
            let first_alpn = alpn.split(',').next().unwrap_or_default();
            assert_eq!(
                r["client_protocol"],
                or_unset(first_alpn),
                "{ctx}: first ALPN"
            );
            // tshark writes the version number in hex (0xff00001d).
            let n = u32::from_str_radix(version.trim_start_matches("0x"), 16).expect("hex");
            let zeek_name = match n {
                1 => "1".to_owned(),
                0xff00_0016..=0xff00_0022 => format!("draft-{}", n & 0xff),
                0xface_b001..=0xface_b013 => format!("mvfst ({n:x})"),
                _ => format!("unknown-{n:x}"),
            };
            assert_eq!(r["version"], zeek_name, "{ctx}: version");
            // Emitted at the ClientHello: the server's ID and the packet
            // history are not known (documented).
            assert_eq!(
                (r["server_scid"].as_str(), r["history"].as_str()),
                ("-", "-")
            );
            rows += 1;
        }
    }
    assert!(rows >= 5, "{rows} quic.log rows");
    // Zeek's QUIC analyzer decodes IETF QUIC only: no quic.log for gQUIC
    // (whose hellos EVE reports).
    for capture in ["ndpi__quic_q46.pcap", "ndpi__quic_t51.pcap"] {
        let logs = ours_logs(capture, &[]);
        assert!(!logs.contains_key("quic.log"), "{capture}: no quic.log");
    }
}
