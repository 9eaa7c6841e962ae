//! Zeek `ssh.log` records from the SSH parser's records, in the format of
//! the conn.log writer (TSV or JSON lines), one per connection whose two
//! identification lines were seen (Zeek logs a connection once both
//! versions are known).
//!
//! Fields are those of Zeek's ssh.log (Zeek 6: `host_key_fingerprint`),
//! in Zeek's order, joined to conn.log by `uid`:
//! - `ts` is the time the record was complete (Zeek's: the first
//!   identification line).
//! - `version` is 1 or 2 after the client's `SSH-` (as Zeek reads it).
//! - `client`/`server` are the whole identification lines; the algorithms
//!   are what both KEXINITs agree on, as Zeek chooses them (the first of
//!   the client's list the server offers; `To server: …, to client: …`
//!   when the directions differ), unset when a KEXINIT was not seen.
//! - `auth_success`, `auth_attempts`, `direction` and
//!   `host_key_fingerprint` are unset: the parser stops before the
//!   encrypted part and the key exchange reply, and knows no local networks.

use std::io::{self, Write};

use super::record::FlowHeader;
use super::zeek::Value;
use crate::l7::{SshAlgorithms, SshRecord};
use crate::view::Timestamp;

/// `#fields` after `ts`, `uid` and `id` of Zeek's ssh.log.
const FIELDS: [&str; 12] = [
    "version",
    "auth_success",
    "auth_attempts",
    "direction",
    "client",
    "server",
    "cipher_alg",
    "mac_alg",
    "compression_alg",
    "kex_alg",
    "host_key_alg",
    "host_key_fingerprint",
];

/// `#types` of those fields.
const TYPES: [&str; 12] = [
    "count", "bool", "count", "enum", "string", "string", "string", "string", "string", "string",
    "string", "string",
];

super::zeek::log_kind!(Ssh, "ssh", ZeekSshWriter);

impl<W: Write> ZeekSshWriter<W> {
    /// Writes the record of `flow`'s SSH connection, completed at `ts`;
    /// nothing unless both identification lines are known. Returns whether
    /// a line was written.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn write_ssh(
        &mut self,
        flow: &FlowHeader,
        ts: Timestamp,
        record: &SshRecord,
    ) -> io::Result<bool> {
        let (Some(client), Some(server)) = (
            record.client().and_then(|e| e.banner),
            record.server().and_then(|e| e.banner),
        ) else {
            return Ok(false);
        };
        let version = match client.as_bytes().get(4) {
            Some(b'1') => Value::Count(1),
            Some(b'2') => Value::Count(2),
            _ => Value::Unset,
        };
        let a = record.algorithms();
        let alg = |f: for<'b> fn(&'b SshAlgorithms<'_>) -> &'b str| {
            a.as_ref().map_or(Value::Unset, |a| Value::Str(f(a)))
        };
        let rest: [Value<'_>; FIELDS.len()] = [
            version,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Str(client),
            Value::Str(server),
            alg(|a| &a.cipher),
            alg(|a| &a.mac),
            alg(|a| &a.compression),
            alg(|a| a.kex),
            alg(|a| a.host_key),
            Value::Unset,
        ];
        self.write_conn(ts, flow, &rest)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l7::session::{Side, Texts};
    use crate::output::zeek::ZeekFormat;

    fn flow() -> FlowHeader {
        crate::output::zeek::test_flow(22)
    }

    /// A record with `side`'s identification line.
    fn banner(r: &mut SshRecord, side: Side, line: &str) {
        let line = line.as_bytes();
        r.set_banner(side, line, &line[4..]);
    }

    #[test]
    fn rows_need_both_lines_and_escape_control_bytes() {
        let mut w = ZeekSshWriter::new(Vec::new(), ZeekFormat::Tsv).unwrap();
        let mut half = SshRecord::on(Texts::default());
        banner(&mut half, Side::Initiator, "SSH-2.0-x");
        assert!(!w.write_ssh(&flow(), Timestamp(1), &half).unwrap());
        let mut full = SshRecord::on(Texts::default());
        banner(&mut full, Side::Initiator, "SSH-1.5-a\tb\\c");
        banner(&mut full, Side::Responder, "SSH-2.0-OpenSSH_9.2p1 Debian-2");
        let lists: [&[u8]; 8] = [
            b"curve25519-sha256",
            b"ssh-ed25519",
            b"chacha20-poly1305@openssh.com",
            b"chacha20-poly1305@openssh.com",
            b"umac-64-etm@openssh.com",
            b"umac-64-etm@openssh.com",
            b"none",
            b"none",
        ];
        for side in [Side::Initiator, Side::Responder] {
            full.set_kexinit(side, &lists);
        }
        assert!(
            w.write_ssh(&flow(), Timestamp(1_500_000_000), &full)
                .unwrap()
        );
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let row: Vec<&str> = out.lines().nth(8).unwrap().split('\t').collect();
        let field = |name: &str| row[crate::output::zeek::column(&FIELDS, name)];
        assert_eq!(
            row.len(),
            crate::output::zeek::CONN_ID_FIELDS.len() + FIELDS.len()
        );
        assert_eq!(field("ts"), "1.500000");
        assert_eq!(field("uid"), crate::output::zeek::uid(&flow()));
        assert_eq!(field("version"), "1");
        assert_eq!(field("client"), "SSH-1.5-a\\x09b\\x5cc");
        assert_eq!(field("server"), "SSH-2.0-OpenSSH_9.2p1 Debian-2");
        assert_eq!(field("kex_alg"), "curve25519-sha256");
        assert_eq!(field("cipher_alg"), "chacha20-poly1305@openssh.com");
        assert_eq!(field("host_key_alg"), "ssh-ed25519");
        assert_eq!(field("auth_attempts"), "-");

        let mut w = ZeekSshWriter::new(Vec::new(), ZeekFormat::Json).unwrap();
        w.write_ssh(&flow(), Timestamp(1), &full).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&w.finish().unwrap()).expect("one JSON line");
        assert_eq!(json["client"], "SSH-1.5-a\tb\\c");
        assert_eq!(json["id.resp_p"], 22);
        assert!(json.get("auth_success").is_none());
    }
}
