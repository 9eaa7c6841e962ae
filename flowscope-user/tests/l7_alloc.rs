//! Zero allocations per L7 record in steady state, counted by a global
//! allocator:
//! - HTTP exchanges of a kept-alive connection go through a worker (tracker,
//!   reassembly, HTTP parser) and the writer stage (EVE and Zeek's http.log
//!   to files); so do those of hundreds of connections in step, whose
//!   requests all wait for their responses at once;
//! - DNS queries and answers go through a worker (tracker, DNS parser) and
//!   the writer stage (EVE and Zeek's dns.log, which keeps each query until
//!   its answer), on one UDP flow (a resolver and its upstream) and as one
//!   flow per query (a client's stub resolver: every query from a new
//!   port, flows ending by their idle timeout as new ones start, so their
//!   parsers, records and log rows are reused).
//!
//! Each record's text storage returns to the worker once written: inline
//! (`read --workers 1`) and through the record ring, whose writer end is
//! drained on the same thread so that every allocation is counted.
//!
//! The tests run one after the other in this binary (a lock), so no other
//! test allocates concurrently on the counted thread.

mod alloc_support;
mod common;
mod pipeline_support;

use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use common::frames::{cat, eth, ipv4, udp, v4a, v4b};
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
/// then counted (both protocols).
const WARM: u32 = 300;
const COUNTED: u32 = 500;

/// What goes through the worker: set up once, then one exchange at a time.
trait Traffic {
    fn start<O: RecordOut>(&mut self, w: &mut FlowWorker<FiveTuple, O>);
    fn exchange<O: RecordOut>(&mut self, w: &mut FlowWorker<FiveTuple, O>, i: u32);
}

/// Hands `frame` to the worker, a microsecond after the last.
fn feed<O: RecordOut>(w: &mut FlowWorker<FiveTuple, O>, frame: &[u8], clock: &mut u64) {
    *clock += 1_000;
    w.process(&[pipeline_support::view(frame, *clock)], 0);
}

/// Start of every clock.
const T0: u64 = 1_700_000_000_000_000_000;

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
        Self::from_port(40_001)
    }

    fn from_port(client_port: u16) -> Self {
        let conn = Conn {
            client_port,
            server_port: 80,
            client_isn: 5_000,
            server_isn: 9_000_000,
        };
        Self {
            conn,
            client_seq: conn.client_isn.wrapping_add(1),
            server_seq: conn.server_isn.wrapping_add(1),
            clock: T0,
            frame: Vec::with_capacity(2048),
            payload: Vec::with_capacity(2048),
        }
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
        feed(w, &self.frame, &mut self.clock);
        let len = self.payload.len() as u32;
        if from_client {
            self.client_seq = self.client_seq.wrapping_add(len);
        } else {
            self.server_seq = self.server_seq.wrapping_add(len);
        }
    }
}

impl Traffic for Session {
    fn start<O: RecordOut>(&mut self, w: &mut FlowWorker<FiveTuple, O>) {
        for f in self.conn.handshake() {
            feed(w, &f, &mut self.clock);
        }
    }

    /// One request and its response, `i` in the URL and the body.
    fn exchange<O: RecordOut>(&mut self, w: &mut FlowWorker<FiveTuple, O>, i: u32) {
        self.request(w, i);
        self.response(w, i);
    }
}

impl Session {
    fn request<O: RecordOut>(&mut self, w: &mut FlowWorker<FiveTuple, O>, i: u32) {
        self.payload.clear();
        write!(
            self.payload,
            "GET /items/{i}?q=alloc HTTP/1.1\r\nHost: www.example.org\r\n\
User-Agent: flowscope-alloc-test/1.0\r\nReferer: http://www.example.org/list\r\n\r\n"
        )
        .unwrap();
        self.segment(w, true);
    }

    fn response<O: RecordOut>(&mut self, w: &mut FlowWorker<FiveTuple, O>, i: u32) {
        self.payload.clear();
        write!(
            self.payload,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\nitem {i}",
            body_len(i)
        )
        .unwrap();
        self.segment(w, false);
    }
}

/// Connections of [`InStep`]: more records waiting at once than a pool of
/// a few hundred spare buffers holds.
const IN_STEP_FLOWS: u16 = 600;

