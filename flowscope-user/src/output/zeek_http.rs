//! Zeek `http.log` records from the HTTP parser's records (one per
//! request/response exchange), joined to conn.log by `uid`.
//!
//! Fields are those of Zeek's http.log, in Zeek's order; what the parser
//! does not know is unset (`-`) rather than guessed:
//! - `ts` is when the request's head was complete (Zeek's: its request
//!   line; the same packet unless the head spans several).
//! - `host` is the `Host` header's value as sent, its port included, as
//!   Zeek writes it since 4.2 (zeek/zeek#1844);
//!   `version` the response's (`1.1`; unset when no response came), as
//!   only Zeek's `http_reply` sets it; `0.9` with status 0 `<empty>` for
//!   an HTTP/0.9 answer (a bare body, no status line), as Zeek writes it.
//! - `request_body_len`/`response_body_len` are the body bytes seen after
//!   de-chunking, as Zeek counts them.
//! - `referrer` is the `Referer` header.
//! - `origin`, `username` (of `Basic` credentials), `proxied` (the
//!   headers of Zeek's `HTTP::proxy_headers`, as `NAME -> value`, in the
//!   order they came) and `info_code`/`info_msg` (the last 1xx response,
//!   101 included) as Zeek's `http_header` and `http_reply` handlers set
//!   them; `password` is unset, as Zeek leaves it by default
//!   (`HTTP::default_capture_password`). `tags` is empty, as Zeek leaves
//!   it without policy scripts.
//! - The file-analysis fields (`*_fuids`, `*_filenames`, `*_mime_types`)
//!   are unset: Zeek fills them by running its file analysis (libmagic
//!   sniffing) on the bodies, which flowscope does not do.

use std::io::{self, Write};

use super::record::FlowHeader;
use super::zeek::Value;
use crate::l7::HttpRecord;

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
    /// Writes the record of one exchange of `flow`, stamped with the time
    /// it began ([`HttpRecord::started`]).
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn write_http(&mut self, flow: &FlowHeader, r: &HttpRecord) -> io::Result<()> {
        // Zeek's is the response's: only `http_reply` sets it.
        let version = r
            .response_protocol()
            .map(|p| p.strip_prefix("HTTP/").unwrap_or(p));
        // Zeek gives an HTTP/0.9 answer (no status line) status 0 `<empty>`.
        let (status, status_msg) = if r.answered_as_http09() {
            (Some(0), Some("<empty>"))
        } else {
            (r.status, r.status_msg())
        };
        // A set: its elements as Strings (a record with proxy headers is
        // rare; none allocates nothing).
        let proxied: Vec<String> = r.proxied().map(String::from).collect();
        let mut scratch = self.take_scratch();
        let uri = r.url().map(|u| unescape_uri(u, &mut scratch));
        let rest: [Value<'_>; FIELDS.len()] = [
            Value::Count(u64::from(r.trans_depth)),
            Value::text(r.http_method()),
            Value::text(r.hostname()),
            uri.map_or(Value::Unset, Value::Bytes),
            Value::text(r.http_refer()),
            version.map_or(Value::Unset, Value::Str),
            Value::text(r.http_user_agent()),
            Value::text(r.origin()),
            Value::Count(r.request_body_len),
            Value::Count(r.length),
            status.map_or(Value::Unset, |s| Value::Count(u64::from(s))),
            Value::text(status_msg),
            r.info_code
                .map_or(Value::Unset, |c| Value::Count(u64::from(c))),
            Value::text(r.info_msg()),
            Value::Strs(&[]),
            Value::text(r.username()),
            Value::Unset,
            if proxied.is_empty() {
                Value::Unset
            } else {
                Value::Strs(&proxied)
            },
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
        ];
        let written = self.write_conn(r.started, flow, &rest);
        self.put_scratch(scratch);
        written
    }
}

