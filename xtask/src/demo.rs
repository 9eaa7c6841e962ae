//! `cargo xtask demo`: two network namespaces joined by a two-queue veth
//! pair; `flowscope capture` on one end, the `fsgen` generator on the other;
//! then a comparison of what was sent with what each socket received.
//! Everything is removed on success, failure and Ctrl-C.

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::netns::{ChildGuard, Netns};
use crate::run::XdpMode;
use crate::{build, cmd, deps};

const GEN_IF: &str = "fsd0";
const CAP_IF: &str = "fsd1";
const QUEUES: u32 = 2;
const SOCKETS_PER_QUEUE: u32 = 2;
const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// Options of `cargo xtask demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Frames the generator sends (exactly).
    #[arg(long, default_value_t = 200_000)]
    frames: u64,
    /// Flows the frames are spread over (both directions each).
    #[arg(long, default_value_t = 1000)]
    flows: u32,
    /// Seconds flowscope captures; must cover attaching and sending.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// XDP attach mode on the capture end.
    #[arg(long, value_enum, default_value = "drv")]
    xdp_mode: XdpMode,
    /// Generator rate, frames per second: the two cores of a small VM run
    /// the generator, the kernel's veth path and four workers at once.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
}

/// Runs the demo.
///
/// # Errors
/// When not root, a build or set-up step fails, a process fails, the run is
/// interrupted, or the counts do not match.
pub fn run(args: &Args) -> Result<()> {
    cmd::require_root("demo")?;
    deps::ensure(deps::Verbosity::Quiet)?;
    let obj = build::build_ebpf()?;
    let bin = build::build_bins(
        &obj,
        true,
        &[("flowscope-user", "flowscope"), ("bench", "fsgen")],
    )?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;

    let pid = std::process::id();
    // Declared before the children, so dropped after them: processes are
    // killed first, then the namespaces (and the veth pair) are deleted.
    let gen_ns = Netns::create(&format!("fsdemo-gen-{pid}"))?;
    let cap_ns = Netns::create(&format!("fsdemo-cap-{pid}"))?;
    crate::netns::veth_pair(&gen_ns, &cap_ns, GEN_IF, CAP_IF, QUEUES)?;
    let summary = std::env::temp_dir().join(format!("fsdemo-{pid}.json"));
    let manifest = std::env::temp_dir().join(format!("fsdemo-{pid}-flows.jsonl"));
    let records = std::env::temp_dir().join(format!("fsdemo-{pid}-eve.json"));
    let _ = std::fs::remove_file(&summary);
    let _ = std::fs::remove_file(&records);

    let mut capture = ChildGuard::spawn(
        cap_ns
            .exec(bin.join("flowscope"))
            .args(["capture", "--iface", CAP_IF])
            .args(["--queues", &QUEUES.to_string()])
            .args(["--sockets-per-queue", &SOCKETS_PER_QUEUE.to_string()])
            .args(["--xdp-mode", args.xdp_mode.as_str()])
            .args(["--duration", &args.duration.to_string()])
            .args(["--plain", "--metrics-listen", "127.0.0.1:19739"])
            .args(["--rx-ring", "8192", "--fill-ring", "16384"])
            .arg("--output")
            .arg(&records)
            .arg("--summary-json")
            .arg(&summary),
        "flowscope capture",
    )?;
    wait_attached(&cap_ns, &mut capture, &stop)?;
    println!(
        "xtask: flowscope is attached to {CAP_IF} in {}",
        cap_ns.name()
    );

    let mut generator = ChildGuard::spawn(
        gen_ns
            .exec(bin.join("fsgen"))
            .args(["--iface", GEN_IF, "--frames", &args.frames.to_string()])
            .args([
                "--flows",
                &args.flows.to_string(),
                "--queues",
                &QUEUES.to_string(),
            ])
            .args(["--rate", &args.rate.to_string()])
            .args(["--both-directions", "--ipv6", "--manifest"])
            .arg(&manifest)
            .stdout(Stdio::piped()),
        "fsgen",
    )?;
    let status = wait(&mut generator, &stop, Duration::from_secs(600))?;
    let mut out = String::new();
    if let Some(mut stdout) = generator.child().stdout.take() {
        use std::io::Read;
        stdout.read_to_string(&mut out)?;
    }
    if !status.success() {
        bail!("fsgen failed ({status})");
    }
    if capture.child().try_wait()?.is_some() {
        bail!(
            "flowscope exited before the generator finished: raise --duration (now {} s)",
            args.duration
        );
    }
    let sent: Value =
        serde_json::from_str(out.trim()).with_context(|| format!("fsgen printed {out:?}"))?;

    println!(
        "xtask: generator done; waiting for flowscope to end (--duration {} s)",
        args.duration
    );
    let status = wait(&mut capture, &stop, Duration::from_secs(args.duration + 60))?;
    if !status.success() {
        bail!("flowscope capture failed ({status})");
    }
    let text = std::fs::read_to_string(&summary)
        .with_context(|| format!("flowscope wrote no summary at {}", summary.display()))?;
    let _ = std::fs::remove_file(&summary);
    let received: Value =
        serde_json::from_str(&text).with_context(|| format!("bad summary JSON: {text}"))?;
    let matched = report(&sent, &received);
    println!("per-flow frames sent: {}", manifest.display());
    let eve = std::fs::read_to_string(&records).unwrap_or_default();
    let written = eve.lines().count();
    println!(
        "\n== flow records ({written} EVE lines in {}) ==",
        records.display()
    );
    for line in eve.lines().take(2) {
        println!("{line}");
    }
    if !matched {
        bail!("counts do not match");
    }
    if written != args.flows as usize {
        bail!("{written} flow records for {} flows sent", args.flows);
    }
    Ok(())
}

