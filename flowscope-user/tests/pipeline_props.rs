//! Property tests of the whole pipeline: any split of a connection's two
//! byte streams into TCP segments, in any order within each direction and
//! with any segments duplicated, yields the same L7 records as the streams
//! sent in order in full-size segments. HTTP exchanges are generated (and
//! the in-order records checked against what was generated); TLS streams
//! are those of a real capture.

mod pipeline_support;

use std::collections::HashMap;
use std::sync::OnceLock;

use flowscope::Timestamp;
use flowscope::extract::{FiveTuple, FiveTupleKey};
use flowscope::l7::{HttpField, HttpRecord, L7Record};
use flowscope::pcap::PcapReader;
use flowscope::pipeline::{Carrier, FlowSummary, Pipeline, PipelineConfig, PipelineSink};
use flowscope::reassembly::{Delivery, ReassemblyConfig};
use flowscope::session::Side;
use flowscope::tracker::{EndReason, FlowRecord};
use pipeline_support::{ACK, Conn, FIN, PSH, Records};
use proptest::prelude::*;

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

const CONN: Conn = Conn {
    client_port: 40_000,
    server_port: 80,
    client_isn: 0xffff_f000, // the client's sequence numbers wrap
    server_isn: 3_000_000,
};

/// How one direction is cut and sent.
#[derive(Debug, Clone)]
struct SidePlan {
    /// Segment sizes, used in turn until the stream is cut.
    sizes: Vec<usize>,
    /// Sort keys, used in turn: segments go out by key (stable).
    keys: Vec<u8>,
    /// Used in turn: a segment is sent twice when set.
    dups: Vec<bool>,
}

impl SidePlan {
    /// Full-size segments, in order, once.
    fn in_order() -> Self {
        Self {
            sizes: vec![1460],
            keys: vec![0],
            dups: vec![false],
        }
    }

    /// `(sequence number, payload)` of every segment to send, in order.
    fn segments<'a>(&self, stream: &'a [u8], first_seq: u32) -> Vec<(u32, &'a [u8])> {
        let mut cut = Vec::new();
        let mut at = 0;
        for &n in self.sizes.iter().cycle() {
            if at >= stream.len() {
                break;
            }
            let end = (at + n.max(1)).min(stream.len());
            cut.push((first_seq.wrapping_add(at as u32), &stream[at..end]));
            at = end;
        }
        let mut order: Vec<usize> = (0..cut.len()).collect();
        order.sort_by_key(|&i| self.keys[i % self.keys.len()]);
        let mut out = Vec::with_capacity(cut.len() * 2);
        for (j, &i) in order.iter().enumerate() {
            out.push(cut[i]);
            if self.dups[j % self.dups.len()] {
                out.push(cut[i]);
            }
        }
        out
    }
}

fn side_plan() -> impl Strategy<Value = SidePlan> {
    (
        prop::collection::vec(prop_oneof![1usize..8, 1usize..1460], 1..16),
        prop::collection::vec(any::<u8>(), 1..32),
        prop::collection::vec(prop::bool::weighted(0.1), 1..32),
    )
        .prop_map(|(sizes, keys, dups)| SidePlan { sizes, keys, dups })
}

