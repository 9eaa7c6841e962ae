//! `cargo xtask`: the project's tasks, one subcommand per job.
//!
//! `deps` installs the toolchain (idempotent; `build`, `test`, `run` and
//! `demo` check it first), `doctor` reports what this machine supports,
//! `build` builds the eBPF object and the workspace, `test` runs every test
//! tier (on this machine's kernel and, in a VM, on Debian's 6.1), `run`
//! starts a live capture, `demo` runs a capture against the generator
//! between two network namespaces and `package` makes the Debian package.

mod bench;
mod build;
mod cmd;
mod cpu_profile;
mod demo;
mod deps;
mod doctor;
mod flood;
mod fuzz;
mod libtest;
mod loss_free;
mod netns;
mod package;
mod peers;
mod run;
mod test;
mod vm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// flowscope project tasks.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the toolchain and system packages; install what is missing.
    Deps,
    /// Report toolchain versions and kernel features (BPF, XDP, AF_XDP, netns).
    Doctor,
    /// Build the eBPF object, then the workspace with it embedded.
    Build(build::Args),
    /// Run all tests (as root also the kernel tests, here and on Debian 6.1 in a VM).
    Test(test::Args),
    /// Build release and start `flowscope capture` on an interface.
    Run(run::Args),
    /// Capture the generator's traffic on a veth pair between two netns.
    Demo(demo::Args),
    /// Run a benchmark (release build); figures go to BENCHMARKS.md.
    Bench(bench::Args),
    /// Fuzz each target for a while (cargo-fuzz, nightly), or write the seeds.
    Fuzz(fuzz::Args),
    /// Build the Debian package: release binary, systemd unit, config, man
    /// pages, completions.
    Package(package::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Deps => deps::ensure(deps::Verbosity::Report),
        Command::Doctor => doctor::run(),
        Command::Build(args) => build::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::Package(args) => package::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
