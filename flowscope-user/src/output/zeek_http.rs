//! Zeek `http.log` records from the HTTP parser's records (one per
//! request/response exchange), joined to conn.log by `uid`.
//!
//! Fields are those of Zeek's http.log, in Zeek's order; what the parser
//! does not know is unset (`-`) rather than guessed:
//! - `ts` is the time the exchange was complete (Zeek's: the request).
//! - `host` is the `Host` header without its port, as Zeek splits it;
//!   `version` the response's (`1.1`; the request's when no response came),
//!   as Zeek's `http_reply` sets it; `0.9` with status 0 `<empty>` for
//!   an HTTP/0.9 answer (a bare body, no status line), as Zeek writes it.
//! - `request_body_len`/`response_body_len` are the body bytes seen after
//!   de-chunking, as Zeek counts them.
//! - `referrer` is the `Referer` header.
//! - `origin`, `username`, `password`, `proxied` and the `info_*` fields
//!   of interim responses are unset: the parser keeps none of those
//!   headers. `tags` is empty, as Zeek leaves it without policy
//!   scripts.
//! - The file-analysis fields (`*_fuids`, `*_filenames`, `*_mime_types`)
//!   are unset: Zeek fills them by running its file analysis (libmagic
//!   sniffing) on the bodies, which flowscope does not do.

use std::io::{self, Write};

use super::record::FlowHeader;
use super::zeek::Value;
use crate::l7::HttpRecord;
use crate::view::Timestamp;

/// `#fields` after `ts`, `uid` and `id` of Zeek's http.log.
const FIELDS: [&str; 24] = [
    "trans_depth",
    "method",
    "host",
    "uri",
    "referrer",
    "version",
    "user_agent",
    "origin",
    "request_body_len",
    "response_body_len",
    "status_code",
    "status_msg",
    "info_code",
    "info_msg",
    "tags",
    "username",
    "password",
    "proxied",
    "orig_fuids",
    "orig_filenames",
    "orig_mime_types",
    "resp_fuids",
    "resp_filenames",
    "resp_mime_types",
];

/// `#types` of those fields.
const TYPES: [&str; 24] = [
    "count",
    "string",
    "string",
    "string",
    "string",
    "string",
    "string",
    "string",
    "count",
    "count",
    "count",
    "string",
    "count",
    "string",
    "set[enum]",
    "string",
    "string",
    "set[string]",
    "vector[string]",
    "vector[string]",
    "vector[string]",
    "vector[string]",
    "vector[string]",
    "vector[string]",
];

super::zeek::log_kind!(Http, "http", ZeekHttpWriter);

impl<W: Write> ZeekHttpWriter<W> {
    /// Writes the record of one exchange of `flow`, completed at `ts`.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn write_http(
        &mut self,
        flow: &FlowHeader,
        ts: Timestamp,
        r: &HttpRecord,
    ) -> io::Result<()> {
        // Zeek keeps what precedes the first `:` of the Host header.
        let host = r.hostname().map(|h| h.split(':').next().unwrap_or(h));
        // Zeek's is the response's (the request's while none came).
        let version = r
            .response_protocol()
            .or(r.protocol())
            .map(|p| p.strip_prefix("HTTP/").unwrap_or(p));
        // Zeek gives an HTTP/0.9 answer (no status line) status 0 `<empty>`.
        let (status, status_msg) = if r.answered_as_http09() {
            (Some(0), Some("<empty>"))
        } else {
            (r.status, r.status_msg())
        };
        let rest: [Value<'_>; FIELDS.len()] = [
            Value::Count(u64::from(r.trans_depth)),
            Value::text(r.http_method()),
            host.map_or(Value::Unset, Value::Str),
            Value::text(r.url()),
            Value::text(r.http_refer()),
            version.map_or(Value::Unset, Value::Str),
            Value::text(r.http_user_agent()),
            Value::Unset,
            Value::Count(r.request_body_len),
            Value::Count(r.length),
            status.map_or(Value::Unset, |s| Value::Count(u64::from(s))),
            Value::text(status_msg),
            Value::Unset,
            Value::Unset,
            Value::Strs(&[]),
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
        ];
        self.write_conn(ts, flow, &rest)
    }
}