/// Waits until an XDP program shows on the capture interface.
fn wait_attached(cap_ns: &Netns, capture: &mut ChildGuard, stop: &AtomicBool) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Some(status) = capture.child().try_wait()? {
            bail!("{} exited before attaching ({status})", capture.name());
        }
        let link = cmd::stdout(cap_ns.ip().args(["link", "show", CAP_IF])).unwrap_or_default();
        if link.contains("prog/xdp") || link.contains(" xdp ") {
            return Ok(());
        }
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        if start.elapsed() > ATTACH_TIMEOUT {
            bail!(
                "no XDP program on {CAP_IF} after {} s",
                ATTACH_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Waits for `child` to exit, giving up on Ctrl-C or after `timeout`.
fn wait(child: &mut ChildGuard, stop: &AtomicBool, timeout: Duration) -> Result<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.child().try_wait()? {
            return Ok(status);
        }
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        if start.elapsed() > timeout {
            bail!(
                "{} did not finish within {} s",
                child.name(),
                timeout.as_secs()
            );
        }
        std::thread::sleep(POLL);
    }
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Prints sent against received; returns whether every count matches.
fn report(sent: &Value, received: &Value) -> bool {
    let frames = num(sent, "sent");
    let per_queue: Vec<u64> = sent
        .get("per_queue")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let datapath = received.get("datapath").cloned().unwrap_or(Value::Null);
    let text = |key: &str| datapath.get(key).and_then(Value::as_str).unwrap_or("?");
    let metadata_on = text("metadata") == "on";
    println!("\n== datapath ==");
    println!(
        "metadata {}{}, xdp {} attached by {}, zero-copy {}",
        text("metadata"),
        datapath
            .get("metadata_reason")
            .and_then(Value::as_str)
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        text("xdp_mode"),
        text("attach"),
        text("zero_copy"),
    );
    println!("\n== generator ==");
    println!(
        "sent {frames} frames, {} bytes in {} ms ({} pps); per TX queue: {per_queue:?}",
        num(sent, "bytes"),
        num(sent, "elapsed_ms"),
        num(sent, "pps")
    );
    println!("\n== XDP counters (packets) ==");
    let xdp = received.get("xdp").cloned().unwrap_or(Value::Null);
    let xdp_count = |label: &str| xdp.get(label).map_or(0, |c| num(c, "packets"));
    if let Some(map) = xdp.as_object() {
        for (label, c) in map {
            if num(c, "packets") > 0 {
                println!(
                    "{label:>16}: {:>10} packets {:>12} bytes",
                    num(c, "packets"),
                    num(c, "bytes")
                );
            }
        }
    }
    println!("\n== AF_XDP sockets ==");
    let sockets = received
        .get("sockets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut rx_per_queue = vec![0u64; per_queue.len()];
    let mut losses = 0;
    for s in &sockets {
        let queue = num(s, "queue");
        println!(
            "queue {queue} socket {}: rx {} packets {} bytes; dropped {} ring_full {} fill_ring_empty {} invalid {}; zero_copy {}",
            num(s, "index"),
            num(s, "rx_packets"),
            num(s, "rx_bytes"),
            num(s, "rx_dropped"),
            num(s, "rx_ring_full"),
            num(s, "fill_ring_empty"),
            num(s, "invalid_descs"),
            s.get("zero_copy").and_then(Value::as_bool).unwrap_or(false)
        );
        losses += num(s, "rx_dropped") + num(s, "rx_ring_full") + num(s, "invalid_descs");
        if let Some(slot) = usize::try_from(queue)
            .ok()
            .and_then(|q| rx_per_queue.get_mut(q))
        {
            *slot += num(s, "rx_packets");
        }
    }
    let rx_total = num(received, "rx_packets");
    let socket_sum: u64 = sockets.iter().map(|s| num(s, "rx_packets")).sum();
    println!("\n== result ==");
    println!("sent by generator:        {frames}");
    println!("seen by XDP (all):        {}", xdp_count("all"));
    println!("redirected to sockets:    {}", xdp_count("redirected"));
    println!("passed (pass_fallback):   {}", xdp_count("pass_fallback"));
    println!("received by sockets:      {socket_sum} (summary rx_packets {rx_total})");
    println!("per queue sent/received:  {per_queue:?} / {rx_per_queue:?}");
    println!("socket drops:             {losses}");
    let with_meta = num(received, "rx_with_metadata");
    println!("frames with metadata:     {with_meta}");
    let checks = [
        ("XDP saw every frame", xdp_count("all") == frames),
        (
            "every frame was redirected",
            xdp_count("redirected") == frames,
        ),
        (
            "the sockets received every frame",
            socket_sum == frames && rx_total == frames,
        ),
        (
            "each queue received what was sent on it",
            rx_per_queue == per_queue,
        ),
        (
            if metadata_on {
                "every frame came with its metadata block"
            } else {
                "no frame came with a metadata block (metadata off)"
            },
            with_meta == if metadata_on { socket_sum } else { 0 },
        ),
    ];
    let mut all = true;
    for (what, ok) in checks {
        println!("{} {what}", if ok { "MATCH   " } else { "MISMATCH" });
        all &= ok;
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(sock_rx: [u64; 4], all: u64) -> Value {
        let sockets: Vec<Value> = sock_rx
            .iter()
            .enumerate()
            .map(|(i, rx)| serde_json::json!({"queue": i / 2, "index": i % 2, "rx_packets": rx}))
            .collect();
        serde_json::json!({
            "xdp": {"all": {"packets": all, "bytes": 0}, "redirected": {"packets": all, "bytes": 0}},
            "sockets": sockets,
            "rx_packets": sock_rx.iter().sum::<u64>(),
            "datapath": {"metadata": "off"},
        })
    }

    #[test]
    fn report_matches_only_when_every_count_agrees() {
        let sent = serde_json::json!({"sent": 100, "per_queue": [60, 40]});
        assert!(report(&sent, &summary([30, 30, 20, 20], 100)));
        assert!(!report(&sent, &summary([30, 30, 20, 19], 100)));
        assert!(
            !report(&sent, &summary([30, 20, 30, 20], 100)),
            "queue split differs"
        );
        assert!(!report(&sent, &summary([30, 30, 20, 20], 101)));
    }
}
