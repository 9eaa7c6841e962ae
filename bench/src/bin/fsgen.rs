//! `fsgen`: sends exactly N Ethernet frames of M flows on an interface from
//! an `AF_PACKET` socket (`PACKET_QDISC_BYPASS`, `sendmmsg`), one sender
//! thread per TX queue, and prints what it sent as one JSON line. With
//! `--syn-flood`, every frame is the SYN of a distinct spoofed flow, with
//! `--established K` complete connections interleaved (see `bench::flood`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use bench::flood::{self, FloodConfig};
use bench::generator::{self, Config, Report};
use clap::Parser;

/// Send exactly N frames of M flows (IPv4/IPv6, UDP/TCP, documentation
/// addresses) and print `{"sent", "bytes", "per_queue", "elapsed_ms", "pps"}`.
#[derive(Parser, Debug)]
#[command(name = "fsgen", version)]
struct Args {
    /// Interface to send on.
    #[arg(long)]
    iface: String,
    /// Exact number of frames to send.
    #[arg(long, default_value_t = 100_000)]
    frames: u64,
    /// Number of flows; frames are spread over them round-robin.
    #[arg(long, default_value_t = 100)]
    flows: u32,
    /// Frame length in bytes without FCS (raised to the headers' length).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Alternate the directions of each flow (A→B, B→A, ...).
    #[arg(long)]
    both_directions: bool,
    /// TX queues to use: one thread per queue, pinned to a CPU c with
    /// c % tx_queues == queue; flow f goes on queue f % QUEUES.
    #[arg(long, default_value_t = 1)]
    queues: usize,
    /// Make every flow with index % 4 in {2, 3} IPv6.
    #[arg(long)]
    ipv6: bool,
    /// Ethernet address of side A (default: the interface's own).
    #[arg(long, value_parser = parse_mac)]
    a_mac: Option<[u8; 6]>,
    /// Ethernet address of side B.
    #[arg(long, value_parser = parse_mac, default_value = "02:66:73:00:00:0b")]
    b_mac: [u8; 6],
    /// Write one JSON line per flow with what was sent to this file.
    #[arg(long)]
    manifest: Option<std::path::PathBuf>,
    /// Frames per second over all queues (default: as fast as possible).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,
    /// SYN flood: every one of the --frames frames is a SYN of a distinct
    /// flow from a pseudo-random documentation source (--flows, --ipv6 and
    /// --both-directions are ignored).
    #[arg(long)]
    syn_flood: bool,
    /// With --syn-flood: also send this many complete TCP connections
    /// (handshake, data both ways, FINs after the flood; --size is the
    /// length of their data frames), listed in the manifest.
    #[arg(long, default_value_t = 0, requires = "syn_flood")]
    established: u32,
    /// Seed of the flood's sources (the same seed sends the same frames).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let part = parts
            .next()
            .ok_or_else(|| format!("{s}: expected 6 hex bytes"))?;
        *b = u8::from_str_radix(part, 16).map_err(|_| format!("{s}: bad hex byte {part:?}"))?;
    }
    if parts.next().is_some() {
        return Err(format!("{s}: expected 6 hex bytes"));
    }
    Ok(mac)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fsgen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let a_mac = match args.a_mac {
        Some(mac) => mac,
        None => {
            let path = format!("/sys/class/net/{}/address", args.iface);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("no such interface: {} ({path})", args.iface))?;
            match parse_mac(text.trim()) {
                Ok(mac) => mac,
                Err(e) => bail!(
                    "{}: unexpected hardware address: {e}; pass --a-mac",
                    args.iface
                ),
            }
        }
    };
    let cfg = Config {
        iface: args.iface.clone(),
        frames: args.frames,
        flows: args.flows,
        size: args.size,
        both_directions: args.both_directions,
        queues: args.queues,
        ipv6: args.ipv6,
        a_mac,
        b_mac: args.b_mac,
        rate_pps: args.rate,
    };
    let report = if args.syn_flood {
        let flood = FloodConfig {
            established: args.established,
            seed: args.seed,
        };
        flood::run(&cfg, flood)?
    } else {
        generator::run(&cfg)?
    };
    if let Some(path) = &args.manifest {
        write_manifest(path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{}", summary_json(&report));
    Ok(())
}

fn write_manifest(path: &std::path::Path, report: &Report) -> std::io::Result<()> {
    let mut flows: Vec<_> = report.queues.iter().flat_map(|q| &q.flows).collect();
    flows.sort_by_key(|f| f.flow.index);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for f in flows {
        writeln!(
            out,
            r#"{{"flow": {}, "proto": {}, "a": "{}", "a_port": {}, "b": "{}", "b_port": {}, "queue": {}, "frames_ab": {}, "frames_ba": {}, "bytes_ab": {}, "bytes_ba": {}}}"#,
            f.flow.index,
            f.flow.transport.number(),
            f.flow.a(),
            f.flow.a_port,
            f.flow.b(),
            f.flow.b_port,
            f.queue,
            f.frames_ab,
            f.frames_ba,
            f.bytes_ab,
            f.bytes_ba
        )?;
    }
    out.flush()
}

fn summary_json(report: &Report) -> String {
    let per_queue: Vec<String> = report.queues.iter().map(|q| q.frames.to_string()).collect();
    let retries: u64 = report.queues.iter().map(|q| q.retries).sum();
    let secs = report.elapsed.as_secs_f64();
    let pps = if secs > 0.0 {
        report.frames() as f64 / secs
    } else {
        0.0
    };
    format!(
        r#"{{"sent": {}, "bytes": {}, "per_queue": [{}], "elapsed_ms": {}, "pps": {:.0}, "retries": {}}}"#,
        report.frames(),
        report.bytes(),
        per_queue.join(", "),
        report.elapsed.as_millis(),
        pps,
        retries
    )
}
