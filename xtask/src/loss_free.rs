//! `cargo xtask bench capture`: the highest loss-free packet rate of each
//! receiver on the same veth pair, with the same generator, in one run:
//! (a) a bare AF_XDP receiver (`flowscope capture --bare`: frames only
//! returned), (b) flowscope with the full pipeline, (c) an AF_PACKET
//! capture (`dumpcap -w /dev/null`), and flowscope with 1 and 2 workers.
//!
//! For each receiver, rates climb a ladder; a step is loss-free when every
//! frame sent was received; a step where the generator fell short of the
//! rate ends the search at the rate it reached. The search is repeated `--runs` times and the
//! median of the highest loss-free rates is reported, with the ratios b/a
//! and b/c, as Markdown rows for BENCHMARKS.md.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::netns::{ChildGuard, Netns};

/// Options of `cargo xtask bench capture`.
#[derive(clap::Parser)]
pub struct Args {
    /// Searches per receiver (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub(crate) runs: usize,
    /// Seconds of traffic per step.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) seconds: f64,
    /// Rates tried, frames per second, lowest first.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "50000,100000,200000,300000,400000,600000,800000,1200000"
    )]
    pub(crate) rates: Vec<u64>,
}

/// Options of `cargo xtask bench capture`: the ladder, and a profile.
#[derive(clap::Parser)]
pub struct CaptureArgs {
    #[command(flatten)]
    ladder: Args,
    /// Then run one step per receiver at this rate (frames/s) under a
    /// system-wide `perf record` (cpu-clock sampling) and print where the
    /// two CPUs' time went: generator, kernel path, receiver, idle.
    #[arg(long)]
    profile_rate: Option<u64>,
}

/// Who receives.
#[derive(Clone, Copy)]
pub(crate) enum Receiver {
    /// `flowscope capture --bare`.
    Bare,
    /// `flowscope capture` with the full pipeline.
    Flowscope,
    /// `dumpcap -w /dev/null`.
    AfPacket,
}

/// One receiver set-up of the ladder.
pub(crate) struct Setup {
    /// Name in the results.
    pub(crate) label: &'static str,
    /// Who receives.
    pub(crate) receiver: Receiver,
    /// Queues of the veth pair (and workers).
    pub(crate) queues: u32,
}

/// What a step changes from the defaults.
#[derive(Default)]
pub(crate) struct Extra {
    /// More `flowscope capture` options.
    pub(crate) capture_args: Vec<String>,
    /// fsgen options replacing `--flows 1000 --both-directions`.
    pub(crate) fsgen_args: Option<Vec<String>>,
    /// Record a system-wide `perf` profile of the traffic into this file.
    pub(crate) profile: Option<std::path::PathBuf>,
}

/// What one step measured.
pub(crate) struct Outcome {
    /// Frames sent.
    pub(crate) sent: u64,
    /// Frames received.
    pub(crate) received: u64,
    /// Rate fsgen achieved, frames per second.
    pub(crate) sent_pps: u64,
    /// flowscope's peak resident memory (VmHWM, KiB), read just before it
    /// was stopped.
    pub(crate) peak_rss_kib: Option<u64>,
    /// flowscope's `--summary-json`.
    pub(crate) summary: Option<serde_json::Value>,
}

const SETUPS: [Setup; 4] = [
    Setup {
        label: "(a) bare AF_XDP receiver, 2 workers",
        receiver: Receiver::Bare,
        queues: 2,
    },
    Setup {
        label: "(b) flowscope full pipeline, 2 workers",
        receiver: Receiver::Flowscope,
        queues: 2,
    },
    Setup {
        label: "(b1) flowscope full pipeline, 1 worker",
        receiver: Receiver::Flowscope,
        queues: 1,
    },
    Setup {
        label: "(c) AF_PACKET baseline (dumpcap -w /dev/null)",
        receiver: Receiver::AfPacket,
        queues: 2,
    },
];

