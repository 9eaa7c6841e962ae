//! IPFIX export checked by real collectors: nfdump's nfcapd over UDP; over
//! TCP (nfcapd 1.7.1 has no TCP listener) an in-test collector receives the
//! stream, which is then replayed message by message to nfcapd; and
//! tshark's IPFIX dissector decodes every message of the TCP stream. The
//! collected octet counts are checked against tshark's IP lengths of the
//! captures, the other columns against the tracker's records.

mod ipfix_support;

use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::time::Duration;

use flowscope::extract::FiveTupleKey;
use flowscope::output::ipfix::{IpfixConfig, IpfixExporter, IpfixMode, IpfixTransport};
use flowscope::output::write_rfc3339_micros;
use flowscope::tracker::{EndReason, FlowRecord, FlowSide, TrackerConfig};
use flowscope::view::Timestamp;
use flowscope::wire::icmp_side_type_codes;
use ipfix_support::*;

/// IPv4 and IPv6, TCP, UDP and ICMP, active-timeout interim records.
const CAPTURES: [&str; 3] = [
    "ndpi__android.pcap",
    "zeek__http_methods.pcap",
    "ndpi__http_ipv6.pcap",
];

const FMT: &str = "fmt:%ts|%te|%sa|%da|%sp|%dp|%pr|%flg|%ipkt|%ibyt|%opkt|%obyt";

fn all_records() -> Vec<(FlowRecord<FiveTupleKey>, EndReason)> {
    // A 10 s active timeout splits long flows into interim records.
    let config = TrackerConfig {
        active_timeout: Some(Duration::from_secs(10)),
        ..TrackerConfig::default()
    };
    let recs: Vec<_> = CAPTURES
        .iter()
        .flat_map(|c| records(c, config.clone()))
        .collect();
    assert!(recs.iter().any(|(_, r)| *r == EndReason::ActiveTimeout));
    assert!(recs.iter().any(|(f, _)| f.key.is_ipv6()));
    recs
}

/// nfdump's `%ts` of a time in ms: `YYYY-MM-DD HH:MM:SS.mmm` (UTC).
fn nf_time(ms: u64) -> String {
    let mut v = Vec::new();
    write_rfc3339_micros(&mut v, Timestamp(ms * 1_000_000));
    let s = String::from_utf8(v).unwrap_or_default();
    s[..23].replace('T', " ")
}

/// nfdump's `%flg`: `CEUAPRSF`, a dot for each flag not set.
fn nf_flags(flags: u8) -> String {
    b"CEUAPRSF"
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if flags & (0x80 >> i) != 0 {
                c as char
            } else {
                '.'
            }
        })
        .collect()
}

/// The rows nfdump must print for our records, byte columns left out
/// ([`assert_ip_bytes`] checks them against tshark). ICMP and ICMPv6 have
/// no ports: nfdump shows `icmpTypeCodeIPv4`/`IPv6` as `0` and `type.code`
/// there, the type and code of the record's direction.
fn expected_rows(recs: &[(FlowRecord<FiveTupleKey>, EndReason)], mode: IpfixMode) -> Vec<String> {
    let mut rows = Vec::new();
    for (f, _) in recs {
        let k = f.key.oriented(f.initiator);
        let icmp = matches!(k.protocol(), 1 | 58)
            .then(|| icmp_side_type_codes(k.src_port(), k.dst_port(), k.protocol() == 58));
        let ends = [(k.src_ip(), k.src_port()), (k.dst_ip(), k.dst_port())];
        let row =
            |a: usize, start: Timestamp, end: Timestamp, fwd: FlowSide, rev: Option<FlowSide>| {
                let (s, d) = (ends[a], ends[1 - a]);
                let fs = f.side(fwd);
                let op = rev.map_or(0, |r| f.side(r).packets);
                let ports = match icmp {
                    Some(sides) => {
                        let (t, c) = sides[fwd.index()];
                        format!("0|{t}.{c}")
                    }
                    None => format!("{}|{}", s.1, d.1),
                };
                format!(
                    "{}|{}|{}|{}|{ports}|{}|{}|{}|{op}",
                    nf_time(start.0 / 1_000_000),
                    nf_time(end.0 / 1_000_000),
                    s.0,
                    d.0,
                    k.protocol(),
                    nf_flags(fs.tcp_flags.0),
                    fs.packets
                )
            };
        match mode {
            IpfixMode::Biflow => rows.push(row(
                0,
                f.start(),
                f.end(),
                FlowSide::Initiator,
                Some(FlowSide::Responder),
            )),
            IpfixMode::Unidirectional => {
                for (i, side) in FlowSide::ALL.into_iter().enumerate() {
                    let st = f.side(side);
                    if st.packets > 0 {
                        rows.push(row(i, st.first_seen, st.last_seen, side, None));
                    }
                }
            }
        }
    }
    rows.sort();
    rows
}