/// [`IN_STEP_FLOWS`] kept-alive connections moving in step: every client
/// sends its request, then every server answers, as many concurrent
/// flows' exchanges line up. Fewer rounds than the other traffic (each
/// is hundreds of exchanges).
struct InStep {
    flows: Vec<Session>,
}

impl InStep {
    fn new() -> Self {
        Self {
            flows: (0..IN_STEP_FLOWS)
                .map(|i| Session::from_port(41_000 + i))
                .collect(),
        }
    }
}

impl Traffic for InStep {
    fn start<O: RecordOut>(&mut self, w: &mut FlowWorker<FiveTuple, O>) {
        for s in &mut self.flows {
            s.start(w);
        }
    }

    fn exchange<O: RecordOut>(&mut self, w: &mut FlowWorker<FiveTuple, O>, i: u32) {
        for s in &mut self.flows {
            s.request(w, i);
        }
        for s in &mut self.flows {
            s.response(w, i);
        }
    }
}

/// The length of `item {i}`.
fn body_len(i: u32) -> u32 {
    5 + i.checked_ilog10().unwrap_or(0) + 1
}

/// One DNS message: a query for `host{i}.example.org`, or its answer (a
/// CNAME and an A record, names compressed).
fn dns(i: u32, answer: bool) -> Vec<u8> {
    let id = (i as u16).to_be_bytes();
    let (flags, answers) = if answer { (0x81, 2) } else { (0x01, 0) };
    let mut m = vec![id[0], id[1], flags, 0x80, 0, 1, 0, answers, 0, 0, 0, 0];
    let host = format!("host{i}");
    m.push(host.len() as u8);
    m.extend_from_slice(host.as_bytes());
    m.extend_from_slice(b"\x07example\x03org\x00\x00\x01\x00\x01");
    if answer {
        // CNAME edge.example.org (its tail points at the question's), then
        // its A record.
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0x0e, 0x10, 0, 7]);
        let edge = m.len();
        m.extend_from_slice(b"\x04edge");
        let tail = 12 + 1 + host.len();
        m.extend_from_slice(&[0xc0, tail as u8]);
        m.extend_from_slice(&[0xc0, edge as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        m.extend_from_slice(&[203, 0, 113, (i % 251) as u8]);
    }
    m
}

/// Queries and their answers, every frame built before the worker sees
/// one: all on one UDP flow, or each from a port of its own, a second
/// after the last (the UDP idle timeout is 60 s).
struct Resolver {
    frames: Vec<[Vec<u8>; 2]>,
    clock: u64,
    /// Between two exchanges.
    step: u64,
}

/// The client port of the one flow.
const CLIENT_PORT: u16 = 40_002;

impl Resolver {
    fn one_flow() -> Self {
        Self::new(false)
    }

    fn flow_per_query() -> Self {
        Self::new(true)
    }

    fn new(flow_per_query: bool) -> Self {
        let frame = |i: u32, answer: bool| {
            let msg = dns(i, answer);
            let port = if flow_per_query {
                CLIENT_PORT.wrapping_add(i as u16)
            } else {
                CLIENT_PORT
            };
            let (src, dst, sport, dport) = if answer {
                (v4b(53), v4a(10), 53, port)
            } else {
                (v4a(10), v4b(53), port, 53)
            };
            cat(&[
                &eth(&[], 0x0800),
                &ipv4(src, dst, 17, &[], 8 + msg.len(), 0),
                &udp(sport, dport, msg.len()),
                &msg,
            ])
        };
        Self {
            frames: (0..WARM + COUNTED)
                .map(|i| [frame(i, false), frame(i, true)])
                .collect(),
            clock: T0,
            step: if flow_per_query { 1_000_000_000 } else { 0 },
        }
    }
}

impl Traffic for Resolver {
    fn start<O: RecordOut>(&mut self, _w: &mut FlowWorker<FiveTuple, O>) {}

    fn exchange<O: RecordOut>(&mut self, w: &mut FlowWorker<FiveTuple, O>, i: u32) {
        self.clock += self.step;
        for f in &self.frames[i as usize] {
            feed(w, f, &mut self.clock);
        }
    }
}

fn outputs(dir: &Path, zeek: bool) -> Outputs {
    let mut specs = vec![OutputSpec::Eve(Some(dir.join("eve.json")))];
    if zeek {
        specs.push(OutputSpec::Zeek {
            dir: dir.to_path_buf(),
            format: ZeekFormat::Tsv,
            local_nets: Default::default(),
        });
    }
    Outputs::open(&specs, FileOptions::default()).expect("outputs")
}

