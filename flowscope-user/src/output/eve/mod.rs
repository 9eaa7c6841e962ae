//! Suricata-style EVE JSON, one object per line: the one encoder every
//! record goes through, live and offline.
//!
//! Flow record (one per ended flow record):
//!
//! ```json
//! {"timestamp":"2012-12-01T02:27:50.123456Z","flow_id":7,"event_type":"flow",
//!  "src_ip":"10.0.0.1","src_port":51000,"dest_ip":"10.0.0.2","dest_port":80,"proto":"TCP",
//!  "flow":{"pkts_toserver":5,"pkts_toclient":4,"bytes_toserver":348,"bytes_toclient":292,
//!          "start":"…","end":"…","age":0,"state":"closed","reason":"fin"},
//!  "tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,
//!         "psh":true,"ack":true,"state":"closed"},
//!  "history":"ShADadFf","conn_state":"SF","community_id":"1:…"}
//! ```
//!
//! Choices (where Suricata or Zeek leave room):
//! - `timestamp` is the time of the record's **last** packet (`flow.end`): the
//!   moment the record was complete, so offline output is deterministic and
//!   ordered by completion.
//! - `src` is the initiator (see the tracker's rule); `toserver` counts the
//!   initiator's packets. Bytes are whole frames at wire length.
//! - `src_port`/`dest_port` appear for TCP, UDP and SCTP only.
//! - `proto` is `TCP`, `UDP`, `ICMP`, `IPv6-ICMP`, `SCTP`, or the number.
//! - `vlan` lists the VLAN IDs (outermost first) when the first packet was tagged.
//! - `flow.state` is Suricata's `new` (no reply yet), `established` or
//!   `closed`; `flow.reason` is the tracker's end reason (`fin`, `rst`,
//!   `idle`, `active_timeout`, `evicted`, `force_closed`, …).
//! - `tcp` appears for TCP: flags as two lowercase hex digits, one boolean per
//!   flag seen (only when seen, as Suricata does), and the tracker's state.
//! - `history` and `conn_state` follow Zeek (see the tracker's history docs);
//!   `community_id` is present when the writer stage gives one (it always
//!   does), with the ICMP type and code of the flow's first packet for ICMP
//!   flows.
//! - `age` is whole seconds between start and end, as Suricata.
//! - With the session pipeline ([`crate::pipeline`]), flow records also
//!   carry `app_proto` (the protocol detected by content, or Suricata's
//!   `failed` when no probe recognised the flow's payload; absent for flows
//!   without payload), for TCP a `reassembly` object
//!   (bytes delivered, gap bytes, out-of-order segments, retransmits and
//!   overflows per direction) and `bounds`, the limits the flow hit
//!   (`reassembly_side_cap`, `reassembly_global_cap`, `parser_budget`).
//!
//! The other records:
//! - **L7** (`event_type` = the parser's key: `http`, `tls`, `dns`, `quic`,
//!   `ssh`): the header of their flow's records (`flow_id`, endpoints,
//!   `proto`, `community_id`), the time of the packet that completed them as
//!   `timestamp`, and the parser's object under that key (serialised by
//!   `serde_json`, which writes integers with `itoa` and escapes strings in
//!   one pass).
//! - **Per-flow anomaly** (`event_type` `anomaly`, with the flow header):
//!   `"anomaly":{"type":"stream"|"applayer","event":KIND,"direction":
//!   "toserver"|"toclient","count":N}`, one per flow, side and kind, at the
//!   end of the flow record (`timestamp` = its last packet); `KIND` is
//!   [`PipelineAnomaly::label`](crate::pipeline::PipelineAnomaly::label).
//! - **Anomaly interval** (live, `event_type` `anomaly`, no flow header):
//!   see [`AnomalyInterval`].
//!
//! Everything is written straight into one reused line buffer (see
//! `json`): no `core::fmt` per field.

mod flow;
pub(crate) mod json;

use std::io;

use super::record::{FlowHeader, Record};
use crate::anomaly::AnomalyInterval;
use crate::community_id::CommunityIdValue;
use crate::extractor::L4Proto;
use crate::l7::L7Record;
use crate::pipeline::{FlowAnomaly, PipelineAnomaly};
use crate::session::Side;
use crate::view::Timestamp;
use flowscope_common::anomaly::Anomaly;

pub use json::write_rfc3339_micros;

/// Formats records as EVE lines, reusing its buffers.
#[derive(Debug, Default)]
pub struct EveEncoder {
    line: Vec<u8>,
    body: Vec<u8>,
}

