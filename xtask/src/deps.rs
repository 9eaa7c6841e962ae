//! `cargo xtask deps`: checks the build and test toolchain and installs only
//! what is missing (Debian packages, the nightly's `rust-src`,
//! `bpf-linker` built against the nightly's LLVM major, cargo-deb for the
//! package, cargo-fuzz for the fuzz targets, virtme-ng for the kernel
//! matrix's VM, and jsonschema for the EVE schema test).

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// LLVM major of the nightly this project pins; bpf-linker must use the same.
pub const LLVM_MAJOR: u32 = 22;
const BPF_LINKER_VERSION: &str = "0.13.0";
/// virtme-ng (PyPI), which boots the kernel matrix's VM.
const VIRTME_NG_VERSION: &str = "1.42";
/// jsonschema (PyPI), which checks EVE records against Suricata's schema
/// (Draft 7) in `tests/eve_schema.rs`, as Suricata's own tests do.
const JSONSCHEMA_VERSION: &str = "4.26.0";

/// Debian packages: C toolchain for libxdp/libbpf (xsk-rs), LLVM for
/// bpf-linker, the network tools of the tests (OpenSSH for the SSH sessions
/// the SSH test makes between two namespaces), promtool (package
/// `prometheus`) that checks the scraped metrics, perf for the capture
/// benchmark's profile, the peers of `cargo xtask bench peers` (Debian 12:
/// nDPI 4.2, argus 3.0.8; tshark brings editcap and mergecap, nfdump brings
/// nfpcapd), QEMU, depmod and a static busybox (for virtme-ng's initramfs)
/// for the kernel matrix's VM, dpkg-shlibdeps and strip for cargo-deb, and
/// what the package test checks the package with (man, logrotate, and the
/// shells its completions are for).
const APT_PACKAGES: &[&str] = &[
    "clang",
    "llvm",
    "libelf-dev",
    "zlib1g-dev",
    "pkg-config",
    "m4",
    "libpcap-dev",
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "iproute2",
    "ethtool",
    "tshark",
    "tcpdump",
    "nfdump",
    "openssh-server",
    "openssh-client",
    "prometheus",
    "linux-perf",
    "libndpi-bin",
    "argus-server",
    "argus-client",
    "qemu-system-x86",
    "kmod",
    "busybox-static",
    "dpkg-dev",
    "binutils",
    "man-db",
    "logrotate",
    "zsh",
    "fish",
];

/// Packages of [`APT_PACKAGES`] that ship a daemon their install would start
/// (sshd, nfcapd, the Prometheus server on :9090); the tests start their own
/// where they need one.
const DAEMON_PACKAGES: &[&str] = &["openssh-server", "nfdump", "prometheus"];

/// How much to say when everything is present.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Report every check (`cargo xtask deps`).
    Report,
    /// Say something only when installing or failing (other tasks).
    Quiet,
}

/// Checks everything and installs what is missing.
///
/// # Errors
/// When something is missing and cannot be installed; the message names it
/// and the command to fix it.
pub fn ensure(verbosity: Verbosity) -> Result<()> {
    let say = |msg: String| {
        if verbosity == Verbosity::Report {
            println!("{msg}");
        }
    };
    let missing = missing_packages()?;
    if missing.is_empty() {
        say(format!(
            "ok      Debian packages: {}",
            APT_PACKAGES.join(" ")
        ));
    } else {
        install_packages(&missing)?;
    }

    let nightly = nightly_llvm_major().context(
        "the nightly toolchain is missing or broken: run `rustup toolchain install nightly --profile minimal`",
    )?;
    if nightly != LLVM_MAJOR {
        bail!(
            "the nightly uses LLVM {nightly}, this project's bpf-linker recipe needs LLVM {LLVM_MAJOR}: \
             install a nightly built with LLVM {LLVM_MAJOR} (e.g. nightly-2026-05-19)"
        );
    }
    say(format!("ok      nightly toolchain (LLVM {nightly})"));

    if has_rust_src()? {
        say("ok      rust-src for the nightly".into());
    } else {
        println!("install rust-src for the nightly");
        cmd::run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }

    match bpf_linker() {
        BpfLinker::Good => say(format!(
            "ok      bpf-linker {BPF_LINKER_VERSION} (LLVM {LLVM_MAJOR})"
        )),
        state => {
            println!(
                "install bpf-linker {BPF_LINKER_VERSION} against LLVM {LLVM_MAJOR} ({state}; takes minutes)"
            );
            install_bpf_linker(state == BpfLinker::Missing)?;
        }
    }

    for tool in [CARGO_DEB, CARGO_FUZZ] {
        ensure_cargo_tool(tool, say)?;
    }

    match virtme_ng() {
        Some((version, _)) if version == VIRTME_NG_VERSION => {
            say(format!("ok      virtme-ng {version}"));
        }
        found => {
            let state = found.map_or("not installed".to_owned(), |(v, _)| {
                format!("{v} installed")
            });
            println!("install virtme-ng {VIRTME_NG_VERSION} with pip ({state})");
            install_virtme_ng()?;
        }
    }

    match pip_version("jsonschema") {
        Some(version) if version == JSONSCHEMA_VERSION => {
            say(format!("ok      jsonschema {version}"));
        }
        found => {
            let state = found.map_or("not installed".to_owned(), |v| format!("{v} installed"));
            println!("install jsonschema {JSONSCHEMA_VERSION} with pip ({state})");
            pip_install("jsonschema", JSONSCHEMA_VERSION)?;
        }
    }
    Ok(())
}