fn config() -> WorkerConfig {
    WorkerConfig {
        pipeline: Some(PipelineConfig::default()),
        backpressure: Backpressure::Wait,
    }
}

/// Writes what waits in the ring and hands the text storage back, as the
/// writer thread does.
fn drain(end: &mut WriterEnd, outputs: &mut Outputs) {
    while let Some(record) = end.pop() {
        outputs.write(&record);
        end.recycle(record);
    }
}

/// One test at a time: the allocator counts per thread, but a test's
/// temporary files and the harness's output are kept out of the count.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Exchanges before counting and counted, and the record ring's capacity.
#[derive(Clone, Copy)]
struct Plan {
    warm: u32,
    counted: u32,
    ring: usize,
}

/// What the single-connection and DNS traffic runs.
const PLAN: Plan = Plan {
    warm: WARM,
    counted: COUNTED,
    ring: 64,
};

/// Allocations over the counted exchanges of `traffic`, inline and through
/// the ring; the directories the two runs wrote their logs into.
fn allocations<T: Traffic>(
    traffic: impl Fn() -> T,
    zeek: bool,
    name: &str,
    plan: Plan,
) -> ((u64, u64), [TempDir; 2]) {
    let Plan {
        warm,
        counted,
        ring,
    } = plan;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Inline: the worker writes (`read --workers 1`).
    let inline_dir = TempDir::new(&format!("l7-alloc-{name}-inline"));
    let mut w = FlowWorker::new(
        FiveTuple::bidirectional(),
        config(),
        InlineOut::new(outputs(inline_dir.path(), zeek)),
        None,
    );
    let mut t = traffic();
    t.start(&mut w);
    for i in 0..warm {
        t.exchange(&mut w, i);
    }
    let before = alloc_support::allocations();
    for i in warm..warm + counted {
        t.exchange(&mut w, i);
    }
    let inline = alloc_support::allocations() - before;
    w.finish(Backpressure::Wait);
    w.into_out().into_outputs().finish();

    // Through the ring: the writer's end drained after every exchange.
    let ring_dir = TempDir::new(&format!("l7-alloc-{name}-ring"));
    let mut out = outputs(ring_dir.path(), zeek);
    let (mut workers, mut ends) = rings(1, ring);
    let (ring, mut end) = (workers.remove(0), ends.remove(0));
    let mut w = FlowWorker::new(FiveTuple::bidirectional(), config(), ring, None);
    let mut t = traffic();
    t.start(&mut w);
    for i in 0..warm {
        t.exchange(&mut w, i);
        drain(&mut end, &mut out);
    }
    let before = alloc_support::allocations();
    for i in warm..warm + counted {
        t.exchange(&mut w, i);
        drain(&mut end, &mut out);
    }
    let ring = alloc_support::allocations() - before;
    w.finish(Backpressure::Wait);
    drain(&mut end, &mut out);
    out.finish();
    ((inline, ring), [inline_dir, ring_dir])
}

