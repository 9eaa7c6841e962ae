//! `cargo xtask test`: every test tier. Builds the eBPF object and the
//! generator, then runs `cargo test --workspace` with `FLOWSCOPE_EBPF_OBJ`,
//! `FLOWSCOPE_FSGEN` and, as root, `FLOWSCOPE_KERNEL_TESTS=1`.

use anyhow::Result;

use crate::{build, cmd, deps};

/// Options of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Extra arguments for `cargo test` (after `--`).
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

/// Runs `cargo xtask test`.
///
/// # Errors
/// When the toolchain is incomplete, a build fails or a test fails.
pub fn run(args: &Args) -> Result<()> {
    deps::ensure(deps::Verbosity::Quiet)?;
    let obj = build::build_ebpf()?;
    let fsgen = build::build_bins(&obj, false, &[("bench", "fsgen")])?.join("fsgen");
    let root = cmd::is_root();
    if !root {
        eprintln!(
            "\n################################################################\n\
             # NOT ROOT: the kernel tests (XDP, AF_XDP, veth/netns) are    #\n\
             # SKIPPED. Run `sudo cargo xtask test` to run every tier.     #\n\
             ################################################################\n"
        );
    }
    let mut test = build::workspace_cargo(&obj, "test");
    test.env("FLOWSCOPE_FSGEN", &fsgen).args(&args.cargo_args);
    if root {
        test.env("FLOWSCOPE_KERNEL_TESTS", "1");
    }
    cmd::run(&mut test)?;
    if std::env::var_os("FLOWSCOPE_SKIP_FUZZ").is_some_and(|v| v == "1") {
        eprintln!("xtask: fuzz smoke run SKIPPED (FLOWSCOPE_SKIP_FUZZ=1)");
    } else {
        crate::fuzz::fuzz(&crate::fuzz::targets()?, crate::fuzz::SMOKE_SECONDS)?;
    }
    if !root {
        eprintln!("xtask: unit and pcap tests passed; kernel tests were SKIPPED (not root)");
    }
    Ok(())
}
