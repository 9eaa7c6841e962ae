//! Work that yields nothing is skipped (issue 18): with a stream depth, a
//! TCP flow whose parser stopped, or a side past the depth, bypasses
//! reassembly and parsing; its segments are only counted. Connections
//! built byte by byte; the expected counts follow from the segments sent.

mod pipeline_support;

use flowscope::extract::{FiveTuple, FiveTupleKey};
use flowscope::l7::L7Record;
use flowscope::pipeline::{
    Carrier, FlowSummary, Pipeline, PipelineConfig, PipelineCounters, PipelineSink,
};
use flowscope::session::DriverConfig;
use flowscope::tracker::{EndReason, FlowRecord};
use flowscope::view::{LinkType, PacketView, Timestamp};
use pipeline_support::{ACK, Conn, HEADERS, PSH};

/// Keeps the L7 records and the ended flows' summaries.
#[derive(Default)]
struct Out {
    l7: Vec<L7Record>,
    summaries: Vec<FlowSummary>,
}

impl PipelineSink<FiveTupleKey> for Out {
    fn l7(&mut self, _: &FlowRecord<FiveTupleKey>, _: Timestamp, record: L7Record) {
        self.l7.push(record);
    }

    fn flow_ended(
        &mut self,
        _: &FlowRecord<FiveTupleKey>,
        _: EndReason,
        s: Option<&FlowSummary>,
        _: Option<&Carrier>,
    ) {
        self.summaries.extend(s.copied());
    }
}

/// `frames` through a pipeline with `config`, 1 ms apart.
fn run(config: PipelineConfig, frames: &[Vec<u8>]) -> (Out, PipelineCounters) {
    let mut p = Pipeline::new(FiveTuple::bidirectional(), config);
    let mut out = Out::default();
    for (i, f) in frames.iter().enumerate() {
        let view = PacketView {
            frame: f,
            timestamp: Timestamp(1_700_000_000_000_000_000 + i as u64 * 1_000_000),
            link: LinkType::Ethernet,
            orig_len: f.len() as u32,
            hint: None,
        };
        p.process(view, &mut out);
    }
    p.finish(&mut out);
    (out, p.counters())
}

fn with_depth(depth: Option<u64>) -> PipelineConfig {
    PipelineConfig {
        stream_depth: depth,
        ..PipelineConfig::default()
    }
}

/// A connection from port `client_port` to `server_port` after its
/// handshake: the connection, its frames, and the next sequence number of
/// the client and of the server.
fn opened(client_port: u16, server_port: u16) -> (Conn, Vec<Vec<u8>>, u32, u32) {
    let c = Conn {
        client_port,
        server_port,
        client_isn: 1_000,
        server_isn: 90_000,
    };
    (c, c.handshake(), c.client_isn + 1, c.server_isn + 1)
}

/// A connection to port 5999 whose first client segment (100 bytes) fills
/// the probe window with bytes no parser recognises, then `more` segments
/// of `len` bytes each way (server first), in order, each acknowledging
/// the other side.
fn unrecognised(more: usize, len: usize) -> Vec<Vec<u8>> {
    let (c, mut frames, mut cs, mut ss) = opened(40_000, 5999);
    let first = [0x7f_u8; 100];
    frames.push(c.segment(true, cs, ss, PSH | ACK, &first));
    cs += 100;
    let payload = vec![0x7e_u8; len];
    for _ in 0..more {
        frames.push(c.segment(false, ss, cs, PSH | ACK, &payload));
        ss += len as u32;
        frames.push(c.segment(true, cs, ss, PSH | ACK, &payload));
        cs += len as u32;
    }
    frames
}

#[test]
fn a_flow_no_parser_recognised_bypasses_reassembly_after_the_probe_window() {
    let frames = unrecognised(5, 300);
    let (out, c) = run(PipelineConfig::default(), &frames);
    assert_eq!(out.summaries.len(), 1);
    assert_eq!(out.summaries[0].app_proto(), Some("failed"));
    // The client's window rejected, the driver probes the server's first
    // bytes too; once they are rejected as well, everything after them
    // bypasses: the client's 5 segments of 300 bytes and the server's 4
    // later ones.
    let r = &c.reassembly;
    assert_eq!(r.bypassed_segments, [5, 4]);
    assert_eq!(r.bypassed_bytes, [1500, 1200]);
    assert_eq!(c.tracker.reassembly_bypassed_bytes, [1500, 1200]);
    // Reassembly saw only each side's first segment.
    let tcp = out.summaries[0].tcp.unwrap();
    assert_eq!(tcp[0].counters.bytes_delivered, 100);
    assert_eq!(tcp[1].counters.bytes_delivered, 300);
    // The tracker still counted every payload byte.
    assert_eq!(
        c.tracker.packets_matched,
        frames.len() as u64,
        "every frame in the flow"
    );
}

