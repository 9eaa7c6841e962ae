//! Byte-built HTTP/1.x exchanges fed in every split.

use super::*;
use crate::l7::L7Record;

const C: Side = Side::Initiator;
const S: Side = Side::Responder;

/// Feeds each `(side, bytes)` in order, then ends both sides.
fn run_whole(config: HttpConfig, steps: &[(Side, &[u8])]) -> (Vec<HttpRecord>, HttpCounters) {
    let mut p = HttpParser::new(config);
    let mut out = Vec::new();
    for (side, bytes) in steps {
        p.feed(*side, bytes, &mut out);
    }
    p.end(C, &mut out);
    p.end(S, &mut out);
    (out, *p.counters())
}

/// [`run_whole`]'s records with only their EVE fields: the fields kept for
/// Zeek's http.log are checked in `zeek_fields_count_transactions_and_bodies`.
fn run_with(config: HttpConfig, steps: &[(Side, &[u8])]) -> (Vec<HttpRecord>, HttpCounters) {
    let (records, counters) = run_whole(config, steps);
    (eve_fields(&records), counters)
}

/// `records` with only their EVE fields (see [`run_with`]).
fn eve_fields(records: &[HttpRecord]) -> Vec<HttpRecord> {
    records
        .iter()
        .map(|r| {
            let mut r = HttpRecord {
                request_body_len: 0,
                trans_depth: 0,
                info_code: None,
                ..r.clone()
            };
            for f in [
                HttpField::StatusMsg,
                HttpField::ResponseProtocol,
                HttpField::Origin,
                HttpField::Username,
                HttpField::Proxied,
                HttpField::InfoMsg,
            ] {
                r.unset(f);
            }
            r
        })
        .collect()
}

fn run(steps: &[(Side, &[u8])]) -> Vec<HttpRecord> {
    run_with(HttpConfig::default(), steps).0
}

/// Same records when any one step is cut in two anywhere, or fed byte by byte.
fn assert_split_invariant(steps: &[(Side, &[u8])]) -> Vec<HttpRecord> {
    crate::l7::splits::assert_split_invariant(steps, run)
}

fn rec(method: &str, url: &str, status: Option<u16>, length: u64) -> HttpRecord {
    HttpRecord {
        status,
        length,
        ..HttpRecord::default()
    }
    .with(HttpField::Hostname, "h.example")
    .with(HttpField::Url, url)
    .with(HttpField::Method, method)
    .with(HttpField::Protocol, "HTTP/1.1")
}

#[test]
fn one_exchange_has_every_field() {
    let req = b"GET /a?b=c HTTP/1.1\r\nHost: h.example\r\nUser-Agent: tester/1\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello";
    let got = assert_split_invariant(&[(C, req), (S, resp)]);
    let want = rec("GET", "/a?b=c", Some(200), 5)
        .with(HttpField::UserAgent, "tester/1")
        .with(HttpField::ContentType, "text/html");
    assert_eq!(got, vec![want.clone()]);
    let json = serde_json::to_value(L7Record::Http(want)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"http": {
            "hostname": "h.example", "url": "/a?b=c", "http_method": "GET",
            "protocol": "HTTP/1.1", "status": 200, "http_user_agent": "tester/1",
            "http_content_type": "text/html", "length": 5
        }})
    );
}

/// Suricata's names: the Host header's host part as `hostname` and its
/// port as `http_port`, `Referer` as `http_refer`, `X-Forwarded-For` as
/// `xff`.
#[test]
fn host_port_referer_and_forwarded_for() {
    let req = b"GET / HTTP/1.1\r\nHost: h.example:8080\r\nReferer: http://r.example/x\r\n\
X-Forwarded-For: 192.0.2.9, 198.51.100.1\r\n\r\n";
    let resp = b"HTTP/1.1 204 No Content\r\n\r\n";
    let got = assert_split_invariant(&[(C, req), (S, resp)]);
    let json = serde_json::to_value(L7Record::Http(got[0].clone())).unwrap();
    let http = &json["http"];
    assert_eq!(http["hostname"], "h.example");
    assert_eq!(http["http_port"], 8080);
    assert_eq!(http["http_refer"], "http://r.example/x");
    assert_eq!(http["xff"], "192.0.2.9, 198.51.100.1");
    // The record keeps the header as sent (Zeek's http.log `host`).
    assert_eq!(got[0].hostname(), Some("h.example:8080"));
    for (value, host, port) in [
        ("[2001:db8::1]:81", "[2001:db8::1]", Some(81)),
        ("[2001:db8::1]", "[2001:db8::1]", None),
        ("2001:db8::1", "2001:db8::1", None),
        ("h.example:x", "h.example:x", None),
    ] {
        assert_eq!(super::split_host(value), (host, port), "{value}");
    }
}

