//! Zeek `ssl.log` records from the TLS parser's records (one per
//! connection), joined to conn.log by `uid`.
//!
//! Fields are Zeek's, in Zeek's order: `version` in Zeek's names
//! (`TLSv12`), `cipher` the suite the ServerHello chose by its IANA name,
//! `server_name` the SNI, `next_protocol` the protocol the ServerHello's
//! ALPN chose, `cert_chain_fps` the SHA-256 of each server certificate.
//! `ts` is the time the record was complete (Zeek's: the first packet).
//! `resumed` is whether a ServerHello below TLS 1.3 echoed the client's
//! session ID (TLS 1.3 resumes by a pre-shared key the parser does not
//! follow: unset, as before a ServerHello).
//! `curve` is the server's TLS 1.3 key share group or the named curve of
//! an ECDHE ServerKeyExchange, by Zeek's names (`secp256r1`, `x25519`, …;
//! `unknown-N` for others).
//! What the parser does not follow is unset: `last_alert`, `established` and
//! `ssl_history` (the rest of the handshake and the alerts),
//! `client_cert_chain_fps` (the client's flight after its hello) and
//! `sni_matches_cert` (Zeek compares the name with the certificate's).

use std::io::{self, Write};

use super::record::FlowHeader;
use super::zeek::Value;
use crate::l7::TlsRecord;
use crate::view::Timestamp;

/// `#fields` after `ts`, `uid` and `id` of Zeek's ssl.log.
const FIELDS: [&str; 12] = [
    "version",
    "cipher",
    "curve",
    "server_name",
    "resumed",
    "last_alert",
    "next_protocol",
    "established",
    "ssl_history",
    "cert_chain_fps",
    "client_cert_chain_fps",
    "sni_matches_cert",
];

/// `#types` of those fields.
const TYPES: [&str; 12] = [
    "string",
    "string",
    "string",
    "string",
    "bool",
    "string",
    "string",
    "bool",
    "string",
    "vector[string]",
    "vector[string]",
    "bool",
];

super::zeek::log_kind!(Ssl, "ssl", ZeekSslWriter);

/// Zeek's name of a version the parser names `TLS 1.2` or `SSLv3`.
fn version_name(v: &str) -> String {
    match v.strip_prefix("TLS 1.") {
        Some(minor) => format!("TLSv1{minor}"),
        None => v.to_owned(),
    }
}

/// Zeek's name of a cipher suite: IANA's, `unknown-N` for others.
fn cipher_name(id: u16) -> String {
    tls_parser::TlsCipherSuite::from_id(id)
        .map_or_else(|| format!("unknown-{id}"), |c| c.name.to_owned())
}

/// Zeek's name of a TLS group (its `SSL::ec_curves`), `unknown-N` for
/// others.
fn curve_name(id: u16) -> String {
    let name = match id {
        19 => "secp192r1",
        21 => "secp224r1",
        23 => "secp256r1",
        24 => "secp384r1",
        25 => "secp521r1",
        26 => "brainpoolP256r1",
        27 => "brainpoolP384r1",
        28 => "brainpoolP512r1",
        29 => "x25519",
        30 => "x448",
        256 => "ffdhe2048",
        257 => "ffdhe3072",
        258 => "ffdhe4096",
        259 => "ffdhe6144",
        260 => "ffdhe8192",
        4588 => "X25519MLKEM768",
        _ => return format!("unknown-{id}"),
    };
    name.to_owned()
}

impl<W: Write> ZeekSslWriter<W> {
    /// Writes the record of `flow`'s TLS connection, completed at `ts`.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn write_ssl(&mut self, flow: &FlowHeader, ts: Timestamp, r: &TlsRecord) -> io::Result<()> {
        let version = r.version().map(version_name);
        // Zeek's vector needs strings of its own (the record's share one
        // buffer): one allocation per fingerprint here, Zeek logs only.
        let chain: Vec<String> = r.cert_chain_fps().map(str::to_owned).collect();
        let cipher = r.cipher.map(cipher_name);
        let curve = r.curve.map(curve_name);
        let rest: [Value<'_>; FIELDS.len()] = [
            version.as_deref().map_or(Value::Unset, Value::Str),
            cipher.as_deref().map_or(Value::Unset, Value::Str),
            curve.as_deref().map_or(Value::Unset, Value::Str),
            r.sni().map_or(Value::Unset, Value::Str),
            match (r.cipher, r.version()) {
                (Some(_), Some(v)) if v != "TLS 1.3" => {
                    Value::Bool(r.session_resumed == Some(true))
                }
                _ => Value::Unset,
            },
            Value::Unset,
            r.server_alpn().map_or(Value::Unset, Value::Str),
            Value::Unset,
            Value::Unset,
            if chain.is_empty() {
                Value::Unset
            } else {
                Value::Strs(&chain)
            },
            Value::Unset,
            Value::Unset,
        ];
        self.write_conn(ts, flow, &rest)
    }
}
