//! `cargo xtask bench peers`: `flowscope read` against the tools users would
//! pick instead, on the same capture files in one run.
//!
//! Files (built once with `editcap -t` and `mergecap -a` from the shared
//! captures, cached in `target/bench-captures/`): 40 copies of
//! `zeek__echo-connections.pcap`, each 10 s after the one before, and 60 of
//! `ndpi__WebattackXSS.pcap`, each 1 200 s after (longer than the capture,
//! so every copy's flows are new).
//!
//! Contenders, each a whole process timed from start to exit:
//! `flowscope read --no-l7` and `read --l7` with 1 and N workers (EVE to
//! `/dev/null`), flowscope 0.3.0 (`v03read`: our pcap reader and 0.3.0's
//! tracker), `nfpcapd -r` (nfdump), `ndpiReader -q -i`, `argus -r -w` and
//! `tshark -q -z conv,tcp`. Rounds run every contender once in turn; the
//! table gives the median and range of each over the rounds, packets per
//! second of the median, and each ratio as the median of the per-round
//! ratios (both sides timed in the same round).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Options of `cargo xtask bench peers`.
#[derive(clap::Parser)]
pub struct Args {
    /// Rounds (each runs every contender once).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// N of the many-worker rows (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Leave tshark out (it takes most of a round).
    #[arg(long)]
    no_tshark: bool,
}

/// The tools besides ours, with the Debian package each comes from.
const TOOLS: [(&str, &str); 6] = [
    ("editcap", "tshark (wireshark-common)"),
    ("mergecap", "tshark (wireshark-common)"),
    ("tshark", "tshark"),
    ("nfpcapd", "nfdump"),
    ("ndpiReader", "libndpi-bin"),
    ("argus", "argus-server"),
];

/// A merged capture: name, source, copies, seconds between copies.
struct Merged {
    file: &'static str,
    source: &'static str,
    copies: u32,
    shift_secs: u32,
}

const MERGED: [Merged; 2] = [
    Merged {
        file: "echo-connections-x40.pcap",
        source: "zeek__echo-connections.pcap",
        copies: 40,
        shift_secs: 10,
    },
    Merged {
        file: "WebattackXSS-x60.pcap",
        source: "ndpi__WebattackXSS.pcap",
        copies: 60,
        shift_secs: 1200,
    },
];

fn which(tool: &str) -> bool {
    cmd::stdout(Command::new("sh").args(["-c", &format!("command -v {tool}")])).is_some()
}

/// Builds `m` in `dir` unless it is there.
fn merged(m: &Merged, dir: &Path) -> Result<PathBuf> {
    let out = dir.join(m.file);
    if out.is_file() {
        return Ok(out);
    }
    let src = cmd::workspace_root().join("../shared/pcaps").join(m.source);
    let tmp = dir.join(format!("{}.parts", m.file));
    std::fs::create_dir_all(&tmp)?;
    let mut parts = Vec::new();
    for i in 0..m.copies {
        let part = tmp.join(format!("{i:04}.pcap"));
        cmd::run(
            Command::new("editcap")
                .args(["-t", &(i * m.shift_secs).to_string()])
                .arg(&src)
                .arg(&part),
        )?;
        parts.push(part);
    }
    let partial = dir.join(format!("{}.partial", m.file));
    cmd::run(
        Command::new("mergecap")
            .args(["-F", "pcap", "-a", "-w"])
            .arg(&partial)
            .args(&parts),
    )?;
    std::fs::rename(&partial, &out)?;
    std::fs::remove_dir_all(&tmp)?;
    Ok(out)
}

