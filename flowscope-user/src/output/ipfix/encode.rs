//! IPFIX message encoding (RFC 7011): templates, data records, messages.
//!
//! Two template pairs (IPv4 and IPv6 each):
//! - **biflow** (RFC 5103): one record per flow, the initiator's counters
//!   as the forward elements and the responder's as reverse elements
//!   (enterprise bit set, PEN 29305);
//! - **unidirectional**: one record per direction that sent packets, for
//!   collectors that do not understand reverse elements.
//!
//! Elements, in record order: `flowId`(148), source/destination address
//! (8/12 or 27/28), `sourceTransportPort`(7), `destinationTransportPort`(11),
//! `icmpTypeCodeIPv4`(32) or `icmpTypeCodeIPv6`(139) (type × 256 + code of
//! the record's direction; 0 and the ports 0 for other protocols),
//! `protocolIdentifier`(4), `ipVersion`(60), `vlanId`(58),
//! `ingressInterface`(10), `flowStartMilliseconds`(152),
//! `flowEndMilliseconds`(153), `octetDeltaCount`(1), `packetDeltaCount`(2),
//! `tcpControlBits`(6, two bytes as RFC 7125 defines), `flowEndReason`(136).
//! In biflow mode the reverse `octetDeltaCount`, `packetDeltaCount` and
//! `tcpControlBits` come right before their forward counterparts (the flow's
//! start and end cover both directions). RFC 5103 collectors do not care
//! about the order; collectors that know only some reverse elements and read
//! the others as forward ones (nfdump 1.7 maps reverse counts but stores a
//! reverse `tcpControlBits` into its only flags field) keep the forward
//! values, which are written last.
//!
//! Octets are IP-level, as RFC 7012 defines `octetDeltaCount`: the sum of
//! the IP lengths the packets' headers state (IP header and payload; no link
//! header, no Ethernet padding, snapped bytes included). Records of an
//! active timeout carry the counters of their own interval only (deltas), as
//! the tracker restarts them.

use std::net::IpAddr;

use crate::extract::FiveTupleKey;
use crate::extractor::L4Proto;
use crate::tracker::{EndReason, FlowRecord, FlowSide, SideStats};
use crate::view::Timestamp;
use crate::wire::icmp_side_type_codes;

/// The Private Enterprise Number of RFC 5103 reverse information elements.
pub const REVERSE_PEN: u32 = 29305;

/// IPFIX protocol version in the message header.
const VERSION: u16 = 10;
/// Message header length.
const HEADER_LEN: usize = 16;
/// Set header length.
const SET_HEADER_LEN: usize = 4;
/// Set ID of template sets.
const TEMPLATE_SET_ID: u16 = 2;

/// Which records an exporter sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpfixMode {
    /// One RFC 5103 biflow record per flow.
    Biflow,
    /// One record per direction (for collectors without biflow support).
    Unidirectional,
}

impl IpfixMode {
    /// The IPv4 and IPv6 template IDs of this mode.
    pub const fn template_ids(self) -> [u16; 2] {
        match self {
            Self::Biflow => [256, 257],
            Self::Unidirectional => [258, 259],
        }
    }
}

/// An information element of a template: ID, length, enterprise number.
type Field = (u16, u16, Option<u32>);

/// Index in [`common_fields`] of the forward counters (`octetDeltaCount`);
/// biflow templates insert [`REVERSE_FIELDS`] there.
const COUNTERS_AT: usize = 12;

/// The common part of every template; the two address fields are inserted.
const fn common_fields(v6: bool) -> [Field; 16] {
    let (src, dst, alen) = if v6 { (27, 28, 16) } else { (8, 12, 4) };
    let icmp = if v6 { 139 } else { 32 };
    [
        (148, 8, None),
        (src, alen, None),
        (dst, alen, None),
        (7, 2, None),
        (11, 2, None),
        (icmp, 2, None),
        (4, 1, None),
        (60, 1, None),
        (58, 2, None),
        (10, 4, None),
        (152, 8, None),
        (153, 8, None),
        (1, 8, None),
        (2, 8, None),
        (6, 2, None),
        (136, 1, None),
    ]
}

