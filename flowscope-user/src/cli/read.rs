//! `flowscope read FILE`: a capture file to EVE JSON flow records.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::extract::{AutoDetectEncap, FiveTuple, FiveTupleKey};
use crate::extractor::{FlowExtractor, Unmatched};
use crate::obs::TrackerCounters;
use crate::offline::{EveSink, track_capture};
use crate::pcap::{PcapReader, ReaderStats};
use crate::tracker::{EndReason, FlowTracker, TrackerConfig};

/// Output formats of `flowscope read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Suricata-style EVE JSON, one flow record per line.
    Eve,
}

/// Arguments of `flowscope read`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReadArgs {
    /// Capture file (pcap or pcapng); `-` reads standard input.
    pub file: PathBuf,
    /// Write records here instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Record format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Eve)]
    pub format: OutputFormat,
    /// Idle timeout of TCP flows, in seconds.
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = parse_secs)]
    pub tcp_timeout: Duration,
    /// Idle timeout of UDP flows, in seconds.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    pub udp_timeout: Duration,
    /// Idle timeout of other flows (ICMP, …), in seconds.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub other_timeout: Duration,
    /// End a record after this many seconds and continue the flow in a new one.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub active_timeout: Option<Duration>,
    /// Most flows held at once; more evict the least valuable.
    #[arg(long, default_value_t = 100_000)]
    pub max_flows: usize,
    /// Key flows on the innermost packet of VXLAN, Geneve, GRE, IP-in-IP,
    /// GTP-U and Teredo tunnels instead of the outer one.
    #[arg(long)]
    pub decap: bool,
}

/// Seconds (fractions allowed) as a duration.
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number of seconds: {e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Runs `flowscope read`: records to the output, a summary to standard error.
///
/// Exit code 0 when the whole file was read; 1 when it was truncated or
/// corrupt (the records formed up to there are still written) or the output
/// failed.
///
/// # Errors
///
/// Opening the input or output, or a file that is not a capture at all.
pub fn run(args: ReadArgs) -> anyhow::Result<ExitCode> {
    let input: Box<dyn Read> = if args.file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        let f = File::open(&args.file)
            .with_context(|| format!("cannot open capture file {}", args.file.display()))?;
        Box::new(f)
    };
    let mut reader = PcapReader::new(input)
        .with_context(|| format!("cannot read capture file {}", args.file.display()))?;
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let mut sink = EveSink::new(BufWriter::new(out));
    let config = TrackerConfig {
        max_flows: args.max_flows,
        idle_timeout_tcp: args.tcp_timeout,
        idle_timeout_udp: args.udp_timeout,
        idle_timeout_other: args.other_timeout,
        active_timeout: args.active_timeout,
        ..TrackerConfig::default()
    };
    let (read_result, counters) = if args.decap {
        run_with(
            AutoDetectEncap::new(FiveTuple::bidirectional()),
            config,
            &mut reader,
            &mut sink,
        )
    } else {
        run_with(FiveTuple::bidirectional(), config, &mut reader, &mut sink)
    };
    let records = sink.records();
    let write_result = sink.finish();
    eprint!("{}", summary(&counters, records, &reader.stats()));
    let mut code = ExitCode::SUCCESS;
    if let Err(e) = read_result {
        eprintln!("error: {}: {}", args.file.display(), error_chain(&e));
        code = ExitCode::FAILURE;
    }
    if let Err(e) = write_result {
        eprintln!("error: writing records: {e}");
        code = ExitCode::FAILURE;
    }
    Ok(code)
}

fn run_with<R: Read, E: FlowExtractor<Key = FiveTupleKey>, W: Write>(
    extractor: E,
    config: TrackerConfig,
    reader: &mut PcapReader<R>,
    sink: &mut EveSink<W>,
) -> (Result<(), crate::pcap::PcapError>, TrackerCounters) {
    let mut tracker = FlowTracker::with_config(extractor, config);
    let result = track_capture(reader, &mut tracker, sink);
    (result, tracker.counters().clone())
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

/// The summary printed to standard error.
pub fn summary(c: &TrackerCounters, records: u64, reader: &ReaderStats) -> String {
    let mut s = format!(
        "packets: {} ({} in flows, {} unmatched)\nflows: {} records",
        c.packets,
        c.packets_matched,
        c.unmatched_total(),
        records
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
    if reader.skipped_link_type > 0 {
        s.push_str(&format!(
            "skipped: {} packets of unsupported link type {}\n",
            reader.skipped_link_type,
            reader.last_skipped_link_type.unwrap_or_default()
        ));
    }
    s
}
