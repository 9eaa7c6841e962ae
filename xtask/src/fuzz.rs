//! `cargo xtask fuzz`: runs the libFuzzer targets of `fuzz/` (cargo-fuzz on
//! the nightly) for a bounded time each, or writes the seed corpora.
//!
//! New inputs libFuzzer finds go to `target/fuzz-corpus/<target>/`, so the
//! committed seeds in `fuzz/corpus/` stay as they are; crashes land in
//! `fuzz/artifacts/<target>/` and belong, once fixed, in
//! `fuzz/regressions/<target>/`, which `tests/fuzz_corpus.rs` replays.

use std::path::PathBuf;
use std::process::Command;

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

/// Builds every target and fuzzes each in turn for `seconds`.
///
/// # Errors
/// When cargo-fuzz is missing and cannot be installed, the build fails or
/// a target finds a crash.
pub fn fuzz(targets: &[String], seconds: u64) -> Result<()> {
    deps::ensure_cargo_tool(deps::CARGO_FUZZ, |_| ())?;
    // No sanitizer (the library is safe Rust), overflow checks on.
    let flags = ["--sanitizer", "none", "--debug-assertions"];
    cmd::run(nightly_cargo().args(["fuzz", "build"]).args(flags))?;
    for target in targets {
        let scratch = cmd::target_dir().join("fuzz-corpus").join(target);
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        let mut run = nightly_cargo();
        run.args(["fuzz", "run"])
            .args(flags)
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
        cmd::run(&mut run).with_context(|| {
            format!(
                "fuzz target {target} failed: the input is in fuzz/artifacts/{target}/; \
                 once fixed, copy it to fuzz/regressions/{target}/"
            )
        })?;
    }
    Ok(())
}

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