impl EveEncoder {
    /// An encoder with empty buffers.
    pub fn new() -> Self {
        Self {
            line: Vec::with_capacity(1024),
            body: Vec::with_capacity(1024),
        }
    }

    /// The EVE line of `record`, with its flow's Community ID `id`, newline
    /// included, valid until the next call.
    ///
    /// # Errors
    ///
    /// An L7 record that does not serialise.
    pub fn encode(&mut self, record: &Record, id: Option<&CommunityIdValue>) -> io::Result<&[u8]> {
        self.line.clear();
        match record {
            Record::Flow(f) => flow::flow(&mut self.line, f, id),
            Record::L7 { header, ts, record } => {
                l7(&mut self.line, &mut self.body, header, id, *ts, record)?
            }
            Record::Anomaly {
                header,
                ts,
                anomaly,
            } => flow_anomaly(&mut self.line, header, id, *ts, anomaly),
            Record::Interval(i) => interval(&mut self.line, i),
        }
        self.line.push(b'\n');
        Ok(&self.line)
    }
}

fn proto_name(l4: L4Proto) -> Option<&'static str> {
    match l4 {
        L4Proto::Tcp => Some("TCP"),
        L4Proto::Udp => Some("UDP"),
        L4Proto::Icmp => Some("ICMP"),
        L4Proto::IcmpV6 => Some("IPv6-ICMP"),
        L4Proto::Sctp => Some("SCTP"),
        L4Proto::Other(_) => None,
    }
}

/// The fields every record of a flow starts with: `{"timestamp":…,
/// "flow_id":…,"event_type":…, endpoints, "proto":…` (object left open).
fn header(out: &mut Vec<u8>, h: &FlowHeader, ts: Timestamp, event_type: &str) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    json::write_rfc3339_micros(out, ts);
    out.push(b'"');
    json::uint_field(out, "flow_id", h.flow_id);
    json::label_field(out, "event_type", event_type);
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
    match proto_name(h.l4) {
        Some(name) => json::label_field(out, "proto", name),
        None => json::uint_field(out, "proto", u64::from(h.l4.number())),
    }
}

/// `,"community_id":"…"` when there is one.
fn community_id(out: &mut Vec<u8>, id: Option<&CommunityIdValue>) {
    if let Some(id) = id {
        json::label_field(out, "community_id", id.as_str());
    }
}

/// An L7 line: the record serialises as `{"http":{…}}`; its key is the
/// `event_type`, its opening brace becomes the comma after the header and
/// its closing brace closes the line.
fn l7(
    out: &mut Vec<u8>,
    body: &mut Vec<u8>,
    h: &FlowHeader,
    id: Option<&CommunityIdValue>,
    ts: Timestamp,
    record: &L7Record,
) -> io::Result<()> {
    body.clear();
    serde_json::to_writer(&mut *body, record)?;
    let event_type = body
        .get(2..)
        .and_then(|b| b.iter().position(|&c| c == b'"').map(|end| &b[..end]))
        .and_then(|k| std::str::from_utf8(k).ok())
        .ok_or_else(|| io::Error::other("an L7 record must serialise as {\"key\":{…}}"))?;
    header(out, h, ts, event_type);
    community_id(out, id);
    out.push(b',');
    out.extend_from_slice(body.get(1..).unwrap_or_default());
    Ok(())
}

fn flow_anomaly(
    out: &mut Vec<u8>,
    h: &FlowHeader,
    id: Option<&CommunityIdValue>,
    ts: Timestamp,
    a: &FlowAnomaly,
) {
    header(out, h, ts, "anomaly");
    community_id(out, id);
    let layer = match a.kind {
        PipelineAnomaly::SessionParseError => "applayer",
        _ => "stream",
    };
    out.extend_from_slice(b",\"anomaly\":{\"type\":\"");
    out.extend_from_slice(layer.as_bytes());
    out.push(b'"');
    json::label_field(out, "event", a.kind.label());
    let direction = match a.side {
        Side::Initiator => "toserver",
        Side::Responder => "toclient",
    };
    json::label_field(out, "direction", direction);
    json::uint_field(out, "count", a.count);
    out.extend_from_slice(b"}}");
}

/// The interval record; see [`AnomalyInterval`] for its fields.
fn interval(out: &mut Vec<u8>, i: &AnomalyInterval) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    json::write_rfc3339_micros(out, i.end);
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
