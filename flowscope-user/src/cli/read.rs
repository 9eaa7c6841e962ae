//! `flowscope read FILE`: a capture file through the same runtime as live
//! capture, records to the outputs, a summary to standard error.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::opts::{Defaults, RunOpts, config_text, parse_config};
use super::signal;
use crate::extractor::Unmatched;
use crate::l7::session::SessionCounters;
use crate::pcap::{PcapReader, ReaderStats};
use crate::pipeline::PipelineCounters;
use crate::reassembly::ipfrag::FragDrop;
use crate::runtime::MAX_WORKERS;
use crate::runtime::frames::PcapReport;
use crate::runtime::offline::{self, OfflineConfig, OfflineReport};
use crate::tracker::EndReason;

/// Output formats of `flowscope read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Suricata-style EVE JSON, one record per line.
    Eve,
}

/// Arguments of `flowscope read`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    /// Capture file (pcap or pcapng); `-` reads standard input.
    pub file: PathBuf,
    /// TOML file with any of the options below (keys with `_`; the
    /// `capture` keys of a shared file are ignored); flags win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Record format of `-o -` and `-o FILE`.
    #[arg(long, value_enum, default_value_t = OutputFormat::Eve)]
    pub format: OutputFormat,
    /// Worker threads, at most 1024 (default: one per core); 1 reads,
    /// tracks and writes on one thread.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Keep only the frames this tcpdump expression matches (pcap-filter(7)
    /// syntax), compiled by libpcap for the file's link type; the others
    /// are counted and skipped before any tracking.
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Write a JSON summary here at exit (what the standard error summary
    /// says, as numbers).
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    /// The options `read` shares with `capture`.
    #[command(flatten)]
    pub run: RunOpts,
}

/// Runs `flowscope read`: records to the outputs, a summary to standard
/// error.
///
/// Exit status 0 when the whole file was read and every record written;
/// 1 when it was truncated or corrupt (the records formed up to there are
/// still written) or an output failed or lost records; 128 + the signal's number when SIGINT or SIGTERM stopped the
/// reading (every open flow still ended `force_closed` and written).
///
/// # Errors
///
/// Bad options, opening the input or an output, or a file that is not a
/// capture at all.
pub fn run(args: ReadArgs) -> anyhow::Result<ExitCode> {
    let file_run = match &args.config {
        Some(p) => {
            let keys = [RunOpts::KEYS, super::live_keys()];
            parse_config::<RunOpts>(p, &config_text(p, &keys)?)?
        }
        None => RunOpts::default(),
    };
    let run = args.run.merged(file_run).settings(Defaults {
        stdout: true,
        record_ring: 4096,
    })?;
    let workers = match args.workers {
        Some(n) if !(1..=MAX_WORKERS).contains(&n) => {
            anyhow::bail!("--workers {n}: must be 1..={MAX_WORKERS}")
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS)),
    };
    signal::install(false);
    let file = if args.file.as_os_str() == "-" {
        let fd = io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot read standard input")?;
        File::from(fd)
    } else {
        File::open(&args.file)
            .with_context(|| format!("cannot open capture file {}", args.file.display()))?
    };
    let reader = PcapReader::from_file(file)
        .with_context(|| format!("cannot read capture file {}", args.file.display()))?;
    let cfg = OfflineConfig {
        run,
        workers,
        filter: args.filter,
    };
    let report = offline::run(reader, &cfg, signal::stop_flag(), signal::listen)?;
    eprint!("{}", summary(&report.counters, &report.reader));
    if report.workers > 1 {
        eprintln!("{}", worker_split(&report.worker_packets));
    }
    if let Some(f) = &report.filter {
        let r = f.rejected();
        eprintln!(
            "filter {:?}: {} frames ({} bytes) filtered out",
            f.expression(),
            r.frames,
            r.bytes
        );
    }
    let mut code = ExitCode::SUCCESS;
    for r in &report.writer.outputs {
        eprintln!("{}", r.line());
        if r.trimmed > 0 {
            eprintln!(
                "output {} ({}): trimmed a partial last line of {} bytes an earlier run left",
                r.name, r.spec, r.trimmed
            );
        }
    }
    if let Some(e) = &report.error {
        eprintln!("error: {}: {}", args.file.display(), error_chain(e));
        code = ExitCode::FAILURE;
    }
    if let Some(p) = &report.pcap {
        eprintln!("{}", p.summary_line());
        if let Some(e) = &p.error {
            eprintln!("error: writing frames to {}: {e}", p.dir.display());
            code = ExitCode::FAILURE;
        }
    }
    if let Some(e) = &report.filter_error {
        eprintln!("error: {}: --{e}", args.file.display());
        code = ExitCode::FAILURE;
    }
    for r in &report.writer.outputs {
        if r.lost_any() {
            let cause = r.error.as_deref().unwrap_or("no error reported");
            eprintln!(
                "error: output {} ({}) lost {} records ({} dropped, {} failed): {cause}",
                r.name,
                r.spec,
                r.dropped + r.failed,
                r.dropped,
                r.failed
            );
            code = ExitCode::FAILURE;
        }
    }
    if let Some(status) = interrupted(&report) {
        eprintln!("flowscope: interrupted: reading stopped, every open flow ended and written");
        code = ExitCode::from(status);
    }
    if let Some(path) = &args.summary_json {
        std::fs::write(path, format!("{}\n", summary_json(&args.file, &report)))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(code)
}

