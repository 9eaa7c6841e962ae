//! Zero allocations per in-order TCP segment in steady state through the
//! whole pipeline (tracker, reassembly, session driver, HTTP parser),
//! counted by a global allocator.
//!
//! This binary holds only this test so no other test allocates concurrently.

mod alloc_support;
mod pipeline_support;

use flowscope::extract::{FiveTuple, FiveTupleKey};
use flowscope::l7::L7Record;
use flowscope::pipeline::{Pipeline, PipelineConfig, PipelineSink};
use pipeline_support::{ACK, Conn, HEADERS, PSH, Records};

/// Body bytes per server segment.
const MSS: usize = 1000;

fn feed(
    pipeline: &mut Pipeline<FiveTuple>,
    frame: &[u8],
    clock: &mut u64,
    sink: &mut impl PipelineSink<FiveTupleKey>,
) {
    *clock += 1_000;
    let view = pipeline_support::view(frame, *clock);
    // Frames alternate between the one-frame entry (offline) and the batch
    // entry (live workers), so that both are counted.
    if (*clock / 1_000).is_multiple_of(2) {
        pipeline.process(view, sink);
    } else {
        pipeline.process_batch(&[view], sink);
    }
}

#[test]
fn in_order_segments_of_a_long_http_response_allocate_nothing() {
    let conn = Conn {
        client_port: 40_000,
        server_port: 80,
        client_isn: 1_000,
        server_isn: 7_000_000,
    };
    let mut pipeline = Pipeline::new(FiveTuple::bidirectional(), PipelineConfig::default());
    let mut sink = Records::default();
    let mut clock = 1_700_000_000_000_000_000u64;
    for f in conn.handshake() {
        feed(&mut pipeline, &f, &mut clock, &mut sink);
    }
    let request = b"GET /big HTTP/1.1\r\nHost: example.org\r\nUser-Agent: alloc-test\r\n\r\n";
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
Content-Length: 100000000\r\n\r\n";
    let mut client_seq = conn.client_isn.wrapping_add(1);
    let mut server_seq = conn.server_isn.wrapping_add(1);
    let f = conn.segment(true, client_seq, server_seq, PSH | ACK, request);
    feed(&mut pipeline, &f, &mut clock, &mut sink);
    client_seq = client_seq.wrapping_add(request.len() as u32);
    let f = conn.segment(false, server_seq, client_seq, PSH | ACK, head);
    feed(&mut pipeline, &f, &mut clock, &mut sink);
    server_seq = server_seq.wrapping_add(head.len() as u32);

    // Two frame buffers, rewritten in place: building them allocates nothing.
    let body = [b'x'; MSS];
    let mut data = Vec::with_capacity(HEADERS + MSS);
    let mut ack = Vec::with_capacity(HEADERS);
    let mut segments =
        |n: usize, pipeline: &mut Pipeline<FiveTuple>, clock: &mut u64, sink: &mut Records| {
            for i in 0..n {
                conn.write(&mut data, false, server_seq, client_seq, ACK, &body);
                feed(pipeline, &data, clock, sink);
                server_seq = server_seq.wrapping_add(MSS as u32);
                if i % 2 == 1 {
                    conn.write(&mut ack, true, client_seq, server_seq, ACK, b"");
                    feed(pipeline, &ack, clock, sink);
                }
            }
        };
    // Warm-up, then the counted segments; 800 kB in all stays under the
    // default 1 MiB parser budget, so the parser is fed throughout.
    let (warm, counted) = (200, 600);
    segments(warm, &mut pipeline, &mut clock, &mut sink);
    let before = alloc_support::allocations();
    segments(counted, &mut pipeline, &mut clock, &mut sink);
    let allocs = alloc_support::allocations() - before;
    assert_eq!(
        allocs, 0,
        "{allocs} allocations over {counted} in-order segments"
    );

    // The parser saw every body byte: the exchange ends with them all.
    assert!(sink.l7.is_empty());
    pipeline.finish(&mut sink);
    let [L7Record::Http(h)] = sink.l7.as_slice() else {
        panic!("one HTTP record expected: {:?}", sink.l7);
    };
    assert_eq!(h.http_method(), Some("GET"));
    assert_eq!(h.status, Some(200));
    assert_eq!(h.length, ((warm + counted) * MSS) as u64);
}