/// Handshake, every client segment (by `client`'s plan), every server
/// segment (by `server`'s), then both FINs; the L7 records.
fn run(
    client: &[u8],
    server: &[u8],
    client_plan: &SidePlan,
    server_plan: &SidePlan,
) -> Vec<L7Record> {
    let c0 = CONN.client_isn.wrapping_add(1);
    let s0 = CONN.server_isn.wrapping_add(1);
    let c_end = c0.wrapping_add(client.len() as u32);
    let s_end = s0.wrapping_add(server.len() as u32);
    let mut frames = CONN.handshake();
    for (seq, p) in client_plan.segments(client, c0) {
        frames.push(CONN.segment(true, seq, s0, PSH | ACK, p));
    }
    for (seq, p) in server_plan.segments(server, s0) {
        frames.push(CONN.segment(false, seq, c_end, PSH | ACK, p));
    }
    frames.push(CONN.segment(true, c_end, s_end, FIN | ACK, b""));
    frames.push(CONN.segment(false, s_end, c_end.wrapping_add(1), FIN | ACK, b""));
    frames.push(CONN.segment(true, c_end.wrapping_add(1), s_end.wrapping_add(1), ACK, b""));

    // Caps are another test's concern: here a side may hold its whole
    // stream out of order (one byte in two is the worst case: a run per
    // byte).
    // Whole streams: no stream depth, no bypass once the parser is done.
    let config = PipelineConfig {
        reassembly: ReassemblyConfig {
            max_side_bytes: 64 << 20,
            ..ReassemblyConfig::default()
        },
        stream_depth: None,
        ..PipelineConfig::default()
    };
    let mut pipeline = Pipeline::new(FiveTuple::bidirectional(), config);
    let mut sink = Records::default();
    for (i, frame) in frames.iter().enumerate() {
        let ts = 1_700_000_000_000_000_000 + i as u64 * 1_000;
        pipeline.process(pipeline_support::view(frame, ts), &mut sink);
    }
    pipeline.finish(&mut sink);
    assert_eq!(sink.ended, 1, "one flow");
    let gaps = pipeline.counters().reassembly.sides.map(|s| s.gap_bytes);
    assert_eq!(gaps, [0, 0], "every byte delivered");
    // An HTTP record's start is the time of the segment that completed its
    // request line, which the segmentation decides (`zeek_logs` holds
    // it to tshark's): within the capture, then left out.
    let times = 1_700_000_000_000_000_000..1_700_000_000_000_000_000 + frames.len() as u64 * 1_000;
    let mut records = sink.l7;
    for r in &mut records {
        if let L7Record::Http(h) = r {
            assert!(times.contains(&h.started.0), "{:?}", h.started);
            h.started = Timestamp(0);
        }
    }
    records
}

/// One generated HTTP exchange.
#[derive(Debug, Clone)]
struct Exchange {
    post: bool,
    path: String,
    request_body: usize,
    status: u16,
    body: usize,
    chunked: bool,
}

fn exchange() -> impl Strategy<Value = Exchange> {
    (
        any::<bool>(),
        "[a-z0-9]{1,12}",
        0usize..300,
        prop::sample::select(vec![200u16, 204, 301, 404, 500]),
        0usize..5000,
        any::<bool>(),
    )
        .prop_map(
            |(post, path, request_body, status, body, chunked)| Exchange {
                post,
                path: format!("/{path}"),
                request_body,
                status,
                body: if status == 204 { 0 } else { body },
                chunked: chunked && status != 204,
            },
        )
}

/// The client's and the server's streams of `exchanges`.
fn http_streams(exchanges: &[Exchange]) -> (Vec<u8>, Vec<u8>) {
    let (mut client, mut server) = (Vec::new(), Vec::new());
    for e in exchanges {
        let method = if e.post { "POST" } else { "GET" };
        client.extend_from_slice(
            format!(
                "{method} {} HTTP/1.1\r\nHost: example.org\r\nUser-Agent: props/1\r\n",
                e.path
            )
            .as_bytes(),
        );
        if e.post {
            client.extend_from_slice(format!("Content-Length: {}\r\n", e.request_body).as_bytes());
        }
        client.extend_from_slice(b"\r\n");
        if e.post {
            client.extend(std::iter::repeat_n(b'q', e.request_body));
        }
        server.extend_from_slice(
            format!("HTTP/1.1 {} X\r\nContent-Type: text/plain\r\n", e.status).as_bytes(),
        );
        let body: Vec<u8> = (0..e.body).map(|i| b'a' + (i % 26) as u8).collect();
        if e.chunked {
            server.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for chunk in body.chunks(700) {
                server.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                server.extend_from_slice(chunk);
                server.extend_from_slice(b"\r\n");
            }
            server.extend_from_slice(b"0\r\n\r\n");
        } else if e.status == 204 {
            server.extend_from_slice(b"\r\n");
        } else {
            server.extend_from_slice(format!("Content-Length: {}\r\n\r\n", e.body).as_bytes());
            server.extend_from_slice(&body);
        }
    }
    (client, server)
}