/// Reverse elements appended in biflow mode.
const REVERSE_FIELDS: [Field; 3] = [
    (1, 8, Some(REVERSE_PEN)),
    (2, 8, Some(REVERSE_PEN)),
    (6, 2, Some(REVERSE_PEN)),
];

/// Length of one data record.
const fn record_len(mode: IpfixMode, v6: bool) -> usize {
    let addrs = if v6 { 32 } else { 8 };
    let common = 8 + addrs + 2 + 2 + 2 + 1 + 1 + 2 + 4 + 8 + 8 + 8 + 8 + 2 + 1;
    match mode {
        IpfixMode::Biflow => common + 8 + 8 + 2,
        IpfixMode::Unidirectional => common,
    }
}

/// Length of the template set of a mode (both templates).
fn template_set_len(mode: IpfixMode) -> usize {
    let per_template = |v6: bool| {
        let mut n = 4 + 4 * common_fields(v6).len();
        if mode == IpfixMode::Biflow {
            n += 8 * REVERSE_FIELDS.len();
        }
        n
    };
    SET_HEADER_LEN + per_template(false) + per_template(true)
}

/// `flowEndReason` (IANA IPFIX registry) of a tracker end reason.
pub const fn flow_end_reason(reason: EndReason) -> u8 {
    match reason {
        EndReason::IdleTimeout => 1,
        EndReason::ActiveTimeout => 2,
        EndReason::Fin | EndReason::Rst => 3,
        EndReason::ForceClosed | EndReason::ParseError => 4,
        EndReason::Evicted | EndReason::BufferOverflow => 5,
    }
}

/// Milliseconds since the epoch.
const fn millis(ts: Timestamp) -> u64 {
    ts.0 / 1_000_000
}

/// One direction of an exported flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpfixDirection {
    /// IP octets (header and payload, as the IP headers state).
    pub octets: u64,
    /// Packets.
    pub packets: u64,
    /// OR of the TCP flags.
    pub tcp_flags: u16,
    /// First packet, ms since the epoch (0 if none).
    pub start_ms: u64,
    /// Last packet, ms since the epoch (0 if none).
    pub end_ms: u64,
}

impl From<&SideStats> for IpfixDirection {
    fn from(s: &SideStats) -> Self {
        Self {
            octets: s.ip_bytes,
            packets: s.packets,
            tcp_flags: u16::from(s.tcp_flags.0),
            start_ms: millis(s.first_seen),
            end_ms: millis(s.last_seen),
        }
    }
}

/// Everything exported about one flow record: a fixed-size copy, so it
/// crosses the exporter's queue without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpfixFlow {
    /// The tracker's flow ID.
    pub flow_id: u64,
    /// Initiator address.
    pub src: IpAddr,
    /// Responder address (same family as `src`).
    pub dst: IpAddr,
    /// Initiator port.
    pub src_port: u16,
    /// Responder port.
    pub dst_port: u16,
    /// ICMP and ICMPv6 (whose ports are 0 here): type × 256 + code sent by
    /// the initiator, then by the responder; 0 for other protocols.
    pub icmp_type_code: [u16; 2],
    /// IP protocol number.
    pub proto: u8,
    /// Outermost VLAN ID (0 = untagged).
    pub vlan: u16,
    /// Interface index the flow was observed on.
    pub ingress_interface: u32,
    /// Record start, ms since the epoch.
    pub start_ms: u64,
    /// Record end, ms since the epoch.
    pub end_ms: u64,
    /// Initiator, then responder.
    pub dirs: [IpfixDirection; 2],
    /// IPFIX `flowEndReason`.
    pub end_reason: u8,
}

