//! Zeek `quic.log` records from the QUIC parser's records (one per
//! connection, at the client's hello), joined to conn.log by `uid`.
//!
//! Fields are Zeek's, in Zeek's order: `version` in Zeek's
//! `QUIC::version_strings` names (`1`, `quicv2`, `draft-29`,
//! `mvfst (faceb002)`, `unknown-<hex>` for others),
//! `client_initial_dcid`/`client_scid` the connection IDs of the client's
//! first Initial in hex, `server_name` the SNI, `client_protocol` the first
//! ALPN protocol. `ts` is the time the hello was complete (Zeek's: the
//! first Initial). The record is emitted at the ClientHello, before the
//! server answers: `server_scid` and `history` (Zeek's letters for every
//! packet of the connection) are unset.
//!
//! Zeek's QUIC analyzer decodes IETF QUIC only; gQUIC hellos (versions
//! `Q0xx` and `T0xx`, whose records EVE carries) are not written here.

use std::io::{self, Write};

use super::record::FlowHeader;
use super::zeek::Value;
use crate::l7::QuicRecord;
use crate::view::Timestamp;

/// `#fields` after `ts`, `uid` and `id` of Zeek's quic.log.
const FIELDS: [&str; 7] = [
    "version",
    "client_initial_dcid",
    "client_scid",
    "server_scid",
    "server_name",
    "client_protocol",
    "history",
];

/// `#types` of those fields.
const TYPES: [&str; 7] = [
    "string", "string", "string", "string", "string", "string", "string",
];

super::zeek::log_kind!(Quic, "quic", ZeekQuicWriter);

/// True for Google QUIC versions (`Q0xx`, `T0xx`).
fn is_gquic(v: u32) -> bool {
    matches!(v.to_be_bytes(), [b'Q' | b'T', b'0', ..])
}

/// Whether quic.log takes `r`: IETF QUIC only, as Zeek.
pub fn logs(r: &QuicRecord) -> bool {
    !is_gquic(r.version_number)
}

/// Zeek's `QUIC::version_strings` name of `v` (its table names 0xff00001f
/// `draft-30` too).
fn version_name(v: u32) -> String {
    match v {
        1 => "1".into(),
        0x6b33_43cf => "quicv2".into(),
        0xff00_001f => "draft-30".into(),
        0xff00_0016..=0xff00_0022 => format!("draft-{}", v & 0xff),
        0xface_b001 | 0xface_b002 | 0xface_b00e | 0xface_b011..=0xface_b013 => {
            format!("mvfst ({v:x})")
        }
        _ => format!("unknown-{v:x}"),
    }
}

impl<W: Write> ZeekQuicWriter<W> {
    /// Writes the record of `flow`'s QUIC connection, completed at `ts`
    /// (for gQUIC, see [`logs`], nothing).
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn write_quic(
        &mut self,
        flow: &FlowHeader,
        ts: Timestamp,
        r: &QuicRecord,
    ) -> io::Result<()> {
        if !logs(r) {
            return Ok(());
        }
        let version = version_name(r.version_number);
        let rest: [Value<'_>; FIELDS.len()] = [
            Value::Str(&version),
            Value::text(r.client_initial_dcid()),
            Value::text(r.client_scid()),
            Value::Unset,
            Value::text(r.sni()),
            r.alpn().next().map_or(Value::Unset, Value::Str),
            Value::Unset,
        ];
        self.write_conn(ts, flow, &rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_zeek_names_them() {
        assert_eq!(version_name(1), "1");
        assert_eq!(version_name(0x6b33_43cf), "quicv2");
        assert_eq!(version_name(0xff00_001d), "draft-29");
        assert_eq!(version_name(0xff00_001b), "draft-27");
        assert_eq!(version_name(0xface_b002), "mvfst (faceb002)");
        assert_eq!(version_name(0x0a0a_0a0a), "unknown-a0a0a0a");
        assert!(is_gquic(u32::from_be_bytes(*b"Q046")));
        assert!(is_gquic(u32::from_be_bytes(*b"T051")));
        assert!(!is_gquic(1));
    }
}