#[test]
fn bytes_that_are_not_utf8_become_replacement_characters() {
    // httparse refuses the URI (not UTF-8): the lenient request line reads it.
    let req = b"GET /caf\xe9 HTTP/1.1\r\nHost: h.example\r\nUser-Agent: caf\xc3\xa9/1\r\n\
Referer: http://r.example/\xff\r\n\r\n";
    let resp = b"HTTP/1.1 200 \xe9t\xe9\r\nContent-Length: 0\r\n\r\n";
    let got = assert_split_invariant(&[(C, req), (S, resp)]);
    let want = rec("GET", "/caf\u{fffd}", Some(200), 0)
        .with(HttpField::UserAgent, "caf\u{e9}/1")
        .with(HttpField::Refer, "http://r.example/\u{fffd}");
    assert_eq!(got, vec![want]);
    // A reason phrase with obs-text is dropped, as httparse does.
    let (whole, _) = run_whole(HttpConfig::default(), &[(C, req), (S, resp)]);
    assert_eq!(whole[0].get(HttpField::StatusMsg), Some(""));
}

#[test]
fn pipelined_requests_pair_in_order_with_every_framing() {
    let reqs = b"GET /1 HTTP/1.1\r\nHost: h.example\r\n\r\n\
POST /2 HTTP/1.1\r\nHost: h.example\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
HEAD /3 HTTP/1.1\r\nHost: h.example\r\n\r\n\
PUT /4 HTTP/1.1\r\nHost: h.example\r\nContent-Length: 4\r\n\r\nwxyz";
    let resps = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2;x\r\nef\r\n0\r\nT: 1\r\n\r\n\
HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc\
HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n\
HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n";
    let got = assert_split_invariant(&[(C, reqs), (S, resps)]);
    assert_eq!(
        got,
        vec![
            rec("GET", "/1", Some(200), 6),
            rec("POST", "/2", Some(201), 3),
            rec("HEAD", "/3", Some(200), 0),
            rec("PUT", "/4", Some(204), 0),
        ]
    );
}

#[test]
fn zeek_fields_count_transactions_and_bodies() {
    let reqs = b"GET /1 HTTP/1.1\r\nHost: h.example\r\n\r\n\
POST /2 HTTP/1.1\r\nHost: h.example\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n\
PUT /3 HTTP/1.1\r\nHost: h.example\r\nContent-Length: 4\r\n\r\nwxyz";
    let resps = b"HTTP/1.0 200 Fine\r\nContent-Length: 2\r\n\r\nok\
HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n\
HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n\
HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n";
    let got = crate::l7::splits::assert_split_invariant(&[(C, reqs), (S, resps)], |steps| {
        run_whole(HttpConfig::default(), steps).0
    });
    let zeek: Vec<_> = got
        .iter()
        .map(|r| {
            (
                r.trans_depth,
                r.request_body_len,
                r.status_msg(),
                r.response_protocol(),
            )
        })
        .collect();
    assert_eq!(
        zeek,
        [
            (1, 0, Some("Fine"), Some("HTTP/1.0")),
            (2, 5, Some("Created"), Some("HTTP/1.1")),
            (3, 4, Some("Not Found"), Some("HTTP/1.1")),
            // A response without a request is a transaction of its own.
            (4, 0, Some("Oops"), Some("HTTP/1.1")),
        ]
    );
}

#[test]
fn continue_interim_response_is_skipped() {
    let head = b"POST /up HTTP/1.1\r\nHost: h.example\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    let steps: [(Side, &[u8]); 4] = [
        (C, head),
        (S, b"HTTP/1.1 100 Continue\r\n\r\n"),
        (C, b"abc"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ];
    let got = assert_split_invariant(&steps);
    assert_eq!(got, vec![rec("POST", "/up", Some(200), 2)]);
    assert_eq!(
        run_with(HttpConfig::default(), &steps).1.interim_responses,
        1
    );
}

