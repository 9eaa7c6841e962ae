//! `cargo xtask doctor`: what this machine offers (toolchain, kernel, BPF,
//! the datapath's optional kernel features as `flowscope probe` finds them,
//! network namespaces) and, for each problem, what to do.

use std::process::Command;

use anyhow::{Result, bail};

use crate::{build, cmd, deps};

struct Report {
    problems: usize,
}

impl Report {
    fn ok(&self, what: &str, detail: &str) {
        println!("ok      {what}: {detail}");
    }

    fn info(&self, what: &str, detail: &str) {
        println!("info    {what}: {detail}");
    }

    fn problem(&mut self, what: &str, detail: &str, hint: &str) {
        self.problems += 1;
        println!("PROBLEM {what}: {detail}\n        hint: {hint}");
    }
}

/// Prints the report; fails when something needed is missing.
///
/// # Errors
/// When at least one problem was found.
pub fn run() -> Result<()> {
    let mut r = Report { problems: 0 };
    let first_line =
        |c: &mut Command| cmd::stdout(c).map(|s| s.lines().next().unwrap_or("").to_owned());

    match first_line(Command::new("rustc").arg("-V")) {
        Some(v) => r.ok("rustc", &v),
        None => r.problem(
            "rustc",
            "not found",
            "install Rust with rustup (https://rustup.rs)",
        ),
    }
    match first_line(Command::new("cargo").arg("-V")) {
        Some(v) => r.ok("cargo", &v),
        None => r.problem("cargo", "not found", "install Rust with rustup"),
    }
    match deps::nightly_version() {
        Some(vv) => {
            let release = vv
                .lines()
                .find_map(|l| l.strip_prefix("release: "))
                .unwrap_or("?");
            match deps::llvm_major_of(&vv) {
                Some(m) if m == deps::LLVM_MAJOR => {
                    r.ok("nightly", &format!("{release}, LLVM {m}"))
                }
                m => r.problem(
                    "nightly",
                    &format!("{release}, LLVM {m:?}"),
                    &format!(
                        "bpf-linker is built for LLVM {}: use a nightly with that LLVM",
                        deps::LLVM_MAJOR
                    ),
                ),
            }
        }
        None => r.problem(
            "nightly",
            "not installed",
            "rustup toolchain install nightly; then cargo xtask deps",
        ),
    }
    match deps::bpf_linker_info() {
        Some((version, llvm)) => {
            let llvm = llvm.unwrap_or_else(|| "libLLVM not found by ldd".into());
            let detail = format!("{version}, {llvm}");
            if deps::bpf_linker() == deps::BpfLinker::Good {
                r.ok("bpf-linker", &detail);
            } else {
                r.problem(
                    "bpf-linker",
                    &detail,
                    "cargo xtask deps (rebuilds it against LLVM 22)",
                );
            }
        }
        None => r.problem("bpf-linker", "not found", "cargo xtask deps"),
    }
    match deps::missing_packages() {
        Ok(m) if m.is_empty() => r.ok("Debian packages", "all present"),
        Ok(m) => r.problem(
            "Debian packages",
            &format!("missing {}", m.join(" ")),
            "sudo cargo xtask deps",
        ),
        Err(e) => r.problem(
            "Debian packages",
            &format!("{e:#}"),
            "install them by hand (README.md)",
        ),
    }
    match deps::vng() {
        Ok(vng) => r.ok(
            "virtme-ng",
            &format!("{} (boots the kernel matrix's VM)", vng.display()),
        ),
        Err(e) => r.problem("virtme-ng", &format!("{e:#}"), "sudo cargo xtask deps"),
    }
    match first_line(Command::new("uname").arg("-r")) {
        Some(v) => r.ok("kernel", &v),
        None => r.problem("kernel", "uname -r failed", "is this Linux?"),
    }
    let root = cmd::is_root();
    if root {
        r.ok("privileges", "root");
    } else {
        r.problem(
            "privileges",
            "not root: BPF, XDP, AF_XDP and netns checks below will fail",
            "run capture, demo and the kernel tests as root (sudo)",
        );
    }
    check_bpf(&mut r);
    check_features(&mut r, root);
    check_netns(&mut r, root);

    if r.problems > 0 {
        bail!("{} problem(s) found", r.problems);
    }
    println!("everything needed is present");
    Ok(())
}

fn check_bpf(r: &mut Report) {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf"))
    {
        r.ok("bpffs", "mounted at /sys/fs/bpf");
    } else {
        r.info(
            "bpffs",
            "not mounted at /sys/fs/bpf (only needed to pin maps; `mount -t bpf bpf /sys/fs/bpf` mounts it)",
        );
    }
    match std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled") {
        Ok(v) => r.info(
            "unprivileged_bpf_disabled",
            &format!(
                "{} (0: any user may use BPF; 1, 2: only CAP_BPF/root)",
                v.trim()
            ),
        ),
        Err(e) => r.problem(
            "BPF",
            &format!("/proc/sys/kernel/unprivileged_bpf_disabled: {e}"),
            "the kernel lacks CONFIG_BPF_SYSCALL",
        ),
    }
    if std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        r.ok("BTF", "/sys/kernel/btf/vmlinux present");
    } else {
        r.info("BTF", "no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF off); the XDP program does not need it");
    }
}

/// Builds the `flowscope` binary and runs `flowscope probe`: the datapath's
/// optional kernel features, one line each, as the capture will find them.
fn check_features(r: &mut Report, root: bool) {
    let bin = build::build_ebpf()
        .and_then(|obj| build::build_bins(&obj, false, &[("flowscope-user", "flowscope")]));
    let out = match bin {
        Ok(dir) => cmd::stdout(Command::new(dir.join("flowscope")).arg("probe")),
        Err(e) => {
            r.problem(
                "kernel features",
                &format!("cannot build flowscope to probe them: {e:#}"),
                "cargo xtask deps",
            );
            return;
        }
    };
    let Some(out) = out else {
        r.problem(
            "kernel features",
            "`flowscope probe` failed",
            "see its output above",
        );
        return;
    };
    for line in out.lines() {
        let (what, answer) = line.split_once(": ").unwrap_or((line, ""));
        if answer == "yes" {
            r.ok(what, answer);
        } else if root {
            r.info(what, answer);
        } else {
            r.problem(
                what,
                answer,
                "the probes need root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)",
            );
        }
    }
}

fn check_netns(r: &mut Report, root: bool) {
    if cmd::stdout(Command::new("ip").args(["netns", "list"])).is_none() {
        r.problem(
            "netns",
            "`ip netns list` failed",
            "install iproute2 (cargo xtask deps)",
        );
        return;
    }
    if !root {
        r.info(
            "netns + veth",
            "`ip netns` works; creating a test netns needs root",
        );
        return;
    }
    match crate::netns::Netns::create(&format!("fsdoctor-{}", std::process::id())) {
        Ok(ns) => {
            let veth = cmd::stdout(ns.ip().args([
                "link", "add", "fsdoc0", "type", "veth", "peer", "name", "fsdoc1",
            ]));
            match veth {
                Some(_) => r.ok(
                    "netns + veth",
                    "created a netns with a veth pair (removed again)",
                ),
                None => r.problem(
                    "veth",
                    "cannot create a veth pair in a netns",
                    "load the veth module (modprobe veth)",
                ),
            }
        }
        Err(e) => r.problem("netns", &format!("{e:#}"), "needs root and CONFIG_NET_NS"),
    }
}
