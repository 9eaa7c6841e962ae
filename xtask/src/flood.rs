//! `cargo xtask bench flood`: flowscope (full pipeline, 2 workers) with a
//! flow table far smaller than a flood of distinct spoofed SYN flows
//! (`fsgen --syn-flood`) on the veth pair of `bench capture`.
//!
//! Memory: the peak resident set (VmHWM) of `flowscope capture --max-flows
//! N` after (1) a few flows, (2) exactly as many flows as the tables hold,
//! (3) a fifth of the long flood and (4) the long flood. (2) − (1) is what
//! the full tables cost; a bounded table keeps (3) and (4) equal whatever
//! the flood's length, and their distance to (2) is what churn (evictions,
//! records in flight) adds. Throughput: the highest loss-free rate of the same capture under
//! the flood (with long connections interleaved) against the same ladder
//! with normal traffic (1000 flows both ways), as in `bench capture`.
//! Every figure is the median of `--runs` runs; the output is Markdown for
//! BENCHMARKS.md.

use std::path::Path;

use anyhow::{Context, Result};

use crate::loss_free::{self, Extra, Outcome, Receiver, Setup};

/// Options of `cargo xtask bench flood`.
#[derive(clap::Parser)]
#[group(skip)]
pub struct Args {
    /// The ladder (runs, seconds per step, rates).
    #[command(flatten)]
    ladder: loss_free::Args,
    /// Flow table capacity of each worker (`--max-flows`).
    #[arg(long, default_value_t = 65_536)]
    max_flows: u64,
    /// Distinct flows (frames) of the long flood.
    #[arg(long, default_value_t = 5_000_000)]
    flood_flows: u64,
    /// Frames per second of the long flood.
    #[arg(long, default_value_t = 400_000)]
    flood_rate: u64,
    /// Long TCP connections sent through every flood.
    #[arg(long, default_value_t = 100)]
    established: u32,
}

const SETUP: Setup = Setup {
    label: "flowscope full pipeline, 2 workers",
    receiver: Receiver::Flowscope,
    queues: 2,
};

/// Flows of the "few flows" memory run.
const FEW_FLOWS: u64 = 1000;

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Runs the benchmark with the release binaries in `bin`.
///
/// # Errors
/// When a step cannot be set up or a process fails.
pub fn run(args: &Args, bin: &Path) -> Result<()> {
    crate::cmd::require_root("bench flood")?;
    let capacity = args.max_flows * u64::from(SETUP.queues);
    let capture_args = vec!["--max-flows".to_owned(), args.max_flows.to_string()];
    let flood = |established: u32| Extra {
        capture_args: capture_args.clone(),
        fsgen_args: Some(
            ["--syn-flood", "--established", &established.to_string()]
                .map(String::from)
                .to_vec(),
        ),
        ..Extra::default()
    };
    // Memory: a few flows, full tables, the long flood; the same rate.
    let rate = args.flood_rate;
    let mut rss = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    let (mut evicted, mut created, mut lost) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..args.ladder.runs {
        for (i, (frames, established)) in [
            (FEW_FLOWS, 0),
            (capacity, 0),
            (args.flood_flows / 5, args.established),
            (args.flood_flows, args.established),
        ]
        .into_iter()
        .enumerate()
        {
            let o = loss_free::step(
                &SETUP,
                rate,
                frames as f64 / rate as f64,
                bin,
                &flood(established),
            )?;
            let (peak, summary) = measured(&o)?;
            eprintln!(
                "xtask: flood memory run {run}, {frames} flows: peak RSS {peak} KiB, sent {}, received {}, created {}, evicted {}",
                o.sent, o.received, summary["flows_created"], summary["flows_evicted"]
            );
            rss[i].push(peak);
            if i == 3 {
                evicted.push(summary["flows_evicted"].as_u64().unwrap_or(0));
                created.push(summary["flows_created"].as_u64().unwrap_or(0));
                lost.push(o.sent - o.received.min(o.sent));
            }
        }
    }
    let [few, full, fifth, flooded] = rss.map(median);
    // Throughput: the ladder with normal traffic, then under the flood.
    let normal = loss_free::median_loss_free(
        &SETUP,
        &args.ladder,
        bin,
        &Extra {
            capture_args: capture_args.clone(),
            ..Extra::default()
        },
    )?;
    let under_flood =
        loss_free::median_loss_free(&SETUP, &args.ladder, bin, &flood(args.established))?;
    let per_flow =
        (full.saturating_sub(few) * 1024) as f64 / (capacity - FEW_FLOWS.min(capacity)) as f64;
    println!(
        "`--max-flows {}` × 2 workers = {capacity} flows; medians of {} runs.\n",
        args.max_flows, args.ladder.runs
    );
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| peak RSS, {FEW_FLOWS} flows (binary, rings, UMEM) | {} MiB |",
        few / 1024
    );
    println!(
        "| peak RSS, {capacity} flows (tables full, no eviction) | {} MiB ({per_flow:.0} B per flow above the first line) |",
        full / 1024
    );
    for (flows, peak) in [(args.flood_flows / 5, fifth), (args.flood_flows, flooded)] {
        println!(
            "| peak RSS, flood of {flows} distinct flows at {rate} pps + {} connections | {} MiB ({:+.1} % against full tables) |",
            args.established,
            peak / 1024,
            (peak as f64 / full as f64 - 1.0) * 100.0
        );
    }
    println!(
        "| flows created / evicted in the flood | {} / {} (frames lost: {}) |",
        median(created),
        median(evicted),
        median(lost)
    );
    println!("| highest loss-free rate, normal traffic | {normal} pps |");
    println!("| highest loss-free rate, SYN flood | {under_flood} pps |");
    println!(
        "| flood / normal | {:.2} |",
        if normal == 0 {
            f64::NAN
        } else {
            under_flood as f64 / normal as f64
        }
    );
    Ok(())
}

/// The peak RSS and the summary of a flowscope step.
fn measured(o: &Outcome) -> Result<(u64, &serde_json::Value)> {
    let peak = o.peak_rss_kib.context("no VmHWM read from flowscope")?;
    let summary = o.summary.as_ref().context("flowscope wrote no summary")?;
    Ok((peak, summary))
}