/// The version of the Python package `name` that `python3` imports.
fn pip_version(name: &str) -> Option<String> {
    let out = cmd::stdout(Command::new("python3").args([
        "-c",
        &format!("import importlib.metadata as m\nprint(m.version('{name}'))"),
    ]))?;
    Some(out.trim().to_owned())
}

/// The interpreter `python3` runs (its real path, so a VM guest, whose
/// PATH is the system's, runs the same one with the packages installed
/// here).
///
/// # Errors
/// When `python3` does not run.
pub fn python() -> Result<std::path::PathBuf> {
    let out =
        cmd::stdout(Command::new("python3").args(["-c", "import sys\nprint(sys.executable)"]))
            .context("python3 does not run (`cargo xtask deps`)")?;
    Ok(out.trim().into())
}

/// The installed virtme-ng's version and the directory of its `vng`
/// script, as `python3` sees them.
pub fn virtme_ng() -> Option<(String, std::path::PathBuf)> {
    let out = cmd::stdout(Command::new("python3").args([
        "-c",
        "import importlib.metadata as m, sysconfig\n\
         print(m.version('virtme-ng'))\nprint(sysconfig.get_path('scripts'))",
    ]))?;
    let mut lines = out.lines();
    Some((lines.next()?.to_owned(), lines.next()?.into()))
}

/// The `vng` command of virtme-ng [`VIRTME_NG_VERSION`].
///
/// # Errors
/// When another version or none is installed.
pub fn vng() -> Result<std::path::PathBuf> {
    match virtme_ng() {
        Some((version, scripts)) if version == VIRTME_NG_VERSION => {
            let vng = scripts.join("vng");
            if vng.is_file() {
                Ok(vng)
            } else {
                bail!(
                    "virtme-ng is installed but {} is missing: run `cargo xtask deps`",
                    vng.display()
                )
            }
        }
        Some((version, _)) => bail!(
            "virtme-ng {version} is installed, the VM needs {VIRTME_NG_VERSION}: run `cargo xtask deps`"
        ),
        None => {
            bail!("virtme-ng is not installed (python3 cannot import it): run `cargo xtask deps`")
        }
    }
}

/// `python3 -m pip install virtme-ng==VERSION`.
fn install_virtme_ng() -> Result<()> {
    pip_install("virtme-ng", VIRTME_NG_VERSION)?;
    vng().map(drop)
}

/// `python3 -m pip install NAME==VERSION`; where the Python is the
/// distribution's own (PEP 668 marker), pip must be told that it may.
fn pip_install(name: &str, version: &str) -> Result<()> {
    let managed = cmd::stdout(Command::new("python3").args([
        "-c",
        "import os, sysconfig\n\
         print(os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))",
    ]))
    .with_context(|| format!("python3 not found: {name} is a Python package"))?;
    let mut pip = Command::new("python3");
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--root-user-action=ignore",
    ])
    .arg(format!("{name}=={version}"))
    .stdin(Stdio::null());
    if managed.trim() == "True" {
        pip.arg("--break-system-packages");
    }
    cmd::run(&mut pip).with_context(|| {
        format!(
            "installing {name} failed: is pip there (`python3 -m pip --version`; Debian: python3-pip)?"
        )
    })
}

/// Packages of [`APT_PACKAGES`] that are not installed.
pub fn missing_packages() -> Result<Vec<&'static str>> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${db:Status-Abbrev}\n"])
        .args(APT_PACKAGES)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context(
            "dpkg-query not found: this is not a Debian-based system; install the equivalents of \
             the Debian packages listed in README.md by hand",
        )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, status)| status.starts_with("ii"))
        .map(|(name, _)| name.split(':').next().unwrap_or(name))
        .collect();
    Ok(APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed.contains(p))
        .collect())
}

