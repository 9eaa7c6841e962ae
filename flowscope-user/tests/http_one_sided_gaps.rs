//! A gap in one direction stops only that direction's message (issue 19):
//! a keep-alive connection of 1000 requests
//! (zeek__http_1000-requests-one-dropped-response.pcap) with segments of
//! one side dropped at test time, through the whole pipeline, against
//! tshark on the same edited file. Every request (and response) tshark
//! finds must be reported.

mod common;
mod l7_oracles;
mod pipeline_support;

use std::path::Path;

use common::capture_edit::edit_capture;
use common::temp::TempDir;
use flowscope::l7::{HttpRecord, L7Record};
use l7_oracles::{
    HTTP_REQUEST_FIELDS, HTTP_RESPONSE_FIELDS, PCAPS, check_http_rows, tshark_fields,
};
use pipeline_support::Outcome;

const CAPTURE: &str = "zeek__http_1000-requests-one-dropped-response.pcap";

/// The capture with every `nth` segment with payload sent from port
/// `from_port` dropped; our HTTP records and tshark's requests and
/// responses on the edited file.
fn drop_segments(
    tag: &str,
    from_port: u16,
    nth: usize,
) -> (Vec<HttpRecord>, (usize, usize), usize) {
    let dir = TempDir::new(tag);
    let path = dir.path().join("edited.pcap");
    let mut seen = 0;
    let dropped = edit_capture(&Path::new(PCAPS).join(CAPTURE), &path, |_, _, t| {
        if !t.is_some_and(|t| t.proto == 6 && t.src_port == from_port && t.payload_len > 0) {
            return true;
        }
        seen += 1;
        seen % nth != 0
    });
    let ours = Outcome::of(&path, false);
    let http: Vec<&HttpRecord> = ours.records(|r| match r {
        L7Record::Http(h) => Some(h),
        _ => None,
    });
    let requests = tshark_fields(&path, "http.request", &HTTP_REQUEST_FIELDS, &[]);
    let responses = tshark_fields(&path, "http.response", &HTTP_RESPONSE_FIELDS, &[]);
    let counts = check_http_rows(tag, &http, &requests, &responses);
    (http.into_iter().cloned().collect(), counts, dropped)
}

#[test]
fn requests_after_holes_in_the_responses_are_all_reported() {
    let (ours, (requests, responses), dropped) = drop_segments("gaps-server", 80, 7);
    assert!(dropped > 200, "{dropped} server segments dropped");
    assert_eq!(requests, 1000, "tshark still finds every request");
    assert!(responses < 1000, "tshark lost responses: {responses}");
    let reported = ours.iter().filter(|r| r.http_method().is_some()).count();
    assert_eq!(reported, 1000);
    // The requests whose responses fell into the holes are reported
    // unanswered; every other one has its status.
    let answered = ours.iter().filter(|r| r.status.is_some()).count();
    assert!(answered >= responses, "{answered} < {responses}");
}

#[test]
fn responses_after_holes_in_the_requests_are_all_reported() {
    let (ours, (requests, responses), dropped) = drop_segments("gaps-client", 44730, 9);
    assert!(dropped > 100, "{dropped} client segments dropped");
    assert!(requests < 1000, "tshark lost requests: {requests}");
    // The original capture already misses one response (its name says so).
    assert_eq!(responses, 999, "tshark still finds every response");
    assert!(ours.iter().filter(|r| r.status.is_some()).count() >= responses);
}
