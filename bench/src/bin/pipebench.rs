//! `pipebench`: the whole per-flow pipeline (fragments, tracker, TCP
//! reassembly, HTTP/TLS/DNS parsers), as Markdown tables for BENCHMARKS.md.
//! Run it with `cargo xtask bench pipeline [-- ARGS]`.
//!
//! - Speed: captures loaded once into memory with our pcap reader, then
//!   replayed through a fresh `Pipeline` (default configuration) several
//!   times; each run replays whole passes, each pass shifted in time past
//!   the previous one and ended with `finish` (every flow ends, every
//!   record is emitted), until at least `--packets` packets, in batches of
//!   `HANDLER_BATCH` frames as capture workers hand them over. Reported:
//!   ns/packet and GB/s of frame bytes, median (min–max) over the runs.
//! - Many flows: `--flows` concurrent synthetic TCP flows round-robin, the
//!   passes after the first timed one frame at a time and in batches.
//! - Real sessions: `--real-flows` concurrent TCP flows, each a copy of a
//!   whole HTTP or TLS session of `--session-pcap` captures with its
//!   addresses rewritten, packets interleaved round-robin across the flows
//!   ([`bench::sessions`]); generated chunk by chunk (untimed) into one
//!   buffer larger than the caches, each chunk then timed in batches.
//!   Replayed twice through one pipeline: the first pass on cold tables
//!   (every page touched for the first time), the second, later in time,
//!   in the steady state; both reported.
//! - Memory: one flow whose client sends `--segments` one-byte segments
//!   above a one-byte hole that never fills, through the real reassembler
//!   with the default caps; contiguous (one growing run) and sparse (one
//!   byte out of two: one run per segment). Reported: the shared budget's
//!   high watermark and the process's peak RSS (`VmHWM`), against the caps.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bench::frame::{self, FrameSpec, IpPair, Transport};
use bench::sessions::{self, Replay, Sessions};
use bench::track::Stats;
use bench::track::workload::{Packet, Workload};
use clap::Parser;
use flowscope::capture::HANDLER_BATCH;
use flowscope::extract::{FiveTuple, FiveTupleKey};
use flowscope::l7::L7Record;
use flowscope::pipeline::{Carrier, FlowSummary, Pipeline, PipelineConfig, PipelineSink};
use flowscope::session::{TextPool, Texts};
use flowscope::tracker::{EndReason, FlowRecord, TrackerConfig};
use flowscope::{LinkType, PacketView, Timestamp};

/// Whole-pipeline ns/packet and GB/s on captures replayed from memory, and
/// reassembly memory under an adversarial stream.
#[derive(Parser, Debug)]
#[command(name = "pipebench", version)]
struct Args {
    /// Timed runs per capture (median reported).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Packets at least in one run (whole passes over the capture).
    #[arg(long, default_value_t = 1_000_000)]
    packets: u64,
    /// Capture to replay from memory (repeatable).
    #[arg(long, default_values = [
        "../shared/pcaps/ndpi__WebattackXSS.pcap",
        "../shared/pcaps/zeek__http_1000-requests-one-dropped-response.pcap",
        "../shared/pcaps/ndpi__reddit.pcap",
        "../shared/pcaps/ndpi__tls_long_cert.pcap",
    ])]
    pcap: Vec<PathBuf>,
    /// One-byte segments of the adversarial stream (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    segments: u64,
    /// Concurrent flows of the many-flows workload (0 skips it).
    #[arg(long, default_value_t = 200_000)]
    flows: usize,
    /// Concurrent flows of the real-sessions workload (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    real_flows: usize,
    /// Capture whose whole TCP sessions the real-sessions workload copies
    /// (repeatable).
    #[arg(long, default_values = [
        "../shared/pcaps/ndpi__WebattackXSS.pcap",
        "../shared/pcaps/zeek__http_methods.pcap",
        "../shared/pcaps/zeek__http_pipelined-requests.pcap",
        "../shared/pcaps/zeek__http_1000-requests-one-dropped-response.pcap",
        "../shared/pcaps/ndpi__tls_long_cert.pcap",
        "../shared/pcaps/zeek__tls_tls-conn-with-extensions.pcap",
    ])]
    session_pcap: Vec<PathBuf>,
    /// Run only these parts (default: all).
    #[arg(long, value_enum)]
    only: Vec<Part>,
    /// CPU to pin the benchmark to (default: the last one allowed).
    #[arg(long)]
    cpu: Option<usize>,
}

