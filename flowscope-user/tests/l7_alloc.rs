//! Zero allocations per L7 record in steady state: HTTP exchanges of a kept
//! alive connection go through a worker (tracker, reassembly, HTTP parser)
//! and the writer stage (EVE and Zeek's http.log to files), counted by a
//! global allocator. Each record's text buffer returns to the worker once
//! written: inline (`read --workers 1`) and through the record ring, whose
//! writer end is drained on the same thread so that every allocation is
//! counted.
//!
//! This binary holds only this test so no other test allocates concurrently.

mod alloc_support;
mod common;
mod pipeline_support;

use std::io::Write as _;
use std::path::Path;

use common::temp::TempDir;
use flowscope::extract::FiveTuple;
use flowscope::output::zeek::ZeekFormat;
use flowscope::output::{FileOptions, OutputSpec, Outputs};
use flowscope::pipeline::PipelineConfig;
use flowscope::runtime::{
    Backpressure, FlowWorker, InlineOut, RecordOut, WorkerConfig, WriterEnd, rings,
};
use pipeline_support::{ACK, Conn, PSH};

/// Exchanges before counting (the spares fill, buffers reach their size),
/// then counted.
const WARM: u32 = 300;
const COUNTED: u32 = 500;

/// A kept-alive connection's client and server, one exchange at a time.
struct Session {
    conn: Conn,
    client_seq: u32,
    server_seq: u32,
    clock: u64,
    frame: Vec<u8>,
    payload: Vec<u8>,
}

impl Session {
    fn new() -> Self {
        let conn = Conn {
            client_port: 40_001,
            server_port: 80,
            client_isn: 5_000,
            server_isn: 9_000_000,
        };
        Self {
            conn,
            client_seq: conn.client_isn.wrapping_add(1),
            server_seq: conn.server_isn.wrapping_add(1),
            clock: 1_700_000_000_000_000_000,
            frame: Vec::with_capacity(2048),
            payload: Vec::with_capacity(2048),
        }
    }

    /// Hands `frame` to the worker.
    fn feed<O: RecordOut>(w: &mut FlowWorker<FiveTuple, O>, frame: &[u8], clock: &mut u64) {
        *clock += 1_000;
        w.process(&[pipeline_support::view(frame, *clock)], 0);
    }

    fn handshake<O: RecordOut>(&mut self, w: &mut FlowWorker<FiveTuple, O>) {
        for f in self.conn.handshake() {
            Self::feed(w, &f, &mut self.clock);
        }
    }

    /// One request and its response, `i` in the URL and the body.
    fn exchange<O: RecordOut>(&mut self, w: &mut FlowWorker<FiveTuple, O>, i: u32) {
        self.payload.clear();
        write!(
            self.payload,
            "GET /items/{i}?q=alloc HTTP/1.1\r\nHost: www.example.org\r\n\
User-Agent: flowscope-alloc-test/1.0\r\nReferer: http://www.example.org/list\r\n\r\n"
        )
        .unwrap();
        self.segment(w, true);
        self.payload.clear();
        write!(
            self.payload,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\nitem {i}",
            body_len(i)
        )
        .unwrap();
        self.segment(w, false);
    }

    fn segment<O: RecordOut>(&mut self, w: &mut FlowWorker<FiveTuple, O>, from_client: bool) {
        let (seq, ack) = if from_client {
            (self.client_seq, self.server_seq)
        } else {
            (self.server_seq, self.client_seq)
        };
        self.conn.write(
            &mut self.frame,
            from_client,
            seq,
            ack,
            PSH | ACK,
            &self.payload,
        );
        Self::feed(w, &self.frame, &mut self.clock);
        let len = self.payload.len() as u32;
        if from_client {
            self.client_seq = self.client_seq.wrapping_add(len);
        } else {
            self.server_seq = self.server_seq.wrapping_add(len);
        }
    }
}

/// The length of `item {i}`.
fn body_len(i: u32) -> u32 {
    5 + i.checked_ilog10().unwrap_or(0) + 1
}

