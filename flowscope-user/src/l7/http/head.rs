//! HTTP/1.x message heads: request and response start lines and the header
//! fields the records need, parsed with `httparse` on borrowed bytes.
//!
//! Request lines that `httparse` rejects (a missing or truncated version, as
//! some scanners send) are read leniently like Wireshark does: a method token
//! then up to two space-separated words; the header block is still parsed by
//! `httparse`.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use httparse::{EMPTY_HEADER, Header, ParserConfig, Status};

/// Most header fields read from one message head; more is an error.
const MAX_HEADERS: usize = 96;

/// Result of parsing a message head.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Parsed<T> {
    /// The head is complete and takes this many bytes.
    Complete(usize, T),
    /// More bytes are needed.
    Partial,
    /// Not an HTTP/1.x head.
    Invalid,
}

/// How a message body is delimited, from its header fields.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Framing {
    /// `Transfer-Encoding` ends in `chunked`.
    pub chunked: bool,
    /// Value of a valid `Content-Length`.
    pub content_length: Option<u64>,
}

/// A request head, borrowed from the bytes it was parsed from. The request
/// line is text already (`httparse` checked it is UTF-8; a lenient line's
/// invalid sequences are replaced), header values are bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct RequestHead<'a> {
    pub method: &'a str,
    pub uri: Option<Cow<'a, str>>,
    pub protocol: Option<Cow<'a, str>>,
    pub fields: Fields<'a>,
}

/// A response head, borrowed from the bytes it was parsed from.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ResponseHead<'a> {
    pub status: u16,
    /// `HTTP/1.x`.
    pub protocol: Option<&'static str>,
    /// As `httparse` read it (empty when it held obs-text).
    pub reason: Option<&'a str>,
    pub fields: Fields<'a>,
}

/// Proxy headers a request's record keeps, at most (Zeek's
/// `HTTP::proxy_headers` are seven names).
pub(super) const MAX_PROXIED: usize = 8;

/// Header fields the records use; of a repeated header, the last (as Zeek
/// keeps it).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Fields<'a> {
    pub host: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub referer: Option<&'a [u8]>,
    /// `X-Forwarded-For`.
    pub xff: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    pub location: Option<&'a [u8]>,
    pub origin: Option<&'a [u8]>,
    /// `Authorization` or `Proxy-Authorization`.
    pub authorization: Option<&'a [u8]>,
    /// The headers of Zeek's `HTTP::proxy_headers`, each as its upper-case
    /// name and value, in order, the first [`MAX_PROXIED`].
    pub proxied: [(&'static str, &'a [u8]); MAX_PROXIED],
    pub proxied_len: usize,
    pub framing: Framing,
}

impl<'a> Fields<'a> {
    fn proxy(&mut self, name: &'static str, value: &'a [u8]) {
        if let Some(slot) = self.proxied.get_mut(self.proxied_len) {
            *slot = (name, value);
            self.proxied_len += 1;
        }
    }

    /// The proxy headers ([`Fields::proxied`]).
    pub fn proxied(&self) -> &[(&'static str, &'a [u8])] {
        self.proxied.get(..self.proxied_len).unwrap_or_default()
    }
}

/// A header name the records use, lower case, kept as words to compare
/// eight bytes at a time.
struct Name {
    len: usize,
    words: [u64; 3],
    /// The case bit (0x20) of each letter byte: a letter matches in either
    /// case, every other byte exactly.
    case: [u64; 3],
}

impl Name {
    /// `lower`: lower-case letters and other bytes, at most 24.
    const fn new(lower: &[u8]) -> Self {
        let mut words = [0u64; 3];
        let mut case = [0u64; 3];
        let mut i = 0;
        while i < lower.len() {
            let shift = (i % 8) * 8;
            words[i / 8] |= (lower[i] as u64) << shift;
            if lower[i].is_ascii_lowercase() {
                case[i / 8] |= 0x20 << shift;
            }
            i += 1;
        }
        Self {
            len: lower.len(),
            words,
            case,
        }
    }

    /// `name` is this name, ignoring ASCII case (as
    /// [`str::eq_ignore_ascii_case`]).
    #[inline(always)]
    fn is(&self, name: &[u8]) -> bool {
        if name.len() != self.len {
            return false;
        }
        let mut bytes = [0u8; 24];
        bytes[..self.len].copy_from_slice(name);
        (0..3).all(|i| {
            let word = bytes[i * 8..][..8].try_into().map_or(0, u64::from_le_bytes);
            word | self.case[i] == self.words[i]
        })
    }
}

