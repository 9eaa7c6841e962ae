//! `flowscope probe`: what this kernel offers the datapath, one line per
//! feature, and what flowscope does without it (as `bpftool feature probe`
//! answers for BPF as a whole).

use std::process::ExitCode;

use crate::capture::KernelFeatures;

/// Prints one line per probed feature: `yes`, or `no`/`unknown` with the
/// kernel's reason and the cost. Exits 0 whatever the answers: every
/// feature is optional.
pub fn run() -> ExitCode {
    for line in KernelFeatures::probe().report() {
        println!("{line}");
    }
    ExitCode::SUCCESS
}