/// A `policy-rc.d` that keeps package scripts from starting services
/// (invoke-rc.d honours it), present while it lives; only written when the
/// system has none.
struct NoServiceStarts(Option<&'static str>);

impl NoServiceStarts {
    const PATH: &'static str = "/usr/sbin/policy-rc.d";

    fn install() -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        if std::path::Path::new(Self::PATH).exists() {
            return Ok(Self(None));
        }
        std::fs::write(
            Self::PATH,
            "#!/bin/sh\n# cargo xtask deps: no service starts\nexit 101\n",
        )
        .with_context(|| format!("cannot write {}", Self::PATH))?;
        std::fs::set_permissions(Self::PATH, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self(Some(Self::PATH)))
    }
}

impl Drop for NoServiceStarts {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn install_packages(missing: &[&str]) -> Result<()> {
    let list = missing.join(" ");
    println!("install Debian packages: {list}");
    if !cmd::is_root() {
        bail!(
            "missing Debian packages: {list}; run `sudo cargo xtask deps` or `sudo apt-get install {list}`"
        );
    }
    if missing.contains(&"tshark") {
        // Answer tshark's question (may non-root users capture?) up front.
        let mut child = Command::new("debconf-set-selections")
            .stdin(Stdio::piped())
            .spawn()
            .context("cannot start debconf-set-selections")?;
        if let Some(stdin) = child.stdin.as_mut() {
            use std::io::Write;
            stdin.write_all(b"wireshark-common wireshark-common/install-setuid boolean false\n")?;
        }
        drop(child.stdin.take());
        if !child.wait()?.success() {
            bail!("debconf-set-selections failed");
        }
    }
    cmd::run(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    // No daemon of these packages is started on install.
    let _no_services = missing
        .iter()
        .any(|p| DAEMON_PACKAGES.contains(p))
        .then(NoServiceStarts::install)
        .transpose()?;
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null()),
    )
    .with_context(|| {
        format!(
            "installing {list} failed; check the apt sources (these packages are in Debian trixie)"
        )
    })?;
    let still = missing_packages()?;
    if !still.is_empty() {
        bail!("still missing after apt-get install: {}", still.join(" "));
    }
    Ok(())
}

/// A cargo subcommand installed with `cargo install --locked` at a pinned
/// version.
#[derive(Clone, Copy)]
pub struct CargoTool {
    /// The crate, also the binary (`cargo-deb`).
    krate: &'static str,
    /// The subcommand (`deb`).
    sub: &'static str,
    version: &'static str,
    /// What it is for, said while installing.
    purpose: &'static str,
}

/// cargo-deb, which makes the Debian package (MSRV 1.85).
const CARGO_DEB: CargoTool = CargoTool {
    krate: "cargo-deb",
    sub: "deb",
    version: "3.8.0",
    purpose: "the Debian package",
};

/// cargo-fuzz, which builds and runs the libFuzzer targets (on the nightly).
pub const CARGO_FUZZ: CargoTool = CargoTool {
    krate: "cargo-fuzz",
    sub: "fuzz",
    version: "0.13.2",
    purpose: "the fuzz targets",
};

/// The installed version of `tool` (`cargo deb --version`: `cargo-deb
/// 3.8.0`).
fn cargo_tool_version(tool: CargoTool) -> Option<String> {
    let out = cmd::stdout(
        Command::new("cargo")
            .args([tool.sub, "--version"])
            .env_remove("RUSTUP_TOOLCHAIN"),
    )?;
    Some(out.trim().strip_prefix(tool.krate)?.trim_start().to_owned())
}

/// Installs `tool` at its pinned version unless that version is there.
///
/// # Errors
/// When `cargo install` fails or leaves another version on PATH.
pub fn ensure_cargo_tool(tool: CargoTool, say: impl Fn(String)) -> Result<()> {
    let found = cargo_tool_version(tool);
    if found.as_deref() == Some(tool.version) {
        say(format!("ok      {} {}", tool.krate, tool.version));
        return Ok(());
    }
    println!(
        "install {} {} for {} ({}; takes minutes)",
        tool.krate,
        tool.version,
        tool.purpose,
        found.map_or("not installed".to_owned(), |v| format!("{v} installed"))
    );
    cmd::run(
        Command::new("cargo")
            .args(["install", tool.krate, "--version", tool.version])
            .args(["--locked", "--force"])
            .env_remove("RUSTUP_TOOLCHAIN")
            .stdin(Stdio::null()),
    )
    .with_context(|| format!("installing {} failed", tool.krate))?;
    match cargo_tool_version(tool) {
        Some(v) if v == tool.version => Ok(()),
        found => bail!(
            "{} after install: {found:?}; is ~/.cargo/bin on PATH, before any other {}?",
            tool.krate,
            tool.krate
        ),
    }
}