const HOST: Name = Name::new(b"host");
const USER_AGENT: Name = Name::new(b"user-agent");
const REFERER: Name = Name::new(b"referer");
const XFF: Name = Name::new(b"x-forwarded-for");
const CONTENT_TYPE: Name = Name::new(b"content-type");
const LOCATION: Name = Name::new(b"location");
const ORIGIN: Name = Name::new(b"origin");
const AUTHORIZATION: Name = Name::new(b"authorization");
const PROXY_AUTHORIZATION: Name = Name::new(b"proxy-authorization");
// Zeek's `HTTP::proxy_headers`, X-Forwarded-For aside (above).
const VIA: Name = Name::new(b"via");
const FORWARDED: Name = Name::new(b"forwarded");
const CLIENT_IP: Name = Name::new(b"client-ip");
const X_FORWARDED_FROM: Name = Name::new(b"x-forwarded-from");
const XROXY_CONNECTION: Name = Name::new(b"xroxy-connection");
const PROXY_CONNECTION: Name = Name::new(b"proxy-connection");
const CONTENT_LENGTH: Name = Name::new(b"content-length");
const TRANSFER_ENCODING: Name = Name::new(b"transfer-encoding");

#[inline(always)]
fn read_fields<'a>(headers: &[Header<'a>]) -> Fields<'a> {
    let mut f = Fields::default();
    for h in headers {
        // Names are told apart by their length first: one or two
        // comparisons per field.
        let name = h.name.as_bytes();
        let v = h.value;
        match name.len() {
            3 if VIA.is(name) => f.proxy("VIA", v),
            4 if HOST.is(name) => f.host = Some(v),
            6 if ORIGIN.is(name) => f.origin = Some(v),
            7 if REFERER.is(name) => f.referer = Some(v),
            8 if LOCATION.is(name) => f.location = Some(v),
            9 if FORWARDED.is(name) => f.proxy("FORWARDED", v),
            9 if CLIENT_IP.is(name) => f.proxy("CLIENT-IP", v),
            10 if USER_AGENT.is(name) => f.user_agent = Some(v),
            12 if CONTENT_TYPE.is(name) => f.content_type = Some(v),
            13 if AUTHORIZATION.is(name) => f.authorization = Some(v),
            14 if CONTENT_LENGTH.is(name) => {
                f.framing.content_length = std::str::from_utf8(v)
                    .ok()
                    .and_then(|v| v.trim().parse().ok());
            }
            15 if XFF.is(name) => {
                f.xff = Some(v);
                f.proxy("X-FORWARDED-FOR", v);
            }
            16 if X_FORWARDED_FROM.is(name) => f.proxy("X-FORWARDED-FROM", v),
            16 if XROXY_CONNECTION.is(name) => f.proxy("XROXY-CONNECTION", v),
            16 if PROXY_CONNECTION.is(name) => f.proxy("PROXY-CONNECTION", v),
            17 if TRANSFER_ENCODING.is(name) => {
                f.framing.chunked = v
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
            19 if PROXY_AUTHORIZATION.is(name) => f.authorization = Some(v),
            _ => {}
        }
    }
    f
}

/// `HTTP/1.x` for the minor version `x` `httparse` read (0 or 1).
fn version_text(minor: Option<u8>) -> Option<&'static str> {
    const VERSIONS: [&str; 10] = [
        "HTTP/1.0", "HTTP/1.1", "HTTP/1.2", "HTTP/1.3", "HTTP/1.4", "HTTP/1.5", "HTTP/1.6",
        "HTTP/1.7", "HTTP/1.8", "HTTP/1.9",
    ];
    minor.and_then(|m| VERSIONS.get(usize::from(m)).copied())
}

/// Room for a head's header fields, left uninitialised: `httparse` writes
/// the ones it parses (zeroing 3 KiB per head was 2% of `read --l7` on
/// HTTP-heavy captures).
fn uninit_headers<'b>() -> [MaybeUninit<Header<'b>>; MAX_HEADERS] {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

/// Parses a request head at the start of `buf`.
#[inline(always)]
pub(super) fn parse_request(buf: &[u8]) -> Parsed<RequestHead<'_>> {
    let mut headers = uninit_headers();
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(Status::Complete(len)) => Parsed::Complete(
            len,
            RequestHead {
                method: req.method.unwrap_or_default(),
                uri: req.path.map(Cow::Borrowed),
                protocol: version_text(req.version).map(Cow::Borrowed),
                fields: read_fields(req.headers),
            },
        ),
        Ok(Status::Partial) => Parsed::Partial,
        Err(httparse::Error::Token | httparse::Error::Version | httparse::Error::NewLine) => {
            parse_lenient_request(buf)
        }
        Err(_) => Parsed::Invalid,
    }
}

