//! The EVE flow record (see the [module docs](super)).

use super::json;
use super::{community_id, header};
use crate::community_id::CommunityIdValue;
use crate::extractor::{L4Proto, TcpFlags};
use crate::output::record::{FlowEnd, FlowHeader};
use crate::pipeline::FlowSummary;
use crate::tracker::{FlowRecord, FlowSide, FlowState};

/// Suricata's flow state from ours.
fn suricata_state<K>(flow: &FlowRecord<K>) -> &'static str {
    match flow.state {
        FlowState::Closed | FlowState::Closing | FlowState::Reset => "closed",
        FlowState::SynSent | FlowState::MidStream => "new",
        FlowState::Active if flow.sides[1].packets == 0 => "new",
        _ => "established",
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
    (TcpFlags::ECE, "ece"),
    (TcpFlags::CWR, "cwr"),
];

pub(super) fn flow(out: &mut Vec<u8>, f: &FlowEnd, id: Option<&CommunityIdValue>) {
    let flow = &f.flow;
    let h = FlowHeader::of(flow);
    let (ts, tc) = (
        flow.side(FlowSide::Initiator),
        flow.side(FlowSide::Responder),
    );
    header(out, &h, flow.end(), "flow");
    if let Some(p) = f.summary.as_ref().and_then(FlowSummary::app_proto) {
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
    json::label_field(out, "reason", f.reason.label());
    out.push(b'}');
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
        json::label_field(out, "state", flow.state.label());
        out.push(b'}');
    }
    // History letters, conn_state codes and Community IDs need no escaping.
    json::label_field(out, "history", flow.history.as_str());
    json::label_field(out, "conn_state", flow.conn_state());
    community_id(out, id);
    if let Some(s) = &f.summary {
        summary(out, s);
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