/// Packets in a capture, by our own reader's count (`capinfos -c -M`).
fn packets(file: &Path) -> Result<u64> {
    let text = cmd::stdout(Command::new("capinfos").args(["-c", "-M"]).arg(file))
        .context("capinfos (tshark)")?;
    text.lines()
        .find_map(|l| l.split("Number of packets:").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .context("capinfos: no packet count")
}

/// One contender: its label and its command line for a capture.
struct Contender {
    label: String,
    argv: Vec<String>,
}

fn contenders(bins: &Path, file: &Path, n: usize, scratch: &Path, tshark: bool) -> Vec<Contender> {
    let f = file.display().to_string();
    let flowscope = bins.join("flowscope").display().to_string();
    let mut v = Vec::new();
    for (mode, flag) in [("read", "--no-l7"), ("read --l7", "--l7")] {
        for w in [1, n] {
            v.push(Contender {
                label: format!(
                    "flowscope {mode}, {w} worker{}",
                    if w == 1 { "" } else { "s" }
                ),
                argv: [&flowscope, "read", flag, "--workers", &w.to_string()]
                    .iter()
                    .map(|s| s.to_string())
                    .chain(["-o".into(), "eve:/dev/null".into(), f.clone()])
                    .collect(),
            });
        }
    }
    let s = |x: &str| x.to_owned();
    v.push(Contender {
        label: s("flowscope 0.3.0"),
        argv: vec![bins.join("v03read").display().to_string(), f.clone()],
    });
    v.push(Contender {
        label: s("nfpcapd (nfdump 1.7)"),
        argv: vec![
            s("nfpcapd"),
            s("-r"),
            f.clone(),
            s("-w"),
            scratch.join("nfpcapd").display().to_string(),
        ],
    });
    v.push(Contender {
        label: s("ndpiReader (nDPI 4.2)"),
        argv: vec![s("ndpiReader"), s("-q"), s("-i"), f.clone()],
    });
    v.push(Contender {
        label: s("argus 3.0.8"),
        argv: vec![
            s("argus"),
            s("-r"),
            f.clone(),
            s("-w"),
            scratch.join("argus.out").display().to_string(),
        ],
    });
    if tshark {
        v.push(Contender {
            label: s("tshark -z conv,tcp"),
            argv: vec![s("tshark"), s("-q"), s("-r"), f, s("-z"), s("conv,tcp")],
        });
    }
    v
}

/// User plus system seconds of every child waited for so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// One run of a contender: wall-clock and CPU (user + system) seconds.
#[derive(Clone, Copy)]
struct Sample {
    wall: f64,
    cpu: f64,
}

/// Runs `c` once.
fn time(c: &Contender, scratch: &Path) -> Result<Sample> {
    // Fresh output places: nfpcapd wants its directory, argus appends.
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch.join("nfpcapd"))?;
    let cpu = children_cpu();
    let start = Instant::now();
    let status = Command::new(&c.argv[0])
        .args(&c.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot start {}", c.argv[0]))?;
    let wall = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("`{}` failed ({status})", c.argv.join(" "));
    }
    Ok(Sample {
        wall,
        cpu: children_cpu() - cpu,
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// Median of the per-round ratios `other / ours` (> 1: ours is faster).
fn ratio(ours: &[f64], other: &[f64]) -> f64 {
    let r: Vec<f64> = ours.iter().zip(other).map(|(a, b)| b / a).collect();
    median(&r)
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = cmd::stdout(Command::new("uname").arg("-r")).unwrap_or_default();
    format!("{cores} vCPU, {model}, Linux {}", kernel.trim())
}

/// Packets each of `n` workers tracks in `flowscope read` of `file`
/// (`worker_packets` of its `--summary-json`).
fn worker_split(bins: &Path, file: &Path, n: usize, scratch: &Path) -> Result<Vec<u64>> {
    std::fs::create_dir_all(scratch)?;
    let summary = scratch.join("summary.json");
    let status = Command::new(bins.join("flowscope"))
        .args([
            "read",
            "--no-l7",
            "--workers",
            &n.to_string(),
            "-o",
            "eve:/dev/null",
        ])
        .arg("--summary-json")
        .arg(&summary)
        .arg(file)
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("flowscope read {} failed: {status}", file.display());
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary)?)?;
    v["worker_packets"]
        .as_array()
        .and_then(|a| a.iter().map(serde_json::Value::as_u64).collect())
        .ok_or_else(|| anyhow::anyhow!("no worker_packets in {}", summary.display()))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Runs the benchmark with the release binaries in `bins`.
///
/// # Errors
/// A tool is missing, a capture cannot be built, or a contender fails.
pub fn run(args: &Args, bins: &Path) -> Result<()> {
    for (tool, package) in TOOLS {
        if !which(tool) {
            bail!("{tool} not found: `cargo xtask deps` installs it (Debian package {package})");
        }
    }
    let dir = cmd::target_dir().join("bench-captures");
    std::fs::create_dir_all(&dir)?;
    let scratch = dir.join("scratch");
    let n = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut files = Vec::new();
    for m in &MERGED {
        let path = merged(m, &dir)?;
        let packets = packets(&path)?;
        let bytes = std::fs::metadata(&path)?.len();
        files.push((m, path, packets, bytes));
    }
    let load_before = loadavg();
    let started = cmd::stdout(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut tables = Vec::new();
    for (m, path, packets, bytes) in &files {
        let cs = contenders(bins, path, n, &scratch, !args.no_tshark);
        let mut times = vec![Vec::new(); cs.len()];
        for round in 0..args.runs {
            for (c, t) in cs.iter().zip(&mut times) {
                t.push(time(c, &scratch)?);
            }
            eprintln!("xtask: {} round {}/{} done", m.file, round + 1, args.runs);
        }
        let split = worker_split(bins, path, n, &scratch)?;
        tables.push((m, *packets, *bytes, cs, times, split));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!(
        "Machine: {}. {started}; load average {load_before} before, {} after.",
        machine(),
        loadavg()
    );
    let workers = args
        .workers
        .map(|n| format!(" --workers {n}"))
        .unwrap_or_default();
    let tshark = if args.no_tshark { " --no-tshark" } else { "" };
    println!(
        "Command: `cargo xtask bench peers -- --runs {}{workers}{tshark}`\n",
        args.runs
    );
    for (m, packets, bytes, cs, samples, split) in tables {
        let times: Vec<Vec<f64>> = samples
            .iter()
            .map(|s| s.iter().map(|x| x.wall).collect())
            .collect();
        let cpus: Vec<Vec<f64>> = samples
            .iter()
            .map(|s| s.iter().map(|x| x.cpu).collect())
            .collect();
        let find = |label: &str| cs.iter().position(|c| c.label.starts_with(label));
        let (Some(v03), Some(ndpi)) = (find("flowscope 0.3.0"), find("ndpiReader")) else {
            bail!("contender list");
        };
        println!(
            "{} copies of `{}` ({packets} packets, {:.0} MB), median of {} runs:\n",
            m.copies,
            m.source,
            bytes as f64 / 1e6,
            times[0].len()
        );
        println!(
            "| contender | wall s, median (min–max) | CPU s | packets/s | vs 0.3.0 | vs ndpiReader |"
        );
        println!("|---|--:|--:|--:|--:|--:|");
        for ((c, t), cpu) in cs.iter().zip(&times).zip(&cpus) {
            let med = median(t);
            let (lo, hi) = t
                .iter()
                .fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            println!(
                "| {} | {med:.3} ({lo:.3}–{hi:.3}) | {:.3} | {:.2} M | {:.2}x | {:.2}x |",
                c.label,
                median(cpu),
                packets as f64 / med / 1e6,
                ratio(t, &times[v03]),
                ratio(t, &times[ndpi]),
            );
        }
        for (mode, one, many) in [("read", 0, 1), ("read --l7", 2, 3)] {
            println!(
                "\n`{mode}`: {n} workers are {:.2}x 1 worker",
                ratio(&times[many], &times[one])
            );
        }
        let largest = split.iter().copied().max().unwrap_or(0);
        let total: u64 = split.iter().sum();
        println!(
            "\nPackets per worker with {n} workers: {split:?}; a flow stays on the worker it is \
             steered to, so {n} workers can be at most {:.2}x 1 worker on this file.",
            total as f64 / largest.max(1) as f64
        );
        println!();
    }
    Ok(())
}
