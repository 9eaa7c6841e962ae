//! Writes the seed corpora: `cargo xtask fuzz --seed` (or
//! `cargo run --example seed -- CORPUS_DIR PCAP_DIR`).
//!
//! Seeds are crafted operation sequences, frames built byte by byte, and
//! short excerpts (a few frames, a few hundred bytes) of the shared
//! captures, written from code; no capture is copied whole.

use std::fs;
use std::path::{Path, PathBuf};

use flowscope::extract::{AutoDetectEncap, FiveTuple};
use flowscope::pcap::PcapReader;
use flowscope::session::Side;
use flowscope::{FlowExtractor, L4Proto, LinkType, Orientation};
use flowscope_fuzz::{filter, ipfrag, l7, tcp_reassembly as tcp, tracker};

#[path = "../../flowscope-user/tests/common/frames.rs"]
#[allow(dead_code, reason = "a subset of the test frame builders is used")]
mod frames;

/// Captures whose first frames seed the frame, decap and tracker targets.
const FRAME_CAPTURES: &[&str] = &[
    "tcpdump__vxlan.pcap",
    "tcpdump__geneve.pcap",
    "zeek__tunnels_gre-sample.pcap",
    "zeek__tunnels_vxlan-encapsulated-http.pcap",
    "ndpi__6in4tunnel.pcap",
    "zeek__q-in-q.pcap",
    "tcpdump__QinQpacket.pcap",
    "zeek__mixed-vlan-mpls.pcap",
    "zeek__ipv4_fragmented-3.pcap",
    "sanders__ipv6_fragments.pcapng",
    "ws__dns+icmp.pcapng",
    "ndpi__badpackets.pcap",
    "ws__tcp-badsegments.pcap",
    "ws__communityid.pcap",
];

/// Captures whose first bytes seed the pcap target.
const PCAP_CAPTURES: &[&str] = &[
    "tcpdump__vxlan.pcap",
    "ws__many_interfaces.1.pcapng",
    "ws__dns+icmp.pcapng",
    "sanders__tcp_retransmissions.pcapng",
    "ndpi__badpackets.pcap",
    "tcpdump__dns_tcp.pcap",
];

fn main() {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let corpus = args.next().expect("usage: seed CORPUS_DIR PCAP_DIR");
    let pcaps = args.next().expect("usage: seed CORPUS_DIR PCAP_DIR");
    let mut w = Writer { corpus, count: 0 };

    for name in FRAME_CAPTURES {
        let frames = first_frames(&pcaps.join(name), 40);
        for (i, (_, f)) in frames
            .iter()
            .filter(|(l, _)| *l == LinkType::Ethernet)
            .take(3)
            .enumerate()
        {
            w.put("frame", &format!("{name}-{i}"), f);
            w.put("decap", &format!("{name}-{i}"), f);
        }
        let mut t = tracker_header();
        for (i, (_, f)) in frames.iter().take(12).enumerate() {
            tracker::encode_frame(&mut t, f, (i % 5) as i8, i % 4 == 3);
        }
        w.put("tracker", name, &t);
    }
    for (name, f) in crafted_frames() {
        w.put("frame", name, &f);
        w.put("decap", name, &f);
    }
    filter_seeds(&mut w, &pcaps);

    for name in PCAP_CAPTURES {
        let bytes = fs::read(pcaps.join(name)).expect("capture");
        for cut in [200, 700] {
            w.put(
                "pcap",
                &format!("{name}-{cut}"),
                &bytes[..cut.min(bytes.len() / 2)],
            );
        }
    }

    tcp_seeds(&mut w);
    ipfrag_seeds(&mut w, &pcaps);
    for (target, port, l4, captures) in [
        (
            "l7_http",
            80,
            L4Proto::Tcp,
            &[
                "zeek__http_methods.pcap",
                "zeek__http_pipelined-requests.pcap",
                "ndpi__http_ipv6.pcap",
            ][..],
        ),
        (
            "l7_tls",
            443,
            L4Proto::Tcp,
            &[
                "zeek__tls_tls-conn-with-extensions.pcap",
                "ws__tls-fragmented-handshakes.pcap",
                "ndpi__tls_long_cert.pcap",
            ][..],
        ),
        ("l7_dns", 53, L4Proto::Tcp, &["tcpdump__dns_tcp.pcap"][..]),
        (
            "l7_ssh",
            22,
            L4Proto::Tcp,
            &["zeek__tunnels_gre-sample.pcap"][..],
        ),
        (
            "l7_dns",
            53,
            L4Proto::Udp,
            &[
                "ws__dns+icmp.pcapng",
                "ndpi__bad-dns-traffic.pcap",
                "zeek__ipv6-fragmented-dns.pcap",
            ][..],
        ),
    ] {
        for name in captures {
            let flows = l7_flows(&pcaps.join(name), Some(port), l4, 4096, l7::encode_data);
            for (i, seed) in flows.into_iter().take(4).enumerate() {
                w.put(target, &format!("{name}-{i}"), &seed);
            }
        }
    }
    // QUIC on any port: each UDP flow's first datagrams, whole.
    for name in [
        "ndpi__quic-27.pcap",
        "ndpi__quic-29.pcap",
        "ndpi__quic-mvfst-27.pcapng",
        "ndpi__quic-v2-00.pcapng",
        "ndpi__quic_0RTT.pcap",
        "ndpi__quic_frags_ch_in_multiple_packets.pcapng",
        "ndpi__quic_q46.pcap",
        "ndpi__quic_t51.pcap",
        "ndpi__http_ipv6.pcap",
    ] {
        let flows = l7_flows(
            &pcaps.join(name),
            None,
            L4Proto::Udp,
            3000,
            l7::encode_datagram,
        );
        for (i, seed) in flows.into_iter().take(2).enumerate() {
            w.put("l7_quic", &format!("{name}-{i}"), &seed);
        }
    }
    ssh_seeds(&mut w, &pcaps);
    println!("wrote {} seeds into {}", w.count, w.corpus.display());
}

