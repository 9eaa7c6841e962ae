//! Suricata-style EVE JSON, one object per line: the one encoder every
//! record goes through, live and offline. By default every line validates
//! against Suricata's own EVE schema (`etc/schema.json` of OISF/suricata;
//! `tests/eve_schema.rs` checks every capture), with Suricata's meaning for
//! the fields it defines; flowscope's own fields are written only with
//! [`EveOptions::extras`] (`--eve-extras`).
//!
//! Flow record (one per ended flow record):
//!
//! ```json
//! {"timestamp":"2012-12-01T02:27:50.123456+0000","flow_id":1916228556374528,"event_type":"flow",
//!  "src_ip":"10.0.0.1","src_port":51000,"dest_ip":"10.0.0.2","dest_port":80,"proto":"TCP",
//!  "app_proto":"http",
//!  "flow":{"pkts_toserver":5,"pkts_toclient":4,"bytes_toserver":348,"bytes_toclient":292,
//!          "start":"…","end":"…","age":0,"state":"closed","reason":"timeout","alerted":false},
//!  "tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,
//!         "psh":true,"ack":true,"state":"closed"},
//!  "community_id":"1:…"}
//! ```
//!
//! Choices (where Suricata or Zeek leave room):
//! - Times are UTC, written as Suricata does (`2012-12-01T02:27:50.123456+0000`).
//! - `timestamp` is the time of the record's **last** packet (`flow.end`): the
//!   moment the record was complete, so offline output is deterministic and
//!   ordered by completion.
//! - `flow_id` is, as Suricata's, a number every record of a flow shares
//!   and no other flow has, across workers, restarts and sensors: 53 bits
//!   (exact for consumers reading JSON numbers as doubles) of the flow's
//!   keyed digest ([`FlowHeader::digest`]: SHA-256 under a key drawn at
//!   random per process, of the tracker's flow ID and key), whose first 96
//!   bits are Zeek's `uid`. Two runs over the same
//!   file therefore give different `flow_id`s; join records within a run,
//!   or across runs on `community_id`.
//! - `in_iface` (live): the interface captured.
//! - `src` is the initiator (see the tracker's rule); `toserver` counts the
//!   initiator's packets. Bytes are whole frames at wire length.
//! - `src_port`/`dest_port` appear for TCP, UDP and SCTP only; ICMP and
//!   ICMPv6 flows have `icmp_type`/`icmp_code` (the initiator's) and, once
//!   the responder sent, `response_icmp_type`/`response_icmp_code`, as
//!   Suricata writes them (codes of request/reply types are 0; see
//!   [`crate::wire::icmp_side_type_codes`]).
//! - `proto` is the IANA keyword Suricata writes (`TCP`, `UDP`, `ICMP`,
//!   `IPv6-ICMP`, `GRE`, `ESP`, …), or the number as a string.
//! - `vlan` lists the VLAN IDs (outermost first) when the first packet was tagged.
//! - `flow.state` is Suricata's `new` (no reply yet), `established` or
//!   `closed`; `flow.reason` is Suricata's: `shutdown` for flows still open
//!   at the end of input or at stop, `forced` for flows ended early (table
//!   eviction, reassembly overflow, parser failure), `timeout` for the rest
//!   (idle and active timeouts, and closed TCP flows, which Suricata also
//!   ends by a timeout); `flow.alerted` is always `false` (no rules).
//! - `tcp` appears for TCP: flags as two lowercase hex digits, one boolean per
//!   flag seen (only when seen, as Suricata does), and Suricata's name of the
//!   tracker's state.
//! - `community_id` is on every record of a flow, computed once per flow
//!   with the flow's digest (`flow_id`).
//! - `age` is whole seconds between start and end, as Suricata.
//! - With the session pipeline ([`crate::pipeline`]), flow records also
//!   carry `app_proto` (the protocol detected by content, or Suricata's
//!   `failed` when no probe recognised the flow's payload; absent for flows
//!   without payload).
//! - With [`EveOptions::extras`] (not in Suricata's schema): on every
//!   record of a flow `tracker_flow_id`, the tracker's own flow ID (IPFIX's
//!   `flowId`; the worker's index in its top 16 bits); on flow records `history` and
//!   `conn_state` (Zeek's, see the tracker's history docs), `end_reason`
//!   (the tracker's finer reason: `fin`, `rst`, `idle`, `active_timeout`,
//!   `evicted`, `buffer_overflow`, `parse_error`, `force_closed`), for TCP
//!   a `reassembly` object (bytes delivered, gap bytes, out-of-order
//!   segments, retransmits and overflows per direction) and `bounds`, the
//!   limits the flow hit (`reassembly_side_cap`, `reassembly_global_cap`,
//!   `parser_budget`).
//!
//! The other records:
//! - **L7** (`event_type` = the parser's key: `http`, `tls`, `dns`, `quic`,
//!   `ssh`): the header of their flow's records (`flow_id`, endpoints,
//!   `proto`, `community_id`), the time of the packet that completed them as
//!   `timestamp`, and the parser's object under that key (serialised by
//!   `serde_json`, which writes integers with `itoa` and escapes strings in
//!   one pass).
//! - **Per-flow anomaly** (`event_type` `anomaly`, with the flow header), in
//!   the shape of Suricata's stream and app-layer anomaly events:
//!   `"anomaly":{"type":"stream","event":KIND}` or
//!   `"anomaly":{"type":"applayer","event":KIND,"layer":"parser","app_proto":P}`
//!   with the side as Suricata's top-level `direction` (`to_server` or
//!   `to_client`), one per flow, side and kind, at the end of the flow record
//!   (`timestamp` = its last packet); `KIND` is
//!   [`PipelineAnomaly::label`](crate::pipeline::PipelineAnomaly::label).
//!   How many times it occurred (`anomaly.count`) is an extra.
//! - **Anomaly interval** (live, `event_type` `anomaly`, no flow header):
//!   see [`AnomalyInterval`]; its shape is flowscope's own, so it is
//!   written with [`EveOptions::extras`] only (the metrics carry the same
//!   counts).
//!
//! Everything is written straight into one reused line buffer (see
//! `json`): no `core::fmt` per field.

