//! Suricata-style EVE JSON flow records, one object per line.
//!
//! One record per ended flow record:
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
//!   `community_id` is present when the caller computed one.
//! - `age` is whole seconds between start and end, as Suricata.
//! - With the session pipeline ([`crate::pipeline`]), flow records also
//!   carry `app_proto` (the protocol detected by content, or Suricata's
//!   `failed` when no probe recognised the flow's payload; absent for flows
//!   without payload), for TCP a `reassembly` object
//!   (bytes delivered, gap bytes, out-of-order segments, retransmits and
//!   overflows per direction) and `bounds`, the limits the flow hit
//!   (`reassembly_side_cap`, `reassembly_global_cap`, `parser_budget`).
//! - L7 records (see [`EveWriter::write_l7`]) have the header of their
//!   flow's records (`flow_id`, endpoints, `proto`, `community_id`),
//!   `event_type` `http`, `tls`, `dns` or `ssh`, the time of the packet that
//!   completed them as `timestamp`, and the parser's object under that name.

use std::io::{self, Write};
use std::net::IpAddr;

use crate::extractor::{L4Proto, TcpFlags};
use crate::l7::L7Record;
use crate::output::time::write_rfc3339_micros;
use crate::pipeline::FlowSummary;
use crate::tracker::{EndReason, FlowRecord, FlowSide, FlowState};
use crate::view::Timestamp;

/// The addresses of a record, source = initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EveEndpoints {
    /// Initiator address.
    pub src_ip: IpAddr,
    /// Initiator port (0 for protocols without ports).
    pub src_port: u16,
    /// Responder address.
    pub dest_ip: IpAddr,
    /// Responder port.
    pub dest_port: u16,
}

/// Writes EVE flow records to `W`, reusing one line buffer.
pub struct EveWriter<W: Write> {
    out: W,
    line: Vec<u8>,
    records: u64,
}

impl<W: Write> std::fmt::Debug for EveWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EveWriter")
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl<W: Write> EveWriter<W> {
    /// A writer to `out` (wrap files and stdout in a `BufWriter`).
    pub fn new(out: W) -> Self {
        Self {
            out,
            line: Vec::with_capacity(1024),
            records: 0,
        }
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes the underlying writer.
    ///
    /// # Errors
    ///
    /// The flush's I/O error.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the inner writer.
    ///
    /// # Errors
    ///
    /// The flush's I/O error.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    /// Writes one record for `flow`, ended for `reason`.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn write_flow<K>(
        &mut self,
        flow: &FlowRecord<K>,
        reason: EndReason,
        ep: &EveEndpoints,
        community_id: Option<&str>,
    ) -> io::Result<()> {
        self.write_flow_summary(flow, reason, ep, community_id, None)
    }

    /// Writes one record for `flow` with what reassembly and parsing did.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn write_flow_summary<K>(
        &mut self,
        flow: &FlowRecord<K>,
        reason: EndReason,
        ep: &EveEndpoints,
        community_id: Option<&str>,
        summary: Option<&FlowSummary>,
    ) -> io::Result<()> {
        self.line.clear();
        format_flow(&mut self.line, flow, reason, ep, community_id, summary)?;
        self.emit_line()
    }

    /// Writes one L7 record of `flow`, completed at `ts`.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error, or a record that does not
    /// serialise.
    pub fn write_l7<K>(
        &mut self,
        flow: &FlowRecord<K>,
        ts: Timestamp,
        ep: &EveEndpoints,
        community_id: Option<&str>,
        record: &L7Record,
    ) -> io::Result<()> {
        self.line.clear();
        super::eve_l7::format_l7(&mut self.line, flow, ts, ep, community_id, record)?;
        self.emit_line()
    }

    /// Writes one record already formatted as a JSON line (no newline).
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(line);
        self.emit_line()
    }

    fn emit_line(&mut self) -> io::Result<()> {
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.records += 1;
        Ok(())
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

/// Suricata's flow state from ours.
fn suricata_state<K>(flow: &FlowRecord<K>) -> &'static str {
    match flow.state {
        FlowState::Closed | FlowState::Closing | FlowState::Reset => "closed",
        FlowState::SynSent | FlowState::MidStream => "new",
        FlowState::Active if flow.sides[1].packets == 0 => "new",
        _ => "established",
    }
}

fn time_field(out: &mut Vec<u8>, name: &str, ts: crate::view::Timestamp) {
    out.extend_from_slice(b"\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":\"");
    write_rfc3339_micros(out, ts);
    out.extend_from_slice(b"\"");
}