/// The parts of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// Reassembly memory under an adversarial stream.
    Memory,
    /// Captures replayed from memory.
    Captures,
    /// Synthetic many concurrent flows.
    Many,
    /// Real sessions copied into many concurrent flows.
    Real,
}

/// Counts what the pipeline emits, touching every record.
#[derive(Debug, Default)]
struct Counting {
    l7: u64,
    flows: u64,
    /// Text buffers of records seen, handed back to the parsers as the
    /// writer stage hands them back to a worker.
    spares: TextPool,
}

impl PipelineSink<FiveTupleKey> for Counting {
    fn l7(&mut self, _flow: &FlowRecord<FiveTupleKey>, _ts: Timestamp, record: L7Record) {
        self.l7 += 1;
        std::hint::black_box(&record);
        self.spares.keep(record.into_buffer());
    }

    fn spare_text(&mut self) -> Texts {
        self.spares.take()
    }

    fn flow_ended(
        &mut self,
        _flow: &FlowRecord<FiveTupleKey>,
        _reason: EndReason,
        summary: Option<&FlowSummary>,
        _carrier: Option<&Carrier>,
    ) {
        self.flows += 1;
        std::hint::black_box(summary);
    }
}

/// One timed run over `passes` passes of `w`, each ended with `finish`.
fn replay(w: &Workload, passes: u64) -> (Duration, Counting) {
    let mut pipeline = Pipeline::new(FiveTuple::bidirectional(), PipelineConfig::default());
    let mut sink = Counting::default();
    let mut views = Vec::with_capacity(HANDLER_BATCH);
    let start = Instant::now();
    for pass in 0..passes {
        feed_pass(&mut pipeline, w, pass, Some(&mut views), &mut sink);
        pipeline.finish(&mut sink);
    }
    (start.elapsed(), sink)
}

/// Pass `pass` of `w` through `pipeline`: in batches of [`HANDLER_BATCH`]
/// frames as a capture worker hands them over (`views` is the batch's
/// buffer), or one frame at a time without one.
fn feed_pass<'w>(
    pipeline: &mut Pipeline<FiveTuple>,
    w: &'w Workload,
    pass: u64,
    views: Option<&mut Vec<PacketView<'w>>>,
    sink: &mut Counting,
) {
    let view = |p| PacketView {
        frame: w.frame(p),
        timestamp: Timestamp(w.time_ns(p, pass)),
        link: LinkType::Ethernet,
        orig_len: p.orig_len,
        hint: None,
    };
    match views {
        Some(views) => {
            for chunk in w.packets.chunks(HANDLER_BATCH) {
                views.clear();
                views.extend(chunk.iter().map(view));
                pipeline.process_batch(views, sink);
            }
        }
        None => {
            for p in &w.packets {
                pipeline.process(view(p), sink);
            }
        }
    }
}