/// nfdump's rows of what nfcapd stored, normalised like [`expected_rows`].
fn collected_rows(mut nf: Nfcapd) -> Vec<String> {
    let file = nf.stop();
    let out = stdout_of(
        Command::new("nfdump")
            .env("TZ", "UTC")
            .args(["-N", "-q", "-6", "-o", FMT, "-r"])
            .arg(&file),
        "nfdump",
    );
    let mut rows: Vec<String> = out
        .lines()
        .filter(|l| l.contains('|'))
        .map(|l| {
            let f: Vec<String> = l.split('|').map(|x| x.trim().to_owned()).collect();
            f.join("|")
        })
        .collect();
    rows.sort();
    rows
}

/// Index of nfdump's `%ibyt` and `%obyt` in a [`FMT`] row.
const BYTE_COLUMNS: [usize; 2] = [9, 11];

/// `rows` without their byte columns.
fn without_bytes(rows: &[String]) -> Vec<String> {
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| {
            r.split('|')
                .enumerate()
                .filter(|(i, _)| !BYTE_COLUMNS.contains(i))
                .map(|(_, f)| f)
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    out.sort();
    out
}

/// The collected byte columns, summed per direction over every record
/// (interim records included), equal tshark's IP lengths summed per
/// direction: `octetDeltaCount` is IP-level (RFC 7012).
fn assert_ip_bytes(collected: &[String]) {
    let mut sums = std::collections::BTreeMap::new();
    for r in collected {
        let f: Vec<&str> = r.split('|').collect();
        let portless = !matches!(f[6], "6" | "17" | "TCP" | "UDP");
        let (sp, dp) = if portless { ("-", "-") } else { (f[4], f[5]) };
        let proto = match f[6] {
            "TCP" => "6",
            "UDP" => "17",
            "ICMP" => "1",
            "ICMP6" => "58",
            p => p,
        };
        for (a, b, pa, pb, col) in [(f[2], f[3], sp, dp, 9), (f[3], f[2], dp, sp, 11)] {
            let n: u64 = f[col].parse().unwrap_or_else(|_| panic!("bytes in {r}"));
            if n > 0 {
                let key = [a, b, pa, pb, proto].map(str::to_owned);
                let [a, b, pa, pb, proto] = key;
                *sums.entry((a, b, pa, pb, proto)).or_insert(0) += n;
            }
        }
    }
    assert_eq!(sums, tshark_ip_bytes(&CAPTURES), "IP bytes per direction");
}

fn assert_same(expected: &[String], got: &[String]) {
    assert_ip_bytes(got);
    let got = &without_bytes(got);
    let missing: Vec<_> = expected
        .iter()
        .filter(|r| !got.contains(r))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|r| !expected.contains(r))
        .take(5)
        .collect();
    assert!(
        expected == got,
        "{} expected, {} collected\nmissing: {missing:#?}\nextra: {extra:#?}",
        expected.len(),
        got.len()
    );
}

fn config(transport: IpfixTransport, port: u16, mode: IpfixMode) -> IpfixConfig {
    IpfixConfig {
        mode,
        domain_id: 42,
        flush_interval: Duration::from_millis(50),
        ..IpfixConfig::new(transport, ([127, 0, 0, 1], port).into())
    }
}