struct Writer {
    corpus: PathBuf,
    count: usize,
}

impl Writer {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.corpus.join(target);
        fs::create_dir_all(&dir).expect("corpus directory");
        fs::write(dir.join(name), bytes).expect("seed file");
        self.count += 1;
    }
}

/// Filter seeds: programs libpcap compiles from typical expressions, each
/// over a frame of a shared capture.
fn filter_seeds(w: &mut Writer, pcaps: &Path) {
    let frames = first_frames(&pcaps.join("zeek__mixed-vlan-mpls.pcap"), 8);
    for (i, expr) in [
        "tcp port 80",
        "host 192.0.2.1 or net 2001:db8::/32",
        "vlan and udp",
        "tcp[tcpflags] & tcp-syn != 0",
        "ip[6:2] & 0x1fff != 0 or greater 1000",
        "icmp6 or (ip and len < 100)",
    ]
    .into_iter()
    .enumerate()
    {
        let insns = flowscope::filter::compile(expr, LinkType::Ethernet).expect("expression");
        let frame = &frames[i % frames.len()].1;
        w.put("filter", &format!("expr-{i}"), &filter::encode(&insns, 4, frame));
    }
}

/// The first `n` frames of a capture (at most 1600 bytes each) with their link type.
fn first_frames(path: &Path, n: usize) -> Vec<(LinkType, Vec<u8>)> {
    let mut r = PcapReader::open(path).expect("capture");
    let mut out = Vec::new();
    while out.len() < n {
        match r.next_packet() {
            Ok(Some(p)) => out.push((p.link, p.frame[..p.frame.len().min(1600)].to_vec())),
            _ => break,
        }
    }
    out
}

fn tracker_header() -> Vec<u8> {
    // Per frame, batch mode off; 8 flows; timeouts 5 s; no active timeout;
    // linger 1 s; tick 500 ms.
    vec![0, 7, 9, 9, 9, 0, 10, 4]
}