impl IpfixFlow {
    /// The export view of a record, ended for `reason`, observed on
    /// `ingress_interface`.
    pub fn new(flow: &FlowRecord<FiveTupleKey>, reason: EndReason, ingress_interface: u32) -> Self {
        let k = flow.key.oriented(flow.initiator);
        let (mut src_port, mut dst_port, mut icmp_type_code) = (k.src_port(), k.dst_port(), [0; 2]);
        if let L4Proto::Icmp | L4Proto::IcmpV6 = flow.l4 {
            let sides = icmp_side_type_codes(src_port, dst_port, flow.l4 == L4Proto::IcmpV6);
            icmp_type_code = sides.map(|(t, c)| u16::from_be_bytes([t, c]));
            (src_port, dst_port) = (0, 0);
        }
        Self {
            flow_id: flow.flow_id,
            src: k.src_ip(),
            dst: k.dst_ip(),
            src_port,
            dst_port,
            icmp_type_code,
            proto: k.protocol(),
            vlan: flow.vlan[0],
            ingress_interface,
            start_ms: millis(flow.start()),
            end_ms: millis(flow.end()),
            dirs: [
                flow.side(FlowSide::Initiator).into(),
                flow.side(FlowSide::Responder).into(),
            ],
            end_reason: flow_end_reason(reason),
        }
    }

    fn is_v6(&self) -> bool {
        self.src.is_ipv6()
    }

    /// Data records this flow becomes in `mode`.
    pub fn record_count(&self, mode: IpfixMode) -> u32 {
        match mode {
            IpfixMode::Biflow => 1,
            IpfixMode::Unidirectional => {
                u32::from(self.dirs[0].packets > 0) + u32::from(self.dirs[1].packets > 0)
            }
        }
    }

    /// Bytes this flow adds to a message in `mode`, set header included
    /// (the worst case: a set of its own per record).
    pub fn encoded_len(&self, mode: IpfixMode) -> usize {
        (SET_HEADER_LEN + record_len(mode, self.is_v6())) * self.record_count(mode).max(1) as usize
    }
}

/// Builds IPFIX messages of one observation domain and transport session
/// into a reused buffer.
#[derive(Debug)]
pub struct MessageEncoder {
    mode: IpfixMode,
    domain_id: u32,
    /// Data records sent in earlier messages of this session (mod 2^32).
    sequence: u32,
    buf: Vec<u8>,
    /// Offset of the open set's header and its ID.
    open_set: Option<(usize, u16)>,
    records: u32,
}

impl MessageEncoder {
    /// An encoder for `domain_id`, messages of at most `max_len` bytes.
    pub fn new(mode: IpfixMode, domain_id: u32, max_len: usize) -> Self {
        Self {
            mode,
            domain_id,
            sequence: 0,
            buf: Vec::with_capacity(max_len),
            open_set: None,
            records: 0,
        }
    }

    /// The mode.
    pub fn mode(&self) -> IpfixMode {
        self.mode
    }

    /// Bytes of a message with templates and no record: the fixed budget.
    pub fn overhead(&self) -> usize {
        HEADER_LEN + template_set_len(self.mode)
    }

    /// Starts a new transport session: sequence numbers restart at 0.
    pub fn reset_session(&mut self) {
        self.sequence = 0;
    }

    /// Encodes one message holding `flows` (templates first when
    /// `templates`), exported at `export_secs`; returns its bytes. The
    /// sequence number advances by the data records it holds.
    pub fn encode(&mut self, flows: &[IpfixFlow], templates: bool, export_secs: u32) -> &[u8] {
        self.buf.clear();
        self.open_set = None;
        self.records = 0;
        self.buf.extend_from_slice(&VERSION.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&export_secs.to_be_bytes());
        self.buf.extend_from_slice(&self.sequence.to_be_bytes());
        self.buf.extend_from_slice(&self.domain_id.to_be_bytes());
        if templates {
            self.write_templates();
        }
        for f in flows {
            self.write_flow(f);
        }
        self.close_set();
        let len = u16::try_from(self.buf.len()).unwrap_or(u16::MAX);
        if let Some(l) = self.buf.get_mut(2..4) {
            l.copy_from_slice(&len.to_be_bytes());
        }
        self.sequence = self.sequence.wrapping_add(self.records);
        &self.buf
    }