/// Runs the benchmark with the release binaries in `bin`.
///
/// # Errors
/// When a step cannot be set up or a process fails.
pub fn run(capture: &CaptureArgs, bin: &Path) -> Result<()> {
    crate::cmd::require_root("bench capture")?;
    let args = &capture.ladder;
    let mut medians = Vec::new();
    for setup in &SETUPS {
        let extra = Extra::default();
        medians.push(median_loss_free(setup, args, bin, &extra)?);
    }
    println!(
        "| receiver | highest loss-free rate (pps, median of {}) |",
        args.runs
    );
    println!("|---|---|");
    for (s, m) in SETUPS.iter().zip(&medians) {
        println!("| {} | {m} |", s.label);
    }
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            f64::NAN
        } else {
            a as f64 / b as f64
        }
    };
    println!(
        "\nb/a = {:.2}, b/c = {:.2}, 2 workers / 1 worker = {:.2}",
        ratio(medians[1], medians[0]),
        ratio(medians[1], medians[3]),
        ratio(medians[1], medians[2])
    );
    if let Some(rate) = capture.profile_rate {
        crate::cpu_profile::report(&SETUPS, rate, args.seconds, bin)?;
    }
    Ok(())
}

/// Median over `args.runs` searches of the highest loss-free rate of
/// `setup` with `extra`; a rate is tried only if the one below it was
/// loss-free.
///
/// # Errors
/// When a step fails.
pub(crate) fn median_loss_free(
    setup: &Setup,
    args: &Args,
    bin: &Path,
    extra: &Extra,
) -> Result<u64> {
    let mut best = Vec::new();
    for run in 0..args.runs {
        let mut highest = 0;
        for &rate in &args.rates {
            let o = step(setup, rate, args.seconds, bin, extra)?;
            eprintln!(
                "xtask: {} run {run}: {rate} pps: sent {} at {} pps, received {}",
                setup.label, o.sent, o.sent_pps, o.received
            );
            if o.received < o.sent {
                break;
            }
            highest = rate.min(o.sent_pps);
            if o.sent_pps < rate * 95 / 100 {
                eprintln!("xtask: the generator's limit, not the receiver's, ends this search");
                break;
            }
        }
        best.push(highest);
    }
    best.sort_unstable();
    eprintln!("xtask: {}: highest loss-free rates {best:?}", setup.label);
    Ok(best[best.len() / 2])
}