/// `uri` as Zeek's HTTP analyzer unescapes it for http.log
/// (`unescape_URI`): `%XX` decoded, IIS's `%uXXXX` decoded to its two
/// bytes (the first left out when it is `00`), the first `%` of `%%`
/// dropped, any other `%` kept with what follows. Built in `buf`; the
/// bytes need not be UTF-8 (written as [`Value::Bytes`]).
fn unescape_uri<'a>(uri: &'a str, buf: &'a mut Vec<u8>) -> &'a [u8] {
    /// The byte two hex digits spell.
    fn byte(hi: u8, lo: u8) -> Option<u8> {
        let digit = |b: u8| char::from(b).to_digit(16);
        Some((digit(hi)? << 4 | digit(lo)?) as u8)
    }
    let s = uri.as_bytes();
    if !s.contains(&b'%') {
        return s;
    }
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        i += 1;
        if c != b'%' {
            buf.push(c);
            continue;
        }
        match s.get(i..) {
            Some([]) | None => buf.push(b'%'),
            Some([last]) => {
                buf.extend_from_slice(&[b'%', *last]);
                i += 1;
            }
            // `%%`: this `%` is dropped, the next one read as an escape.
            Some([b'%', ..]) => {}
            Some([a, b, ..]) if byte(*a, *b).is_some() => {
                buf.extend(byte(*a, *b));
                i += 2;
            }
            Some([b'u', a, b, c, d, ..]) if byte(*a, *b).and(byte(*c, *d)).is_some() => {
                if !(*a == b'0' && *b == b'0') {
                    buf.extend(byte(*a, *b));
                }
                buf.extend(byte(*c, *d));
                i += 5;
            }
            Some([next, ..]) => {
                buf.extend_from_slice(&[b'%', *next]);
                i += 1;
            }
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l7::HttpParser;
    use crate::l7::session::Side;
    use crate::output::zeek::{CONN_ID_FIELDS, ZeekFormat, column};

    fn flow() -> FlowHeader {
        crate::output::zeek::test_flow(8080)
    }

    /// The record of one exchange the parser reads from `request` and
    /// `responses`.
    fn exchange(request: &[u8], responses: &[u8]) -> HttpRecord {
        let mut p = HttpParser::default();
        let mut out = Vec::new();
        p.feed(Side::Initiator, request, &mut out);
        p.feed(Side::Responder, responses, &mut out);
        p.end(Side::Initiator, &mut out);
        p.end(Side::Responder, &mut out);
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    /// `unescape_URI` of Zeek's HTTP analyzer, case by case.
    #[test]
    fn uris_are_unescaped_as_zeek_unescapes_them() {
        for (raw, want) in [
            ("/plain", &b"/plain"[..]),
            ("/a%20b?q=%3Cscript%3E", b"/a b?q=<script>"),
            ("/%c3%A9", "/\u{e9}".as_bytes()),
            ("/x%", b"/x%"),
            ("/x%4", b"/x%4"),
            ("/x%%41", b"/xA"),
            ("/x%%", b"/x%%"),
            ("/%u0041%u263A", b"/A&:"),
            ("/%u004", b"/%u004"),
            ("/%zz%4g", b"/%zz%4g"),
            ("/%FF", b"/\xff"),
        ] {
            let mut buf = Vec::new();
            assert_eq!(unescape_uri(raw, &mut buf), want, "{raw}");
        }
    }

    /// The fields of `r`'s row in a TSV http.log.
    fn tsv_row(r: &HttpRecord) -> Vec<String> {
        let mut w = ZeekHttpWriter::new(Vec::new(), ZeekFormat::Tsv).unwrap();
        w.write_http(&flow(), r).unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let row = out.lines().nth(8).unwrap();
        row.split('\t').map(String::from).collect()
    }

    /// The request-header and 1xx fields in Zeek's forms: `host` with its
    /// port, a `proxied` set joined by `,` (one inside an element written
    /// `\x2c`), `password` unset.
    #[test]
    fn request_headers_and_informational_fields() {
        let r = exchange(
            b"GET / HTTP/1.1\r\nHost: h.example:8080\r\nOrigin: http://o.example\r\n\
Authorization: Basic dXNlcjpwYXNz\r\nVia: 1.1 a, 1.1 b\r\nClient-IP: 192.0.2.9\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        let row = tsv_row(&r);
        assert_eq!(row.len(), CONN_ID_FIELDS.len() + FIELDS.len());
        let field = |name: &str| row[column(&FIELDS, name)].as_str();
        assert_eq!(field("host"), "h.example:8080");
        assert_eq!(field("origin"), "http://o.example");
        assert_eq!(field("status_code"), "200");
        assert_eq!(field("info_code"), "100");
        assert_eq!(field("info_msg"), "Continue");
        assert_eq!(field("username"), "user");
        assert_eq!(field("password"), "-");
        assert_eq!(
            field("proxied"),
            "VIA -> 1.1 a\\x2c 1.1 b,CLIENT-IP -> 192.0.2.9"
        );

        let mut w = ZeekHttpWriter::new(Vec::new(), ZeekFormat::Json).unwrap();
        w.write_http(&flow(), &r).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&w.finish().unwrap()).expect("one JSON line");
        assert_eq!(
            json["proxied"],
            serde_json::json!(["VIA -> 1.1 a, 1.1 b", "CLIENT-IP -> 192.0.2.9"])
        );
        assert_eq!(json["info_code"], 100);
        assert!(json.get("password").is_none());

        // Without those headers and responses, the fields are unset.
        let plain = exchange(
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        );
        let row = tsv_row(&plain);
        for name in ["origin", "info_code", "info_msg", "username", "proxied"] {
            assert_eq!(row[column(&FIELDS, name)], "-", "{name}");
        }
        assert_eq!(row[column(&FIELDS, "version")], "1.1");
        // A request no response answered: only `http_reply` sets
        // `version` and the status in Zeek.
        let unanswered = exchange(b"GET / HTTP/1.0\r\nHost: h\r\n\r\n", b"");
        let row = tsv_row(&unanswered);
        for name in ["version", "status_code", "status_msg"] {
            assert_eq!(row[column(&FIELDS, name)], "-", "{name}");
        }
    }

    /// A decoded URI that is not UTF-8 keeps its bytes as Zeek writes them:
    /// `\xNN` for each byte of an invalid sequence in TSV (a backslash
    /// too), the same text in JSON (its backslashes escaped), valid UTF-8
    /// as it is.
    #[test]
    fn uri_bytes_that_are_not_utf8_are_written_as_zeek_writes_them() {
        let r = exchange(
            b"GET /a%FFb%5C%C3%A9%E2%82 HTTP/1.1\r\nHost: h\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        );
        let row = tsv_row(&r);
        assert_eq!(row[column(&FIELDS, "uri")], "/a\\xffb\\x5c\u{e9}\\xe2\\x82");

        let mut w = ZeekHttpWriter::new(Vec::new(), ZeekFormat::Json).unwrap();
        w.write_http(&flow(), &r).unwrap();
        let line = w.finish().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&line).expect("one JSON line");
        assert_eq!(json["uri"], "/a\\xffb\\\u{e9}\\xe2\\x82");
    }
}