#[test]
fn udp_export_reaches_nfcapd_intact() {
    let recs = all_records();
    for mode in [IpfixMode::Unidirectional, IpfixMode::Biflow] {
        let nf = Nfcapd::start(&format!("udp-{mode:?}"));
        let mut x =
            IpfixExporter::start(config(IpfixTransport::Udp, nf.port, mode)).expect("start");
        for (i, (r, reason)) in recs.iter().enumerate() {
            x.flow(r, *reason);
            if i % 64 == 63 {
                // Pace the datagrams so nfcapd's socket buffer never overflows.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let st = x.finish();
        assert_eq!(
            (st.records, st.records_sent, st.records_dropped),
            (recs.len() as u64, recs.len() as u64, 0)
        );
        assert!(st.messages_sent > 1, "MTU-sized messages: {st:?}");
        assert_same(&expected_rows(&recs, mode), &collected_rows(nf));
    }
}

#[test]
fn tcp_export_replayed_to_nfcapd_and_decoded_by_tshark() {
    let recs = all_records();
    let dir = TempDir::new("ipfix-tshark");
    for mode in [IpfixMode::Unidirectional, IpfixMode::Biflow] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("addr").port();
        let reader = std::thread::spawn(move || read_all(&listener));
        let mut x = IpfixExporter::start(config(IpfixTransport::Tcp, port, mode)).expect("start");
        for (r, reason) in &recs {
            x.flow(r, *reason);
        }
        let st = x.finish();
        assert_eq!(
            (st.records_sent, st.records_dropped, st.connections),
            (recs.len() as u64, 0, 1)
        );
        let mut stream = reader.join().expect("reader");
        let messages = split_messages(&mut stream);
        assert!(
            stream.is_empty(),
            "{} stray bytes after the last message",
            stream.len()
        );
        // Sequence numbers count the data records of earlier messages.
        let counts = count_records(&messages);
        let mut total = 0u32;
        for (seq, n) in &counts {
            assert_eq!(*seq, total);
            total += *n as u32;
        }
        let per_flow = match mode {
            IpfixMode::Biflow => recs.len(),
            IpfixMode::Unidirectional => recs
                .iter()
                .map(|(f, _)| f.sides.iter().filter(|s| s.packets > 0).count())
                .sum(),
        };
        assert_eq!(total as usize, per_flow);
        // Replay to nfcapd, paced.
        let nf = Nfcapd::start(&format!("tcp-{mode:?}"));
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        for m in &messages {
            sock.send_to(m, ("127.0.0.1", nf.port)).expect("send");
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_same(&expected_rows(&recs, mode), &collected_rows(nf));
        tshark_decodes(dir.path(), mode, &messages);
    }
}

/// tshark's IPFIX dissector decodes `messages` (one transport session)
/// without a warning, every data record, and in biflow mode the reverse
/// elements too.
fn tshark_decodes(dir: &std::path::Path, mode: IpfixMode, messages: &[Vec<u8>]) {
    let pcap = dir.join(format!("export-{mode:?}.pcap"));
    write_pcap(&pcap, messages);
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&pcap)
        .args(["-d", "udp.port==4739,cflow", "-V"])
        .output()
        .expect("tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for bad in [
        "Malformed",
        "Expert Info (Warn",
        "Expert Info (Error",
        "[Unknown",
    ] {
        if let Some(at) = text.find(bad) {
            let from = text[..at].len().saturating_sub(2000);
            panic!(
                "{mode:?}: tshark reports {bad:?}:\n{}",
                &text[from..at + 200]
            );
        }
    }
    let flows = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Flow "))
        .filter(|n| n.parse::<u32>().is_ok())
        .count();
    let expected: usize = count_records(messages).iter().map(|(_, n)| n).sum();
    assert_eq!(flows, expected, "{mode:?}: records tshark decoded");
    let reverse = text.matches("Reverse").count();
    match mode {
        IpfixMode::Biflow => assert!(reverse >= 3 * expected, "reverse elements: {reverse}"),
        IpfixMode::Unidirectional => assert_eq!(reverse, 0),
    }
}
