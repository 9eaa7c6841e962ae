//! L7 parsers on real captures, against tshark's field dumps and
//! ndpiReader's JA3/SNI (../shared/pcaps/expected).
//!
//! Until the full pipeline exists, a naive helper here orders each TCP
//! direction's payloads by sequence number (dropping exact duplicates and
//! already-seen bytes), which is enough for these loss-free captures.

mod l7_oracles;

use std::collections::HashMap;
use std::net::IpAddr;

use flowscope::l7::{DnsParser, DnsRecord, HttpParser, HttpRecord, TlsParser, TlsRecord};
use flowscope::pcap::PcapReader;
use flowscope::session::Side;
use flowscope::view::LinkType;
use l7_oracles::{PCAPS, tsv};

type Endpoint = (IpAddr, u16);

/// One transport payload.
struct Segment {
    src: Endpoint,
    dst: Endpoint,
    tcp: Option<(u32, u8)>,
    payload: Vec<u8>,
}

fn ip_payload(frame: &[u8], link: LinkType) -> Option<&[u8]> {
    let (mut ethertype, mut at) = match link {
        LinkType::Ethernet => (u16::from_be_bytes([frame[12], frame[13]]), 14),
        LinkType::LinuxSll => (u16::from_be_bytes([frame[14], frame[15]]), 16),
        LinkType::RawIp => (if frame[0] >> 4 == 6 { 0x86dd } else { 0x0800 }, 0),
        _ => return None,
    };
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        ethertype = u16::from_be_bytes([frame[at + 2], frame[at + 3]]);
        at += 4;
    }
    matches!(ethertype, 0x0800 | 0x86dd).then(|| &frame[at..])
}

fn segment(frame: &[u8], link: LinkType) -> Option<Segment> {
    let ip = ip_payload(frame, link)?;
    let (src, dst, proto, l4) = if ip[0] >> 4 == 4 {
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
            return None; // fragments: not in these captures' L7 traffic
        }
        let a: [u8; 4] = ip[12..16].try_into().ok()?;
        let b: [u8; 4] = ip[16..20].try_into().ok()?;
        (IpAddr::from(a), IpAddr::from(b), ip[9], &ip[ihl..total])
    } else {
        let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let a: [u8; 16] = ip[8..24].try_into().ok()?;
        let b: [u8; 16] = ip[24..40].try_into().ok()?;
        (
            IpAddr::from(a),
            IpAddr::from(b),
            ip[6],
            &ip[40..(40 + len).min(ip.len())],
        )
    };
    let port = |at: usize| u16::from_be_bytes([l4[at], l4[at + 1]]);
    match proto {
        6 => {
            let off = usize::from(l4[12] >> 4) * 4;
            let seq = u32::from_be_bytes(l4[4..8].try_into().ok()?);
            Some(Segment {
                src: (src, port(0)),
                dst: (dst, port(2)),
                tcp: Some((seq, l4[13])),
                payload: l4.get(off..)?.to_vec(),
            })
        }
        17 => Some(Segment {
            src: (src, port(0)),
            dst: (dst, port(2)),
            tcp: None,
            payload: l4.get(8..)?.to_vec(),
        }),
        _ => None,
    }
}

fn read(name: &str) -> Vec<Segment> {
    let mut r = PcapReader::open(format!("{PCAPS}/{name}")).expect("open capture");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet().expect("read packet") {
        if let Some(s) = segment(p.frame, p.link) {
            out.push(s);
        }
    }
    out
}