mod flow;
mod http;
pub(crate) mod json;
mod proto;

use std::io;

use super::community::FlowIds;
use super::record::{FlowHeader, Record};
use crate::anomaly::AnomalyInterval;
use crate::community_id::CommunityIdValue;
use crate::extractor::L4Proto;
use crate::l7::L7Record;
use crate::l7::session::Side;
use crate::pipeline::{FlowAnomaly, PipelineAnomaly};
use crate::view::Timestamp;
use crate::wire::icmp_side_type_codes;
use flowscope_common::anomaly::Anomaly;

pub use json::write_rfc3339_micros;

/// What an EVE output writes besides Suricata's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EveOptions {
    /// flowscope's own fields and records, which Suricata's schema does not
    /// allow (see the [module docs](self)).
    pub extras: bool,
    /// The capture interface, written as `in_iface` (live).
    pub in_iface: Option<String>,
}

/// Formats records as EVE lines, reusing its buffers.
#[derive(Debug, Default)]
pub struct EveEncoder {
    line: Vec<u8>,
    body: Vec<u8>,
    opts: EveOptions,
}

/// `flow_id`s are cut to this many bits (exact as JSON doubles).
const FLOW_ID_BITS: u32 = 53;

/// EVE's `flow_id` of a flow whose [`FlowHeader::digest`] is `digest`: its
/// bytes 12 to 19 (Zeek's `uid` takes bytes 0 to 11), cut to
/// [`FLOW_ID_BITS`].
fn eve_flow_id(digest: &[u8; 32]) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&digest[12..20]);
    u64::from_le_bytes(b) & ((1 << FLOW_ID_BITS) - 1)
}

impl EveEncoder {
    /// An encoder with empty buffers and Suricata's fields only.
    pub fn new() -> Self {
        Self::with_options(EveOptions::default())
    }

    /// An encoder writing what `opts` asks for.
    pub fn with_options(opts: EveOptions) -> Self {
        Self {
            line: Vec::with_capacity(1024),
            body: Vec::with_capacity(1024),
            opts,
        }
    }

