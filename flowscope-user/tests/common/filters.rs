//! The expressions and captures of the differential filter tests: libpcap's
//! `pcap_offline_filter` is the oracle for every frame of every shared
//! capture.

use std::collections::HashMap;

use flowscope::{LinkType, filter::Filter, pcap::PcapReader};

/// The shared captures.
pub const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// Expressions an operator would write, and some that exercise every kind
/// of classic instruction libpcap emits (indirect loads, `ldx msh`,
/// division, remainder and shifts by a packet value, `len`).
pub const EXPRESSIONS: &[&str] = &[
    "ip",
    "ip6",
    "arp",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "host 172.16.0.8",
    "src host 64.13.134.52 and tcp",
    "net 10.0.0.0/8",
    "dst net 192.168.0.0/16",
    "net 2a00::/16",
    "host 2a00:d40:1:3:7aac:c0ff:fea7:d4c",
    "tcp port 80",
    "port 53",
    "udp port 53 or udp port 5353",
    "portrange 1-1023",
    "tcp dst portrange 8000-8100",
    "vlan",
    "vlan and tcp",
    "vlan 4093",
    "vlan and vlan",
    "mpls",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "tcp[tcpflags] & tcp-rst != 0",
    "ip[0] & 0xf > 5",
    "tcp[20:2] = 0x1603",
    "tcp[((tcp[12:1] & 0xf0) >> 2):2] = 0x1603",
    "ip[6:2] & 0x3fff != 0",
    "ip6[6] = 44",
    "ip and (tcp or udp) and not port 443",
    "not ip and not ip6",
    "ether broadcast",
    "ether multicast and not ip6",
    "greater 1000",
    "less 100",
    "len >= 60 and len <= 64",
    "ip[0] << ip[8] != 0",
    "ip[2:2] / ip[1] > 100",
    "ip[2:2] % ip[8] = 0",
    "ip[4:2] >> ip[9] = 0",
    "ip[2:2] >> ip[8] = 0",
    "ip[2:2] - ip[0] * 4 > 500",
    "udp port 4789 and udp[8] & 0x08 != 0",
    "ip proto 47",
    "ip6 and tcp port 443",
    "icmp[icmptype] = icmp-echo",
    "tcp and (tcp[tcpflags] & tcp-push != 0) and greater 200",
];

/// One captured frame.
pub struct Frame {
    /// Link type of `bytes`.
    pub link: LinkType,
    /// As captured.
    pub bytes: Vec<u8>,
    /// Length on the wire.
    pub wire_len: u32,
}

/// Every frame of one capture, read with flowscope's reader.
pub struct Capture {
    /// File name.
    pub name: String,
    /// Its frames, in order.
    pub frames: Vec<Frame>,
}

/// Every capture in the shared directory, sorted by name.
pub fn captures() -> Vec<Capture> {
    let mut names: Vec<String> = std::fs::read_dir(PCAPS)
        .expect("the shared captures are beside the repository")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    names.sort();
    assert!(names.len() > 40, "found only {names:?} in {PCAPS}");
    names
        .into_iter()
        .map(|name| {
            let mut r = PcapReader::open(format!("{PCAPS}/{name}"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut frames = Vec::new();
            while let Some(p) = r.next_packet().unwrap_or_else(|e| panic!("{name}: {e}")) {
                frames.push(Frame {
                    link: p.link,
                    bytes: p.frame.to_vec(),
                    wire_len: p.orig_len,
                });
            }
            Capture { name, frames }
        })
        .collect()
}

/// The frame as an Ethernet frame, as XDP would see it: raw IP and BSD
/// loopback frames get a synthetic 14-byte header (zero MACs, the
/// EtherType from the IP version); `None` for other link types.
pub fn as_ethernet(f: &Frame) -> Option<Vec<u8>> {
    let ip = match f.link {
        LinkType::Ethernet => return Some(f.bytes.clone()),
        LinkType::RawIp => &f.bytes[..],
        LinkType::Loopback => f.bytes.get(4..)?,
        LinkType::LinuxSll | LinkType::LinuxSll2 => return None,
    };
    let ethertype: u16 = match ip.first().map(|b| b >> 4) {
        Some(6) => 0x86dd,
        _ => 0x0800,
    };
    let mut out = vec![0u8; 12];
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(ip);
    Some(out)
}

/// `expr` compiled by us and by libpcap (through the `pcap` crate, whose
/// `BpfProgram::filter` is `pcap_offline_filter`), per link type; `None`
/// where libpcap refuses it for that link type (`vlan` on raw IP…), and
/// then we must refuse it too.
pub struct Compiled {
    expr: &'static str,
    by_link: HashMap<LinkType, Option<(Filter, pcap::BpfProgram)>>,
}

impl Compiled {
    /// Nothing compiled yet.
    pub fn new(expr: &'static str) -> Self {
        Self {
            expr,
            by_link: HashMap::new(),
        }
    }

    /// Both programs for `link`.
    pub fn get(&mut self, link: LinkType) -> Option<&(Filter, pcap::BpfProgram)> {
        let expr = self.expr;
        self.by_link
            .entry(link)
            .or_insert_with(|| {
                let ours = Filter::compile(expr, link);
                let dead =
                    pcap::Capture::dead(pcap::Linktype(flowscope::filter::dlt(link))).unwrap();
                match (ours, dead.compile(expr, true)) {
                    (Ok(f), Ok(p)) => Some((f, p)),
                    (Err(ours), Err(theirs)) => {
                        assert!(
                            ours.to_string()
                                .ends_with(&theirs.to_string().replace("libpcap error: ", "")),
                            "{expr} on {link:?}: {ours} / {theirs}"
                        );
                        None
                    }
                    (ours, theirs) => panic!(
                        "{expr} on {link:?}: we say {:?}, libpcap {:?}",
                        ours.err(),
                        theirs.err()
                    ),
                }
            })
            .as_ref()
    }
}