/// True for a method token as Wireshark accepts it (`CCM_POST`, `M-SEARCH`).
fn is_method(word: &[u8]) -> bool {
    !word.is_empty() && word.len() <= 32 && word.iter().all(is_method_byte)
}

fn is_method_byte(b: &u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-'
}

/// Request line `METHOD [URI [VERSION]]` that `httparse` refused.
fn parse_lenient_request(buf: &[u8]) -> Parsed<RequestHead<'_>> {
    let nl = buf.iter().position(|&b| b == b'\n');
    let line = &buf[..nl.unwrap_or(buf.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.split(|&b| b == b' ');
    let method = words.next().unwrap_or_default();
    let uri = words.next().filter(|w| !w.is_empty());
    let version = words.next().filter(|w| !w.is_empty());
    let method_ok = if nl.is_none() && uri.is_none() {
        // The method may still be arriving.
        method.len() <= 32 && method.iter().all(is_method_byte)
    } else {
        is_method(method)
    };
    if !method_ok || words.next().is_some() || line.iter().any(|&b| b.is_ascii_control()) {
        return Parsed::Invalid;
    }
    // ASCII, as checked above.
    let Ok(method) = std::str::from_utf8(method) else {
        return Parsed::Invalid;
    };
    let Some(nl) = nl else {
        return Parsed::Partial;
    };
    let rest = buf.get(nl + 1..).unwrap_or_default();
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(rest, &mut headers) {
        Ok(Status::Complete((len, headers))) => Parsed::Complete(
            nl + 1 + len,
            RequestHead {
                method,
                uri: uri.map(String::from_utf8_lossy),
                protocol: version.map(String::from_utf8_lossy),
                fields: read_fields(headers),
            },
        ),
        Ok(Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
    }
}

/// Parses a response head at the start of `buf`.
#[inline(always)]
pub(super) fn parse_response(buf: &[u8]) -> Parsed<ResponseHead<'_>> {
    let mut headers = uninit_headers();
    let mut resp = httparse::Response::new(&mut []);
    match ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut headers) {
        Ok(Status::Complete(len)) => Parsed::Complete(
            len,
            ResponseHead {
                status: resp.code.unwrap_or_default(),
                protocol: version_text(resp.version),
                reason: resp.reason,
                fields: read_fields(resp.headers),
            },
        ),
        Ok(Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
    }
}

/// Whether `buf` may start a message, used to resynchronise after a gap.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Start {
    Yes,
    No,
    /// Too few bytes to tell.
    Maybe,
}