/// A TCP connection: the client's and the server's byte streams.
struct Connection {
    client: Vec<u8>,
    server: Vec<u8>,
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// Reassembles every TCP connection naively (see the module docs).
fn tcp_connections(segments: &[Segment]) -> Vec<Connection> {
    #[derive(Default)]
    struct Dir {
        isn: Option<u32>,
        segs: Vec<(u32, Vec<u8>)>,
    }
    let mut dirs: HashMap<(Endpoint, Endpoint), Dir> = HashMap::new();
    let mut order = Vec::new();
    let mut client_of: HashMap<(Endpoint, Endpoint), Endpoint> = HashMap::new();
    for s in segments {
        let Some((seq, flags)) = s.tcp else { continue };
        let key = (s.src, s.dst);
        let pair = if s.src < s.dst {
            (s.src, s.dst)
        } else {
            (s.dst, s.src)
        };
        if !client_of.contains_key(&pair) {
            order.push(pair);
        }
        if flags & (SYN | ACK) == SYN {
            client_of.insert(pair, s.src);
        } else {
            // No SYN seen (yet): the higher port is the client.
            client_of
                .entry(pair)
                .or_insert(if s.src.1 > s.dst.1 { s.src } else { s.dst });
        }
        let d = dirs.entry(key).or_default();
        if flags & SYN != 0 {
            d.isn = Some(seq.wrapping_add(1));
        } else if !s.payload.is_empty() {
            d.segs.push((seq, s.payload.clone()));
        }
    }
    let stream = |d: Option<&Dir>| -> Vec<u8> {
        let Some(d) = d else { return Vec::new() };
        let base = d.isn.or(d.segs.first().map(|s| s.0)).unwrap_or(0);
        let mut segs: Vec<(i64, &[u8])> = d
            .segs
            .iter()
            .map(|(seq, p)| (i64::from(seq.wrapping_sub(base) as i32), p.as_slice()))
            .collect();
        segs.sort_by_key(|s| s.0);
        let mut out = Vec::new();
        for (rel, p) in segs {
            let end = rel + p.len() as i64;
            let have = out.len() as i64;
            if end > have && rel <= have {
                out.extend_from_slice(&p[(have - rel) as usize..]);
            }
        }
        out
    };
    order
        .into_iter()
        .map(|pair| {
            let client = client_of[&pair];
            let server = if pair.0 == client { pair.1 } else { pair.0 };
            Connection {
                client: stream(dirs.get(&(client, server))),
                server: stream(dirs.get(&(server, client))),
            }
        })
        .collect()
}

fn http_records(pcap: &str) -> Vec<HttpRecord> {
    let mut out = Vec::new();
    for c in tcp_connections(&read(pcap)) {
        let mut p = HttpParser::default();
        p.feed(Side::Initiator, &c.client, &mut out);
        p.feed(Side::Responder, &c.server, &mut out);
        p.end(Side::Initiator, &mut out);
        p.end(Side::Responder, &mut out);
    }
    out
}

fn check_http(pcap: &str) {
    let ours = http_records(pcap);
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
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
    let want = tsv(pcap, "http_requests.tsv");
    assert!(!want.is_empty());
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
    let mut responses: Vec<&HttpRecord> = ours.iter().filter(|r| r.status.is_some()).collect();
    let want = tsv(pcap, "http_responses.tsv");
    for row in &want {
        let code: u16 = row["http.response.code"].parse().expect("code");
        let ctype = row["http.content_type"].clone();
        let length: Option<u64> = row["http.content_length_header"].parse().ok();
        let at = responses.iter().position(|r| {
            r.status == Some(code)
                && s(&r.http_content_type) == ctype
                // A response to HEAD has no body (RFC 9112 §6.3) whatever its
                // Content-Length says; tshark reports the header, we the body.
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
}

#[test]
fn http_methods_match_tshark() {
    check_http("zeek__http_methods.pcap");
}

#[test]
fn http_pipelined_requests_match_tshark() {
    check_http("zeek__http_pipelined-requests.pcap");
}

fn tls_records(pcap: &str) -> Vec<TlsRecord> {
    let mut out = Vec::new();
    for c in tcp_connections(&read(pcap)) {
        let mut p = TlsParser::default();
        p.feed(Side::Initiator, &c.client, &mut out);
        p.feed(Side::Responder, &c.server, &mut out);
        p.end(Side::Initiator, &mut out);
        p.end(Side::Responder, &mut out);
    }
    out
}

/// `[KEY: value]` fields of ndpiReader's flow lines.
fn ndpi_fields(pcap: &str, key: &str) -> Vec<String> {
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

fn check_tls(pcap: &str) {
    let ours = tls_records(pcap);
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
    assert!(!hellos.is_empty());
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
    if !pcap.starts_with("ndpi__") {
        return; // ndpiReader's output exists for its own captures only
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
}

#[test]
fn tls_long_certificate_matches_tshark_and_ndpi() {
    check_tls("ndpi__tls_long_cert.pcap");
    let ours = tls_records("ndpi__tls_long_cert.pcap");
    // ndpiReader: [Issuer: …][Subject: …][Validity: 2019-03-07 00:00:00 - 2020-05-05 12:00:00].
    let r = &ours[0];
    assert_eq!(
        r.issuerdn.as_deref(),
        Some("C=US, O=DigiCert Inc, OU=www.digicert.com, CN=GeoTrust RSA CA 2018")
    );
    assert_eq!(
        r.subject.as_deref(),
        Some("C=IT, ST=Roma, L=Roma, O=GEDI Digital S.r.l., CN=www.repstatic.it")
    );
    assert_eq!(r.notbefore.as_deref(), Some("2019-03-07T00:00:00"));
    assert_eq!(r.notafter.as_deref(), Some("2020-05-05T12:00:00"));
    assert_eq!(r.version.as_deref(), Some("TLS 1.2"));
    assert_eq!(r.alpn, vec!["h2".to_owned(), "http/1.1".to_owned()]);
}

#[test]
fn tls_with_extensions_matches_tshark() {
    check_tls("zeek__tls_tls-conn-with-extensions.pcap");
}

#[test]
fn tls_fragmented_handshakes_match_tshark() {
    check_tls("ws__tls-fragmented-handshakes.pcap");
}

fn dns_records(pcap: &str) -> Vec<DnsRecord> {
    let segments = read(pcap);
    let mut out = Vec::new();
    let mut udp: HashMap<(Endpoint, Endpoint), DnsParser> = HashMap::new();
    for s in segments.iter().filter(|s| s.tcp.is_none()) {
        let pair = if s.src < s.dst {
            (s.src, s.dst)
        } else {
            (s.dst, s.src)
        };
        udp.entry(pair).or_default().datagram(&s.payload, &mut out);
    }
    for c in tcp_connections(&segments) {
        let mut p = DnsParser::default();
        p.feed(Side::Initiator, &c.client, &mut out);
        p.feed(Side::Responder, &c.server, &mut out);
    }
    out
}

fn check_dns(pcap: &str) -> (usize, usize) {
    let ours = dns_records(pcap);
    l7_oracles::check_dns(pcap, ours.iter().collect())
}

#[test]
fn dns_over_udp_matches_tshark() {
    assert_eq!(check_dns("ws__dns+icmp.pcapng"), (11, 0));
}

#[test]
fn dns_over_tcp_matches_tshark() {
    assert_eq!(check_dns("tcpdump__dns_tcp.pcap"), (2, 0));
}

#[test]
fn bad_dns_traffic_matches_tshark() {
    let (rows, missing) = check_dns("ndpi__bad-dns-traffic.pcap");
    assert_eq!(rows, 382);
    assert_eq!(missing, 0);
}
