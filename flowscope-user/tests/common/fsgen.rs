//! Running the `fsgen` generator inside a test bed's sending namespace.

use std::{net::IpAddr, process::Command};

use super::netns::TestBed;

/// One line of fsgen's manifest: what was sent for one flow.
#[derive(Debug, serde::Deserialize)]
pub struct ManifestFlow {
    /// IP protocol.
    pub proto: u8,
    /// Side A (sends first).
    pub a: IpAddr,
    /// A's port.
    pub a_port: u16,
    /// Side B.
    pub b: IpAddr,
    /// B's port.
    pub b_port: u16,
    /// TX queue (and so RX queue of the capturing end).
    pub queue: u32,
    /// Frames A→B.
    pub frames_ab: u64,
    /// Frames B→A.
    pub frames_ba: u64,
    /// Bytes A→B.
    pub bytes_ab: u64,
    /// Bytes B→A.
    pub bytes_ba: u64,
}

/// `fsgen` in the bed's sending namespace: `frames` frames of `flows`
/// flows, both directions, over `queues` TX queues; add options and run it.
pub fn command(bed: &TestBed, frames: u64, flows: u32, queues: u32) -> Command {
    let fsgen = std::env::var("FLOWSCOPE_FSGEN")
        .expect("FLOWSCOPE_FSGEN: path of the fsgen binary (cargo xtask test sets it)");
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &bed.gen_ns, &fsgen, "--iface", &bed.gen_if])
        .args([
            "--frames",
            &frames.to_string(),
            "--flows",
            &flows.to_string(),
        ])
        .args(["--both-directions", "--queues", &queues.to_string()]);
    c
}

/// Runs a generator command to its end; panics with its error output if it
/// failed.
pub fn run(mut c: Command) -> std::process::Output {
    let out = c.output().expect("run fsgen");
    assert!(
        out.status.success(),
        "fsgen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Sends `frames` frames of `flows` flows, both directions, over `queues`
/// queues (IPv4 and IPv6), at most `rate` frames per second (debug builds
/// of the full pipeline are slow; the tests check accounting, not speed),
/// and returns the manifest.
pub fn send(bed: &TestBed, frames: u64, flows: u32, queues: u32, rate: u64) -> Vec<ManifestFlow> {
    let manifest = std::env::temp_dir().join(format!("{}.manifest", bed.gen_ns));
    let mut c = command(bed, frames, flows, queues);
    c.args([
        "--ipv6",
        "--rate",
        &rate.to_string(),
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    let out = run(c);
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("fsgen prints one JSON line");
    assert_eq!(report["sent"], frames);
    let flows: Vec<ManifestFlow> = std::fs::read_to_string(&manifest)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let _ = std::fs::remove_file(&manifest);
    flows
}
