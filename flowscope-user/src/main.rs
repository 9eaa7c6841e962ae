//! The `flowscope` command line: `capture` (live, Linux) and `read` (pcap).

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Passive network flow and session tracker.
#[derive(Debug, Parser)]
#[command(name = "flowscope", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Capture live from an interface through XDP and AF_XDP (root, or five
    /// capabilities).
    #[cfg(live)]
    #[command(after_long_help = flowscope::cli::capture::NOTES)]
    Capture(Box<flowscope::cli::capture::CaptureArgs>),
    /// Run a pcap or pcapng file (`-` for stdin) through the capture's
    /// workers on every core; EVE JSON out.
    Read(Box<flowscope::cli::read::ReadArgs>),
    /// Probe the kernel features the live datapath uses (root).
    #[cfg(live)]
    Probe,
    /// Write the man pages or a shell's completion script (packaging).
    #[command(subcommand, hide = true)]
    Generate(flowscope::cli::generate::Generate),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        #[cfg(live)]
        Command::Capture(args) => flowscope::cli::capture::run(*args),
        Command::Read(args) => flowscope::cli::read::run(*args),
        #[cfg(live)]
        Command::Probe => Ok(flowscope::cli::probe::run()),
        Command::Generate(what) => flowscope::cli::generate::run(Cli::command(), what),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flowscope: {e:#}");
            ExitCode::FAILURE
        }
    }
}
