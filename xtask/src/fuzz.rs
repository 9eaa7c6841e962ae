//! `cargo xtask fuzz`: runs the libFuzzer targets of `fuzz/` (cargo-fuzz on
//! the nightly) for a bounded time each, or writes the seed corpora.
//!
//! New inputs libFuzzer finds go to `target/fuzz-corpus/<target>/`, so the
//! committed seeds in `fuzz/corpus/` stay as they are; crashes land in
//! `fuzz/artifacts/<target>/` and belong, once fixed, in
//! `fuzz/regressions/<target>/`, which `tests/fuzz_corpus.rs` replays.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context, Result, bail};

use crate::{cmd, deps};

/// Seconds per target of the short run in `cargo xtask test`.
pub const SMOKE_SECONDS: u64 = 8;

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds to fuzz each target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Fuzz only this target (default: all of `fuzz/fuzz_targets/`).
    #[arg(long)]
    target: Option<String>,
    /// Write the seed corpora into `fuzz/corpus/` instead of fuzzing.
    #[arg(long)]
    seed: bool,
}

/// Runs `cargo xtask fuzz`.
///
/// # Errors
/// When cargo-fuzz cannot be installed, a build fails or a target crashes.
pub fn run(args: &Args) -> Result<()> {
    if args.seed {
        let pcaps = cmd::workspace_root().join("../shared/pcaps");
        return cmd::run(
            nightly_cargo()
                .args([
                    "run",
                    "--manifest-path",
                    "fuzz/Cargo.toml",
                    "--example",
                    "seed",
                    "--",
                ])
                .arg(fuzz_dir().join("corpus"))
                .arg(pcaps),
        );
    }
    let targets = match &args.target {
        Some(t) if targets()?.contains(t) => vec![t.clone()],
        Some(t) => bail!(
            "no fuzz target {t}; the targets are {}",
            targets()?.join(", ")
        ),
        None => targets()?,
    };
    fuzz(&targets, args.seconds)
}

/// Builds every target, then fuzzes each for `seconds`, as many at once as
/// there are CPUs (libFuzzer runs on one). Each target's output goes to
/// `target/fuzz-logs/<target>.log`; a failing target's is printed.
///
/// # Errors
/// When cargo-fuzz is missing and cannot be installed, the build fails or
/// a target finds a crash.
pub fn fuzz(targets: &[String], seconds: u64) -> Result<()> {
    deps::ensure_cargo_tool(deps::CARGO_FUZZ, |_| ())?;
    cmd::run(nightly_cargo().args(["fuzz", "build"]).args(FLAGS))?;
    let logs = cmd::target_dir().join("fuzz-logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let lanes = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..lanes.min(targets.len()) {
            s.spawn(|| {
                while let Some(target) = targets.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(e) = fuzz_one(target, seconds, &logs) {
                        eprintln!("xtask: {e:#}");
                        (failed.lock().unwrap_or_else(PoisonError::into_inner))
                            .push(target.as_str());
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap_or_else(PoisonError::into_inner);
    if !failed.is_empty() {
        bail!("fuzz target(s) failed: {}", failed.join(", "));
    }
    Ok(())
}

/// No sanitizer (the library is safe Rust), overflow checks on.
const FLAGS: [&str; 3] = ["--sanitizer", "none", "--debug-assertions"];

/// Fuzzes `target` for `seconds`, its output into `logs/<target>.log`.
fn fuzz_one(target: &str, seconds: u64, logs: &Path) -> Result<()> {
    let scratch = cmd::target_dir().join("fuzz-corpus").join(target);
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let mut run = nightly_cargo();
    run.args(["fuzz", "run"])
        .args(FLAGS)
        .arg(target)
        .arg(&scratch)
        .arg(fuzz_dir().join("corpus").join(target));
    let regressions = fuzz_dir().join("regressions").join(target);
    if regressions.is_dir() {
        run.arg(regressions);
    }
    run.arg("--").args([
        format!("-max_total_time={seconds}"),
        "-timeout=10".into(),
        "-rss_limit_mb=2048".into(),
        "-print_final_stats=1".into(),
    ]);
    let log_path = logs.join(format!("{target}.log"));
    let log =
        File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    run.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    eprintln!("xtask: $ {} > {}", cmd::display(&run), log_path.display());
    let status = run
        .status()
        .with_context(|| format!("cannot start `{}`", cmd::display(&run)))?;
    let out = std::fs::read_to_string(&log_path).unwrap_or_default();
    if status.success() {
        let runs = out
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map_or("?", str::trim);
        eprintln!("xtask: fuzz {target}: {runs} runs in {seconds} s, no failure");
        return Ok(());
    }
    // From the crash report's first line (a panic or libFuzzer's own), else
    // the end of the output.
    let lines: Vec<&str> = out.lines().collect();
    let from = (lines.iter())
        .position(|l| l.contains("panicked at") || l.contains("ERROR: libFuzzer"))
        .unwrap_or(lines.len().saturating_sub(OUTPUT_SHOWN));
    for line in lines.iter().skip(from).take(OUTPUT_SHOWN) {
        eprintln!("[{target}] {line}");
    }
    bail!(
        "fuzz target {target} failed ({status}; all its output in {}): the input is in \
         fuzz/artifacts/{target}/; once fixed, copy it to fuzz/regressions/{target}/",
        log_path.display()
    )
}

/// Lines of a failing target's output printed at most (its crash report).
const OUTPUT_SHOWN: usize = 120;

/// The targets: the files of `fuzz/fuzz_targets/`, sorted.
pub fn targets() -> Result<Vec<String>> {
    let dir = fuzz_dir().join("fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    names.sort();
    Ok(names)
}

fn fuzz_dir() -> PathBuf {
    cmd::workspace_root().join("fuzz")
}

/// `cargo +nightly` in the workspace root.
fn nightly_cargo() -> Command {
    let mut c = Command::new("cargo");
    c.arg("+nightly")
        .env_remove("RUSTUP_TOOLCHAIN")
        .current_dir(cmd::workspace_root());
    c
}
