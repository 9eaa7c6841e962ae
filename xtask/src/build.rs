//! `cargo xtask build`: the eBPF object (nightly, `bpfel-unknown-none`),
//! then the workspace with the object embedded through `FLOWSCOPE_EBPF_OBJ`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};

use crate::{cmd, deps};

/// Options of `cargo xtask build`.
#[derive(clap::Args)]
pub struct Args {
    /// Build the workspace in release mode.
    #[arg(long)]
    release: bool,
}

/// Runs `cargo xtask build`.
///
/// # Errors
/// When the toolchain is incomplete or a build fails.
pub fn run(args: &Args) -> Result<()> {
    deps::ensure(deps::Verbosity::Quiet)?;
    let obj = build_ebpf()?;
    let mut build = workspace_cargo(&obj, "build");
    if args.release {
        build.arg("--release");
    }
    cmd::run(&mut build)
}

/// Where the eBPF ELF lands.
pub fn ebpf_object() -> PathBuf {
    cmd::target_dir().join("bpf/bpfel-unknown-none/release/flowscope")
}

/// Builds the eBPF program and returns the absolute path of its ELF.
///
/// # Errors
/// When the nightly build fails or produces no object.
pub fn build_ebpf() -> Result<PathBuf> {
    let target_dir = cmd::target_dir().join("bpf");
    cmd::run(
        Command::new("cargo")
            .current_dir(cmd::workspace_root())
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTC")
            .env_remove("CARGO")
            .args([
                "+nightly",
                "build",
                "-Z",
                "build-std=core",
                "--target",
                "bpfel-unknown-none",
            ])
            .args(["--release", "-p", "flowscope-ebpf", "--target-dir"])
            .arg(&target_dir),
    )?;
    let obj = ebpf_object();
    if !obj.is_file() {
        bail!("the eBPF build produced no {}", obj.display());
    }
    Ok(obj)
}

/// `cargo SUBCOMMAND --workspace --exclude flowscope-ebpf` with
/// `FLOWSCOPE_EBPF_OBJ` set, so every build embeds the same object.
pub fn workspace_cargo(obj: &std::path::Path, subcommand: &str) -> Command {
    let mut c = cmd::cargo();
    c.arg(subcommand)
        .args(["--workspace", "--exclude", "flowscope-ebpf"])
        .env("FLOWSCOPE_EBPF_OBJ", obj);
    c
}

/// `cargo build` of single binaries with `FLOWSCOPE_EBPF_OBJ` set; returns
/// the directory holding them (`target/debug` or `target/release`).
///
/// # Errors
/// When the build fails.
pub fn build_bins(obj: &std::path::Path, release: bool, bins: &[(&str, &str)]) -> Result<PathBuf> {
    let mut c = cmd::cargo();
    c.arg("build").env("FLOWSCOPE_EBPF_OBJ", obj);
    for (package, bin) in bins {
        c.args(["-p", package, "--bin", bin]);
    }
    if release {
        c.arg("--release");
    }
    cmd::run(&mut c)?;
    Ok(cmd::target_dir().join(if release { "release" } else { "debug" }))
}

/// An executable cargo built for `cargo test`.
pub struct TestBinary {
    /// Target name (`kernel_xdp`).
    pub name: String,
    /// The executable.
    pub exe: PathBuf,
    /// Its package's directory, where `cargo test` runs it.
    pub dir: PathBuf,
}

/// What the test tiers run: the test executables, and every binary target
/// (`flowscope`, which the integration tests run; `fsgen`, which the
/// kernel tests send traffic with).
pub struct TestBuild {
    /// The test executables.
    pub tests: Vec<TestBinary>,
    /// The binary targets.
    pub bins: Vec<TestBinary>,
}

/// Builds every target of the workspace in one `cargo build --all-targets`,
/// as its JSON messages report them: the test executables are those of
/// [`workspace_cargo`]`(obj, "test")`, so that builds nothing after it, and
/// the binaries share its dependency features (a separate `cargo build -p`
/// of one binary resolves other features and compiles some 35 crates a
/// second time).
///
/// # Errors
/// When the build fails or its report cannot be read.
pub fn test_binaries(obj: &std::path::Path) -> Result<TestBuild> {
    let mut c = workspace_cargo(obj, "build");
    c.args(["--all-targets", "--message-format=json"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    eprintln!("xtask: $ {}", cmd::display(&c));
    let out = c.output()?;
    if !out.status.success() {
        bail!("`{}` failed ({})", cmd::display(&c), out.status);
    }
    let mut build = TestBuild {
        tests: Vec::new(),
        bins: Vec::new(),
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(exe), Some(name), Some(manifest)) = (
            msg["executable"].as_str(),
            msg["target"]["name"].as_str(),
            msg["manifest_path"].as_str(),
        ) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let binary = TestBinary {
            name: name.to_owned(),
            exe: exe.into(),
            dir: std::path::Path::new(manifest)
                .parent()
                .map(PathBuf::from)
                .unwrap_or_default(),
        };
        if msg["profile"]["test"] == true {
            build.tests.push(binary);
        } else if msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "bin"))
        {
            build.bins.push(binary);
        }
    }
    Ok(build)
}
