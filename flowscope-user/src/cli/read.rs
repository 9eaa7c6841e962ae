//! `flowscope read FILE`: a capture file to EVE JSON flow records.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::extract::{AutoDetectEncap, FiveTuple, FiveTupleKey};
use crate::extractor::{FlowExtractor, Unmatched};
use crate::obs::TrackerCounters;
use crate::offline::track_capture;
use crate::output::spec::{OutputSpec, WriterSet};
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
    /// Where records go; repeat for several outputs: `-` (EVE JSON to
    /// standard output), `FILE` or `eve:FILE`, `zeek:DIR`, `zeek-json:DIR`,
    /// `ipfix:udp://HOST:PORT` or `ipfix:tcp://HOST:PORT` (options
    /// `?mode=biflow|uni&domain=N&ingress=N&mtu=N`).
    #[arg(short, long, value_name = "SPEC", default_value = "-")]
    pub output: Vec<OutputSpec>,
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
    /// Reassemble IP fragments and TCP streams, detect each flow's protocol
    /// (`app_proto`) and write HTTP, TLS, DNS, QUIC and SSH records (EVE
    /// `event_type` `http`, `tls`, `dns`, `quic`, `ssh`; Zeek ssh.log) next
    /// to the flows.
    #[arg(long)]
    pub l7: bool,
}

/// Seconds (fractions allowed) as a duration.
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number of seconds: {e}"))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{s:?}: must be more than 0 seconds"));
    }
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
    let mut sink = WriterSet::open(args.output.iter().map(|s| (s, s.to_string())))?;
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
            args.l7,
            &mut reader,
            &mut sink,
        )
    } else {
        let extractor = FiveTuple::bidirectional();
        run_with(extractor, config, args.l7, &mut reader, &mut sink)
    };
    let reports = sink.finish();
    let records = counters.ended_total();
    eprint!("{}", summary(&counters, records, &reader.stats()));
    let mut code = ExitCode::SUCCESS;
    for r in &reports {
        eprintln!(
            "output {}: {} records written, {} dropped",
            r.spec, r.written, r.dropped
        );
    }
    if let Err(e) = read_result {
        eprintln!("error: {}: {}", args.file.display(), error_chain(&e));
        code = ExitCode::FAILURE;
    }
    for r in &reports {
        if let Some(e) = &r.error {
            eprintln!("error: writing records to {}: {e}", r.spec);
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

fn run_with<R: Read, E: FlowExtractor<Key = FiveTupleKey>>(
    extractor: E,
    config: TrackerConfig,
    l7: bool,
    reader: &mut PcapReader<R>,
    sink: &mut WriterSet,
) -> (Result<(), crate::pcap::PcapError>, TrackerCounters) {
    if l7 {
        let config = crate::pipeline::PipelineConfig {
            tracker: config,
            ..Default::default()
        };
        let mut pipeline = crate::pipeline::Pipeline::new(extractor, config);
        let result = crate::offline::process_capture(reader, &mut pipeline, sink);
        return (result, pipeline.counters().tracker);
    }
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