/// How the packets split over the workers: `workers: 2, packets 60% 40%
/// (6391 2983)`.
fn worker_split(packets: &[u64]) -> String {
    let total: u64 = packets.iter().sum();
    let share = |n: u64| (n as f64 * 100.0 / total.max(1) as f64).round();
    let shares: Vec<String> = packets.iter().map(|&n| format!("{}%", share(n))).collect();
    let counts: Vec<String> = packets.iter().map(u64::to_string).collect();
    format!(
        "workers: {}, packets {} ({})",
        packets.len(),
        shares.join(" "),
        counts.join(" ")
    )
}

/// `--summary-json`: the summary's figures.
fn summary_json(file: &std::path::Path, r: &OfflineReport) -> serde_json::Value {
    use serde_json::json;
    let c = &r.counters.tracker;
    let unmatched: serde_json::Map<_, _> = Unmatched::ALL
        .iter()
        .enumerate()
        .map(|(i, u)| (u.label().to_owned(), json!(c.packets_unmatched[i])))
        .collect();
    let ended: serde_json::Map<_, _> = EndReason::ALL
        .iter()
        .map(|e| (e.label().to_owned(), json!(c.ended(*e))))
        .collect();
    let f = &r.counters.fragments;
    let (gaps, gap_bytes) = r.counters.reassembly.gaps();
    json!({
        "file": file.display().to_string(),
        "workers": r.workers,
        "worker_packets": r.worker_packets,
        "frames_read": r.reader.packets,
        "skipped_link_type": r.reader.skipped_link_type,
        "pcapng_blocks_skipped": r.reader.skipped_blocks,
        "filter": r.filter.as_ref().map(|f| json!({
            "expression": f.expression(),
            "rejected_frames": f.rejected().frames,
            "rejected_bytes": f.rejected().bytes,
        })),
        "packets": c.packets,
        "packets_in_flows": c.packets_matched,
        "packets_unmatched": unmatched,
        "flows": c.ended_total(),
        "flows_ended": ended,
        "tcp_gaps": gaps,
        "tcp_gap_bytes": gap_bytes,
        "ip_fragments": f.fragments,
        "ip_fragments_unsteered": r.fragments_unsteered,
        "ip_datagrams_reassembled": f.completed,
        "ip_datagrams_dropped": FragDrop::ALL.iter()
            .map(|d| (d.label().to_owned(), json!(f.dropped(*d))))
            .collect::<serde_json::Map<_, _>>(),
        "l7": l7_json(&r.counters),
        "records": r.writer.records,
        "outputs": outputs_json(&r.writer.outputs),
        "pcap": r.pcap.as_ref().map(PcapReport::json),
        "interrupted": r.interrupted,
        "error": r.error.as_ref().map(|e| error_chain(e))
            .or_else(|| r.filter_error.as_ref().map(ToString::to_string)),
    })
}

/// The exit status of a run a signal stopped.
fn interrupted(report: &OfflineReport) -> Option<u8> {
    report
        .interrupted
        .then(|| signal::exit_status().unwrap_or(130))
}