/// `rustc +nightly -vV`, or `None` when the nightly is not usable.
pub fn nightly_version() -> Option<String> {
    cmd::stdout(
        Command::new("rustc")
            .args(["+nightly", "-vV"])
            .env_remove("RUSTUP_TOOLCHAIN"),
    )
}

fn nightly_llvm_major() -> Option<u32> {
    llvm_major_of(&nightly_version()?)
}

/// The LLVM major from `rustc -vV` output (`LLVM version: 22.1.4`).
pub fn llvm_major_of(verbose_version: &str) -> Option<u32> {
    let line = verbose_version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))?;
    line.split('.').next()?.trim().parse().ok()
}

fn has_rust_src() -> Result<bool> {
    let out = cmd::stdout(
        Command::new("rustup")
            .args(["component", "list", "--toolchain", "nightly", "--installed"])
            .env_remove("RUSTUP_TOOLCHAIN"),
    )
    .context("`rustup component list --toolchain nightly` failed: is rustup installed?")?;
    Ok(out
        .lines()
        .any(|l| l.trim() == "rust-src" || l.starts_with("rust-src")))
}

/// State of the installed bpf-linker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BpfLinker {
    /// Not on PATH.
    Missing,
    /// Another version.
    WrongVersion,
    /// Not linked against libLLVM of [`LLVM_MAJOR`].
    WrongLlvm,
    /// The right version and LLVM.
    Good,
}

impl std::fmt::Display for BpfLinker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BpfLinker::Missing => "not installed",
            BpfLinker::WrongVersion => "another version is installed",
            BpfLinker::WrongLlvm => "the installed one is not linked against this LLVM",
            BpfLinker::Good => "present",
        })
    }
}

/// `bpf-linker --version` and the libLLVM it links (from `ldd`), if found.
pub fn bpf_linker_info() -> Option<(String, Option<String>)> {
    let version = cmd::stdout(Command::new("bpf-linker").arg("--version"))?;
    let path = cmd::stdout(Command::new("sh").args(["-c", "command -v bpf-linker"]))?;
    let ldd = cmd::stdout(Command::new("ldd").arg(path.trim())).unwrap_or_default();
    let llvm = ldd
        .lines()
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("libLLVM")))
        .map(str::to_owned);
    Some((version.trim().to_owned(), llvm))
}

/// Checks the installed bpf-linker.
pub fn bpf_linker() -> BpfLinker {
    let Some((version, llvm)) = bpf_linker_info() else {
        return BpfLinker::Missing;
    };
    if !version.contains(BPF_LINKER_VERSION) {
        return BpfLinker::WrongVersion;
    }
    let wanted = format!("libLLVM.so.{LLVM_MAJOR}");
    match llvm {
        Some(lib) if lib.starts_with(&wanted) => BpfLinker::Good,
        _ => BpfLinker::WrongLlvm,
    }
}

fn install_bpf_linker(fresh: bool) -> Result<()> {
    let prefix = format!("/usr/lib/llvm-{LLVM_MAJOR}");
    let mut install = Command::new("cargo");
    install
        .args([
            "install",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
            // Its own Cargo.lock: every machine builds the same linker.
            "--locked",
            "--no-default-features",
        ])
        .args(["--features", &format!("llvm-{LLVM_MAJOR}")])
        .env("LLVM_PREFIX", &prefix)
        .env(format!("LLVM_SYS_{LLVM_MAJOR}1_PREFIX"), &prefix)
        .env_remove("RUSTUP_TOOLCHAIN")
        .stdin(Stdio::null());
    if !fresh {
        install.arg("--force");
    }
    cmd::run(&mut install).with_context(|| {
        format!("building bpf-linker failed: it needs llvm-{LLVM_MAJOR}-dev, libpolly-{LLVM_MAJOR}-dev and libzstd-dev (cargo xtask deps installs them as root)")
    })?;
    match bpf_linker() {
        BpfLinker::Good => Ok(()),
        state => bail!(
            "bpf-linker after install: {state}; is ~/.cargo/bin on PATH, before any other bpf-linker?"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llvm_major_from_verbose_version() {
        let vv =
            "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)\nbinary: rustc\nLLVM version: 22.1.4\n";
        assert_eq!(llvm_major_of(vv), Some(22));
        assert_eq!(llvm_major_of("rustc 1.0\n"), None);
    }
}
