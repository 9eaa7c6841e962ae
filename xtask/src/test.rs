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
    let (passed, failed, skipped) = run_counting(&mut test)?;
    if std::env::var_os("FLOWSCOPE_SKIP_FUZZ").is_some_and(|v| v == "1") {
        eprintln!("xtask: fuzz smoke run SKIPPED (FLOWSCOPE_SKIP_FUZZ=1)");
    } else {
        crate::fuzz::fuzz(&crate::fuzz::targets()?, crate::fuzz::SMOKE_SECONDS)?;
    }
    if !root {
        eprintln!("xtask: unit and pcap tests passed; kernel tests were SKIPPED (not root)");
    }
    // The last lines say what ran, whatever the fuzz step printed before.
    for line in &skipped {
        println!("{line}");
    }
    println!(
        "xtask test: {passed} passed, {failed} failed, {} skipped",
        skipped.len()
    );
    Ok(())
}

/// Runs `cargo test`, echoing its output, and adds up the `test result:`
/// lines of every test binary: (passed, failed, the `*** SKIPPED` lines
/// tests wrote).
fn run_counting(test: &mut std::process::Command) -> Result<(u64, u64, Vec<String>)> {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: $ {}", cmd::display(test));
    let mut child = test.stdout(std::process::Stdio::piped()).spawn()?;
    let (mut passed, mut failed, mut skipped) = (0, 0, Vec::new());
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                passed += count(rest, " passed");
                failed += count(rest, " failed");
            }
            if let Some(at) = line.find("*** SKIPPED") {
                skipped.push(line[at..].to_owned());
            }
        }
    }
    let status = child.wait()?;
    anyhow::ensure!(
        status.success(),
        "cargo test failed ({status}): {failed} test(s) failed"
    );
    Ok((passed, failed, skipped))
}

/// The number before `word` in a `test result:` line (`ok. 3 passed; 0 failed; …`).
fn count(line: &str, word: &str) -> u64 {
    line.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(word)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_test_result_lines() {
        let l = "ok. 12 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(
            (super::count(l, " passed"), super::count(l, " failed")),
            (12, 1)
        );
        assert_eq!(
            super::count("FAILED. 3 passed; 2 failed; 0 ignored", " failed"),
            2
        );
    }
}
