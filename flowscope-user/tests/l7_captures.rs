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
use l7_oracles::{PCAPS, check_http, check_tls};

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

fn check_http_records(pcap: &str) {
    let ours = http_records(pcap);
    let (requests, _) = check_http(pcap, &ours.iter().collect::<Vec<_>>(), "");
    assert!(requests > 0);
}

#[test]
fn http_methods_match_tshark() {
    check_http_records("zeek__http_methods.pcap");
}

#[test]
fn http_pipelined_requests_match_tshark() {
    check_http_records("zeek__http_pipelined-requests.pcap");
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

fn check_tls_records(pcap: &str) {
    let ours = tls_records(pcap);
    assert!(check_tls(pcap, &ours.iter().collect::<Vec<_>>()) > 0);
}

#[test]
fn tls_long_certificate_matches_tshark_and_ndpi() {
    check_tls_records("ndpi__tls_long_cert.pcap");
    let ours = tls_records("ndpi__tls_long_cert.pcap");
    // ndpiReader: [Issuer: …][Subject: …][Validity: 2019-03-07 00:00:00 - 2020-05-05 12:00:00].
    let r = &ours[0];
    assert_eq!(
        r.issuerdn(),
        Some("C=US, O=DigiCert Inc, OU=www.digicert.com, CN=GeoTrust RSA CA 2018")
    );
    assert_eq!(
        r.subject(),
        Some("C=IT, ST=Roma, L=Roma, O=GEDI Digital S.r.l., CN=www.repstatic.it")
    );
    assert_eq!(r.notbefore(), Some("2019-03-07T00:00:00"));
    assert_eq!(r.notafter(), Some("2020-05-05T12:00:00"));
    assert_eq!(r.version(), Some("TLS 1.2"));
    assert_eq!(r.alpn().collect::<Vec<_>>(), ["h2", "http/1.1"]);
}

#[test]
fn tls_with_extensions_matches_tshark() {
    check_tls_records("zeek__tls_tls-conn-with-extensions.pcap");
}

#[test]
fn tls_fragmented_handshakes_match_tshark() {
    check_tls_records("ws__tls-fragmented-handshakes.pcap");
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