/// Tunnels that no shared capture holds, and odd headers.
fn crafted_frames() -> Vec<(&'static str, Vec<u8>)> {
    use frames::*;
    let inner4 = cat(&[
        &ipv4(v4a(1), v4b(2), 17, &[], 12, 0),
        &udp(5000, 53, 4),
        &[1, 2, 3, 4],
    ]);
    let inner6 = cat(&[&ipv6(v6(1), v6(2), 6, 20), &tcp(40000, 443, 0x02)]);
    let gtp = cat(&[
        &[0x30, 0xff],
        &(inner4.len() as u16).to_be_bytes(),
        &[0, 0, 0, 1],
        &inner4,
    ]);
    let teredo = inner6.clone();
    let over_udp = |port: u16, payload: &[u8]| {
        cat(&[
            &eth(&[], 0x0800),
            &ipv4(v4a(9), v4b(9), 17, &[], 8 + payload.len(), 0),
            &udp(40000, port, payload.len()),
            payload,
        ])
    };
    let sixin4 = cat(&[
        &eth(&[(0x8100, 7)], 0x0800),
        &ipv4(v4a(3), v4b(3), 41, &[], inner6.len(), 0),
        &inner6,
    ]);
    let frag_first = cat(&[
        &eth(&[(0x88a8, 1), (0x8100, 2)], 0x86dd),
        &ipv6(v6(1), v6(2), 0, 8 + 8 + 8),
        &ext(44, 0),
        &frag6(17, 0, true, 9),
        &udp(53, 53, 100),
    ]);
    let mut mpls = eth(&[], 0x8847);
    mpls.extend_from_slice(&[0, 0x10, 0x00, 0x40, 0, 0x20, 0x01, 0x40]);
    mpls.extend_from_slice(&inner4);
    vec![
        ("gtpu", over_udp(2152, &gtp)),
        ("teredo", over_udp(3544, &teredo)),
        ("6in4-vlan", sixin4),
        ("v6-frag-qinq", frag_first),
        ("mpls", mpls),
        ("arp", cat(&[&eth(&[], 0x0806), &[0; 28]])),
        ("runt", eth(&[], 0x0800)),
    ]
}

fn tcp_seeds(w: &mut Writer) {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const FIN: u8 = 0x01;
    const RST: u8 = 0x04;
    // (name, mode, side cap shift, segments as (side, rel seq, flags, len))
    let cases: &[(&str, u8, u8, &[(u8, i16, u8, u8)])] = &[
        (
            "in-order",
            0,
            6,
            &[
                (0, -1, SYN, 0),
                (1, -1, SYN | ACK, 0),
                (0, 0, ACK, 100),
                (0, 100, ACK, 100),
                (1, 0, ACK, 50),
                (0, 200, FIN | ACK, 0),
            ],
        ),
        (
            "reorder",
            0,
            6,
            &[
                (0, -1, SYN, 0),
                (0, 200, ACK, 100),
                (0, 100, ACK, 100),
                (0, 0, ACK, 100),
            ],
        ),
        (
            "overlap-last",
            1,
            6,
            &[
                (0, 0, ACK, 100),
                (0, 150, ACK, 100),
                (0, 120, ACK, 200),
                (0, 100, ACK, 30),
            ],
        ),
        (
            "overlap-lower",
            2,
            6,
            &[
                (0, 0, ACK, 10),
                (0, 50, ACK, 100),
                (0, 40, ACK, 30),
                (0, 10, ACK, 60),
            ],
        ),
        (
            "overlap-higher",
            3,
            6,
            &[
                (0, 0, ACK, 10),
                (0, 50, ACK, 100),
                (0, 60, ACK, 30),
                (0, 10, ACK, 60),
            ],
        ),
        (
            "overflow-slide",
            0,
            1,
            &[
                (0, 0, ACK, 10),
                (0, 500, ACK, 200),
                (0, 900, ACK, 200),
                (0, 10, ACK, 200),
            ],
        ),
        (
            "overflow-drop",
            4,
            1,
            &[
                (0, 0, ACK, 10),
                (0, 500, ACK, 200),
                (0, 10, ACK, 200),
                (0, 1000, FIN, 5),
            ],
        ),
        (
            "retransmit",
            0,
            6,
            &[
                (0, 0, ACK, 100),
                (0, 0, ACK, 100),
                (0, 50, ACK, 100),
                (1, 0, RST, 0),
            ],
        ),
        (
            "missing-syn",
            0,
            6,
            &[(1, 300, ACK, 100), (1, 400, ACK, 200), (1, 350, ACK, 100)],
        ),
        (
            "fin-hole",
            0,
            6,
            &[(0, -1, SYN, 0), (0, 100, FIN | ACK, 50), (0, 0, ACK, 50)],
        ),
        (
            "raw-inconsistent",
            tcp::MODE_RAW_PAYLOAD,
            6,
            &[(0, 0, ACK, 8), (0, 4, ACK, 8), (0, 0, ACK, 12)],
        ),
    ];
    for (name, mode, shift, segs) in cases {
        for (variant, isn) in [("", [1000, 5000]), ("-wrap", [u32::MAX - 150, 0x7fff_ffa0])] {
            let mut s = Vec::new();
            tcp::encode_header(&mut s, *mode, *shift, 4096, isn);
            for &(side, rel, flags, len) in *segs {
                tcp::encode_segment(&mut s, side, rel, flags, len);
                if mode & tcp::MODE_RAW_PAYLOAD != 0 {
                    s.extend((0..len).map(|i| i.wrapping_mul(7)));
                }
            }
            w.put("tcp_reassembly", &format!("{name}{variant}"), &s);
        }
    }
}

