//! `flowscope capture`: live capture with a per-second line and a summary.

use std::{
    io::Write,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use flowscope_common::{Counter, CounterBlock, XdpMeta};
use serde_json::json;

use super::signal;
use crate::capture::{
    Capture, CaptureConfig, FrameCtx, FrameHandler, RingSizes, SocketStats, WorkerStats,
    XdpAttachMode,
};

/// Options of `flowscope capture`.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Interface to capture on.
    #[arg(long)]
    pub iface: String,
    /// Capture RX queues 0..N (default: every RX queue of the interface).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub queues: Option<u32>,
    /// AF_XDP sockets (and pinned workers) per queue.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub sockets_per_queue: u32,
    /// XDP attach mode: drv (native, default) or skb (generic, ~10× slower).
    #[arg(long, default_value = "drv")]
    pub xdp_mode: XdpAttachMode,
    /// Count every frame in the XDP program and pass it to the stack.
    #[arg(long)]
    pub count_only: bool,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds between live lines.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Write a JSON summary here at exit.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Descriptors per socket RX ring (power of two).
    #[arg(long, default_value_t = RingSizes::default().rx_ring)]
    pub rx_ring: u32,
    /// Fill ring size and UMEM frames per queue (power of two).
    #[arg(long, default_value_t = RingSizes::default().fill_ring)]
    pub fill_ring: u32,
}

/// Counts frames per worker; the flow pipeline plugs in here.
#[derive(Default)]
struct Counting {
    with_meta: u64,
}

impl FrameHandler for Counting {
    fn on_frame(&mut self, _frame: &[u8], meta: Option<&XdpMeta>, _ctx: &FrameCtx) {
        self.with_meta += u64::from(meta.is_some());
    }
}

