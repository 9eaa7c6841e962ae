//! `trackbench`: ns/packet of extract + track, ours side by side with the
//! published flowscope 0.3.0 crate, as a Markdown table for BENCHMARKS.md.
//! Run it with `cargo xtask bench track [-- ARGS]`.

use std::path::PathBuf;
use std::process::ExitCode;

use bench::track::{self, Config};
use clap::Parser;

/// Extract + track ns/packet: synthetic workloads (one flow; N flows
/// round-robin), captures replayed from memory, many concurrent flows.
#[derive(Parser, Debug)]
#[command(name = "trackbench", version)]
struct Args {
    /// Timed runs per contender and workload (median reported).
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Packets timed in the steady passes of one run (at least one pass).
    #[arg(long, default_value_t = 2_000_000)]
    packets: u64,
    /// Capture to replay from memory (repeatable).
    #[arg(long, default_values = [
        "../shared/pcaps/zeek__echo-connections.pcap",
        "../shared/pcaps/ndpi__reddit.pcap",
    ])]
    pcap: Vec<PathBuf>,
    /// Flows of the concurrent-flows workload (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    big_flows: usize,
    /// Run only the workloads whose name contains this (e.g. `round-robin`).
    #[arg(long)]
    only: Option<String>,
    /// CPU to pin the benchmark to (default: the last one allowed).
    #[arg(long)]
    cpu: Option<usize>,
    /// Only compare plain and XDP-hinted extraction (VLAN tags, IPv4
    /// options, IPv6 extension headers) instead of the tracker table.
    #[arg(long)]
    hints: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    bench::cpu::pin_benchmark("trackbench", args.cpu);
    let out = &mut std::io::stdout().lock();
    let result = if args.hints {
        track::hint::bench(args.runs, args.packets, out)
    } else {
        let cfg = Config {
            runs: args.runs.max(1),
            packets: args.packets,
            pcaps: args.pcap,
            big_flows: args.big_flows,
            only: args.only,
        };
        track::bench(&cfg, out)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trackbench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