fn ipfrag_seeds(w: &mut Writer, pcaps: &Path) {
    // (name, fragments as (v6, id, offset8, more, len))
    let cases: &[(&str, &[(bool, u8, u16, bool, u16)])] = &[
        (
            "v4-in-order",
            &[
                (false, 1, 0, true, 64),
                (false, 1, 8, true, 64),
                (false, 1, 16, false, 10),
            ],
        ),
        (
            "v4-reverse",
            &[
                (false, 2, 16, false, 10),
                (false, 2, 8, true, 64),
                (false, 2, 0, true, 64),
            ],
        ),
        (
            "v4-overlap",
            &[
                (false, 3, 0, true, 64),
                (false, 3, 4, true, 64),
                (false, 3, 12, false, 8),
            ],
        ),
        (
            "v4-duplicate",
            &[
                (false, 4, 0, true, 16),
                (false, 4, 0, true, 16),
                (false, 4, 2, false, 3),
            ],
        ),
        (
            "v6-in-order",
            &[(true, 5, 0, true, 1232), (true, 5, 154, false, 100)],
        ),
        (
            "v6-interleaved",
            &[
                (true, 6, 0, true, 8),
                (false, 6, 0, true, 8),
                (true, 6, 1, false, 1),
                (false, 6, 1, false, 1),
            ],
        ),
        (
            "bad-length",
            &[(false, 7, 0, true, 13), (true, 7, 0, true, 9)],
        ),
        (
            "too-large",
            &[(false, 8, 0, true, 1024), (false, 8, 8100, false, 1000)],
        ),
    ];
    for (name, frags) in cases {
        let mut s = vec![0, 3, 4, 50];
        for &(v6, id, off, more, len) in *frags {
            ipfrag::encode_fragment(&mut s, v6, id, off, more, len);
        }
        w.put("ipfrag", name, &s);
    }
    for name in [
        "zeek__ipv4_fragmented-3.pcap",
        "sanders__ipv6_fragments.pcapng",
        "ndpi__dns_fragmented.pcap",
    ] {
        let mut s = vec![ipfrag::MODE_RAW, 7, 6, 50];
        for (link, f) in first_frames(&pcaps.join(name), 8) {
            let l3 = match link {
                LinkType::Ethernet => 14,
                LinkType::LinuxSll => 16,
                _ => 0,
            };
            ipfrag::encode_raw(&mut s, &f[l3.min(f.len())..]);
        }
        w.put("ipfrag", name, &s);
    }
}

/// One seed per flow (on `port`, if given; tunnels decapsulated): its
/// payloads in order, each written with `encode`, until the seed holds
/// `max_bytes`.
fn l7_flows(
    path: &Path,
    port: Option<u16>,
    l4: L4Proto,
    max_bytes: usize,
    encode: fn(&mut Vec<u8>, Side, &[u8]),
) -> Vec<Vec<u8>> {
    let mut r = PcapReader::open(path).expect("capture");
    let ft = AutoDetectEncap::new(FiveTuple::bidirectional());
    let mut flows: Vec<(flowscope::extract::FiveTupleKey, Orientation, Vec<u8>)> = Vec::new();
    while let Ok(Some(p)) = r.next_packet() {
        let Ok(x) = ft.extract(p) else { continue };
        if x.l4 != l4 || port.is_some_and(|p| !x.key.either_port(p)) || x.payload_len == 0 {
            continue;
        }
        let payload = &p.frame[x.payload_offset as usize..][..x.payload_len as usize];
        let i = match flows.iter().position(|f| f.0 == x.key) {
            Some(i) => i,
            None if flows.len() < 8 => {
                let first = vec![l7::WELL_KNOWN_PORT];
                flows.push((x.key, x.orientation, first));
                flows.len() - 1
            }
            None => continue,
        };
        let (_, initiator, seed) = &mut flows[i];
        if seed.len() < max_bytes {
            let side = if x.orientation == *initiator {
                Side::Initiator
            } else {
                Side::Responder
            };
            encode(seed, side, payload);
        }
    }
    flows.into_iter().map(|f| f.2).collect()
}