/// ns/packet of the passes after the first over `w`'s flows (all of them
/// concurrent), one frame at a time or in worker batches.
fn steady_ns(w: &Workload, passes: u64, batch: bool) -> f64 {
    let config = PipelineConfig {
        tracker: TrackerConfig {
            max_flows: w.flows + w.flows / 4,
            ..TrackerConfig::default()
        },
        ..PipelineConfig::default()
    };
    let mut pipeline = Pipeline::new(FiveTuple::bidirectional(), config);
    let mut sink = Counting::default();
    let mut views = Vec::with_capacity(HANDLER_BATCH);
    feed_pass(&mut pipeline, w, 0, batch.then_some(&mut views), &mut sink);
    let start = Instant::now();
    for pass in 1..=passes {
        feed_pass(
            &mut pipeline,
            w,
            pass,
            batch.then_some(&mut views),
            &mut sink,
        );
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / (w.packets.len() as u64 * passes) as f64;
    pipeline.finish(&mut sink);
    ns
}

/// The pipeline with many concurrent flows, frames one at a time against
/// worker batches, runs interleaved.
fn many_flows(args: &Args) -> Result<()> {
    let n = args.flows;
    let w = Workload::synthetic(&format!("{n} flows round-robin"), n)?;
    let passes = args.packets.div_ceil(n as u64).max(1);
    let mut ns = [Vec::new(), Vec::new()];
    for r in 0..args.runs {
        for k in 0..2 {
            let batch = (r + k) % 2 == 1;
            ns[usize::from(batch)].push(steady_ns(&w, passes, batch));
        }
    }
    let [Some(one), Some(batched)] = ns.map(|v| Stats::of(&v)) else {
        return Ok(());
    };
    println!(
        "| workload | packets timed per run | one frame at a time ns/packet | batches of {HANDLER_BATCH} ns/packet | ratio |"
    );
    println!("|---|--:|--:|--:|--:|");
    println!(
        "| {} (steady, after the first pass) | {} | {} | {} | {:.1}× |",
        w.name,
        w.packets.len() as u64 * passes,
        cell(one, 1),
        cell(batched, 1),
        one.median / batched.median
    );
    Ok(())
}

/// Packets generated per chunk of the real-sessions replay: their frames
/// (about 700 MiB for these captures) are far larger than the caches, as
/// frames fresh from a NIC ring or a capture file would be.
const REAL_CHUNK: usize = 1 << 20;

/// The two timed passes of one real-sessions run.
struct RealRun {
    /// The first replay through a fresh pipeline: every slot's state, the
    /// reassembly buffers and the table pages are touched for the first
    /// time (the kernel zeroes them on first touch), as when a monitor
    /// starts.
    cold: Duration,
    /// The same replay again through the same pipeline, after `finish`
    /// ended every flow of the first and past its last packet in time: the
    /// steady state of a monitor that has seen that many flows before.
    warm: Duration,
    sink: Counting,
}

/// One run of the real-sessions workload through a fresh pipeline sized
/// for its flows, replayed twice (see [`RealRun`]): each pass's time in
/// `process_batch` and `finish` (chunk generation untimed), and what the
/// sink counted in the first.
fn real_run(s: &Sessions, bytes: &mut Vec<u8>, packets: &mut Vec<Packet>) -> Result<RealRun> {
    let config = PipelineConfig {
        tracker: TrackerConfig {
            max_flows: s.flows() + s.flows() / 4,
            ..TrackerConfig::default()
        },
        ..PipelineConfig::default()
    };
    let mut pipeline = Pipeline::new(FiveTuple::bidirectional(), config);
    // The second pass starts a second after the first pass's last packet.
    let shift = s.totals().0 * sessions::GAP_NS + 1_000_000_000;
    let mut passes = [Duration::ZERO; 2];
    let mut first = Counting::default();
    for (pass, elapsed) in passes.iter_mut().enumerate() {
        let offset = sessions::EPOCH_NS + pass as u64 * shift;
        let mut sink = Counting::default();
        let mut replay = Replay::default();
        while s.fill(&mut replay, REAL_CHUNK, bytes, packets) {
            // Once per chunk, untimed: the views borrow this chunk's bytes.
            let mut views = Vec::with_capacity(HANDLER_BATCH);
            let start = Instant::now();
            for chunk in packets.chunks(HANDLER_BATCH) {
                views.clear();
                views.extend(chunk.iter().map(|p| {
                    PacketView {
                        frame: bytes
                            .get(p.offset..p.offset + p.len as usize)
                            .unwrap_or_default(),
                        timestamp: Timestamp(offset + p.rel_ns),
                        link: LinkType::Ethernet,
                        orig_len: p.orig_len,
                        hint: None,
                    }
                }));
                pipeline.process_batch(&views, &mut sink);
            }
            *elapsed += start.elapsed();
        }
        let start = Instant::now();
        pipeline.finish(&mut sink);
        *elapsed += start.elapsed();
        if pass == 0 {
            first = sink;
        } else {
            anyhow::ensure!(
                (sink.l7, sink.flows) == (first.l7, first.flows),
                "real sessions: {} L7 records and {} flows in the second pass, {} and {} in the first",
                sink.l7,
                sink.flows,
                first.l7,
                first.flows
            );
        }
    }
    Ok(RealRun {
        cold: passes[0],
        warm: passes[1],
        sink: first,
    })
}

/// The real-sessions workload: every run a fresh pipeline and two whole
/// replays (every flow created, parsed and ended, twice).
fn real_sessions(args: &Args) -> Result<()> {
    let s = Sessions::load(&args.session_pcap, args.real_flows)?;
    let (packets, frame_bytes) = s.totals();
    let (mut bytes, mut chunk) = (Vec::new(), Vec::with_capacity(REAL_CHUNK));
    let (mut cold, mut warm, mut gbs) = (Vec::new(), Vec::new(), Vec::new());
    let mut first: Option<Counting> = None;
    for _ in 0..args.runs {
        let run = real_run(&s, &mut bytes, &mut chunk)?;
        if let Some(f) = &first {
            anyhow::ensure!(
                (run.sink.l7, run.sink.flows) == (f.l7, f.flows),
                "real sessions: {} L7 records and {} flows in a run, {} and {} in the first",
                run.sink.l7,
                run.sink.flows,
                f.l7,
                f.flows
            );
        }
        let ns = |t: Duration| t.as_secs_f64() * 1e9 / packets as f64;
        cold.push(ns(run.cold));
        warm.push(ns(run.warm));
        gbs.push(frame_bytes as f64 / run.warm.as_secs_f64() / 1e9);
        eprintln!(
            "pipebench: real sessions run {:.0} ns/packet cold, {:.0} warm",
            ns(run.cold),
            ns(run.warm)
        );
        first.get_or_insert(run.sink);
    }
    let (Some(cold), Some(warm), Some(gbs), Some(first)) =
        (Stats::of(&cold), Stats::of(&warm), Stats::of(&gbs), first)
    else {
        return Ok(());
    };
    println!(
        "| workload | template sessions | packets | frame bytes | flows ended | L7 records | batches of {HANDLER_BATCH}, first pass (cold tables) ns/packet | second pass (steady state) ns/packet | GB/s, second pass | peak RSS |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    println!(
        "| {} flows, real HTTP/TLS sessions round-robin | {} | {packets} | {frame_bytes} | {} | {} | {} | {} | {} | {} MiB |",
        s.flows(),
        s.templates(),
        first.flows,
        first.l7,
        cell(cold, 0),
        cell(warm, 0),
        cell(gbs, 2),
        vm_hwm()? >> 20
    );
    Ok(())
}

/// `median (min–max)` with `digits` decimals.
fn cell(s: Stats, digits: usize) -> String {
    format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits)
}