fn outputs(dir: &Path) -> Outputs {
    let specs = [
        OutputSpec::Eve(Some(dir.join("eve.json"))),
        OutputSpec::Zeek {
            dir: dir.to_path_buf(),
            format: ZeekFormat::Tsv,
            local_nets: Default::default(),
        },
    ];
    Outputs::open(&specs, FileOptions::default()).expect("outputs")
}

fn config() -> WorkerConfig {
    WorkerConfig {
        pipeline: Some(PipelineConfig::default()),
        backpressure: Backpressure::Wait,
    }
}

/// Writes what waits in the ring and hands the text buffers back, as the
/// writer thread does.
fn drain(end: &mut WriterEnd, outputs: &mut Outputs) {
    while let Some(record) = end.pop() {
        outputs.write(&record);
        end.recycle(record);
    }
}

/// Lines of `name` in `dir` that hold `needle`.
fn lines_with(dir: &Path, name: &str, needle: &str) -> usize {
    std::fs::read_to_string(dir.join(name))
        .expect("log written")
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

fn check_written(dir: &Path) {
    let total = (WARM + COUNTED) as usize;
    assert_eq!(
        lines_with(dir, "eve.json", "\"event_type\":\"http\""),
        total
    );
    assert_eq!(lines_with(dir, "http.log", "www.example.org"), total);
    // The last exchange's fields came out of a reused buffer intact.
    let last = format!("/items/{}?q=alloc", WARM + COUNTED - 1);
    let eve = std::fs::read_to_string(dir.join("eve.json")).unwrap();
    let line = eve.lines().find(|l| l.contains(&last)).expect("last URL");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let http = &v["http"];
    assert_eq!(http["hostname"], "www.example.org");
    assert_eq!(http["http_user_agent"], "flowscope-alloc-test/1.0");
    assert_eq!(http["http_refer"], "http://www.example.org/list");
    assert_eq!(http["http_content_type"], "text/plain");
    assert_eq!(http["status"], 200);
    assert_eq!(http["length"], body_len(WARM + COUNTED - 1));
}

#[test]
fn http_records_allocate_nothing_once_their_buffers_circulate() {
    // Inline: the worker writes (`read --workers 1`).
    let inline_dir = TempDir::new("l7-alloc-inline");
    let dir = inline_dir.path();
    let mut w = FlowWorker::new(
        FiveTuple::bidirectional(),
        config(),
        InlineOut::new(outputs(dir)),
        None,
    );
    let mut s = Session::new();
    s.handshake(&mut w);
    for i in 0..WARM {
        s.exchange(&mut w, i);
    }
    let before = alloc_support::allocations();
    for i in WARM..WARM + COUNTED {
        s.exchange(&mut w, i);
    }
    let inline = alloc_support::allocations() - before;
    w.finish(Backpressure::Wait);
    w.into_out().into_outputs().finish();
    check_written(dir);

    // Through the ring: the writer's end drained after every exchange.
    let ring_dir = TempDir::new("l7-alloc-ring");
    let mut out = outputs(ring_dir.path());
    let (mut workers, mut ends) = rings(1, 64);
    let (ring, mut end) = (workers.remove(0), ends.remove(0));
    let mut w = FlowWorker::new(FiveTuple::bidirectional(), config(), ring, None);
    let mut s = Session::new();
    s.handshake(&mut w);
    for i in 0..WARM {
        s.exchange(&mut w, i);
        drain(&mut end, &mut out);
    }
    let before = alloc_support::allocations();
    for i in WARM..WARM + COUNTED {
        s.exchange(&mut w, i);
        drain(&mut end, &mut out);
    }
    let ring = alloc_support::allocations() - before;
    w.finish(Backpressure::Wait);
    drain(&mut end, &mut out);
    out.finish();
    check_written(ring_dir.path());
    assert_eq!(
        (inline, ring),
        (0, 0),
        "allocations over {COUNTED} HTTP exchanges (inline, through the ring)"
    );
}