/// Variations of the GRE sample's SSH connection: on a port nobody claims,
/// with a gap after the server's identification line, with lines before
/// it, with the server's stream ending inside its KEXINIT; and an SSH 1.5
/// exchange.
fn ssh_seeds(w: &mut Writer, pcaps: &Path) {
    let plain = l7_flows(
        &pcaps.join("zeek__tunnels_gre-sample.pcap"),
        Some(22),
        L4Proto::Tcp,
        4096,
        l7::encode_data,
    );
    let flow = data_ops(plain.first().expect("the GRE sample's SSH connection"));
    let encode = |first: u8, edit: &dyn Fn(&mut Vec<u8>, Side, &[u8])| {
        let mut seed = vec![first];
        for (side, payload) in &flow {
            edit(&mut seed, *side, payload);
        }
        seed
    };
    let plain = |seed: &mut Vec<u8>, side: Side, p: &[u8]| l7::encode_data(seed, side, p);
    w.put("l7_ssh", "gre-on-2222", &encode(0, &plain));
    // The server's segment after its identification line loses 40 bytes.
    let server_segments = std::cell::Cell::new(0);
    let gap = |seed: &mut Vec<u8>, side: Side, p: &[u8]| {
        if side == Side::Responder {
            server_segments.set(server_segments.get() + 1);
        }
        if side == Side::Responder && server_segments.get() == 2 {
            l7::encode_gap(seed, side, 40);
            l7::encode_data(seed, side, p.get(40..).unwrap_or_default());
        } else {
            l7::encode_data(seed, side, p);
        }
    };
    w.put(
        "l7_ssh",
        "gre-gap-after-banner",
        &encode(l7::WELL_KNOWN_PORT, &gap),
    );
    let lines = |seed: &mut Vec<u8>, side: Side, p: &[u8]| {
        if side == Side::Responder && p.starts_with(b"SSH-") {
            l7::encode_data(seed, side, b"Welcome\r\nto the sample\n");
        }
        l7::encode_data(seed, side, p);
    };
    w.put("l7_ssh", "gre-pre-banner-lines", &encode(0, &lines));
    let end = |seed: &mut Vec<u8>, side: Side, p: &[u8]| {
        if side == Side::Responder && p.len() > 100 && !p.starts_with(b"SSH-") {
            l7::encode_data(seed, side, &p[..100]);
            l7::encode_end(seed, side);
        } else {
            l7::encode_data(seed, side, p);
        }
    };
    w.put(
        "l7_ssh",
        "gre-server-ends-in-kexinit",
        &encode(l7::WELL_KNOWN_PORT, &end),
    );
    let mut ssh1 = vec![l7::WELL_KNOWN_PORT];
    l7::encode_data(&mut ssh1, Side::Responder, b"SSH-1.5-server\n");
    l7::encode_data(&mut ssh1, Side::Initiator, b"SSH-1.5-client\n");
    l7::encode_data(
        &mut ssh1,
        Side::Responder,
        &[0, 0, 0, 9, 0, 0, 0, 2, 2, 1, 2, 3],
    );
    w.put("l7_ssh", "ssh-1.5", &ssh1);
}

/// The data operations of a seed `l7::encode_data` wrote, as (side, bytes).
fn data_ops(seed: &[u8]) -> Vec<(Side, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = seed.get(1..).unwrap_or_default();
    while let [op, len, tail @ ..] = rest {
        let side = if op & 1 == 0 {
            Side::Initiator
        } else {
            Side::Responder
        };
        let (bytes, next) = tail.split_at(usize::from(*len).min(tail.len()));
        out.push((side, bytes.to_vec()));
        rest = next;
    }
    out
}
