//! A QUIC flow costs its parser nothing once the ClientHello is read: the
//! 1-RTT packets that follow allocate nothing through the whole pipeline,
//! counted by a global allocator, and the flow ends with its parser done.
//!
//! This binary holds only this test so no other test allocates concurrently.

mod alloc_support;
mod pipeline_support;

use flowscope::extract::FiveTuple;
use flowscope::l7::L7Record;
use flowscope::pcap::PcapReader;
use flowscope::pipeline::{Pipeline, PipelineConfig};
use flowscope::{LinkType, PacketView, Timestamp};
use pipeline_support::Records;

const CAPTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/pcaps/ndpi__quic-29.pcap"
);

#[test]
fn packets_after_the_client_hello_allocate_nothing() {
    let mut reader = PcapReader::open(CAPTURE).expect("capture");
    let mut frames: Vec<(LinkType, Vec<u8>)> = Vec::new();
    while let Some(p) = reader.next_packet().expect("packet") {
        frames.push((p.link, p.frame.to_vec()));
    }
    // Frames 10 to 15 (tshark's numbering) are 1-RTT packets, both ways.
    let one_rtt = &frames[9..];
    let mut pipeline = Pipeline::new(FiveTuple::bidirectional(), PipelineConfig::default());
    let mut sink = Records::default();
    let mut clock = 1_700_000_000_000_000_000u64;
    let mut feed = |frames: &[(LinkType, Vec<u8>)], pipeline: &mut Pipeline<FiveTuple>| {
        for (link, frame) in frames {
            clock += 1_000;
            let view = PacketView {
                frame,
                timestamp: Timestamp(clock),
                link: *link,
                orig_len: frame.len() as u32,
                hint: None,
            };
            pipeline.process(view, &mut sink);
        }
    };
    feed(&frames, &mut pipeline);
    for _ in 0..50 {
        feed(one_rtt, &mut pipeline);
    }
    let before = alloc_support::allocations();
    for _ in 0..500 {
        feed(one_rtt, &mut pipeline);
    }
    let allocs = alloc_support::allocations() - before;
    assert_eq!(
        allocs,
        0,
        "{allocs} allocations over {} 1-RTT packets",
        500 * one_rtt.len()
    );
    pipeline.finish(&mut sink);
    let [L7Record::Quic(q)] = sink.l7.as_slice() else {
        panic!("one quic record expected: {:?}", sink.l7);
    };
    assert_eq!(q.sni(), Some("localhost"));
    let counters = pipeline.counters().datagrams;
    assert_eq!(counters.parsers.quic.client_hellos, 1);
    // The parser stopped at the hello: only the first Initial (1252 bytes
    // of UDP payload) reached it.
    assert_eq!(counters.bytes_parsed.iter().sum::<u64>(), 1252);
    assert_eq!(sink.ended, 1);
}