/// Sends the ended flow's streams per (flow, side).
#[derive(Default)]
struct Streams {
    data: HashMap<(u64, usize), (Vec<u8>, u64)>,
}

impl PipelineSink<FiveTupleKey> for Streams {
    fn l7(&mut self, _: &FlowRecord<FiveTupleKey>, _: Timestamp, _: L7Record) {}

    fn stream(&mut self, flow: &FlowRecord<FiveTupleKey>, side: Side, d: Delivery<'_>) {
        let s = self.data.entry((flow.flow_id, side.index())).or_default();
        match d {
            Delivery::Data(b) => s.0.extend_from_slice(b),
            Delivery::Gap(n) => s.1 += n,
        }
    }

    fn flow_ended(
        &mut self,
        _: &FlowRecord<FiveTupleKey>,
        _: EndReason,
        _: Option<&FlowSummary>,
        _: Option<&Carrier>,
    ) {
    }
}

/// Client and server streams of the TLS connection of
/// `ndpi__tls_long_cert.pcap` (one connection, no bytes missing).
fn tls_streams() -> &'static (Vec<u8>, Vec<u8>) {
    static STREAMS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    STREAMS.get_or_init(|| {
        let path = format!("{PCAPS}/ndpi__tls_long_cert.pcap");
        let mut reader = PcapReader::open(path).expect("open capture");
        let whole = PipelineConfig {
            stream_depth: None,
            ..PipelineConfig::default()
        };
        let mut pipeline = Pipeline::new(FiveTuple::bidirectional(), whole);
        let mut sink = Streams::default();
        while let Some(view) = reader.next_packet().expect("capture reads") {
            pipeline.process(view, &mut sink);
        }
        pipeline.finish(&mut sink);
        let flows: Vec<u64> = sink.data.keys().map(|k| k.0).collect();
        let id = flows[0];
        assert!(flows.iter().all(|&f| f == id), "one TCP connection");
        let client = sink.data.remove(&(id, 0)).unwrap_or_default();
        let server = sink.data.remove(&(id, 1)).unwrap_or_default();
        assert_eq!((client.1, server.1), (0, 0), "no gaps");
        (client.0, server.0)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn http_records_do_not_depend_on_segmentation(
        exchanges in prop::collection::vec(exchange(), 1..5),
        client_plan in side_plan(),
        server_plan in side_plan(),
    ) {
        let (client, server) = http_streams(&exchanges);
        let base = run(&client, &server, &SidePlan::in_order(), &SidePlan::in_order());
        // The in-order records are what was generated.
        let want: Vec<L7Record> = exchanges
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut r = HttpRecord::default();
                r.status = Some(e.status);
                r.length = e.body as u64;
                r.request_body_len = if e.post { e.request_body as u64 } else { 0 };
                r.trans_depth = i as u32 + 1;
                L7Record::Http(
                    r.with(HttpField::Hostname, "example.org")
                    .with(HttpField::Url, &e.path)
                    .with(HttpField::Method, if e.post { "POST" } else { "GET" })
                    .with(HttpField::Protocol, "HTTP/1.1")
                    .with(HttpField::UserAgent, "props/1")
                    .with(HttpField::ContentType, "text/plain")
                    .with(HttpField::StatusMsg, "X")
                    .with(HttpField::ResponseProtocol, "HTTP/1.1"),
                )
            })
            .collect();
        prop_assert_eq!(&base, &want);
        let got = run(&client, &server, &client_plan, &server_plan);
        prop_assert_eq!(got, base);
    }

    #[test]
    fn tls_records_do_not_depend_on_segmentation(
        client_plan in side_plan(),
        server_plan in side_plan(),
    ) {
        let (client, server) = tls_streams();
        let base = run(client, server, &SidePlan::in_order(), &SidePlan::in_order());
        prop_assert!(
            base.iter().any(|r| matches!(r, L7Record::Tls(t) if t.sni().is_some() && t.ja3s().is_some())),
            "{:?}", base
        );
        let got = run(client, server, &client_plan, &server_plan);
        prop_assert_eq!(got, base);
    }
}