/// Runs the subcommand.
///
/// # Errors
///
/// Bad options, or the capture could not start (the message says why).
pub fn run(args: CaptureArgs) -> anyhow::Result<ExitCode> {
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        anyhow::bail!("--duration {d}: must be a positive number of seconds");
    }
    if !(args.interval.is_finite() && args.interval > 0.0) {
        anyhow::bail!(
            "--interval {}: must be a positive number of seconds",
            args.interval
        );
    }
    let cfg = CaptureConfig {
        queues: args.queues,
        sockets_per_queue: args.sockets_per_queue,
        mode: args.xdp_mode,
        count_only: args.count_only,
        rings: RingSizes {
            rx_ring: args.rx_ring,
            fill_ring: args.fill_ring,
            ..RingSizes::default()
        },
        ..CaptureConfig::new(&args.iface)
    };
    signal::install();
    let cap = Capture::start(&cfg, |_| Counting::default())?;
    eprintln!(
        "flowscope: capturing on {} in {} mode, {} worker(s){}",
        args.iface,
        cap.mode().label(),
        cap.worker_ids().count(),
        if cfg.count_only {
            ", count-only (frames pass to the stack)".to_owned()
        } else {
            socket_modes(cap.zero_copy())
        }
    );
    let started = Instant::now();
    let interval = Duration::from_secs_f64(args.interval);
    let mut last = Snapshot::take(&cap)?;
    let mut next = started + interval;
    loop {
        let deadline = args.duration.map(|d| started + Duration::from_secs_f64(d));
        let now = Instant::now();
        if signal::stop_requested() || deadline.is_some_and(|d| now >= d) {
            break;
        }
        if now >= next {
            let snap = Snapshot::take(&cap)?;
            println!("{}", snap.live_line(&last));
            let _ = std::io::stdout().flush();
            last = snap;
            next += interval;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let xdp = cap.xdp_counters()?;
    let mode = cap.mode();
    let zero_copy = cap.zero_copy().to_vec();
    let reports = cap.stop()?;
    let finals: Vec<WorkerStats> = reports
        .iter()
        .map(|r| WorkerStats {
            id: r.id.clone(),
            socket: r.stats,
        })
        .collect();
    let with_meta: u64 = reports.iter().map(|r| r.handler.with_meta).sum();
    let summary = summary_json(&xdp, &finals, &zero_copy, mode, with_meta);
    eprintln!("{}", summary_text(&xdp, &finals));
    if let Some(path) = &args.summary_json {
        std::fs::write(path, format!("{summary}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn socket_modes(zc: &[bool]) -> String {
    let n = zc.iter().filter(|z| **z).count();
    format!(", sockets: {n} zero-copy, {} copy mode", zc.len() - n)
}

/// Counters at one instant.
struct Snapshot {
    at: Instant,
    xdp: CounterBlock,
    workers: Vec<WorkerStats>,
}

impl Snapshot {
    fn take<H: FrameHandler>(cap: &Capture<H>) -> anyhow::Result<Self> {
        Ok(Self {
            at: Instant::now(),
            xdp: cap.xdp_counters()?,
            workers: cap.worker_stats(),
        })
    }

    /// One plain line: totals, then per worker.
    fn live_line(&self, prev: &Snapshot) -> String {
        let secs = self.at.duration_since(prev.at).as_secs_f64().max(1e-6);
        let d = |now: u64, then: u64| now.saturating_sub(then);
        let all = self.xdp.get(Counter::All);
        let all0 = prev.xdp.get(Counter::All);
        let fallback = d(
            self.xdp.get(Counter::PassFallback).packets,
            prev.xdp.get(Counter::PassFallback).packets,
        );
        let mut line = format!(
            "xdp {:>10.0} pps {:>8.1} Mbit/s | pass_fallback {fallback}",
            d(all.packets, all0.packets) as f64 / secs,
            d(all.bytes, all0.bytes) as f64 * 8.0 / secs / 1e6,
        );
        for (w, p) in self.workers.iter().zip(prev.workers.iter()) {
            let (s, s0) = (&w.socket, &p.socket);
            line.push_str(&format!(
                " | w{} q{} {:.0} pps {:.1} Mbit/s drop {} ring_full {} fill_empty {} invalid {}",
                w.id.index,
                w.id.queue,
                d(s.rx_packets, s0.rx_packets) as f64 / secs,
                d(s.rx_bytes, s0.rx_bytes) as f64 * 8.0 / secs / 1e6,
                d(s.rx_dropped, s0.rx_dropped),
                d(s.rx_ring_full, s0.rx_ring_full),
                d(s.fill_ring_empty, s0.fill_ring_empty),
                d(s.invalid_descs, s0.invalid_descs),
            ));
        }
        line
    }
}

fn summary_json(
    xdp: &CounterBlock,
    workers: &[WorkerStats],
    zc: &[bool],
    mode: XdpAttachMode,
    with_meta: u64,
) -> serde_json::Value {
    let counters: serde_json::Map<String, serde_json::Value> = Counter::ALL
        .iter()
        .map(|c| {
            (
                c.label().to_owned(),
                json!({"packets": xdp.get(*c).packets, "bytes": xdp.get(*c).bytes}),
            )
        })
        .collect();
    let sockets: Vec<_> = workers
        .iter()
        .zip(zc.iter().chain(std::iter::repeat(&false)))
        .map(|(w, zc)| socket_json(w, *zc))
        .collect();
    json!({
        "xdp_mode": mode.label(),
        "xdp": counters,
        "sockets": sockets,
        "rx_packets": workers.iter().map(|w| w.socket.rx_packets).sum::<u64>(),
        "rx_with_metadata": with_meta,
    })
}

fn socket_json(w: &WorkerStats, zero_copy: bool) -> serde_json::Value {
    let s: &SocketStats = &w.socket;
    json!({
        "worker": w.id.index, "queue": w.id.queue, "index": w.id.slot,
        "rx_packets": s.rx_packets, "rx_bytes": s.rx_bytes, "batches": s.batches,
        "rx_dropped": s.rx_dropped, "rx_ring_full": s.rx_ring_full,
        "fill_ring_empty": s.fill_ring_empty, "invalid_descs": s.invalid_descs,
        "zero_copy": zero_copy,
    })
}

fn summary_text(xdp: &CounterBlock, workers: &[WorkerStats]) -> String {
    let mut out = String::from("flowscope summary:\n  xdp:");
    for c in Counter::ALL {
        let v = xdp.get(*c);
        if v.packets > 0 {
            out.push_str(&format!(" {}={}", c.label(), v.packets));
        }
    }
    for w in workers {
        let s = &w.socket;
        out.push_str(&format!(
            "\n  worker {} (queue {}, slot {}): {} frames, {} bytes, dropped {}, ring_full {}, fill_empty {}, invalid {}",
            w.id.index, w.id.queue, w.id.slot, s.rx_packets, s.rx_bytes, s.rx_dropped, s.rx_ring_full, s.fill_ring_empty, s.invalid_descs
        ));
    }
    out.push_str(&format!(
        "\n  total received by sockets: {}",
        workers.iter().map(|w| w.socket.rx_packets).sum::<u64>()
    ));
    out
}
