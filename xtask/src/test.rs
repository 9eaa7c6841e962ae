//! `cargo xtask test`: every test tier, on a matrix of kernels. Builds the
//! eBPF object, the generator and the tests, makes a Debian package of the
//! tests' own flowscope binary ([`crate::package`]: no release build), runs
//! `cargo test --workspace` with `FLOWSCOPE_EBPF_OBJ`, `FLOWSCOPE_FSGEN`,
//! `FLOWSCOPE_DEB`, `FLOWSCOPE_PYTHON` and, as root, `FLOWSCOPE_KERNEL_TESTS=1` on this
//! machine's kernel; then, as root, the kernel tests again on Debian's 6.1
//! in a VM ([`crate::vm`]). The last lines give the counts per kernel and in
//! all.

use std::ffi::OsStr;

use anyhow::{Context, Result, bail};

use crate::libtest::Tally;
use crate::{build, cmd, deps, package, vm};

/// Options of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// A kernel to test on, repeatable: `host` (this machine's: every tier,
    /// then the fuzz smoke run), `6.1` (Debian's 6.1 LTS in a VM: the kernel
    /// tests) or the path of a bzImage whose modules are in
    /// `../lib/modules/RELEASE` beside it (in a VM). Default: `host` and, as
    /// root, `6.1`.
    #[arg(long = "kernel", value_name = "host|6.1|PATH", value_parser = parse_kernel)]
    kernels: Vec<Kernel>,
    /// Extra arguments for `cargo test` on this machine's kernel (after `--`).
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

/// A kernel of the matrix.
#[derive(Clone, Debug)]
enum Kernel {
    /// The one this machine runs.
    Host,
    /// One booted in a VM.
    Vm(vm::Kernel),
}

fn parse_kernel(s: &str) -> Result<Kernel, String> {
    match s {
        "host" => Ok(Kernel::Host),
        "6.1" => Ok(Kernel::Vm(vm::Kernel::Debian61)),
        path if std::path::Path::new(path).is_file() => std::path::absolute(path)
            .map(|p| Kernel::Vm(vm::Kernel::Image(p)))
            .map_err(|e| format!("{path}: {e}")),
        other => Err(format!(
            "`{other}` is not `host`, `6.1` or a kernel image file"
        )),
    }
}

