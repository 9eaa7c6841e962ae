//! The QEMU virtual machine, started through virtme-ng in a process group of
//! its own so that a time limit, an error or Ctrl-C stops all of it (vng,
//! virtme-run and qemu).

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result};

use crate::cmd;

/// Process group of the running VM (0: none), for the Ctrl-C handler.
static GROUP: AtomicI32 = AtomicI32::new(0);

/// A running VM; killed (the whole process group) on drop unless it ended.
pub struct Machine {
    child: Child,
}

impl Machine {
    /// Boots `vmlinuz` with this machine's root file system (read-only, with
    /// a writable overlay) and `results` shared read-write, and runs
    /// `sh script` as root inside; the console goes to `console`.
    ///
    /// # Errors
    /// When virtme-ng cannot be started.
    pub fn start(
        vng: &Path,
        vmlinuz: &Path,
        results: &Path,
        script: &Path,
        console: &Path,
    ) -> Result<Machine> {
        interrupt_stops_the_vm()?;
        let log =
            File::create(console).with_context(|| format!("creating {}", console.display()))?;
        let mut c = Command::new(vng);
        c.arg("--run")
            .arg(vmlinuz)
            // No hardware virtualisation on this machine kind: software
            // emulation (TCG), 2 virtual CPUs, verbose so the console log
            // holds the kernel's messages.
            .args([
                "--disable-kvm",
                "--cpus",
                "2",
                "--memory",
                "2G",
                "--verbose",
            ])
            .arg("--rwdir")
            .arg(results)
            .arg("--exec")
            .arg(format!("sh {}", script.display()))
            // virtme-ng's own messages reach the log even if it is killed.
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        eprintln!("xtask: $ {}", cmd::display(&c));
        let child = c
            .spawn()
            .with_context(|| format!("cannot start {}", vng.display()))?;
        let pid = i32::try_from(child.id()).context("pid out of range")?;
        GROUP.store(pid, Ordering::SeqCst);
        Ok(Machine { child })
    }

    /// Whether the VM has stopped.
    ///
    /// # Errors
    /// When waiting on the process fails.
    pub fn stopped(&mut self) -> Result<bool> {
        Ok(self.child.try_wait()?.is_some())
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            eprintln!("xtask: stopping the VM");
            kill_group();
            let _ = self.child.wait();
        }
        GROUP.store(0, Ordering::SeqCst);
    }
}

/// SIGKILL to the VM's process group, if one runs.
fn kill_group() {
    let group = GROUP.load(Ordering::SeqCst);
    if group > 0 {
        // SAFETY: kill(2) with a negative pid signals that process group;
        // the group is the VM's, started by this process.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
}

/// Ctrl-C (or SIGTERM) reaches only the terminal's foreground group, which
/// the VM is not in: stop the VM, then end as the signal would have.
fn interrupt_stops_the_vm() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = ctrlc::set_handler(|| {
            eprintln!("xtask: interrupted; stopping the VM");
            kill_group();
            std::process::exit(130);
        });
    });
    result.context("installing the Ctrl-C handler")
}