    /// The EVE line of `record`, with its flow's IDs `ids` (computed here
    /// when `None`), newline included, valid until the next call; empty
    /// for a record this encoder does not write (anomaly intervals without
    /// extras).
    ///
    /// # Errors
    ///
    /// An L7 record that does not serialise.
    pub fn encode(&mut self, record: &Record, ids: Option<&FlowIds>) -> io::Result<&[u8]> {
        self.line.clear();
        let mut head = Head {
            flow_id: 0,
            tracker_flow_id: 0,
            in_iface: self.opts.in_iface.as_deref(),
            extras: self.opts.extras,
        };
        let ids = |h: &FlowHeader| ids.copied().unwrap_or_else(|| FlowIds::of(h));
        let line = &mut self.line;
        match record {
            Record::Flow(f) => {
                let ids = ids(&FlowHeader::of(&f.flow));
                (head.flow_id, head.tracker_flow_id) = (eve_flow_id(&ids.digest), f.flow.flow_id);
                flow::flow(line, &head, f, &ids.community);
            }
            Record::L7 { header, ts, record } => {
                let ids = ids(header);
                (head.flow_id, head.tracker_flow_id) = (eve_flow_id(&ids.digest), header.flow_id);
                l7(
                    line,
                    &mut self.body,
                    &head,
                    header,
                    &ids.community,
                    *ts,
                    record,
                )?;
            }
            Record::Anomaly {
                header,
                ts,
                anomaly,
            } => {
                let ids = ids(header);
                (head.flow_id, head.tracker_flow_id) = (eve_flow_id(&ids.digest), header.flow_id);
                flow_anomaly(line, &head, header, &ids.community, *ts, anomaly);
            }
            Record::Interval(i) if self.opts.extras => interval(line, i),
            // Suricata has no record of a tunnel's own: its flows name it
            // (`tunnel` in their flow records).
            Record::Interval(_) | Record::TunnelFound { .. } => return Ok(&[]),
        }
        line.push(b'\n');
        Ok(line)
    }
}

/// What the encoder adds to every header.
pub(super) struct Head<'a> {
    /// The EVE `flow_id`.
    flow_id: u64,
    /// The tracker's flow ID (an extra).
    tracker_flow_id: u64,
    in_iface: Option<&'a str>,
    /// Write flowscope's own fields.
    extras: bool,
}

/// The fields every record of a flow starts with: `{"timestamp":…,
/// "flow_id":…,"in_iface":…,"event_type":…, endpoints, "proto":…`, and
/// for ICMP the initiator's type and code (object left open).
fn header(out: &mut Vec<u8>, head: &Head<'_>, h: &FlowHeader, ts: Timestamp, event_type: &str) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    json::eve_time(out, ts);
    out.push(b'"');
    json::uint_field(out, "flow_id", head.flow_id);
    if let Some(iface) = head.in_iface {
        json::key(out, "in_iface");
        json::string(out, iface);
    }
    json::label_field(out, "event_type", event_type);
    if head.extras {
        json::uint_field(out, "tracker_flow_id", head.tracker_flow_id);
    }
    let k = h.oriented();
    json::key(out, "src_ip");
    out.push(b'"');
    json::ip(out, k.src_ip());
    out.push(b'"');
    let ports = matches!(h.l4, L4Proto::Tcp | L4Proto::Udp | L4Proto::Sctp);
    if ports {
        json::uint_field(out, "src_port", u64::from(k.src_port()));
    }
    json::key(out, "dest_ip");
    out.push(b'"');
    json::ip(out, k.dst_ip());
    out.push(b'"');
    if ports {
        json::uint_field(out, "dest_port", u64::from(k.dst_port()));
    }
    proto::field(out, h.l4.number());
    if let Some([(t, c), _]) = icmp_sides(h) {
        json::uint_field(out, "icmp_type", u64::from(t));
        json::uint_field(out, "icmp_code", u64::from(c));
    }
}

/// The (type, code) each side of an ICMP or ICMPv6 flow sends.
fn icmp_sides(h: &FlowHeader) -> Option<[(u8, u8); 2]> {
    let v6 = match h.l4 {
        L4Proto::Icmp => false,
        L4Proto::IcmpV6 => true,
        _ => return None,
    };
    let k = h.oriented();
    Some(icmp_side_type_codes(k.src_port(), k.dst_port(), v6))
}

