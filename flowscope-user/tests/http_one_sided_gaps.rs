//! A gap in one direction stops only that direction's message (issue 19):
//! a keep-alive connection of 1000 requests
//! (zeek__http_1000-requests-one-dropped-response.pcap) with segments of
//! one side dropped at test time, through the whole pipeline, against
//! tshark on the same edited file. Every request (and response) tshark
//! finds must be reported.

mod common;
mod l7_oracles;

use std::path::Path;

use common::capture_edit::edit_capture;
use common::temp::TempDir;
use flowscope::extract::{FiveTuple, FiveTupleKey};
use flowscope::l7::{HttpRecord, L7Record};
use flowscope::offline::process_capture;
use flowscope::pcap::PcapReader;
use flowscope::pipeline::{FlowSummary, Pipeline, PipelineConfig, PipelineSink};
use flowscope::tracker::{EndReason, FlowRecord};
use flowscope::view::Timestamp;
use l7_oracles::{
    HTTP_REQUEST_FIELDS, HTTP_RESPONSE_FIELDS, PCAPS, check_http_rows, tshark_fields,
};

const CAPTURE: &str = "zeek__http_1000-requests-one-dropped-response.pcap";

#[derive(Default)]
struct Http(Vec<HttpRecord>);

impl PipelineSink<FiveTupleKey> for Http {
    fn l7(&mut self, _: &FlowRecord<FiveTupleKey>, _: Timestamp, record: L7Record) {
        if let L7Record::Http(h) = record {
            self.0.push(h);
        }
    }

    fn flow_ended(&mut self, _: &FlowRecord<FiveTupleKey>, _: EndReason, _: Option<&FlowSummary>) {}
}

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
    let mut reader = PcapReader::open(&path).expect("edited capture");
    let mut pipeline = Pipeline::new(FiveTuple::bidirectional(), PipelineConfig::default());
    let mut ours = Http::default();
    process_capture(&mut reader, &mut pipeline, &mut ours).expect("read to the end");
    let requests = tshark_fields(&path, "http.request", &HTTP_REQUEST_FIELDS, &[]);
    let responses = tshark_fields(&path, "http.response", &HTTP_RESPONSE_FIELDS, &[]);
    let counts = check_http_rows(
        tag,
        &ours.0.iter().collect::<Vec<_>>(),
        &requests,
        &responses,
    );
    (ours.0, counts, dropped)
}

#[test]
fn requests_after_holes_in_the_responses_are_all_reported() {
    let (ours, (requests, responses), dropped) = drop_segments("gaps-server", 80, 7);
    assert!(dropped > 200, "{dropped} server segments dropped");
    assert_eq!(requests, 1000, "tshark still finds every request");
    assert!(responses < 1000, "tshark lost responses: {responses}");
    let reported = ours.iter().filter(|r| r.http_method.is_some()).count();
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