/// Runs `cargo xtask test`.
///
/// # Errors
/// When the toolchain is incomplete, a build fails or a test fails.
pub fn run(args: &Args) -> Result<()> {
    deps::ensure(deps::Verbosity::Quiet)?;
    let obj = build::build_ebpf()?;
    let root = cmd::is_root();
    let host = args.kernels.is_empty() || args.kernels.iter().any(|k| matches!(k, Kernel::Host));
    let mut vms: Vec<vm::Kernel> = args
        .kernels
        .iter()
        .filter_map(|k| match k {
            Kernel::Vm(k) => Some(k.clone()),
            Kernel::Host => None,
        })
        .collect();
    if !root {
        if !vms.is_empty() {
            bail!(
                "the kernel tests in a VM need root (they load XDP programs; the VM runs on \
                 this machine's root file system): run `sudo cargo xtask test`"
            );
        }
        eprintln!(
            "\n################################################################\n\
             # NOT ROOT: the kernel tests (XDP, AF_XDP, veth/netns) and    #\n\
             # the kernel matrix (Debian 6.1 in a VM) are SKIPPED.         #\n\
             # Run `sudo cargo xtask test` to run every tier.              #\n\
             ################################################################\n"
        );
    } else if args.kernels.is_empty() {
        vms.push(vm::Kernel::Debian61);
    }

    // Built once: what the host tier runs, what the package holds, what
    // the VMs run.
    let built = build::test_binaries(&obj)?;
    let bin = |name: &str| {
        (built.bins.iter().find(|b| b.name == name))
            .with_context(|| format!("the test build made no {name} binary"))
    };
    let flowscope = bin("flowscope")?;
    let fsgen = &bin("fsgen")?.exe;
    let deb = package::make(
        &flowscope.exe,
        package::Kind::Test,
        &cmd::target_dir().join("package/test"),
    )?;
    let kernel_tests = ("FLOWSCOPE_KERNEL_TESTS", OsStr::new("1"));
    let fsgen_env = ("FLOWSCOPE_FSGEN", fsgen.as_os_str());
    let deb_env = ("FLOWSCOPE_DEB", deb.as_os_str());
    // The EVE schema test's interpreter, by its real path (a VM guest's
    // PATH is the system's).
    let python = deps::python()?;
    let python_env = ("FLOWSCOPE_PYTHON", python.as_os_str());
    // (kernel release, where it ran, counts)
    let mut counts: Vec<(String, &str, Tally)> = Vec::new();
    let mut host_ok = true;
    if host {
        let mut test = build::workspace_cargo(&obj, "test");
        test.env(fsgen_env.0, fsgen_env.1)
            .env(deb_env.0, deb_env.1)
            .env(python_env.0, python_env.1)
            .args(&args.cargo_args);
        if root {
            test.env(kernel_tests.0, kernel_tests.1);
        }
        let (tally, ok) = run_counting(&mut test)?;
        host_ok = ok;
        let place = if root {
            "this machine"
        } else {
            "this machine, kernel tests SKIPPED"
        };
        counts.push((host_release(), place, tally));
    }
    if !vms.is_empty() {
        for kernel in &vms {
            let outcome = vm::run(
                kernel,
                &built.tests,
                &[fsgen_env, deb_env, python_env, kernel_tests],
            );
            counts.push((outcome.release, "VM", outcome.tally));
        }
    }
    let fuzz = if !host {
        Ok(())
    } else if std::env::var_os("FLOWSCOPE_SKIP_FUZZ").is_some_and(|v| v == "1") {
        eprintln!("xtask: fuzz smoke run SKIPPED (FLOWSCOPE_SKIP_FUZZ=1)");
        Ok(())
    } else {
        crate::fuzz::fuzz(&crate::fuzz::targets()?, crate::fuzz::SMOKE_SECONDS)
    };

    // The last lines say what ran, whatever the fuzz step printed before.
    let mut total = Tally::default();
    for (release, _, tally) in &counts {
        for line in &tally.skipped {
            println!("[{release}] {line}");
        }
        total.add(tally);
    }
    for (release, place, tally) in &counts {
        println!(
            "xtask test: kernel {release} ({place}): {} passed, {} failed, {} skipped",
            tally.passed,
            tally.failed,
            tally.skipped.len()
        );
    }
    if !root && host_ok && total.failed == 0 {
        println!("xtask test: unit and pcap tests passed; kernel tests were SKIPPED (not root)");
    }
    println!(
        "xtask test: {} passed, {} failed, {} skipped",
        total.passed,
        total.failed,
        total.skipped.len()
    );
    fuzz?;
    if !host_ok {
        bail!("cargo test failed: {} test(s) failed", counts[0].2.failed);
    }
    if total.failed > 0 {
        bail!("{} test(s) failed", total.failed);
    }
    Ok(())
}

/// This machine's kernel release (`uname -r`).
fn host_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".to_owned(), |r| r.trim().to_owned())
}

/// Runs `cargo test`, echoing its output, and adds up the `test result:`
/// lines of every test binary and keeps the `*** SKIPPED` lines tests
/// wrote; also says whether cargo succeeded.
fn run_counting(test: &mut std::process::Command) -> Result<(Tally, bool)> {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: $ {}", cmd::display(test));
    let mut child = test.stdout(std::process::Stdio::piped()).spawn()?;
    let mut tally = Tally::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            tally.add_line(&line);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        eprintln!("xtask: cargo test failed ({status})");
    }
    Ok((tally, status.success()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn kernel_choices() {
        assert!(matches!(parse_kernel("host"), Ok(Kernel::Host)));
        assert!(matches!(
            parse_kernel("6.1"),
            Ok(Kernel::Vm(vm::Kernel::Debian61))
        ));
        let me = std::env::current_exe().unwrap();
        match parse_kernel(me.to_str().unwrap()) {
            Ok(Kernel::Vm(vm::Kernel::Image(p))) => assert_eq!(p, PathBuf::from(&me)),
            _ => panic!("a file is a kernel image path"),
        }
        assert!(parse_kernel("5.15").is_err());
    }
}