/// An error and its sources, joined by ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The summary printed to standard error: every packet read is in a flow
/// or unmatched (by reason); IP fragments also went to the reassembler,
/// whose datagrams went to the parsers.
pub fn summary(p: &PipelineCounters, reader: &ReaderStats) -> String {
    let c = &p.tracker;
    let mut s = format!(
        "packets: {} ({} in flows, {} unmatched)\nflows: {} records",
        c.packets,
        c.packets_matched,
        c.unmatched_total(),
        c.ended_total()
    );
    for r in EndReason::ALL {
        if c.ended(r) > 0 {
            s.push_str(&format!(", {} {}", c.ended(r), r.label()));
        }
    }
    s.push('\n');
    if c.unmatched_total() > 0 {
        s.push_str("unmatched:");
        for (i, r) in Unmatched::ALL.iter().enumerate() {
            if c.packets_unmatched[i] > 0 {
                s.push_str(&format!(" {}={}", r.label(), c.packets_unmatched[i]));
            }
        }
        s.push('\n');
    }
    let f = &p.fragments;
    if f.fragments > 0 {
        s.push_str(&format!(
            "ip fragments: {}, reassembled into {} datagrams for the parsers",
            f.fragments, f.completed
        ));
        let mut sep = "; dropped datagrams:";
        for r in FragDrop::ALL {
            if f.dropped(r) > 0 {
                s.push_str(&format!("{sep} {}={}", r.label(), f.dropped(r)));
                sep = "";
            }
        }
        s.push('\n');
    }
    let r = &p.reassembly;
    if r.bypassed_segments.iter().any(|&n| n > 0) {
        s.push_str(&format!(
            "tcp bypassed (stream depth or parser done): {} segments, {} bytes\n",
            r.bypassed_segments.iter().sum::<u64>(),
            r.bypassed_bytes.iter().sum::<u64>()
        ));
    }
    let (holes, hole_bytes) = r.gaps();
    if holes > 0 {
        s.push_str(&format!(
            "tcp gaps handed to the parsers (bytes never captured): {holes} ({hole_bytes} bytes)\n"
        ));
    }
    for line in l7_lines(p) {
        s.push_str(&line);
        s.push('\n');
    }
    if reader.skipped_link_type > 0 {
        s.push_str(&format!(
            "skipped: {} packets of unsupported link type {}\n",
            reader.skipped_link_type,
            reader.last_skipped_link_type.unwrap_or_default()
        ));
    }
    s
}

/// The L7 lines of the summaries (`l7 flows: tcp http=22; udp dns=5`,
/// then parse errors and exhausted budgets), non-zero counts only.
pub(super) fn l7_lines(p: &PipelineCounters) -> Vec<String> {
    let detected: fn(&SessionCounters) -> &[u64] = |c| &c.flows_detected;
    let mut lines = Vec::new();
    for (what, of) in [
        ("l7 flows", detected),
        ("l7 parse errors", |c| &c.parse_errors),
        ("l7 budget exhausted", |c| &c.budget_exhausted),
    ] {
        let mut line = String::new();
        for (transport, c) in [("tcp", &p.streams), ("udp", &p.datagrams)] {
            let mut counts: Vec<String> = (c.by_name(of(c)))
                .filter(|(_, n)| *n > 0)
                .map(|(name, n)| format!("{name}={n}"))
                .collect();
            if what == "l7 flows" && c.flows_undetected > 0 {
                counts.push(format!("undetected={}", c.flows_undetected));
            }
            if !counts.is_empty() {
                line.push_str(&format!("; {transport} {}", counts.join(" ")));
            }
        }
        if let Some(line) = line.strip_prefix("; ") {
            lines.push(format!("{what}: {line}"));
        }
    }
    lines
}

/// The L7 session layer's counts, as `--summary-json` gives them: per
/// transport, each parser's flows, parse errors, exhausted budgets and
/// bytes; per parser, what it counted (the `flowscope_l7_*` families).
pub(super) fn l7_json(p: &PipelineCounters) -> serde_json::Value {
    use serde_json::json;
    let transport = |c: &SessionCounters| {
        let per_parser = |v: &[u64]| {
            c.by_name(v)
                .map(|(name, n)| (name.to_owned(), json!(n)))
                .collect::<serde_json::Map<_, _>>()
        };
        json!({
            "flows": per_parser(&c.flows_detected),
            "flows_undetected": c.flows_undetected,
            "parse_errors": per_parser(&c.parse_errors),
            "budget_exhausted": per_parser(&c.budget_exhausted),
            "bytes": per_parser(&c.bytes_parsed),
            "bytes_missed_while_probing": c.bytes_missed_while_probing,
        })
    };
    json!({"tcp": transport(&p.streams), "udp": transport(&p.datagrams), "parsers": p.parsers()})
}

/// Every output's counts, as `--summary-json` gives them.
pub(super) fn outputs_json(outputs: &[crate::output::OutputReport]) -> serde_json::Value {
    use serde_json::json;
    outputs
        .iter()
        .map(|o| {
            json!({
                "output": o.name, "spec": o.spec, "records": o.records, "written": o.written,
                "dropped": o.dropped, "failed": o.failed, "trimmed_bytes": o.trimmed, "error": o.error,
            })
        })
        .collect()
}