/// One step: fresh namespaces, the receiver, `rate × seconds` frames.
///
/// # Errors
/// When the namespaces, the receiver or the generator fail.
pub(crate) fn step(
    setup: &Setup,
    rate: u64,
    seconds: f64,
    bin: &Path,
    extra: &Extra,
) -> Result<Outcome> {
    let pid = std::process::id();
    let gen_ns = Netns::create(&format!("fsbg{pid}"))?;
    let cap_ns = Netns::create(&format!("fsbc{pid}"))?;
    crate::netns::veth_pair(&gen_ns, &cap_ns, "fsb0", "fsb1", setup.queues)?;
    let summary = std::env::temp_dir().join(format!("fsbench-{pid}.json"));
    let _ = std::fs::remove_file(&summary);
    let q = setup.queues.to_string();
    let mut receiver = match setup.receiver {
        Receiver::Bare | Receiver::Flowscope => {
            let mut c = cap_ns.exec(bin.join("flowscope"));
            c.args([
                "capture",
                "--iface",
                "fsb1",
                "--queues",
                &q,
                "--plain",
                "--metrics-listen",
                "off",
            ])
            .args([
                "--rx-ring",
                "8192",
                "--fill-ring",
                "16384",
                "--summary-json",
            ])
            .arg(&summary)
            .args(&extra.capture_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
            if matches!(setup.receiver, Receiver::Bare) {
                c.arg("--bare");
            }
            ChildGuard::spawn(&mut c, "flowscope capture")?
        }
        Receiver::AfPacket => ChildGuard::spawn(
            cap_ns
                .exec("dumpcap")
                .args(["-q", "-i", "fsb1", "-w", "/dev/null"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
            "dumpcap",
        )?,
    };
    wait_ready(&cap_ns, setup.receiver)?;
    let frames = (rate as f64 * seconds) as u64;
    let default_traffic = ["--flows", "1000", "--both-directions"].map(String::from);
    let profiler = match &extra.profile {
        Some(path) => Some(crate::cpu_profile::start(path)?),
        None => None,
    };
    let out = gen_ns
        .exec(bin.join("fsgen"))
        .args(["--iface", "fsb0", "--frames", &frames.to_string()])
        .args(extra.fsgen_args.as_deref().unwrap_or(&default_traffic))
        .args(["--queues", &q, "--rate", &rate.to_string()])
        .output()
        .context("running fsgen")?;
    if let Some(p) = profiler {
        crate::cpu_profile::stop(p)?;
    }
    if !out.status.success() {
        bail!("fsgen: {}", String::from_utf8_lossy(&out.stderr));
    }
    // What fsgen says it sent (more than `frames` with long connections).
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("fsgen printed no JSON")?;
    let (Some(sent), Some(sent_pps)) = (report["sent"].as_u64(), report["pps"].as_u64()) else {
        bail!("fsgen printed no \"sent\" or \"pps\": {report}");
    };
    std::thread::sleep(Duration::from_millis(500));
    let pid = receiver.child().id();
    let peak_rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| vm_hwm_kib(&s));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(receiver.child().id() as i32, libc::SIGINT) };
    let status = receiver.child().wait()?;
    let mut summary_json = None;
    let got = match setup.receiver {
        Receiver::AfPacket => {
            let mut err = String::new();
            if let Some(mut e) = receiver.child().stderr.take() {
                use std::io::Read;
                e.read_to_string(&mut err)?;
            }
            dumpcap_received(&err).with_context(|| format!("dumpcap ({status}) said {err:?}"))?
        }
        _ => {
            let text = std::fs::read_to_string(&summary)
                .with_context(|| format!("flowscope ({status}) wrote no summary"))?;
            let v: serde_json::Value = serde_json::from_str(&text)?;
            let got = v["rx_packets"].as_u64().unwrap_or(0);
            summary_json = Some(v);
            got
        }
    };
    let _ = std::fs::remove_file(&summary);
    Ok(Outcome {
        sent,
        received: got,
        sent_pps,
        peak_rss_kib,
        summary: summary_json,
    })
}

/// The `VmHWM` (peak resident set) line of a `/proc/PID/status`, in KiB.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits until the receiver is attached (XDP) or listening (dumpcap).
fn wait_ready(cap_ns: &Netns, receiver: Receiver) -> Result<()> {
    let start = Instant::now();
    loop {
        let ready = match receiver {
            Receiver::AfPacket => {
                let s = crate::cmd::stdout(cap_ns.exec("ss").args(["-0", "-a", "-n"]))
                    .unwrap_or_default();
                s.lines().count() > 1
            }
            _ => crate::cmd::stdout(cap_ns.ip().args(["link", "show", "fsb1"]))
                .unwrap_or_default()
                .contains("xdp"),
        };
        if ready {
            std::thread::sleep(Duration::from_millis(200));
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("receiver not ready after 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Frames dumpcap received minus those it or the kernel dropped, from its
/// exit report ("Packets received/dropped on interface 'X': R/D ...").
fn dumpcap_received(report: &str) -> Option<u64> {
    let line = report.lines().find(|l| l.contains("received/dropped"))?;
    let counts = line.split_once("': ")?.1.split_whitespace().next()?;
    let (r, d) = counts.split_once('/')?;
    Some(r.parse::<u64>().ok()?.saturating_sub(d.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_dumpcap_exit_report() {
        let r = "Capturing on 'fsb1'\nPackets captured: 988\nPackets received/dropped on interface 'fsb1': 1000/12 (pcap:0/dumpcap:0/flushed:0/ps_ifdrop:0) (98.8%)\n";
        assert_eq!(super::dumpcap_received(r), Some(988));
        assert_eq!(super::dumpcap_received("nothing"), None);
    }

    #[test]
    fn reads_peak_rss() {
        let s = "Name:\tflowscope\nVmPeak:\t  900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(super::vm_hwm_kib(s), Some(12345));
        assert_eq!(super::vm_hwm_kib("Name: x\n"), None);
    }
}