#[test]
fn without_a_depth_whole_streams_are_reassembled() {
    let frames = unrecognised(5, 300);
    let (out, c) = run(with_depth(None), &frames);
    assert_eq!(out.summaries[0].app_proto(), Some("failed"));
    assert_eq!(c.reassembly.bypassed_segments, [0, 0]);
    let tcp = out.summaries[0].tcp.unwrap();
    assert_eq!(tcp[0].counters.bytes_delivered, 100 + 1500);
    assert_eq!(tcp[1].counters.bytes_delivered, 1500);
}

/// An HTTP exchange: a GET, and a 200 response whose 4000-byte body comes
/// in `body_segments` segments.
fn http_exchange(body_segments: usize) -> Vec<Vec<u8>> {
    let (c, mut frames, mut cs, mut ss) = opened(40_001, 80);
    let req = b"GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n";
    frames.push(c.segment(true, cs, ss, PSH | ACK, req));
    cs += req.len() as u32;
    let per = 4000 / body_segments;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        per * body_segments
    );
    frames.push(c.segment(false, ss, cs, PSH | ACK, head.as_bytes()));
    ss += head.len() as u32;
    for _ in 0..body_segments {
        frames.push(c.segment(false, ss, cs, PSH | ACK, &vec![b'x'; per]));
        ss += per as u32;
    }
    frames.push(c.segment(true, cs, ss, ACK, b""));
    frames
}

#[test]
fn a_side_past_the_stream_depth_is_only_counted() {
    // Response head (41 bytes) then 10 segments of 400: with a depth of
    // 1000 bytes, the side has delivered 41 + 3 * 400 = 1241 >= 1000 after
    // the third body segment, so the last 7 (2800 bytes) bypass.
    let frames = http_exchange(10);
    let config = PipelineConfig {
        stream_depth: Some(1000),
        l7: Some(flowscope::pipeline::L7Config {
            driver: DriverConfig {
                budget_bytes: 1 << 20,
            },
            ..Default::default()
        }),
        ..PipelineConfig::default()
    };
    let (out, c) = run(config, &frames);
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n".len() as u64;
    let r = &c.reassembly;
    assert_eq!(r.bypassed_segments, [0, 7]);
    assert_eq!(r.bypassed_bytes, [0, 7 * 400]);
    let tcp = out.summaries[0].tcp.unwrap();
    assert_eq!(tcp[1].counters.bytes_delivered, head + 3 * 400);
    // The exchange is still reported, request and response.
    let http: Vec<_> = out
        .l7
        .iter()
        .filter_map(|r| match r {
            L7Record::Http(h) => Some(h),
            _ => None,
        })
        .collect();
    assert_eq!(http.len(), 1);
    assert_eq!(http[0].http_method(), Some("GET"));
    assert_eq!(http[0].status, Some(200));

    // The default depth (1 MiB) is far above this flow: nothing bypassed.
    let (_, c) = run(PipelineConfig::default(), &frames);
    assert_eq!(c.reassembly.bypassed_segments, [0, 0]);
    // Every frame was a full frame of HEADERS plus payload.
    assert!(frames.iter().all(|f| f.len() >= HEADERS));
}

/// `flowscope read`'s summary line for bypassed segments, if any.
fn read_bypassed(args: &[&str]) -> Option<String> {
    let pcap = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/pcaps/ndpi__tls_long_cert.pcap"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .args(["read", "--workers", "1", "-o", "eve:/dev/null"])
        .args(args)
        .arg(pcap)
        .output()
        .expect("start flowscope");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| l.starts_with("tcp bypassed"))
        .map(str::to_owned)
}

#[test]
fn the_cli_reports_bypassed_segments_and_takes_the_depth() {
    // The same capture through the library with the default depth: the
    // TLS parser is done after the handshake, the rest is bypassed.
    let mut reader = flowscope::pcap::PcapReader::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/pcaps/ndpi__tls_long_cert.pcap"
    ))
    .expect("open capture");
    let mut p = Pipeline::new(FiveTuple::bidirectional(), PipelineConfig::default());
    let mut out = Out::default();
    while let Some(view) = reader.next_packet().expect("read") {
        p.process(view, &mut out);
    }
    p.finish(&mut out);
    let r = p.counters().reassembly;
    let (segments, bytes): (u64, u64) = (
        r.bypassed_segments.iter().sum(),
        r.bypassed_bytes.iter().sum(),
    );
    assert!(segments > 0 && bytes > 0);
    assert_eq!(
        read_bypassed(&[]).as_deref(),
        Some(
            format!(
                "tcp bypassed (stream depth or parser done): {segments} segments, {bytes} bytes"
            )
            .as_str()
        )
    );
    // Whole streams: nothing bypassed, from the flag or the config file.
    assert_eq!(read_bypassed(&["--stream-depth", "0"]), None);
    let dir = std::env::temp_dir().join(format!("fs-bypass-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let conf = dir.join("c.toml");
    std::fs::write(&conf, "stream_depth = 0\n").expect("write config");
    let from_file = read_bypassed(&["--config", conf.to_str().expect("utf-8 path")]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(from_file, None);
}