/// The fields every record of a flow starts with: `{"timestamp":…,
/// "flow_id":…,"event_type":…, endpoints, "proto":…` (object left open).
pub(super) fn format_header<K>(
    out: &mut Vec<u8>,
    flow: &FlowRecord<K>,
    ts: Timestamp,
    event_type: &str,
    ep: &EveEndpoints,
) -> io::Result<()> {
    out.push(b'{');
    time_field(out, "timestamp", ts);
    write!(
        out,
        ",\"flow_id\":{},\"event_type\":\"{event_type}\"",
        flow.flow_id
    )?;
    write!(out, ",\"src_ip\":\"{}\"", ep.src_ip)?;
    let ports = matches!(flow.l4, L4Proto::Tcp | L4Proto::Udp | L4Proto::Sctp);
    if ports {
        write!(out, ",\"src_port\":{}", ep.src_port)?;
    }
    write!(out, ",\"dest_ip\":\"{}\"", ep.dest_ip)?;
    if ports {
        write!(out, ",\"dest_port\":{}", ep.dest_port)?;
    }
    match proto_name(flow.l4) {
        Some(name) => write!(out, ",\"proto\":\"{name}\"")?,
        None => write!(out, ",\"proto\":{}", flow.l4.number())?,
    }
    Ok(())
}

fn format_flow<K>(
    out: &mut Vec<u8>,
    flow: &FlowRecord<K>,
    reason: EndReason,
    ep: &EveEndpoints,
    community_id: Option<&str>,
    summary: Option<&FlowSummary>,
) -> io::Result<()> {
    let (ts, tc) = (
        flow.side(FlowSide::Initiator),
        flow.side(FlowSide::Responder),
    );
    format_header(out, flow, flow.end(), "flow", ep)?;
    if let Some(p) = summary.and_then(FlowSummary::app_proto) {
        write!(out, ",\"app_proto\":\"{p}\"")?;
    }
    let vlans = flow.vlan.iter().filter(|&&v| v != 0);
    if flow.vlan.iter().any(|&v| v != 0) {
        out.extend_from_slice(b",\"vlan\":[");
        for (i, v) in vlans.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write!(out, "{v}")?;
        }
        out.push(b']');
    }
    write!(
        out,
        ",\"flow\":{{\"pkts_toserver\":{},\"pkts_toclient\":{},\"bytes_toserver\":{},\"bytes_toclient\":{},",
        ts.packets, tc.packets, ts.bytes, tc.bytes
    )?;
    time_field(out, "start", flow.start());
    out.push(b',');
    time_field(out, "end", flow.end());
    write!(
        out,
        ",\"age\":{},\"state\":\"{}\",\"reason\":\"{}\"}}",
        flow.end().sec().saturating_sub(flow.start().sec()),
        suricata_state(flow),
        reason.label()
    )?;
    if flow.l4 == L4Proto::Tcp {
        let all = ts.tcp_flags | tc.tcp_flags;
        write!(
            out,
            ",\"tcp\":{{\"tcp_flags\":\"{:02x}\",\"tcp_flags_ts\":\"{:02x}\",\"tcp_flags_tc\":\"{:02x}\"",
            all.0, ts.tcp_flags.0, tc.tcp_flags.0
        )?;
        for (flag, name) in [
            (TcpFlags::SYN, "syn"),
            (TcpFlags::FIN, "fin"),
            (TcpFlags::RST, "rst"),
            (TcpFlags::PSH, "psh"),
            (TcpFlags::ACK, "ack"),
            (TcpFlags::URG, "urg"),
            (TcpFlags::ECE, "ece"),
            (TcpFlags::CWR, "cwr"),
        ] {
            if all.contains(flag) {
                write!(out, ",\"{name}\":true")?;
            }
        }
        write!(out, ",\"state\":\"{}\"}}", flow.state.label())?;
    }
    // History letters, conn_state codes and Community IDs need no escaping.
    write!(
        out,
        ",\"history\":\"{}\",\"conn_state\":\"{}\"",
        flow.history.as_str(),
        flow.conn_state()
    )?;
    if let Some(id) = community_id {
        write!(out, ",\"community_id\":\"{id}\"")?;
    }
    if let Some(s) = summary {
        format_summary(out, s)?;
    }
    out.push(b'}');
    Ok(())
}

/// `"reassembly":{…}` (TCP) and `"bounds":[…]` (when any was hit).
fn format_summary(out: &mut Vec<u8>, s: &FlowSummary) -> io::Result<()> {
    if let Some([i, r]) = &s.tcp {
        let (i, r) = (&i.counters, &r.counters);
        write!(
            out,
            ",\"reassembly\":{{\"bytes_toserver\":{},\"bytes_toclient\":{},\
             \"gap_bytes_toserver\":{},\"gap_bytes_toclient\":{},\
             \"ooo_segments_toserver\":{},\"ooo_segments_toclient\":{},\
             \"retransmits_toserver\":{},\"retransmits_toclient\":{},\
             \"overflows_toserver\":{},\"overflows_toclient\":{}}}",
            i.bytes_delivered,
            r.bytes_delivered,
            i.gap_bytes,
            r.gap_bytes,
            i.ooo_segments,
            r.ooo_segments,
            i.retransmits,
            r.retransmits,
            i.overflows,
            r.overflows
        )?;
    }
    for (n, bound) in s.bounds().enumerate() {
        out.extend_from_slice(if n == 0 { b",\"bounds\":[\"" } else { b",\"" });
        out.extend_from_slice(bound.label().as_bytes());
        out.push(b'"');
    }
    if s.bounds().next().is_some() {
        out.push(b']');
    }
    Ok(())
}