/// Does `buf` look like the start of a request (`true`) or response head?
pub(super) fn looks_like_start(buf: &[u8], request: bool) -> Start {
    if request {
        // The method ends at a space, or at the line end of a malformed
        // request line (`OPTIONS\n`, which servers answer with 400).
        match buf.iter().position(|&b| matches!(b, b' ' | b'\r' | b'\n')) {
            Some(sp) if is_method(&buf[..sp]) => Start::Yes,
            Some(_) => Start::No,
            None if buf.len() < 32 && (buf.is_empty() || is_method(buf)) => Start::Maybe,
            None => Start::No,
        }
    } else {
        const MAGIC: &[u8] = b"HTTP/1.";
        if buf.len() >= MAGIC.len() {
            if buf.starts_with(MAGIC) {
                Start::Yes
            } else {
                Start::No
            }
        } else if MAGIC.starts_with(buf) {
            Start::Maybe
        } else {
            Start::No
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_head_fields() {
        let raw = b"POST /up?x=1 HTTP/1.1\r\nHost: example.org:8080\r\nUser-Agent: curl/8\r\n\
Referer: http://example.org/\r\nX-Forwarded-For: 192.0.2.7\r\nContent-Length: 12\r\nTransfer-Encoding: gzip, chunked\r\n\r\nbody";
        let Parsed::Complete(len, head) = parse_request(raw) else {
            panic!("not parsed")
        };
        assert_eq!(len, raw.len() - 4);
        assert_eq!(head.method, "POST");
        assert_eq!(head.uri.as_deref(), Some("/up?x=1"));
        assert_eq!(head.protocol.as_deref(), Some("HTTP/1.1"));
        assert_eq!(head.fields.host, Some(&b"example.org:8080"[..]));
        assert_eq!(head.fields.user_agent, Some(&b"curl/8"[..]));
        assert_eq!(head.fields.referer, Some(&b"http://example.org/"[..]));
        assert_eq!(head.fields.xff, Some(&b"192.0.2.7"[..]));
        assert_eq!(
            head.fields.framing,
            Framing {
                chunked: true,
                content_length: Some(12)
            }
        );
        for cut in 0..raw.len() - 4 {
            assert_eq!(parse_request(&raw[..cut]), Parsed::Partial, "cut {cut}");
        }
    }

    #[test]
    fn lenient_request_lines_like_wireshark() {
        type Case<'a> = (&'a [u8], &'a str, Option<&'a str>, Option<&'a str>);
        let cases: [Case<'_>; 3] = [
            (
                b"GET / HTTP/1.\r\nHost: h\r\n\r\n",
                "GET",
                Some("/"),
                Some("HTTP/1."),
            ),
            (
                b"GET /HTTP/1.1\r\nHost: h\r\n\r\n",
                "GET",
                Some("/HTTP/1.1"),
                None,
            ),
            (b"OPTIONS\r\nHost: h\r\n\r\n", "OPTIONS", None, None),
        ];
        for (raw, method, uri, version) in cases {
            let Parsed::Complete(len, head) = parse_request(raw) else {
                panic!("{raw:?} not parsed")
            };
            assert_eq!(len, raw.len());
            assert_eq!(head.method, method);
            assert_eq!(head.uri.as_deref(), uri);
            assert_eq!(head.protocol.as_deref(), version);
            assert_eq!(head.fields.host, Some(&b"h"[..]));
        }
        assert_eq!(parse_request(b"OPTIONSHTTP/1.1\r\n\r\n"), Parsed::Invalid);
        assert_eq!(parse_request(b"GET/ HTTP/1.1\r\n\r\n"), Parsed::Invalid);
        assert_eq!(parse_request(b"\x16\x03\x01\x02\x00\x01"), Parsed::Invalid);
    }

    #[test]
    fn response_head_fields() {
        let raw =
            b"HTTP/1.0 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: x\r\n\r\n";
        let Parsed::Complete(len, head) = parse_response(raw) else {
            panic!("not parsed")
        };
        assert_eq!(len, raw.len());
        assert_eq!(head.status, 404);
        assert_eq!(head.fields.content_type, Some(&b"text/plain"[..]));
        assert_eq!(
            head.fields.framing,
            Framing::default(),
            "invalid length ignored"
        );
        assert_eq!(parse_response(b"GET / HTTP/1.1\r\n\r\n"), Parsed::Invalid);
    }

    /// Each name against every one-byte change of itself in both cases,
    /// every other name and every length: as `eq_ignore_ascii_case`.
    #[test]
    fn names_match_as_eq_ignore_ascii_case() {
        let names: [(&Name, &[u8]); 7] = [
            (&HOST, b"host"),
            (&USER_AGENT, b"user-agent"),
            (&REFERER, b"referer"),
            (&XFF, b"x-forwarded-for"),
            (&CONTENT_TYPE, b"content-type"),
            (&CONTENT_LENGTH, b"content-length"),
            (&TRANSFER_ENCODING, b"transfer-encoding"),
        ];
        let mut tried = 0;
        for (name, text) in names {
            let mut candidates: Vec<Vec<u8>> = names.iter().map(|(_, t)| t.to_vec()).collect();
            candidates.push(text.to_ascii_uppercase());
            candidates.extend((0..=text.len() + 1).map(|n| text.repeat(2)[..n].to_vec()));
            for i in 0..text.len() {
                for b in 0..=255u8 {
                    let mut c = text.to_vec();
                    c[i] = b;
                    candidates.push(c);
                }
            }
            for c in candidates {
                assert_eq!(
                    name.is(&c),
                    c.eq_ignore_ascii_case(text),
                    "{:?} against {:?}",
                    String::from_utf8_lossy(&c),
                    String::from_utf8_lossy(text)
                );
                tried += 1;
            }
        }
        assert!(tried > 20_000);
    }

    #[test]
    fn message_starts() {
        assert_eq!(looks_like_start(b"GET /", true), Start::Yes);
        assert_eq!(looks_like_start(b"GE", true), Start::Maybe);
        assert_eq!(looks_like_start(b"ge /", true), Start::No);
        assert_eq!(looks_like_start(b"HTTP/1.1 200", false), Start::Yes);
        assert_eq!(looks_like_start(b"HTT", false), Start::Maybe);
        assert_eq!(looks_like_start(b"<html>", false), Start::No);
    }
}
