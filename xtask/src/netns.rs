//! Network namespaces and child processes that are removed when their guard
//! is dropped, so a failed or interrupted task leaves nothing behind.

use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

/// A network namespace, deleted (with its interfaces) on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name` (which must start with `fs`).
    ///
    /// # Errors
    /// When `ip netns add` fails (not root, name taken).
    pub fn create(name: &str) -> Result<Netns> {
        if !name.starts_with("fs") {
            bail!("test namespaces must start with `fs`: {name}");
        }
        let out = Command::new("ip")
            .args(["netns", "add", name])
            .stdin(Stdio::null())
            .output()
            .context("cannot run `ip` (install iproute2)")?;
        if !out.status.success() {
            bail!(
                "ip netns add {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Netns {
            name: name.to_owned(),
        })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME` (append the rest of the `ip` command).
    pub fn ip(&self) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name]).stdin(Stdio::null());
        cmd
    }

    /// `ip netns exec NAME PROGRAM`: runs `program` inside the namespace.
    pub fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name])
            .arg(program)
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let ok = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "xtask: warning: could not delete netns {}; run `ip netns del {}`",
                self.name, self.name
            );
        }
    }
}

/// A child process, killed and reaped on drop unless it already exited.
pub struct ChildGuard {
    child: Child,
    name: &'static str,
}

impl ChildGuard {
    /// Starts `cmd` under a guard; `name` is used in messages.
    ///
    /// # Errors
    /// When the process cannot be started.
    pub fn spawn(cmd: &mut Command, name: &'static str) -> Result<ChildGuard> {
        eprintln!("xtask: $ {}", crate::cmd::display(cmd));
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(ChildGuard { child, name })
    }

    /// The process, to wait on it.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The name given at spawn.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            eprintln!("xtask: stopping {}", self.name);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Joins two namespaces with a veth pair of `queues` RX/TX queues per end
/// (`gen_if` in `gen_ns`, `cap_if` in `cap_ns`), documentation addresses,
/// IPv6 off (its ND/MLD frames would add to exact counts), links and
/// loopback up.
///
/// # Errors
/// When an `ip`/`sysctl` command fails.
pub fn veth_pair(
    gen_ns: &Netns,
    cap_ns: &Netns,
    gen_if: &str,
    cap_if: &str,
    queues: u32,
) -> Result<()> {
    for ns in [gen_ns, cap_ns] {
        // No IPv6 on the test link: the kernel would add ND/MLD frames to the count.
        crate::cmd::run(ns.exec("sysctl").args([
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]))?;
    }
    let q = queues.to_string();
    let queues = ["numrxqueues", &q, "numtxqueues", &q];
    crate::cmd::run(
        std::process::Command::new("ip")
            .args(["link", "add", gen_if, "netns", gen_ns.name()])
            .args(queues)
            .args([
                "type",
                "veth",
                "peer",
                "name",
                cap_if,
                "netns",
                cap_ns.name(),
            ])
            .args(queues),
    )?;
    crate::cmd::run(
        gen_ns
            .ip()
            .args(["addr", "add", "192.0.2.1/24", "dev", gen_if]),
    )?;
    crate::cmd::run(
        cap_ns
            .ip()
            .args(["addr", "add", "192.0.2.2/24", "dev", cap_if]),
    )?;
    crate::cmd::run(gen_ns.ip().args(["link", "set", gen_if, "up"]))?;
    crate::cmd::run(cap_ns.ip().args(["link", "set", cap_if, "up"]))?;
    // Loopback too: the capture serves its metrics on 127.0.0.1.
    for ns in [gen_ns, cap_ns] {
        crate::cmd::run(ns.ip().args(["link", "set", "lo", "up"]))?;
    }
    Ok(())
}