    fn open(&mut self, set_id: u16) {
        if self.open_set.is_some_and(|(_, id)| id == set_id) {
            return;
        }
        self.close_set();
        self.open_set = Some((self.buf.len(), set_id));
        self.buf.extend_from_slice(&set_id.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
    }

    fn close_set(&mut self) {
        if let Some((at, _)) = self.open_set.take() {
            let len = u16::try_from(self.buf.len() - at).unwrap_or(u16::MAX);
            if let Some(l) = self.buf.get_mut(at + 2..at + 4) {
                l.copy_from_slice(&len.to_be_bytes());
            }
        }
    }

    fn write_templates(&mut self) {
        self.open(TEMPLATE_SET_ID);
        for (v6, id) in [false, true].into_iter().zip(self.mode.template_ids()) {
            let reverse: &[Field] = match self.mode {
                IpfixMode::Biflow => &REVERSE_FIELDS,
                IpfixMode::Unidirectional => &[],
            };
            let fields = common_fields(v6);
            let count = (fields.len() + reverse.len()) as u16;
            self.buf.extend_from_slice(&id.to_be_bytes());
            self.buf.extend_from_slice(&count.to_be_bytes());
            let (head, counters) = fields.split_at(COUNTERS_AT);
            for (ie, len, pen) in head.iter().chain(reverse).chain(counters) {
                let ie = if pen.is_some() { ie | 0x8000 } else { *ie };
                self.buf.extend_from_slice(&ie.to_be_bytes());
                self.buf.extend_from_slice(&len.to_be_bytes());
                if let Some(pen) = pen {
                    self.buf.extend_from_slice(&pen.to_be_bytes());
                }
            }
        }
        self.close_set();
    }

    fn write_flow(&mut self, f: &IpfixFlow) {
        let [v4_id, v6_id] = self.mode.template_ids();
        self.open(if f.is_v6() { v6_id } else { v4_id });
        match self.mode {
            IpfixMode::Biflow => {
                self.write_head(f, false, f.start_ms, f.end_ms);
                self.write_counters(&f.dirs[1]);
                self.write_counters(&f.dirs[0]);
                self.buf.push(f.end_reason);
                self.records += 1;
            }
            IpfixMode::Unidirectional => {
                for (i, d) in f.dirs.iter().enumerate() {
                    if d.packets > 0 {
                        self.write_head(f, i == 1, d.start_ms, d.end_ms);
                        self.write_counters(d);
                        self.buf.push(f.end_reason);
                        self.records += 1;
                    }
                }
            }
        }
    }

    fn put_u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// The common elements before the counters, endpoints swapped when
    /// `reversed`.
    fn write_head(&mut self, f: &IpfixFlow, reversed: bool, start_ms: u64, end_ms: u64) {
        let (src, dst, sp, dp, icmp) = if reversed {
            (f.dst, f.src, f.dst_port, f.src_port, f.icmp_type_code[1])
        } else {
            (f.src, f.dst, f.src_port, f.dst_port, f.icmp_type_code[0])
        };
        self.put_u64(f.flow_id);
        for a in [src, dst] {
            match a {
                IpAddr::V4(a) => self.buf.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => self.buf.extend_from_slice(&a.octets()),
            }
        }
        self.buf.extend_from_slice(&sp.to_be_bytes());
        self.buf.extend_from_slice(&dp.to_be_bytes());
        self.buf.extend_from_slice(&icmp.to_be_bytes());
        self.buf.push(f.proto);
        self.buf.push(if f.is_v6() { 6 } else { 4 });
        self.buf.extend_from_slice(&f.vlan.to_be_bytes());
        self.buf
            .extend_from_slice(&f.ingress_interface.to_be_bytes());
        self.put_u64(start_ms);
        self.put_u64(end_ms);
    }

    /// Octets, packets and TCP flags of one direction.
    fn write_counters(&mut self, d: &IpfixDirection) {
        self.put_u64(d.octets);
        self.put_u64(d.packets);
        self.buf.extend_from_slice(&d.tcp_flags.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(v6: bool, responder_packets: u64) -> IpfixFlow {
        let (src, dst): (IpAddr, IpAddr) = if v6 {
            (
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
            )
        } else {
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
        };
        let d = |packets| IpfixDirection {
            octets: packets * 100,
            packets,
            tcp_flags: 0x1b,
            start_ms: 1_000,
            end_ms: 2_000,
        };
        IpfixFlow {
            flow_id: 7,
            src,
            dst,
            src_port: 1234,
            dst_port: 80,
            icmp_type_code: [0; 2],
            proto: 6,
            vlan: 0,
            ingress_interface: 0,
            start_ms: 1_000,
            end_ms: 2_000,
            dirs: [d(3), d(responder_packets)],
            end_reason: 3,
        }
    }

    fn be16(b: &[u8], at: usize) -> usize {
        usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
    }

    #[test]
    fn lengths_match_the_layout() {
        for mode in [IpfixMode::Biflow, IpfixMode::Unidirectional] {
            let mut e = MessageEncoder::new(mode, 9, 1500);
            let flows = [flow(false, 2), flow(true, 2), flow(false, 0)];
            let budget = e.overhead() + flows.iter().map(|f| f.encoded_len(mode)).sum::<usize>();
            let msg = e.encode(&flows, true, 5).to_vec();
            assert_eq!(be16(&msg, 0), 10);
            assert_eq!(be16(&msg, 2), msg.len());
            assert!(msg.len() <= budget, "{} > {budget}", msg.len());
            // Template set, then three data sets (v4, v6, v4): each set's
            // length walks exactly to the end of the message.
            let mut at = HEADER_LEN;
            let mut ids = Vec::new();
            while at < msg.len() {
                ids.push(be16(&msg, at));
                at += be16(&msg, at + 2);
            }
            assert_eq!(at, msg.len());
            let [v4, v6] = mode.template_ids();
            assert_eq!(ids, [2, usize::from(v4), usize::from(v6), usize::from(v4)]);
            assert_eq!(template_set_len(mode), be16(&msg, HEADER_LEN + 2));
        }
    }

    #[test]
    fn sequence_counts_data_records_of_earlier_messages() {
        let mut e = MessageEncoder::new(IpfixMode::Unidirectional, 1, 1500);
        let seq = |m: &[u8]| u32::from_be_bytes([m[8], m[9], m[10], m[11]]);
        assert_eq!(seq(e.encode(&[flow(false, 2)], true, 0)), 0);
        // Two directions, then one (the responder sent nothing).
        assert_eq!(seq(e.encode(&[flow(false, 0)], false, 0)), 2);
        assert_eq!(seq(e.encode(&[], false, 0)), 3);
        e.reset_session();
        assert_eq!(seq(e.encode(&[], true, 0)), 0);
        let mut b = MessageEncoder::new(IpfixMode::Biflow, 1, 1500);
        b.encode(&[flow(false, 0), flow(true, 1)], true, 0);
        assert_eq!(seq(b.encode(&[], false, 0)), 2);
    }

    /// Reads the fields of the first data record of `msg` through its
    /// template: (element, enterprise number, value bytes) in order.
    fn decode_first(msg: &[u8]) -> Vec<(usize, u32, Vec<u8>)> {
        let tset = HEADER_LEN;
        let mut fields = Vec::new();
        let mut t = tset + 8;
        for _ in 0..be16(msg, tset + 6) {
            let (ie, len) = (be16(msg, t), be16(msg, t + 2));
            let pen = if ie & 0x8000 != 0 {
                t += 4;
                u32::from_be_bytes([msg[t], msg[t + 1], msg[t + 2], msg[t + 3]])
            } else {
                0
            };
            fields.push((ie & 0x7fff, pen, len));
            t += 4;
        }
        let mut at = tset + be16(msg, tset + 2) + SET_HEADER_LEN;
        fields
            .into_iter()
            .map(|(ie, pen, len)| {
                at += len;
                (ie, pen, msg[at - len..at].to_vec())
            })
            .collect()
    }

    #[test]
    fn biflow_reverse_elements_precede_forward_ones() {
        let mut f = flow(false, 2);
        f.dirs[1].tcp_flags = 0x12;
        f.dirs[1].octets = 77;
        let msg = MessageEncoder::new(IpfixMode::Biflow, 1, 1500)
            .encode(&[f], true, 0)
            .to_vec();
        let rec = decode_first(&msg);
        let ids: Vec<(usize, u32)> = rec.iter().map(|(i, p, _)| (*i, *p)).collect();
        let pos = |id| ids.iter().position(|x| *x == id).expect("element");
        for ie in [1, 2, 6] {
            assert!(pos((ie, REVERSE_PEN)) < pos((ie, 0)), "element {ie}");
        }
        let value = |id| rec[pos(id)].2.clone();
        assert_eq!(value((6, 0)), [0, 0x1b]);
        assert_eq!(value((6, REVERSE_PEN)), [0, 0x12]);
        assert_eq!(value((1, REVERSE_PEN)), 77u64.to_be_bytes());
        assert_eq!(value((1, 0)), 300u64.to_be_bytes());
        assert_eq!(value((136, 0)), [3]);
        assert_eq!(value((8, 0)), [192, 0, 2, 1]);
    }

    #[test]
    fn icmp_type_code_follows_the_direction() {
        let mut f = flow(false, 2);
        (f.proto, f.src_port, f.dst_port) = (1, 0, 0);
        // Timestamp request (13) and reply (14).
        f.icmp_type_code = [0x0d00, 0x0e00];
        let mut e = MessageEncoder::new(IpfixMode::Biflow, 1, 1500);
        let rec = decode_first(e.encode(&[f], true, 0));
        let value = |ie| {
            rec.iter()
                .find(|r| r.0 == ie && r.1 == 0)
                .unwrap()
                .2
                .clone()
        };
        assert_eq!(value(32), [13, 0]);
        assert_eq!((value(7), value(11)), (vec![0, 0], vec![0, 0]));
        // One record per direction: the responder's is the reply's.
        let mut u = MessageEncoder::new(IpfixMode::Unidirectional, 1, 1500);
        let msg = u.encode(&[f], true, 0).to_vec();
        let first = decode_first(&msg);
        let len: usize = first.iter().map(|r| r.2.len()).sum();
        let at = msg.len() - len;
        let icmp_at = first
            .iter()
            .take_while(|r| r.0 != 32)
            .map(|r| r.2.len())
            .sum::<usize>();
        assert_eq!(msg[at + icmp_at..at + icmp_at + 2], [14, 0]);
        assert_eq!(first.iter().find(|r| r.0 == 32).unwrap().2, [13, 0]);
    }

    #[test]
    fn end_reasons_follow_the_registry() {
        assert_eq!(flow_end_reason(EndReason::IdleTimeout), 1);
        assert_eq!(flow_end_reason(EndReason::ActiveTimeout), 2);
        assert_eq!(flow_end_reason(EndReason::Fin), 3);
        assert_eq!(flow_end_reason(EndReason::Rst), 3);
        assert_eq!(flow_end_reason(EndReason::ForceClosed), 4);
        assert_eq!(flow_end_reason(EndReason::Evicted), 5);
        assert_eq!(flow_end_reason(EndReason::BufferOverflow), 5);
    }
}
