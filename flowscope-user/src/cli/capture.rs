//! `flowscope capture`: live capture with per-second figures, flow records,
//! Prometheus metrics and a summary.

use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use flowscope_common::Counter;
use serde_json::json;

use super::{
    capture_opts::{CaptureOpts, Settings},
    live_view::{LiveRates, Tui},
    opts::RunOpts,
    signal,
};
use crate::anomaly::AnomalyInterval;
use crate::capture::{CaptureError, DatapathInfo, Feature, FilterAction, Metadata};
use crate::output::{OutputReport, OutputSpec, Record};
use crate::runtime::{LiveCapture, LiveReport, LiveSnapshot, MetricsServer, prometheus};
use crate::view::Timestamp;

/// Options of `flowscope capture`.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// TOML file with any of the options below (keys with `_`); flags win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The options `capture` shares with `read`.
    #[command(flatten)]
    pub run: RunOpts,
    /// The live options.
    #[command(flatten)]
    pub opts: CaptureOpts,
}

/// What `flowscope capture --help` and its man page say after the options:
/// privileges, files, signals.
pub const NOTES: &str = "\
Privileges: root, or the capabilities CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_NET_RAW and \
CAP_IPC_LOCK. CAP_IPC_LOCK is needed only while RLIMIT_MEMLOCK is below the UMEM (queues × \
fill_ring × 4096 bytes), and --count-only needs neither it nor CAP_NET_RAW. Without \
CAP_SYS_ADMIN the kernel-feature probes that need a private network namespace are skipped, and \
the features they would have asked about are tried directly (the first line says so). The \
flowscope.service unit runs the capture as a dynamic user with exactly these capabilities.

Files: /etc/flowscope/flowscope.toml, the service's config file (--config), takes every option \
above as a key with `_` for `-`; /var/log/flowscope/ holds the service's records, rotated by \
/etc/logrotate.d/flowscope.