fn speed(args: &Args) -> Result<()> {
    println!(
        "| capture | packets × passes | frame bytes/pass | flows/pass | L7 records/pass | ns/packet | GB/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for path in &args.pcap {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let w = Workload::capture(&name, path)?;
        let packets = w.packets.len() as u64;
        if packets == 0 {
            eprintln!("pipebench: {name}: no Ethernet frames, skipped");
            continue;
        }
        let bytes: u64 = w.packets.iter().map(|p| u64::from(p.len)).sum();
        let passes = args.packets.div_ceil(packets).max(1);
        // One untimed run: page in the frames, check what a pass emits.
        let (_, warm) = replay(&w, 1);
        let (mut ns, mut gbs) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            let (t, sink) = replay(&w, passes);
            anyhow::ensure!(
                sink.l7 == warm.l7 * passes,
                "{name}: {} L7 records in {passes} passes, {} in one",
                sink.l7,
                warm.l7
            );
            let secs = t.as_secs_f64();
            ns.push(secs * 1e9 / (packets * passes) as f64);
            gbs.push((bytes * passes) as f64 / secs / 1e9);
        }
        let (Some(ns), Some(gbs)) = (Stats::of(&ns), Stats::of(&gbs)) else {
            continue;
        };
        println!(
            "| {name} | {packets} × {passes} | {bytes} | {} | {} | {} | {} |",
            warm.flows,
            warm.l7,
            cell(ns, 0),
            cell(gbs, 2)
        );
        eprintln!("pipebench: {name} done");
    }
    Ok(())
}

/// Peak resident set size of this process, in bytes (`VmHWM`).
fn vm_hwm() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kib * 1024)
}

/// What the adversarial stream did.
struct Adversarial {
    elapsed: Duration,
    budget_high_watermark: u64,
    rss_before: u64,
    rss_after: u64,
    overflows: u64,
    gap_bytes: u64,
    delivered: u64,
}

