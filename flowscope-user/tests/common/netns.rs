//! Network namespaces and veth pairs that the tests create and always remove.
//!
//! Names start with `fs`; addresses come from the documentation ranges only.

use std::{
    fs::File,
    os::fd::AsRawFd,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip(8) from iproute2");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces joined by a veth pair with `queues` RX/TX queues per end:
/// `gen`/`gen_if` sends, `cap`/`cap_if` captures. Removed on drop.
pub struct TestBed {
    /// Namespace of the sending end.
    pub gen_ns: String,
    /// Namespace of the capturing end.
    pub cap_ns: String,
    /// Sending interface.
    pub gen_if: String,
    /// Capturing interface.
    pub cap_if: String,
}

impl TestBed {
    /// Creates the pair; IPv6 is disabled on both ends so no stray
    /// neighbour-discovery frame reaches the counters.
    pub fn new(queues: u32) -> Self {
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let bed = Self {
            gen_ns: format!("fsg{id}"),
            cap_ns: format!("fsc{id}"),
            gen_if: format!("fsg{id}"),
            cap_if: format!("fsc{id}"),
        };
        ip(&["netns", "add", &bed.gen_ns]);
        ip(&["netns", "add", &bed.cap_ns]);
        let q = queues.to_string();
        ip(&[
            "link",
            "add",
            &bed.gen_if,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            &bed.cap_if,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
        ]);
        for (ns, ifc, addr) in [
            (&bed.gen_ns, &bed.gen_if, "192.0.2.1/24"),
            (&bed.cap_ns, &bed.cap_if, "192.0.2.2/24"),
        ] {
            ip(&["link", "set", ifc, "netns", ns]);
            for key in ["all", "default"] {
                let out = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        ns,
                        "sysctl",
                        "-qw",
                        &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
                    ])
                    .output()
                    .expect("sysctl");
                assert!(out.status.success(), "disable IPv6 in {ns}");
            }
            ip(&["-n", ns, "addr", "add", addr, "dev", ifc]);
            ip(&["-n", ns, "link", "set", ifc, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        bed
    }

    /// Runs `f` on a new thread that entered the capture namespace.
    pub fn in_cap_ns<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        in_ns(&self.cap_ns, f)
    }

    /// Runs `f` on a new thread that entered the sending namespace.
    pub fn in_gen_ns<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        in_ns(&self.gen_ns, f)
    }
}

/// Runs `f` on a new thread that entered namespace `ns`.
fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let ns = File::open(&path).expect("open netns");
        // SAFETY: setns on a valid namespace fd affects only this thread.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}");
        f()
    })
}

impl Drop for TestBed {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veth end inside it, and its peer.
        for ns in [&self.gen_ns, &self.cap_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
