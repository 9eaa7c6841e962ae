//! `cargo xtask run`: builds release and replaces itself with
//! `flowscope capture` on an interface.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{Result, bail};

use crate::{build, cmd, deps};

/// XDP attach mode.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum XdpMode {
    /// Native (driver) mode.
    Drv,
    /// Generic (skb) mode: works everywhere, about ten times slower.
    Skb,
}

impl XdpMode {
    /// The value `flowscope capture --xdp-mode` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Drv => "drv",
            XdpMode::Skb => "skb",
        }
    }
}

/// Options of `cargo xtask run` (passed through to `flowscope capture`).
#[derive(clap::Args)]
pub struct Args {
    /// Interface to capture on.
    #[arg(long)]
    iface: String,
    /// RX queues to capture (default: all).
    #[arg(long)]
    queues: Option<u32>,
    /// AF_XDP sockets (workers) per queue.
    #[arg(long)]
    sockets_per_queue: Option<u32>,
    /// XDP attach mode.
    #[arg(long, value_enum)]
    xdp_mode: Option<XdpMode>,
    /// Only count in XDP and pass every frame to the stack.
    #[arg(long)]
    count_only: bool,
    /// More `flowscope capture` arguments (after `--`).
    #[arg(last = true)]
    extra: Vec<String>,
}

/// Runs `cargo xtask run`; returns only on failure.
///
/// # Errors
/// When not root, the build fails or the binary cannot be started.
pub fn run(args: &Args) -> Result<()> {
    cmd::require_root("run")?;
    deps::ensure(deps::Verbosity::Quiet)?;
    let obj = build::build_ebpf()?;
    let bin = build::build_bins(&obj, true, &[("flowscope-user", "flowscope")])?.join("flowscope");
    let mut capture = Command::new(bin);
    capture.args(["capture", "--iface", &args.iface]);
    if let Some(q) = args.queues {
        capture.args(["--queues", &q.to_string()]);
    }
    if let Some(s) = args.sockets_per_queue {
        capture.args(["--sockets-per-queue", &s.to_string()]);
    }
    if let Some(m) = args.xdp_mode {
        capture.args(["--xdp-mode", m.as_str()]);
    }
    if args.count_only {
        capture.arg("--count-only");
    }
    capture.args(&args.extra);
    eprintln!("xtask: exec {}", cmd::display(&capture));
    let err = capture.exec();
    bail!("cannot exec flowscope: {err}")
}