/// One flow, client 192.0.2.1:40000 → 198.51.100.1:80: one in-order byte,
/// then `segments` one-byte segments starting two bytes later (offset 1
/// never arrives), `stride` bytes apart, 1 µs apart in time.
fn adversarial(segments: u64, stride: u32) -> Result<Adversarial> {
    const ISN: u32 = 1_000;
    let mut spec = FrameSpec {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        ips: IpPair::V4(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 1)),
        transport: Transport::Tcp,
        src_port: 40_000,
        dst_port: 80,
        tcp_seq: ISN,
        tcp_ack: 1,
    };
    let len = spec.header_len() + 1;
    let mut buf = [0u8; frame::MAX_FRAME_LEN];
    let config = PipelineConfig::default();
    let mut pipeline = Pipeline::new(FiveTuple::bidirectional(), config);
    let mut sink = Counting::default();
    // The baseline follows the flow's first (in-order) segment, so the
    // growth is what the segments above the hole cost.
    let mut rss_before = 0;
    let mut start = Instant::now();
    for i in 0..=segments {
        spec.tcp_seq = match i {
            0 => ISN,
            _ => ISN + 2 + (i - 1) as u32 * stride,
        };
        frame::write(&spec, len, &mut buf).context("building a segment")?;
        let view = PacketView {
            frame: &buf[..len],
            timestamp: Timestamp(1_700_000_000_000_000_000 + i * 1_000),
            link: LinkType::Ethernet,
            orig_len: len as u32,
            hint: None,
        };
        pipeline.process(view, &mut sink);
        if i == 0 {
            rss_before = vm_hwm()?;
            start = Instant::now();
        }
    }
    let elapsed = start.elapsed();
    let (_, budget_high_watermark) = pipeline.reassembly_memory();
    pipeline.finish(&mut sink);
    let rss_after = vm_hwm()?;
    let side = pipeline.counters().reassembly.sides[0];
    Ok(Adversarial {
        elapsed,
        budget_high_watermark,
        rss_before,
        rss_after,
        overflows: side.overflows,
        gap_bytes: side.gap_bytes,
        delivered: side.bytes_delivered,
    })
}

fn memory(segments: u64) -> Result<()> {
    let defaults = PipelineConfig::default();
    let side_cap = defaults.reassembly.max_side_bytes;
    let global_cap = defaults.reassembly_budget_bytes;
    println!(
        "Caps (defaults): {} KiB per side, {} MiB shared budget.\n",
        side_cap >> 10,
        global_cap >> 20
    );
    println!(
        "| stream | segments | ns/segment | budget high watermark | peak RSS before → after (growth) | overflows | gap bytes | bytes delivered |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, stride) in [("contiguous above a hole", 1), ("sparse (1 byte in 2)", 2)] {
        let a = adversarial(segments, stride)?;
        let growth = a.rss_after.saturating_sub(a.rss_before);
        println!(
            "| {name} | {segments} | {:.0} | {} KiB | {} → {} KiB (+{} KiB) | {} | {} | {} |",
            a.elapsed.as_secs_f64() * 1e9 / segments.max(1) as f64,
            a.budget_high_watermark >> 10,
            a.rss_before >> 10,
            a.rss_after >> 10,
            growth >> 10,
            a.overflows,
            a.gap_bytes,
            a.delivered
        );
        // One flow, one side: the budget holds that side's ring and run
        // table (under the side cap) and the rings it outgrew, kept in the
        // budget's spare pool (each at most half the next: under the side
        // cap together).
        anyhow::ensure!(
            a.budget_high_watermark <= 2 * side_cap,
            "{name}: budget high watermark {} above twice the side cap {side_cap}",
            a.budget_high_watermark
        );
        anyhow::ensure!(
            growth <= global_cap,
            "{name}: peak RSS grew by {growth}, above the shared cap {global_cap}"
        );
        anyhow::ensure!(
            a.budget_high_watermark <= global_cap,
            "{name}: budget high watermark {} above the shared cap {global_cap}",
            a.budget_high_watermark
        );
        eprintln!(
            "pipebench: {name}: high watermark {} B (side cap {side_cap} B, shared cap {global_cap} B), RSS growth {growth} B",
            a.budget_high_watermark
        );
    }
    Ok(())
}

fn run(args: &Args) -> Result<()> {
    let part = |p| args.only.is_empty() || args.only.contains(&p);
    // Memory first, while the process holds nothing else.
    if args.segments > 0 && part(Part::Memory) {
        println!("### Memory under an adversarial stream\n");
        memory(args.segments)?;
        println!();
    }
    if part(Part::Captures) {
        println!("### Speed (captures replayed from memory)\n");
        speed(args)?;
    }
    if args.flows > 0 && part(Part::Many) {
        println!("\n### Many concurrent flows\n");
        many_flows(args)?;
    }
    if args.real_flows > 0 && part(Part::Real) {
        println!("\n### Real sessions, many concurrent flows\n");
        real_sessions(args)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    bench::cpu::pin_benchmark("pipebench", args.cpu);
    match run(&Args {
        runs: args.runs.max(1),
        ..args
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipebench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