Signals: SIGINT or SIGTERM stops the capture cleanly (the program is detached, every flow's \
record written, the summary printed); a second one exits at once.";

/// Runs the subcommand.
///
/// # Errors
///
/// Bad options, or the capture could not start (the message says why).
pub fn run(args: CaptureArgs) -> anyhow::Result<ExitCode> {
    let s = Settings::with_file(args.run, args.opts, args.config.as_deref())?;
    signal::install(true);
    let metrics = s
        .metrics_listen
        .map(|addr| {
            MetricsServer::start(addr).map_err(|e| {
                anyhow::anyhow!("--metrics-listen {addr}: {e}; choose another address or `off`")
            })
        })
        .transpose()?;
    let mut live = LiveCapture::start(&s.capture, &s.run).inspect_err(|e| {
        if s.verbose {
            print_verifier_log(e);
        }
    })?;
    signal::listen();
    // Every series is served from the start, before the first interval.
    let publish = |snap: &LiveSnapshot, live: &LiveCapture| {
        if let Some(m) = &metrics {
            m.publish(prometheus::render(snap, live.info()));
        }
    };
    let started = Instant::now();
    let mut last = live.snapshot()?;
    publish(&last, &live);
    eprintln!(
        "flowscope: datapath on {}: {}",
        s.capture.iface,
        live.info().line()
    );
    eprintln!(
        "flowscope: capturing on {} in {} mode, {} worker(s){}{}",
        s.capture.iface,
        live.info().xdp_mode.label(),
        live.workers(),
        if s.capture.count_only {
            ", count-only (frames pass to the stack)".to_owned()
        } else {
            socket_modes(&live.info().zero_copy)
        },
        metrics
            .as_ref()
            .map(|m| format!(", metrics on http://{}/metrics", m.local_addr()))
            .unwrap_or_default(),
    );
    // Records on stdout: live lines go to stderr, and no full-screen view.
    let records_on_stdout = s.run.outputs.contains(&OutputSpec::Eve(None));
    let mut tui = if !s.plain && !records_on_stdout && std::io::stdout().is_terminal() {
        Some(Tui::enter().context("starting the full-screen view (use --plain)")?)
    } else {
        None
    };
    let header = format!(
        " flowscope on {} ({} mode, {} workers) ",
        s.capture.iface,
        live.info().xdp_mode.label(),
        live.workers()
    );
    let mut next = started + s.interval;
    let mut failed = vec![false; s.run.outputs.len()];
    loop {
        let now = Instant::now();
        let quit = tui.as_ref().is_some_and(Tui::quit_requested);
        if quit || signal::stop_requested() || s.duration.is_some_and(|d| now >= started + d) {
            break;
        }
        if signal::take_reopen() {
            live.reopen();
            if tui.is_none() {
                eprintln!("flowscope: SIGHUP: reopening every file output");
            }
        }
        if now >= next {
            let snap = live.snapshot()?;
            publish(&snap, &live);
            let rates = LiveRates::between(&snap, &last, s.capture.filter.is_some());
            let anomalies = anomaly_interval(&mut live, &last, &snap)?;
            record_anomalies(&mut live, &s, &anomalies)?;
            let mut extra = vec![anomalies.to_string()];
            for (o, seen) in snap.outputs.iter().zip(failed.iter_mut()) {
                if let Some(line) = failure_line(o, seen) {
                    match tui {
                        Some(_) => extra.push(line),
                        None => eprintln!("{line}"),
                    }
                }
                if *seen && tui.is_some() {
                    extra.push(failure_text(o));
                }
            }
            match tui.as_mut() {
                Some(t) => t.draw(&header, &rates, &extra)?,
                None if records_on_stdout => eprintln!("{} | {anomalies}", rates.line()),
                None => {
                    println!("{} | {anomalies}", rates.line());
                    let _ = std::io::stdout().flush();
                }
            }
            last = snap;
            next += s.interval;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(tui);
    // The interval since the last tick gets its record too.
    let snap = live.snapshot()?;
    let anomalies = anomaly_interval(&mut live, &last, &snap)?;
    record_anomalies(&mut live, &s, &anomalies)?;
    let report = live.stop()?;
    if let Some(m) = &metrics {
        m.publish(prometheus::render(&report.last, &report.datapath));
    }
    eprintln!("{}", summary_text(&report));
    // A failure the live view has not named yet (the summary above has
    // every output's final counts).
    for (o, seen) in report.writer.outputs.iter().zip(failed.iter_mut()) {
        if let Some(line) = failure_line(o, seen) {
            eprintln!("{line}");
        }
    }
    if let Some(path) = &s.summary_json {
        std::fs::write(path, format!("{}\n", summary_json(&report, &s)))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The one line that says an output failed or lost records, the first
/// time it does (`seen` remembers).
fn failure_line(o: &OutputReport, seen: &mut bool) -> Option<String> {
    if *seen || !o.lost_any() {
        return None;
    }
    *seen = true;
    Some(format!("flowscope: {}", failure_text(o)))
}

/// What went wrong with an output: its name, specification and cause.
fn failure_text(o: &OutputReport) -> String {
    let cause = o.error.as_deref().unwrap_or("no error reported");
    format!(
        "output {} ({}) lost records ({} dropped, {} failed): {cause}",
        o.name, o.spec, o.dropped, o.failed
    )
}

/// The XDP anomaly counts, rates and top offenders between two snapshots
/// (reads and resets the sketches).
fn anomaly_interval(
    live: &mut LiveCapture,
    prev: &LiveSnapshot,
    now: &LiveSnapshot,
) -> anyhow::Result<AnomalyInterval> {
    let sketches = live.take_sketches()?;
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(AnomalyInterval::new(
        &prev.anomalies,
        &now.anomalies,
        &sketches.syn_dst,
        &sketches.src_ports,
        Timestamp::new(wall.as_secs(), wall.subsec_nanos()),
        now.at.duration_since(prev.at),
        TOP_OFFENDERS,
    ))
}

/// Hands an interval's anomaly record to the writer, unless there is no
/// EVE output or nothing moved.
fn record_anomalies(
    live: &mut LiveCapture,
    s: &Settings,
    anomalies: &AnomalyInterval,
) -> anyhow::Result<()> {
    let eve = s
        .run
        .outputs
        .iter()
        .any(|o| matches!(o, OutputSpec::Eve(_)));
    if eve && !anomalies.is_quiet() {
        live.send(Record::Interval(Box::new(anomalies.clone())));
    }
    Ok(())
}

/// Offenders listed per sketch and interval.
const TOP_OFFENDERS: usize = 5;

fn socket_modes(zc: &[bool]) -> String {
    let n = zc.iter().filter(|z| **z).count();
    format!(", sockets: {n} zero-copy, {} copy mode", zc.len() - n)
}

/// Prints the verifier log a load failure saved, for `--verbose`.
fn print_verifier_log(e: &anyhow::Error) {
    if let Some(CaptureError::Verifier { log: Ok(path), .. }) = e.downcast_ref::<CaptureError>()
        && let Ok(text) = std::fs::read_to_string(path)
    {
        eprintln!("{text}");
    }
}

/// The datapath as `--summary-json` gives it.
fn datapath_json(d: &DatapathInfo) -> serde_json::Value {
    let reason = match &d.metadata {
        Metadata::On => None,
        Metadata::Refused(why) => Some(format!("bpf_xdp_adjust_meta unavailable: {why}")),
        Metadata::Disabled => Some("--no-xdp-meta".to_owned()),
        Metadata::CountOnly => Some("count-only".to_owned()),
    };
    let features: serde_json::Map<String, serde_json::Value> = Feature::ALL
        .iter()
        .map(|f| (f.key().to_owned(), json!(d.features.get(*f).to_string())))
        .collect();
    let filter = d
        .filter
        .as_ref()
        .map(|f| json!({"expression": f.filter.expression(), "rejected_frames": f.action.label()}));
    json!({
        "xdp_mode": d.xdp_mode.label(), "metadata": d.metadata.label(), "metadata_reason": reason,
        "attach": d.attach.label(), "need_wakeup": d.need_wakeup, "zero_copy": d.zero_copy_label(),
        "replaced_stale_program": d.replaced_stale, "kernel_features": features, "filter": filter,
    })
}

fn summary_json(r: &LiveReport, s: &Settings) -> serde_json::Value {
    let last = &r.last;
    let zero_copy = &r.datapath.zero_copy;
    let counters: serde_json::Map<String, serde_json::Value> = Counter::ALL
        .iter()
        .map(|c| {
            (
                c.label().to_owned(),
                json!({"packets": last.xdp.get(*c).packets, "bytes": last.xdp.get(*c).bytes}),
            )
        })
        .collect();
    let sockets: Vec<_> = last
        .sockets
        .iter()
        .zip(last.shards.iter())
        .zip(zero_copy.iter().chain(std::iter::repeat(&false)))
        .map(|((w, sh), zc)| {
            let st = &w.socket;
            json!({
                "worker": w.id.index, "queue": w.id.queue, "index": w.id.slot,
                "rx_packets": st.rx_packets, "rx_bytes": st.rx_bytes, "batches": st.batches,
                "rx_dropped": st.rx_dropped, "rx_ring_full": st.rx_ring_full,
                "fill_ring_empty": st.fill_ring_empty, "invalid_descs": st.invalid_descs,
                "flows_created": sh.tracker.created_total(), "records_sent": sh.records_sent,
                "records_dropped": sh.records_dropped, "rx_with_metadata": sh.frames_with_meta, "zero_copy": zc,
            })
        })
        .collect();
    json!({
        "iface": s.capture.iface,
        "datapath": datapath_json(&r.datapath),
        "xdp": counters,
        "sockets": sockets,
        "rx_packets": last.sockets.iter().map(|w| w.socket.rx_packets).sum::<u64>(),
        "rx_with_metadata": last.total.frames_with_meta,
        "flows_created": last.total.tracker.created_total(),
        "flows_evicted": last.total.tracker.ended(crate::tracker::EndReason::Evicted),
        "flow_capacity": last.total.flow_capacity,
        "records_sent": last.total.records_sent,
        "records_dropped": last.total.records_dropped,
        "records_written": r.writer.outputs.iter().map(|o| o.written).sum::<u64>(),
        "records_to_outputs": r.writer.records,
        "rotations": r.writer.rotations,
        "reopens": r.writer.reopens,
        "outputs": super::read::outputs_json(&r.writer.outputs),
        "pcap": r.pcap.as_ref().map(crate::runtime::frames::PcapReport::json),
        "l7": last.total.pipeline.as_ref().map(super::read::l7_json),
    })
}

fn summary_text(r: &LiveReport) -> String {
    let last = &r.last;
    let mut out = format!(
        "flowscope summary:\n  datapath: {}\n  xdp:",
        r.datapath.line()
    );
    for c in Counter::ALL {
        let v = last.xdp.get(*c);
        if v.packets > 0 {
            out.push_str(&format!(" {}={}", c.label(), v.packets));
        }
    }
    if let Some(f) = &r.datapath.filter {
        let rejected = last.xdp.get(Counter::FilterRejected);
        out.push_str(&format!(
            "\n  filter {:?}: {} frames ({} bytes) filtered out, {}",
            f.filter.expression(),
            rejected.packets,
            rejected.bytes,
            match f.action {
                FilterAction::Pass => "passed to the stack",
                FilterAction::Drop => "dropped",
            }
        ));
    }
    for w in &last.sockets {
        let s = &w.socket;
        out.push_str(&format!(
            "\n  worker {} (queue {}, slot {}): {} frames, {} bytes, dropped {}, ring_full {}, fill_empty {}, invalid {}",
            w.id.index, w.id.queue, w.id.slot, s.rx_packets, s.rx_bytes, s.rx_dropped, s.rx_ring_full, s.fill_ring_empty, s.invalid_descs
        ));
    }
    let t = &last.total;
    out.push_str(&format!(
        "\n  total received by sockets: {}\n  flows: {} created, {} records to the outputs, {} dropped on the way to the writer",
        last.sockets.iter().map(|w| w.socket.rx_packets).sum::<u64>(),
        t.tracker.created_total(),
        r.writer.records,
        t.records_dropped
    ));
    for line in t.pipeline.iter().flat_map(super::read::l7_lines) {
        out.push_str(&format!("\n  {line}"));
    }
    for o in &r.writer.outputs {
        out.push_str(&format!("\n  {}", o.line()));
    }
    if let Some(p) = &r.pcap {
        out.push_str(&format!("\n  {}", p.summary_line()));
    }
    out
}

#[cfg(test)]
mod tests {
    /// The help names every capability the capture checks for.
    #[test]
    fn the_notes_name_every_capability() {
        for cap in crate::capture::CAPABILITIES {
            assert!(super::NOTES.contains(cap), "{cap}");
        }
    }
}