/// `,"community_id":"…"`.
fn community_id(out: &mut Vec<u8>, id: &CommunityIdValue) {
    json::label_field(out, "community_id", id.as_str());
}

/// An L7 line: the record serialises as `{"tls":{…}}`; its key is the
/// `event_type`, its opening brace becomes the comma after the header and
/// its closing brace closes the line. HTTP records, the most frequent, are
/// written field by field into the line.
fn l7(
    out: &mut Vec<u8>,
    body: &mut Vec<u8>,
    head: &Head<'_>,
    h: &FlowHeader,
    id: &CommunityIdValue,
    ts: Timestamp,
    record: &L7Record,
) -> io::Result<()> {
    if let L7Record::Http(r) = record {
        header(out, head, h, ts, "http");
        community_id(out, id);
        out.extend_from_slice(b",\"http\":");
        http::object(out, r);
        out.push(b'}');
        return Ok(());
    }
    body.clear();
    serde_json::to_writer(&mut *body, record)?;
    let event_type = body
        .get(2..)
        .and_then(|b| b.iter().position(|&c| c == b'"').map(|end| &b[..end]))
        .and_then(|k| std::str::from_utf8(k).ok())
        .ok_or_else(|| io::Error::other("an L7 record must serialise as {\"key\":{…}}"))?;
    header(out, head, h, ts, event_type);
    community_id(out, id);
    out.push(b',');
    out.extend_from_slice(body.get(1..).unwrap_or_default());
    Ok(())
}

fn flow_anomaly(
    out: &mut Vec<u8>,
    head: &Head<'_>,
    h: &FlowHeader,
    id: &CommunityIdValue,
    ts: Timestamp,
    a: &FlowAnomaly,
) {
    header(out, head, h, ts, "anomaly");
    community_id(out, id);
    let direction = match a.side {
        Side::Initiator => "to_server",
        Side::Responder => "to_client",
    };
    json::label_field(out, "direction", direction);
    let applayer = a.kind == PipelineAnomaly::SessionParseError;
    out.extend_from_slice(b",\"anomaly\":{\"type\":\"");
    out.extend_from_slice(if applayer { b"applayer" } else { b"stream" });
    out.push(b'"');
    json::label_field(out, "event", a.kind.label());
    if applayer {
        json::label_field(out, "layer", "parser");
    }
    if head.extras {
        json::uint_field(out, "count", a.count);
    }
    out.extend_from_slice(b"}}");
}

/// The interval record; see [`AnomalyInterval`] for its fields.
fn interval(out: &mut Vec<u8>, i: &AnomalyInterval) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    json::eve_time(out, i.end);
    out.push(b'"');
    json::label_field(out, "event_type", "anomaly");
    json::key(out, "interval_s");
    json::float(out, i.length.as_secs_f64());
    for (name, indicators) in [("anomalies", false), ("indicators", true)] {
        json::key(out, name);
        out.push(b'{');
        let mut first = true;
        for &a in Anomaly::ALL
            .iter()
            .filter(|a| a.is_indicator() == indicators)
        {
            let n = i.counts.get(a);
            if n > 0 || indicators {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.push(b'"');
                out.extend_from_slice(a.label().as_bytes());
                out.extend_from_slice(b"\":");
                json::uint(out, n);
            }
        }
        out.push(b'}');
    }
    if let Some(r) = i.syn_half_open_ratio() {
        json::key(out, "syn_half_open_ratio");
        json::float(out, r);
    }
    for (name, count_name, list) in [
        ("top_syn_targets", "estimate", &i.top_syn_targets),
        ("top_port_scanners", "distinct_ports", &i.top_port_scanners),
    ] {
        json::key(out, name);
        out.push(b'[');
        for (n, o) in list.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"ip\":\"");
            json::ip(out, o.addr);
            out.push(b'"');
            json::uint_field(out, count_name, o.estimate);
            out.push(b'}');
        }
        out.push(b']');
    }
    out.push(b'}');
}
