//! Where the CPU time of a capture-bench step goes: a system-wide `perf
//! record` with the cpu-clock software event (this VM exposes no hardware
//! counters) while the generator sends, reported as the share of all
//! samples of each process, split between user space and kernel.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::loss_free::{self, Extra, Setup};
use crate::netns::ChildGuard;

/// Samples per second per CPU.
const FREQUENCY: &str = "499";

/// Starts recording every CPU into `path`.
///
/// # Errors
/// When `perf` cannot be started.
pub(crate) fn start(path: &Path) -> Result<ChildGuard> {
    if Command::new("perf")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        bail!("perf is not installed (Debian package linux-perf); it is needed for --profile-rate");
    }
    let guard = ChildGuard::spawn(
        Command::new("perf")
            .args([
                "record",
                "-a",
                "-q",
                "-e",
                "cpu-clock",
                "-F",
                FREQUENCY,
                "-o",
            ])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "perf record",
    )?;
    // perf opens its per-CPU buffers before sampling starts.
    std::thread::sleep(Duration::from_millis(500));
    Ok(guard)
}

/// Stops the recording and lets perf write its file.
///
/// # Errors
/// When perf cannot be waited for.
pub(crate) fn stop(mut guard: ChildGuard) -> Result<()> {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(guard.child().id() as i32, libc::SIGINT) };
    guard.child().wait().context("waiting for perf record")?;
    Ok(())
}

/// Which group a process name belongs to in the report.
fn group(comm: &str) -> &'static str {
    match comm {
        "fsgen" => "generator (fsgen)",
        c if c.starts_with("fs-worker") => "receiver workers",
        "flowscope" | "fs-writer" | "fs-control" => "receiver other threads",
        "dumpcap" => "receiver (dumpcap)",
        c if c.starts_with("ksoftirqd") => "ksoftirqd",
        "swapper" => "idle",
        _ => "other",
    }
}

/// Columns of the report, in order.
const GROUPS: [&str; 7] = [
    "generator (fsgen)",
    "receiver workers",
    "receiver other threads",
    "receiver (dumpcap)",
    "ksoftirqd",
    "idle",
    "other",
];

/// Shares of samples per (group, kernel?) from `perf report --sort comm,dso`.
fn shares(data: &Path) -> Result<BTreeMap<(&'static str, bool), f64>> {
    let out = Command::new("perf")
        .args(["report", "--stdio", "-q", "--sort", "comm,dso", "-i"])
        .arg(data)
        .output()
        .context("running perf report")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut by = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(pct), Some(comm), Some(dso)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Ok(pct) = pct.trim_end_matches('%').parse::<f64>() else {
            continue;
        };
        *by.entry((group(comm), dso.starts_with("[kernel")))
            .or_insert(0.0) += pct;
    }
    Ok(by)
}

/// The hottest symbols (with their process) of a recording.
fn top_symbols(data: &Path, n: usize) -> Result<Vec<String>> {
    let out = Command::new("perf")
        .args(["report", "--stdio", "-q", "--sort", "comm,sym", "-i"])
        .arg(data)
        .output()
        .context("running perf report")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("swapper"))
        .take(n)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect())
}

/// One profiled step per set-up at `rate`, then a Markdown table of CPU
/// shares and each step's hottest symbols.
///
/// # Errors
/// When a step or perf fails.
pub(crate) fn report(setups: &[Setup], rate: u64, seconds: f64, bin: &Path) -> Result<()> {
    let dir = std::env::temp_dir();
    let mut rows = Vec::new();
    for (i, setup) in setups.iter().enumerate() {
        let data: PathBuf = dir.join(format!("fsbench-profile-{}-{i}.data", std::process::id()));
        let extra = Extra {
            profile: Some(data.clone()),
            ..Extra::default()
        };
        let o = loss_free::step(setup, rate, seconds, bin, &extra)?;
        let s = shares(&data)?;
        let top = top_symbols(&data, 8)?;
        let _ = std::fs::remove_file(&data);
        rows.push((setup.label, o, s, top));
    }
    println!(
        "\nCPU time while sending {rate} frames/s for {seconds} s (share of all samples of both \
         CPUs, user + kernel):\n"
    );
    print!("| receiver | sent pps | received/sent |");
    for g in GROUPS {
        print!(" {g} |");
    }
    println!();
    println!("|---|--:|--:|{}", "--:|".repeat(GROUPS.len()));
    for (label, o, s, _) in &rows {
        print!("| {label} | {} | {}/{} |", o.sent_pps, o.received, o.sent);
        for g in GROUPS {
            let user = s.get(&(g, false)).copied().unwrap_or(0.0);
            let kernel = s.get(&(g, true)).copied().unwrap_or(0.0);
            print!(" {:.1} + {:.1} |", user, kernel);
        }
        println!();
    }
    for (label, _, _, top) in &rows {
        println!("\nHottest symbols, {label}:\n");
        for t in top {
            println!("    {t}");
        }
    }
    Ok(())
}
