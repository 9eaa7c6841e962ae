//! `flowscope capture` started in a test bed's capture namespace.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::netns::TestBed;

const BIN: &str = env!("CARGO_BIN_EXE_flowscope");

/// `flowscope capture ARGS` in the bed's capture namespace, metrics off.
pub fn in_ns(bed: &TestBed, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    // Metrics off: these tests are about the datapath, and two instances in
    // one namespace would otherwise collide on the metrics port first.
    c.args([
        "netns",
        "exec",
        &bed.cap_ns,
        BIN,
        "capture",
        "--metrics-listen",
        "off",
    ])
    .args(args);
    c
}

/// True while an XDP program is attached to the bed's capture end.
pub fn xdp_attached(bed: &TestBed) -> bool {
    let o = Command::new("ip")
        .args(["-n", &bed.cap_ns, "link", "show", "dev", &bed.cap_if])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).contains("xdp")
}

/// Starts a capture and waits (bounded) until its program is attached.
pub fn start(bed: &TestBed, extra: &[&str]) -> Child {
    let child = in_ns(bed, &[&["--iface", &bed.cap_if][..], extra].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A bound, not a timing: in the emulated VM of the kernel matrix the
    // debug build takes 14 to 18 s to load and attach.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !xdp_attached(bed) {
        assert!(Instant::now() < deadline, "capture did not attach");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}
