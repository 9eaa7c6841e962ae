//! EVE L7 records: `{"timestamp":…,"flow_id":…,"event_type":"http",
//! "src_ip":…,…,"proto":"TCP","community_id":…,"http":{…}}`, one per record
//! a session parser emitted. The endpoints and `flow_id` are those of the
//! flow's records (source = initiator), so records join on `flow_id`.

use std::io;

use super::eve::{EveEndpoints, format_header};
use crate::l7::L7Record;
use crate::tracker::FlowRecord;
use crate::view::Timestamp;

/// The `event_type` of a record: the key it serialises under.
fn event_type(record: &L7Record) -> &'static str {
    match record {
        L7Record::Http(_) => "http",
        L7Record::Tls(_) => "tls",
        L7Record::Dns(_) => "dns",
        L7Record::Quic(_) => "quic",
        L7Record::Ssh(_) => "ssh",
    }
}

/// Formats one L7 record line (without the newline) into `out`.
pub(super) fn format_l7<K>(
    out: &mut Vec<u8>,
    flow: &FlowRecord<K>,
    ts: Timestamp,
    ep: &EveEndpoints,
    community_id: Option<&str>,
    record: &L7Record,
) -> io::Result<()> {
    format_header(out, flow, ts, event_type(record), ep)?;
    if let Some(id) = community_id {
        out.extend_from_slice(b",\"community_id\":\"");
        out.extend_from_slice(id.as_bytes());
        out.push(b'"');
    }
    // The record serialises as `{"http":{…}}`: its opening brace becomes
    // the comma after the header, its closing brace closes the line.
    let at = out.len();
    serde_json::to_writer(&mut *out, record)?;
    if let Some(b) = out.get_mut(at) {
        *b = b',';
    }
    Ok(())
}
