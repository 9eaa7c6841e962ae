//! `cargo xtask package`: the Debian package of the sensor, made by
//! cargo-deb from `[package.metadata.deb]` of flowscope-user: the release
//! binary with the XDP object embedded, the systemd unit, the example
//! config, the logrotate config, and the man pages and shell completions the
//! binary writes from its own clap definitions (`flowscope generate`).
//!
//! cargo-deb takes the files the metadata lists under `target/release/` from
//! `release/` of its target directory; here that is a staging directory of
//! its own, so the binary packaged can be the one a test build made and the
//! generated files never mix with cargo's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{build, cmd, deps};

/// Options of `cargo xtask package`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory the .deb (and its -dbgsym .ddeb) go to (default
    /// `target/debian`).
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
}

/// Runs `cargo xtask package`.
///
/// # Errors
///
/// When the toolchain is incomplete, the build fails or cargo-deb does.
pub fn run(args: &Args) -> Result<()> {
    deps::ensure(deps::Verbosity::Quiet)?;
    let obj = build::build_ebpf()?;
    let bin = build::build_bins(&obj, true, &[("flowscope-user", "flowscope")])?.join("flowscope");
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| cmd::target_dir().join("debian"));
    let deb = make(&bin, Kind::Release, &out)?;
    println!("{}", deb.display());
    Ok(())
}

/// What a package is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// To install: xz at its default level, debug symbols in a
    /// `-dbgsym.ddeb` beside it.
    Release,
    /// For the package test: fast compression, symbols stripped.
    Test,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Release => "release",
            Kind::Test => "test",
        }
    }
}

/// Packages the flowscope binary `bin` into `out_dir`: returns the .deb.
///
/// # Errors
///
/// When the binary cannot generate its man pages or completions, or
/// cargo-deb fails.
pub fn make(bin: &Path, kind: Kind, out_dir: &Path) -> Result<PathBuf> {
    let stage = cmd::target_dir().join("package").join(kind.label());
    let release = stage.join("release");
    if release.exists() {
        std::fs::remove_dir_all(&release)
            .with_context(|| format!("removing {}", release.display()))?;
    }
    std::fs::create_dir_all(&release)?;
    // A copy: whatever cargo-deb does to the file it packages stays here.
    std::fs::copy(bin, release.join("flowscope"))
        .with_context(|| format!("copying {}", bin.display()))?;
    generate(bin, &release.join("generated"))?;
    std::fs::create_dir_all(out_dir)?;
    let mut deb = cmd::cargo();
    deb.args(["deb", "-p", "flowscope-user", "--no-build", "--output"])
        .arg(out_dir)
        .env("CARGO_TARGET_DIR", &stage)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    match kind {
        Kind::Release => deb.arg("--dbgsym"),
        Kind::Test => deb.args(["--strip", "--fast", "--quiet"]),
    };
    eprintln!("xtask: $ {}", cmd::display(&deb));
    let done = deb.output().context("cannot start `cargo deb`")?;
    if !done.status.success() {
        bail!("`{}` failed ({})", cmd::display(&deb), done.status);
    }
    // cargo-deb prints the path of each package it wrote, the .deb first.
    let printed = String::from_utf8_lossy(&done.stdout);
    printed
        .lines()
        .map(PathBuf::from)
        .find(|p| p.extension().is_some_and(|e| e == "deb") && p.is_file())
        .with_context(|| format!("cargo deb named no .deb it wrote: {printed:?}"))
}

/// Where each shell's completion script goes in the staging directory (the
/// package's metadata installs them from there).
const COMPLETIONS: [(&str, &str); 3] = [
    ("bash", "flowscope.bash"),
    ("zsh", "_flowscope"),
    ("fish", "flowscope.fish"),
];

/// The man pages (gzipped, as Debian policy wants them) into `dir/man`,
/// and the completion scripts into `dir`, all written by `bin`.
fn generate(bin: &Path, dir: &Path) -> Result<()> {
    let man = dir.join("man");
    cmd::run(Command::new(bin).args(["generate", "man"]).arg(&man))?;
    let pages: Vec<PathBuf> = std::fs::read_dir(&man)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    if pages.is_empty() {
        bail!("`{} generate man` wrote no page", bin.display());
    }
    cmd::run(Command::new("gzip").args(["-9", "-n"]).args(&pages))?;
    for (shell, file) in COMPLETIONS {
        let mut c = Command::new(bin);
        c.args(["generate", "completions", shell]);
        let script =
            cmd::stdout(&mut c).with_context(|| format!("`{}` failed", cmd::display(&c)))?;
        std::fs::write(dir.join(file), script)?;
    }
    Ok(())
}
