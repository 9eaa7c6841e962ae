//! The EVE flow record (see the [module docs](super)).

use super::{Head, community_id, header, icmp_sides};
use super::{json, proto};
use crate::community_id::CommunityIdValue;
use crate::extractor::{L4Proto, TcpFlags};
use crate::output::record::{FlowEnd, FlowHeader};
use crate::pipeline::{Carrier, FlowSummary};
use crate::tracker::{EndReason, FlowRecord, FlowSide, FlowState};

/// Suricata's flow state from ours.
fn suricata_state<K>(flow: &FlowRecord<K>) -> &'static str {
    match flow.state {
        FlowState::Closed | FlowState::Closing | FlowState::Reset => "closed",
        FlowState::SynSent | FlowState::MidStream => "new",
        FlowState::Active if flow.sides[1].packets == 0 => "new",
        _ => "established",
    }
}

/// Suricata's `flow.reason` of ours (see the [module docs](super)).
fn suricata_reason(reason: EndReason) -> &'static str {
    match reason {
        EndReason::ForceClosed => "shutdown",
        EndReason::Evicted | EndReason::BufferOverflow | EndReason::ParseError => "forced",
        EndReason::Fin | EndReason::Rst | EndReason::IdleTimeout | EndReason::ActiveTimeout => {
            "timeout"
        }
    }
}

/// Suricata's `tcp.state` name of ours (a flow picked up mid-stream is
/// established, as Suricata's stream engine takes it; a reset one closed).
fn suricata_tcp_state(state: FlowState) -> &'static str {
    match state {
        FlowState::SynSent => "syn_sent",
        FlowState::SynReceived => "syn_recv",
        FlowState::Established | FlowState::MidStream | FlowState::Active => "established",
        FlowState::FinWait => "fin_wait1",
        FlowState::Closing => "closing",
        FlowState::Closed | FlowState::Reset => "closed",
    }
}

/// Two lowercase hex digits.
fn hex2(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 0xf)]);
}

const FLAG_NAMES: [(TcpFlags, &str); 8] = [
    (TcpFlags::SYN, "syn"),
    (TcpFlags::FIN, "fin"),
    (TcpFlags::RST, "rst"),
    (TcpFlags::PSH, "psh"),
    (TcpFlags::ACK, "ack"),
    (TcpFlags::URG, "urg"),
    // Suricata names the ECE flag `ecn`.
    (TcpFlags::ECE, "ecn"),
    (TcpFlags::CWR, "cwr"),
];

/// Suricata's `tunnel` object (in its alerts: the packet's outermost
/// layer): the carrier's endpoints, initiator first, its protocol, and how
/// many tunnels deep the flow was.
fn tunnel(out: &mut Vec<u8>, c: &Carrier) {
    let k = c.key.oriented(c.initiator);
    out.extend_from_slice(b",\"tunnel\":{\"src_ip\":\"");
    json::ip(out, k.src_ip());
    out.push(b'"');
    json::uint_field(out, "src_port", u64::from(k.src_port()));
    json::key(out, "dest_ip");
    out.push(b'"');
    json::ip(out, k.dst_ip());
    out.push(b'"');
    json::uint_field(out, "dest_port", u64::from(k.dst_port()));
    proto::field(out, c.l4.number());
    json::uint_field(out, "depth", u64::from(c.tunnel.depth));
    out.push(b'}');
}

pub(super) fn flow(out: &mut Vec<u8>, head: &Head<'_>, f: &FlowEnd, id: &CommunityIdValue) {
    let flow = &f.flow;
    let h = FlowHeader::of(flow);
    let (ts, tc) = (
        flow.side(FlowSide::Initiator),
        flow.side(FlowSide::Responder),
    );
    header(out, head, &h, flow.end(), "flow");
    if let Some([_, (t, c)]) = icmp_sides(&h)
        && tc.packets > 0
    {
        json::uint_field(out, "response_icmp_type", u64::from(t));
        json::uint_field(out, "response_icmp_code", u64::from(c));
    }
    if let Some(p) = f.app_proto() {
        json::label_field(out, "app_proto", p);
    }
    if flow.vlan.iter().any(|&v| v != 0) {
        json::key(out, "vlan");
        out.push(b'[');
        for (i, v) in flow.vlan.iter().filter(|&&v| v != 0).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::uint(out, u64::from(*v));
        }
        out.push(b']');
    }
    if let Some(c) = &f.carrier {
        tunnel(out, c);
    }
    out.extend_from_slice(b",\"flow\":{\"pkts_toserver\":");
    json::uint(out, ts.packets);
    json::uint_field(out, "pkts_toclient", tc.packets);
    json::uint_field(out, "bytes_toserver", ts.bytes);
    json::uint_field(out, "bytes_toclient", tc.bytes);
    json::time_field(out, "start", flow.start());
    json::time_field(out, "end", flow.end());
    json::uint_field(
        out,
        "age",
        flow.end().sec().saturating_sub(flow.start().sec()),
    );
    json::label_field(out, "state", suricata_state(flow));
    json::label_field(out, "reason", suricata_reason(f.reason));
    out.extend_from_slice(b",\"alerted\":false}");
    if flow.l4 == L4Proto::Tcp {
        let all = ts.tcp_flags | tc.tcp_flags;
        out.extend_from_slice(b",\"tcp\":{\"tcp_flags\":\"");
        hex2(out, all.0);
        out.extend_from_slice(b"\",\"tcp_flags_ts\":\"");
        hex2(out, ts.tcp_flags.0);
        out.extend_from_slice(b"\",\"tcp_flags_tc\":\"");
        hex2(out, tc.tcp_flags.0);
        out.push(b'"');
        for (flag, name) in FLAG_NAMES {
            if all.contains(flag) {
                json::key(out, name);
                out.extend_from_slice(b"true");
            }
        }
        json::label_field(out, "state", suricata_tcp_state(flow.state));
        out.push(b'}');
    }
    community_id(out, id);
    if head.extras {
        // History letters and conn_state codes need no escaping.
        json::label_field(out, "history", flow.history.as_str());
        json::label_field(out, "conn_state", flow.conn_state());
        json::label_field(out, "end_reason", f.reason.label());
        if let Some(s) = &f.summary {
            summary(out, s);
        }
    }
    out.push(b'}');
}

/// `"reassembly":{…}` (TCP) and `"bounds":[…]` (when any was hit).
fn summary(out: &mut Vec<u8>, s: &FlowSummary) {
    if let Some([i, r]) = &s.tcp {
        let (i, r) = (&i.counters, &r.counters);
        out.extend_from_slice(b",\"reassembly\":{\"bytes_toserver\":");
        json::uint(out, i.bytes_delivered);
        for (name, v) in [
            ("bytes_toclient", r.bytes_delivered),
            ("gap_bytes_toserver", i.gap_bytes),
            ("gap_bytes_toclient", r.gap_bytes),
            ("ooo_segments_toserver", i.ooo_segments),
            ("ooo_segments_toclient", r.ooo_segments),
            ("retransmits_toserver", i.retransmits),
            ("retransmits_toclient", r.retransmits),
            ("overflows_toserver", i.overflows),
            ("overflows_toclient", r.overflows),
        ] {
            json::uint_field(out, name, v);
        }
        out.push(b'}');
    }
    for (n, bound) in s.bounds().enumerate() {
        out.extend_from_slice(if n == 0 { b",\"bounds\":[\"" } else { b",\"" });
        out.extend_from_slice(bound.label().as_bytes());
        out.push(b'"');
    }
    if s.bounds().next().is_some() {
        out.push(b']');
    }
}
