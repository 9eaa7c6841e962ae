//! `cargo xtask bench NAME [-- ARGS]`: builds release and runs one of the
//! bench crate's benchmark binaries, which print their figures (medians of
//! several runs) as Markdown rows for BENCHMARKS.md.

use anyhow::Result;
use clap::Parser;

use crate::{build, cmd, deps};

/// Options of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Which benchmark.
    #[arg(value_enum)]
    which: Which,
    /// Arguments for the benchmark binary (after `--`).
    #[arg(last = true)]
    bench_args: Vec<String>,
}

/// The benchmarks.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Which {
    /// Extract + track ns/packet, side by side with the flowscope 0.3.0 crate.
    Track,
    /// Full pipeline (tracker, reassembly, L7) on captures replayed from memory.
    Pipeline,
    /// Highest loss-free rate on veth: bare AF_XDP vs flowscope vs AF_PACKET.
    Capture,
    /// SYN flood against a small flow table: peak RSS, evictions, rate ratio.
    Flood,
    /// `flowscope read` against flowscope 0.3.0, nfpcapd, ndpiReader, argus
    /// and tshark on two merged capture files.
    Peers,
    /// The XDP program's cost per frame (BPF_PROG_TEST_RUN), against a
    /// minimal pass and a bare XSKMAP redirect, and a filter expression's
    /// cost in it (root).
    Xdp,
}

/// Runs `cargo xtask bench`.
///
/// # Errors
/// When the toolchain is incomplete, the build fails or the benchmark fails.
pub fn run(args: &Args) -> Result<()> {
    deps::ensure(deps::Verbosity::Quiet)?;
    let obj = build::build_ebpf()?;
    let bin = match args.which {
        Which::Peers => {
            let dir = build::build_bins(
                &obj,
                true,
                &[("flowscope-user", "flowscope"), ("bench", "v03read")],
            )?;
            let argv = args.bench_args.iter().map(String::as_str);
            let peers = crate::peers::Args::try_parse_from(std::iter::once("peers").chain(argv))?;
            return crate::peers::run(&peers, &dir);
        }
        Which::Track => "trackbench",
        Which::Pipeline => "pipebench",
        Which::Xdp => {
            cmd::require_root("bench xdp")?;
            "xdpbench"
        }
        Which::Capture | Which::Flood => {
            let dir = build::build_bins(
                &obj,
                true,
                &[("flowscope-user", "flowscope"), ("bench", "fsgen")],
            )?;
            let argv = args.bench_args.iter().map(String::as_str);
            return if matches!(args.which, Which::Flood) {
                let flood =
                    crate::flood::Args::try_parse_from(std::iter::once("flood").chain(argv))?;
                crate::flood::run(&flood, &dir)
            } else {
                let capture = crate::loss_free::CaptureArgs::try_parse_from(
                    std::iter::once("capture").chain(argv),
                )?;
                crate::loss_free::run(&capture, &dir)
            };
        }
    };
    let dir = build::build_bins(&obj, true, &[("bench", bin)])?;
    cmd::run(
        std::process::Command::new(dir.join(bin))
            .args(&args.bench_args)
            .current_dir(cmd::workspace_root()),
    )
}