/// Lines of `name` in `dir` that hold `needle`.
fn lines_with(dir: &Path, name: &str, needle: &str) -> usize {
    std::fs::read_to_string(dir.join(name))
        .expect("log written")
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// The EVE record of `event_type` whose line holds `needle`.
fn eve_record(dir: &Path, event_type: &str, needle: &str) -> serde_json::Value {
    let eve = std::fs::read_to_string(dir.join("eve.json")).unwrap();
    let line = eve
        .lines()
        .find(|l| l.contains(needle) && l.contains(&format!("\"event_type\":\"{event_type}\"")))
        .unwrap_or_else(|| panic!("no {event_type} record holds {needle}"));
    serde_json::from_str::<serde_json::Value>(line).unwrap()[event_type].clone()
}

#[test]
fn http_records_allocate_nothing_once_their_buffers_circulate() {
    let (counts, dirs) = allocations(Session::new, true, "http", PLAN);
    for dir in &dirs {
        let dir = dir.path();
        let total = (WARM + COUNTED) as usize;
        assert_eq!(
            lines_with(dir, "eve.json", "\"event_type\":\"http\""),
            total
        );
        assert_eq!(lines_with(dir, "http.log", "www.example.org"), total);
        // The last exchange's fields came out of a reused buffer intact.
        let last = format!("/items/{}?q=alloc", WARM + COUNTED - 1);
        let http = eve_record(dir, "http", &last);
        assert_eq!(http["hostname"], "www.example.org");
        assert_eq!(http["http_user_agent"], "flowscope-alloc-test/1.0");
        assert_eq!(http["http_refer"], "http://www.example.org/list");
        assert_eq!(http["http_content_type"], "text/plain");
        assert_eq!(http["status"], 200);
        assert_eq!(http["length"], body_len(WARM + COUNTED - 1));
    }
    assert_eq!(
        counts,
        (0, 0),
        "allocations over {COUNTED} HTTP exchanges (inline, through the ring)"
    );
}

#[test]
fn http_flows_in_step_allocate_nothing_once_their_buffers_circulate() {
    // Each round's records go through the ring at once, drained after it.
    let plan = Plan {
        warm: 2,
        counted: 3,
        ring: 2 * usize::from(IN_STEP_FLOWS),
    };
    let (counts, dirs) = allocations(InStep::new, true, "http-in-step", plan);
    let rounds = plan.warm + plan.counted;
    for dir in &dirs {
        let dir = dir.path();
        let total = rounds as usize * usize::from(IN_STEP_FLOWS);
        assert_eq!(
            lines_with(dir, "eve.json", "\"event_type\":\"http\""),
            total
        );
        assert_eq!(lines_with(dir, "http.log", "www.example.org"), total);
        let last = format!("/items/{}?q=alloc", rounds - 1);
        assert_eq!(
            lines_with(dir, "http.log", &last),
            usize::from(IN_STEP_FLOWS)
        );
    }
    assert_eq!(
        counts,
        (0, 0),
        "allocations over {} rounds of {IN_STEP_FLOWS} HTTP exchanges in step (inline, through the ring)",
        plan.counted
    );
}

#[test]
fn dns_records_allocate_nothing_once_their_storage_circulates() {
    let (counts, dirs) = allocations(Resolver::one_flow, true, "dns", PLAN);
    check_dns(&dirs);
    assert_eq!(
        counts,
        (0, 0),
        "allocations over {COUNTED} DNS queries and answers (inline, through the ring)"
    );
}

#[test]
fn dns_flows_allocate_nothing_once_their_parsers_circulate() {
    let (counts, dirs) = allocations(Resolver::flow_per_query, true, "dns-flows", PLAN);
    check_dns(&dirs);
    for dir in &dirs {
        // The flows that timed out are in conn.log and EVE.
        assert!(lines_with(dir.path(), "conn.log", "\tudp\tdns\t") > COUNTED as usize);
    }
    assert_eq!(
        counts,
        (0, 0),
        "allocations over {COUNTED} DNS flows of one query each (inline, through the ring)"
    );
}

/// What both DNS tests wrote: every query and answer in EVE, one dns.log
/// row per query with its answer, the last ones intact.
fn check_dns(dirs: &[TempDir; 2]) {
    for dir in dirs {
        let dir = dir.path();
        let total = 2 * (WARM + COUNTED) as usize;
        assert_eq!(lines_with(dir, "eve.json", "\"event_type\":\"dns\""), total);
        // One dns.log row per query, each with its answer and TTLs.
        let last = WARM + COUNTED - 1;
        assert_eq!(
            lines_with(dir, "dns.log", ".example.org\t1\tC_INTERNET"),
            total / 2
        );
        let log = std::fs::read_to_string(dir.join("dns.log")).unwrap();
        let row = log
            .lines()
            .find(|l| l.contains(&format!("\thost{last}.example.org\t")))
            .expect("the last query's row");
        let tail = format!(
            "\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\t\
edge.example.org,203.0.113.{}\t3600.000000,60.000000\tF\t0\tquery",
            last % 251
        );
        assert!(row.ends_with(&tail), "{row}");
        // The last answer came out of reused storage intact.
        let name = format!("host{last}.example.org");
        let dns = eve_record(dir, "dns", &format!("\"id\":{last},\"flags\""));
        assert_eq!(dns["rrname"], name.as_str());
        assert_eq!(
            dns["answers"],
            serde_json::json!([
                {"rrname": name, "rrtype": "CNAME", "ttl": 3600, "rdata": "edge.example.org"},
                {"rrname": "edge.example.org", "rrtype": "A", "ttl": 60,
                 "rdata": format!("203.0.113.{}", last % 251)},
            ])
        );
    }
}