/// The fields Zeek's `http_header` and `http_reply` handlers
/// (`base/protocols/http/main.zeek`) take from the request's headers and
/// the 1xx responses: `origin`, `username` of `Basic` credentials,
/// `proxied` (each `NAME -> value` of `HTTP::proxy_headers` once, the name
/// upper case), `info_code`/`info_msg` of the last 1xx response.
#[test]
fn zeek_request_fields_and_informational_responses() {
    // "user:pa:ss" in base64.
    let req = b"POST /up HTTP/1.1\r\nHost: h.example:8080\r\nOrigin: http://o.example\r\n\
Authorization: basic dXNlcjpwYTpzcw==\r\nVia: 1.1 proxy\r\nX-Forwarded-For: 192.0.2.9\r\n\
x-forwarded-for: 192.0.2.9\r\nProxy-Connection: keep-alive\r\nExpect: 100-continue\r\n\
Content-Length: 3\r\n\r\n";
    let steps: [(Side, &[u8]); 5] = [
        (C, req),
        (S, b"HTTP/1.1 100 Continue\r\n\r\n"),
        (S, b"HTTP/1.1 102 Processing\r\n\r\n"),
        (C, b"abc"),
        (
            S,
            b"HTTP/1.1 200 OK\r\nVia: 1.1 other\r\nContent-Length: 2\r\n\r\nok",
        ),
    ];
    let got = crate::l7::splits::assert_split_invariant(&steps, |steps| {
        run_whole(HttpConfig::default(), steps).0
    });
    let [r] = &got[..] else {
        panic!("one record: {got:?}")
    };
    assert_eq!(r.hostname(), Some("h.example:8080"));
    assert_eq!(r.origin(), Some("http://o.example"));
    assert_eq!(r.username(), Some("user"));
    assert_eq!(
        r.proxied().collect::<Vec<_>>(),
        [
            "VIA -> 1.1 proxy",
            "X-FORWARDED-FOR -> 192.0.2.9",
            "PROXY-CONNECTION -> keep-alive"
        ],
        "the request's only, each once"
    );
    assert_eq!((r.info_code, r.info_msg()), (Some(102), Some("Processing")));
    assert_eq!((r.status, r.status_msg()), (Some(200), Some("OK")));
    // A 101 is a 1xx response too.
    let (up, _) = run_whole(
        HttpConfig::default(),
        &[
            (
                C,
                b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
            ),
            (S, b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
        ],
    );
    let up: Vec<_> = up
        .iter()
        .map(|r| (r.status, r.info_code, r.info_msg()))
        .collect();
    assert_eq!(up, [(Some(101), Some(101), Some("Switching Protocols"))]);
}

/// Zeek reads only the `Basic` scheme followed by a space; credentials
/// without a `:`, or that its decoder rejects, give
/// `<problem-decoding> (VALUE)`.
#[test]
fn basic_credentials_as_zeek_reads_them() {
    for (value, want) in [
        ("Basic dXNlcjpwYXNz", Some("user")),
        ("BASIC  dXNlcjpwYXNz", Some("user")),
        ("Basic OnB3", Some("")),
        (
            "Basic dXNlcg==",
            Some("<problem-decoding> (Basic dXNlcg==)"),
        ),
        ("Basic dXNlcjpwYXNz=", Some("user")),
        ("Basic dXNlcjpwYXN", Some("user")),
        // Zeek's decoder fails on a character outside the alphabet.
        (
            "Basic dXNl*cjpwYXNz",
            Some("<problem-decoding> (Basic dXNl*cjpwYXNz)"),
        ),
        (
            "Basic dXNl=cjpwYXNz",
            Some("<problem-decoding> (Basic dXNl=cjpwYXNz)"),
        ),
        ("Basic", None),
        ("Basic\tdXNlcjpwYXNz", None),
        ("Bearer dXNlcjpwYXNz", None),
        ("Digest username=\"u\"", None),
    ] {
        for header in ["Authorization", "Proxy-Authorization"] {
            let req = format!("GET / HTTP/1.1\r\nHost: h\r\n{header}: {value}\r\n\r\n");
            let got = run_whole(HttpConfig::default(), &[(C, req.as_bytes())]).0;
            assert_eq!(got[0].username(), want, "{header}: {value}");
        }
    }
}

#[test]
fn close_delimited_body_and_unanswered_request_end_with_the_stream() {
    let reqs =
        b"GET /1 HTTP/1.1\r\nHost: h.example\r\n\r\nGET /2 HTTP/1.1\r\nHost: h.example\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\n\r\n0123456789";
    let got = assert_split_invariant(&[(C, reqs), (S, resp)]);
    assert_eq!(
        got,
        vec![rec("GET", "/1", Some(200), 10), rec("GET", "/2", None, 0)]
    );
    let (_, counters) = run_with(HttpConfig::default(), &[(C, reqs), (S, resp)]);
    assert_eq!(counters.unanswered_requests, 1);
}

#[test]
fn gap_inside_a_body_is_skipped() {
    let mut p = HttpParser::default();
    let mut out = Vec::new();
    p.feed(
        C,
        b"GET /1 HTTP/1.1\r\nHost: h.example\r\n\r\nGET /2 HTTP/1.1\r\nHost: h.example\r\n\r\n",
        &mut out,
    );
    p.feed(
        S,
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
        &mut out,
    );
    p.gap(S, 80, &mut out);
    p.feed(
        S,
        b"0123456789HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        &mut out,
    );
    assert_eq!(
        eve_fields(&out),
        vec![
            rec("GET", "/1", Some(200), 100),
            rec("GET", "/2", Some(404), 0)
        ]
    );
    assert_eq!(p.counters().gap_bytes_skipped, 80);
    assert_eq!(p.counters().resyncs, 0);
}

#[test]
fn gap_inside_a_head_resyncs_at_the_next_message() {
    let mut p = HttpParser::default();
    let mut out = Vec::new();
    p.feed(C, b"GET /1 HTTP/1.1\r\nHo", &mut out);
    p.gap(C, 50, &mut out);
    // The bytes after the gap end the lost head; a new request starts on the next line.
    p.feed(
        C,
        b"ost\r\n\r\nGET /2 HTTP/1.1\r\nHost: h.example\r\n\r\n",
        &mut out,
    );
    p.feed(S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &mut out);
    assert_eq!(eve_fields(&out), vec![rec("GET", "/2", Some(200), 0)]);
    assert_eq!(p.counters().resyncs, 1);
    // A gap at a message boundary resyncs at once on the next bytes.
    p.gap(S, 10, &mut out);
    p.feed(C, b"GET /3 HTTP/1.1\r\nHost: h.example\r\n\r\n", &mut out);
    p.feed(S, b"HTTP/1.1 304 Not Modified\r\n\r\n", &mut out);
    assert_eq!(
        eve_fields(&out).last(),
        Some(&rec("GET", "/3", Some(304), 0))
    );
    assert_eq!(p.counters().resyncs, 2);
}

#[test]
fn gap_past_a_body_emits_the_exchange_and_resyncs() {
    let mut p = HttpParser::default();
    let mut out = Vec::new();
    p.feed(
        C,
        b"GET /1 HTTP/1.1\r\nHost: h.example\r\n\r\nGET /2 HTTP/1.1\r\nHost: h.example\r\n\r\n",
        &mut out,
    );
    p.feed(
        S,
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab",
        &mut out,
    );
    p.gap(S, 30, &mut out);
    assert_eq!(eve_fields(&out), vec![rec("GET", "/1", Some(200), 2)]);
    p.feed(
        S,
        b"junk\r\nHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
        &mut out,
    );
    assert_eq!(
        eve_fields(&out).last(),
        Some(&rec("GET", "/2", Some(500), 0))
    );
    assert_eq!(p.counters().resyncs, 1);
}

#[test]
fn pending_queue_is_bounded_and_counted() {
    let config = HttpConfig {
        max_pending_requests: 2,
        ..HttpConfig::default()
    };
    let reqs = b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n";
    let mut p = HttpParser::new(config);
    let mut out = Vec::new();
    p.feed(C, reqs, &mut out);
    // The oldest is pushed out, unanswered, when the third arrives.
    let urls = |out: &[HttpRecord]| -> Vec<String> {
        out.iter()
            .map(|r| r.url().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(urls(&out), ["/1"]);
    p.end(S, &mut out);
    assert_eq!(urls(&out), ["/1", "/2", "/3"]);
    let c = p.counters();
    assert_eq!(c.requests, 3);
    assert_eq!(c.pending_evicted, 1);
    assert_eq!(c.unanswered_requests, 3);
}

#[test]
fn oversized_head_is_counted_and_the_next_message_parsed() {
    let config = HttpConfig {
        max_header_bytes: 64,
        ..HttpConfig::default()
    };
    let long = format!(
        "GET /{} HTTP/1.1\r\n\r\nGET /ok HTTP/1.1\r\n\r\n",
        "x".repeat(100)
    );
    let mut p = HttpParser::new(config);
    let mut out = Vec::new();
    for part in long.as_bytes().chunks(7) {
        p.feed(C, part, &mut out);
    }
    p.end(S, &mut out);
    assert_eq!(p.counters().header_overflows, 1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].url(), Some("/ok"));
}

#[test]
fn response_without_request_is_still_recorded() {
    let (out, counters) = run_with(
        HttpConfig::default(),
        &[
            (C, b"GET/ HTTP/1.1\r\n\r\n"),
            (S, b"HTTP/1.0 400 Bad Request\r\nContent-Length: 1\r\n\r\nx"),
        ],
    );
    assert_eq!(counters.not_http, 1);
    assert_eq!(counters.responses_without_request, 1);
    assert_eq!(
        eve_fields(&out),
        vec![HttpRecord {
            status: Some(400),
            length: 1,
            ..HttpRecord::default()
        }]
    );
}

#[test]
fn non_http_bytes_stop_the_side_and_upgrades_stop_the_flow() {
    let mut p = HttpParser::default();
    let mut out = Vec::new();
    p.feed(C, b"\x16\x03\x01\x00\x05hello", &mut out);
    p.feed(S, b"\x16\x03\x03\x00\x05hello", &mut out);
    assert!(p.is_done());
    assert_eq!(p.counters().not_http, 2);

    let mut p = HttpParser::default();
    p.feed(
        C,
        b"GET /ws HTTP/1.1\r\nHost: h.example\r\nUpgrade: websocket\r\n\r\n",
        &mut out,
    );
    p.feed(
        S,
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello",
        &mut out,
    );
    assert!(p.is_done());
    assert_eq!(eve_fields(&out), vec![rec("GET", "/ws", Some(101), 0)]);
    assert_eq!(p.counters().tunnels, 1);
}

fn get(url: &str) -> Vec<u8> {
    format!("GET {url} HTTP/1.1\r\nHost: h.example\r\n\r\n").into_bytes()
}

fn ok(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn a_hole_in_the_responses_stops_only_the_server_side() {
    let mut p = HttpParser::default();
    let mut out = Vec::new();
    p.feed(C, &get("/1"), &mut out);
    p.feed(S, &ok(200, "one"), &mut out);
    // /2's whole response and the head of /3's are lost; the client's
    // requests after the hole all arrive.
    p.feed(C, &get("/2"), &mut out);
    p.feed(C, &get("/3"), &mut out);
    p.gap(S, 120, &mut out);
    p.feed(S, b"dy of three\r\n", &mut out);
    p.feed(C, &get("/4"), &mut out);
    p.feed(S, &ok(404, ""), &mut out);
    p.feed(C, &get("/5"), &mut out);
    p.feed(S, &ok(200, "five"), &mut out);
    p.end(C, &mut out);
    p.end(S, &mut out);
    assert_eq!(
        eve_fields(&out),
        vec![
            rec("GET", "/1", Some(200), 3),
            rec("GET", "/2", None, 0),
            rec("GET", "/3", None, 0),
            rec("GET", "/4", Some(404), 0),
            rec("GET", "/5", Some(200), 4),
        ]
    );
    let c = p.counters();
    assert_eq!((c.requests, c.unanswered_requests, c.resyncs), (5, 2, 1));
}

#[test]
fn a_hole_in_the_requests_stops_only_the_client_side() {
    let mut p = HttpParser::default();
    let mut out = Vec::new();
    p.feed(C, &get("/1")[..10], &mut out);
    p.gap(C, 30, &mut out);
    p.feed(S, &ok(200, "one"), &mut out);
    p.feed(C, &get("/2"), &mut out);
    p.feed(S, &ok(201, "two"), &mut out);
    p.end(C, &mut out);
    p.end(S, &mut out);
    assert_eq!(
        eve_fields(&out),
        vec![
            HttpRecord {
                status: Some(200),
                length: 3,
                ..HttpRecord::default()
            },
            rec("GET", "/2", Some(201), 3),
        ]
    );
    assert_eq!(p.counters().responses_without_request, 1);
}

#[test]
fn a_pipelining_client_keeps_answers_in_order_after_a_hole() {
    let mut p = HttpParser::default();
    let mut out = Vec::new();
    p.feed(
        C,
        &[get("/1"), get("/2"), get("/3"), get("/4")].concat(),
        &mut out,
    );
    p.feed(S, &ok(200, "one"), &mut out);
    // /2's response is cut by a hole: the exchange in progress ends there,
    // the next response answers the oldest waiting request.
    p.feed(S, &ok(200, "two")[..38], &mut out);
    p.gap(S, 10, &mut out);
    p.feed(S, &ok(203, "three"), &mut out);
    p.end(S, &mut out);
    let got: Vec<(Option<&str>, Option<u16>)> = out.iter().map(|r| (r.url(), r.status)).collect();
    assert_eq!(
        got,
        [
            (Some("/1"), Some(200)),
            (Some("/2"), Some(200)),
            (Some("/3"), Some(203)),
            (Some("/4"), None),
        ]
    );
}

#[test]
fn a_reused_parser_is_a_fresh_one() {
    let config = HttpConfig::default();
    let mut p = HttpParser::new(config);
    let mut out = Vec::new();
    // Mid-flow: requests waiting, a response body in progress, a head cut
    // in the carry buffer, counters and flags set.
    p.feed(
        C,
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
        &mut out,
    );
    p.feed(
        S,
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        &mut out,
    );
    p.feed(C, b"POST /3 HTTP/1.1\r\nHo", &mut out);
    p.gap(S, 3, &mut out);
    p.reuse();
    assert_eq!(format!("{p:?}"), format!("{:?}", HttpParser::new(config)));
    let steps: [(Side, &[u8]); 2] = [
        (C, b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"),
        (S, b"HTTP/1.1 204 No Content\r\n\r\n"),
    ];
    let (mut reused, mut fresh) = (Vec::new(), Vec::new());
    let mut q = HttpParser::new(config);
    for (side, bytes) in steps {
        p.feed(side, bytes, &mut reused);
        q.feed(side, bytes, &mut fresh);
    }
    assert_eq!(reused, fresh);
    assert_eq!(p.counters(), q.counters());
    assert_eq!(reused.len(), 1);
}

/// One call on a parser: bytes or a gap of one side, or a side's end.
#[derive(Debug, Clone)]
enum Call {
    Feed(Side, Vec<u8>),
    Gap(Side, u64),
    End(Side),
}

fn apply(p: &mut HttpParser, calls: &[Call], out: &mut Vec<HttpRecord>) {
    for c in calls {
        match c {
            Call::Feed(side, bytes) => p.feed(*side, bytes, out),
            Call::Gap(side, len) => p.gap(*side, *len, out),
            Call::End(side) => p.end(*side, out),
        }
    }
}

/// Calls made of pieces of requests, responses (chunked, sized, upgrades)
/// and garbage, cut anywhere.
fn calls() -> impl proptest::strategy::Strategy<Value = Vec<Call>> {
    use proptest::prelude::*;
    const PIECES: [&[u8]; 9] = [
        b"GET /a HTTP/1.1\r\nHost: h:81\r\nUser-Agent: u\r\n\r\n",
        b"POST /b HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nwxyz",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"CONNECT h:443 HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x00\x05hello",
        b"garbage\r\n",
    ];
    let side = prop_oneof![Just(C), Just(S)];
    let call = prop_oneof![
        6 => (side.clone(), 0..PIECES.len(), 0usize..64, 0usize..64).prop_map(|(s, i, a, b)| {
            let piece = PIECES[i];
            let (from, to) = (a.min(piece.len()), (a + 1 + b).min(piece.len()));
            Call::Feed(s, piece[from.min(to)..to].to_vec())
        }),
        6 => (side.clone(), 0..PIECES.len()).prop_map(|(s, i)| Call::Feed(s, PIECES[i].to_vec())),
        1 => (side.clone(), 1u64..20).prop_map(|(s, n)| Call::Gap(s, n)),
        1 => side.prop_map(Call::End),
    ];
    proptest::collection::vec(call, 0..24)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 256,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Whatever a parser went through, once reused it parses the next flow
    /// as a new one does, and looks like one.
    #[test]
    fn reuse_after_any_calls_equals_a_fresh_parser(before in calls(), after in calls()) {
        let config = HttpConfig { max_header_bytes: 64, max_pending_requests: 2 };
        let mut p = HttpParser::new(config);
        apply(&mut p, &before, &mut Vec::new());
        p.reuse();
        proptest::prop_assert_eq!(format!("{p:?}"), format!("{:?}", HttpParser::new(config)));
        let mut q = HttpParser::new(config);
        let (mut reused, mut fresh) = (Vec::new(), Vec::new());
        apply(&mut p, &after, &mut reused);
        apply(&mut q, &after, &mut fresh);
        proptest::prop_assert_eq!(reused, fresh);
        proptest::prop_assert_eq!(p.counters(), q.counters());
        proptest::prop_assert_eq!(p.is_done(), q.is_done());
    }
}

proptest::proptest! {
    /// `Basic` credentials of any user name without `:` and any password
    /// give the user name back; any bytes after `Basic ` give a value
    /// without a panic.
    #[test]
    fn basic_credentials_give_the_user_name(
        user in "[ -9;-~]{0,60}",
        pass in "[ -~]{0,60}",
        junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
    ) {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let mut r = HttpRecord::default();
        r.set_username(format!("Basic {encoded}").as_bytes());
        proptest::prop_assert_eq!(r.username(), Some(user.as_str()));
        let mut value = b"Basic ".to_vec();
        value.extend_from_slice(&junk);
        r.set_username(&value);
        proptest::prop_assert!(r.username().is_some());
    }
}

/// `started` of the records of `steps`, each fed at its packet time.
fn started_times(steps: &[(u64, Side, &[u8])]) -> Vec<u64> {
    let mut p = HttpParser::default();
    let mut out = Vec::new();
    for (t, side, bytes) in steps {
        p.set_time(Timestamp(*t));
        p.feed(*side, bytes, &mut out);
    }
    p.end(C, &mut out);
    p.end(S, &mut out);
    out.iter().map(|r| r.started.0).collect()
}

#[test]
fn an_exchange_starts_with_the_packet_ending_its_first_line() {
    // Zeek stamps an http.log entry when the request line is read, however
    // many packets the rest of the head takes.
    let times = started_times(&[
        (1, C, b"GET /a HT"),
        (2, C, b"TP/1.1\r\nHost: h.example\r\n"),
        (3, C, b"User-Agent: u\r\n"),
        (4, C, b"\r\n"),
        (5, S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        (6, C, b"GET /b HTTP/1.1\r\n\r\n"),
        (7, S, b"HTTP/1.1 200 OK\r\n"),
        (8, S, b"Content-Length: 0\r\n\r\n"),
        // A response no request asked for: its status line's packet.
        (9, S, b"HTTP/1.1 204 No Content\r\n"),
        (10, S, b"\r\n"),
    ]);
    assert_eq!(times, [2, 6, 9]);
}

#[test]
fn a_line_that_was_no_head_leaves_no_start_behind() {
    // The line ending at 3 begins no head (a bad header follows); the
    // request the resync finds starts at 5.
    let times = started_times(&[
        (1, C, b"GET /ok HTTP/1.1\r\n\r\n"),
        (2, S, b"HTTP/1.1 204 No Content\r\n\r\n"),
        (3, C, b"GET /a HTTP/1.1\r\n"),
        (4, C, b"Bad Header Line\r\n"),
        (5, C, b"\r\nGET /b HTTP/1.1\r\n"),
        (6, C, b"\r\n"),
    ]);
    assert_eq!(times, [1, 5]);
}
