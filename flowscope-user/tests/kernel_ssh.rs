//! Real OpenSSH sessions (Debian's openssh-server and openssh-client) between
//! the two namespaces of a test bed, captured by dumpcap in the server's
//! namespace into a temporary pcap, read back through the offline path (the
//! library pipeline and `flowscope read --l7`), against tshark's
//! `ssh.protocol`, `ssh.kex.hassh` and `ssh.kex.hasshserver` on the same
//! file. One session on port 22 and two on 2222 (found by content), the last
//! with other algorithms, so its HASSH differs. Logins are refused (no key
//! is authorised): identification lines and KEXINITs come before
//! authentication. Every wait is bounded.

mod common;
mod l7_oracles;
mod pipeline_support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::kernel_tests_enabled;
use common::netns::TestBed;
use common::temp::TempDir;
use flowscope::l7::{L7Record, SshRecord};
use flowscope::pcap::PcapReader;
use l7_oracles::{check_ssh, read_l7, tshark_ssh};
use pipeline_support::Outcome;

const SERVER: &str = "192.0.2.2";
const PORTS: [u16; 2] = [22, 2222];
/// Longest any step may take before the test gives up.
const BOUND: Duration = Duration::from_secs(30);

/// A process started by the test, killed (if still running) on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} did not start: {e} (cargo xtask deps installs it)"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Polls `ready` every 50 ms until it holds; panics after [`BOUND`].
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < BOUND, "{what}: not ready after {BOUND:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn in_ns(ns: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]);
    c
}

/// sshd's privilege separation directory, created for the test when the
/// system has none (Debian's service creates it at boot) and removed after.
struct PrivsepDir(bool);

impl PrivsepDir {
    const PATH: &str = "/run/sshd";

    fn ensure() -> Self {
        let created = !Path::new(Self::PATH).is_dir();
        if created {
            std::fs::create_dir(Self::PATH).expect("create /run/sshd");
        }
        Self(created)
    }
}

impl Drop for PrivsepDir {
    fn drop(&mut self) {
        if self.0 {
            let _ = std::fs::remove_dir(Self::PATH);
        }
    }
}

/// TCP segments with FIN in the (growing) capture at `path`: the frames
/// read whole so far.
fn fins(path: &Path) -> usize {
    let Ok(mut reader) = PcapReader::open(path) else {
        return 0;
    };
    let mut n = 0;
    while let Ok(Some(p)) = reader.next_packet() {
        // Ethernet, IPv4 without options (the bed's addresses), TCP flags.
        if p.frame.get(23) == Some(&6) && p.frame.get(47).is_some_and(|f| f & 1 != 0) {
            n += 1;
        }
    }
    n
}

#[test]
fn openssh_sessions_match_tshark() {
    if !kernel_tests_enabled("openssh_sessions_match_tshark") {
        return;
    }
    let bed = TestBed::new(1);
    let dir = TempDir::new("kernel-ssh");
    let file = |name: &str| dir.path().join(name).display().to_string();
    for (key, kind) in [
        ("host_ed25519", "ed25519"),
        ("host_ecdsa", "ecdsa"),
        ("client", "ed25519"),
    ] {
        run(
            Command::new("ssh-keygen").args(["-q", "-t", kind, "-N", "", "-f", &file(key)]),
            "ssh-keygen",
        );
    }
    let config = format!(
        "ListenAddress {SERVER}\nPort 22\nPort 2222\nHostKey {}\nHostKey {}\nPidFile none\n\
         UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         PubkeyAuthentication yes\nAuthorizedKeysFile none\nLoginGraceTime 20\nLogLevel ERROR\n",
        file("host_ed25519"),
        file("host_ecdsa"),
    );
    std::fs::write(file("sshd_config"), config).expect("sshd_config");
    let _privsep = PrivsepDir::ensure();

    let pcap = file("ssh.pcap");
    let mut dumpcap = Running(
        in_ns(&bed.cap_ns)
            .args(["dumpcap", "-q", "-P", "-i", &bed.cap_if, "-w", &pcap])
            .args(["-f", "tcp port 22 or tcp port 2222"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dumpcap (cargo xtask deps installs tshark)"),
    );
    // dumpcap writes the file header once it captures.
    wait_for("dumpcap", || {
        std::fs::metadata(&pcap).is_ok_and(|m| m.len() >= 24)
    });
    let sshd = Running(
        in_ns(&bed.cap_ns)
            .args(["/usr/sbin/sshd", "-D", "-e", "-f", &file("sshd_config")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd (cargo xtask deps installs openssh-server)"),
    );
    wait_for("sshd listening", || {
        let out = run(
            in_ns(&bed.cap_ns).args(["ss", "-Hltn", "sport = :2222"]),
            "ss",
        );
        !out.stdout.is_empty()
    });

    let sessions: [(u16, &[&str]); 3] = [
        (22, &[]),
        (2222, &[]),
        (
            2222,
            &[
                "-o",
                "KexAlgorithms=curve25519-sha256",
                "-o",
                "Ciphers=aes256-ctr,aes128-ctr",
                "-o",
                "MACs=hmac-sha2-256",
            ],
        ),
    ];
    for (port, extra) in sessions {
        let out = in_ns(&bed.gen_ns)
            .args(["timeout", "30", "ssh", "-F", "/dev/null"])
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .args([
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=10",
            ])
            .args(["-o", "IdentitiesOnly=yes", "-i", &file("client")])
            .args(extra)
            .args(["-p", &port.to_string(), "-l", "nobody", SERVER, "true"])
            .stdin(Stdio::null())
            .output()
            .expect("ssh (cargo xtask deps installs openssh-client)");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("Permission denied"),
            "ssh to port {port} should reach authentication and be refused: {err}"
        );
    }
    drop(sshd);
    // dumpcap may still hold the last packets (the kernel hands them over
    // in blocks): wait until the file has both FINs of every session.
    wait_for("dumpcap writing the last packets", || {
        fins(Path::new(&pcap)) >= 2 * sessions.len()
    });
    run(
        Command::new("kill").args(["-INT", &dumpcap.0.id().to_string()]),
        "kill -INT dumpcap",
    );
    wait_for("dumpcap exit", || {
        dumpcap.0.try_wait().ok().flatten().is_some()
    });

    let path = Path::new(&pcap);
    let ours = Outcome::of(path, false);
    let rows = tshark_ssh(path, &["-d", "tcp.port==2222,ssh"]);
    let records: Vec<&SshRecord> = ours.records(|r| match r {
        L7Record::Ssh(s) => Some(s),
        _ => None,
    });
    // Two lines and two fingerprints per session.
    assert_eq!(check_ssh("OpenSSH", &records, &rows, &PORTS), 12);
    assert_eq!(records.len(), 3, "one record per connection");
    for r in &records {
        for side in [r.client(), r.server()] {
            let side = side.expect("both sides");
            assert_eq!(side.proto_version, Some("2.0"));
            assert!(
                side.software_version
                    .is_some_and(|v| v.starts_with("OpenSSH_")),
                "{side:?}"
            );
        }
    }
    let hassh = |r: &SshRecord| r.client().and_then(|c| c.hassh).map(|f| f.hash.to_owned());
    assert_eq!(hassh(records[0]), hassh(records[1]));
    assert_ne!(hassh(records[1]), hassh(records[2]));
    assert_eq!(
        records[2]
            .algorithms()
            .map(|a| a.cipher.into_owned())
            .as_deref(),
        Some("aes256-ctr")
    );
    // Three flows, each in both orders.
    let protos: Vec<&String> = ours.protos.values().flatten().collect();
    assert_eq!(protos.len(), 6);
    assert!(protos.iter().all(|p| *p == "ssh"), "{protos:?}");

    // The same file through `flowscope read --l7`: EVE ssh records in
    // Suricata's shape, flows with app_proto ssh.
    let eve = read_l7(path, &[]);
    let ssh: Vec<_> = eve.iter().filter(|r| r["event_type"] == "ssh").collect();
    assert_eq!(ssh.len(), 3);
    for r in ssh {
        assert_eq!(r["ssh"]["server"]["proto_version"], "2.0");
        assert!(r["ssh"]["client"]["hassh"]["hash"].is_string());
    }
    let flows: Vec<_> = eve.iter().filter(|r| r["event_type"] == "flow").collect();
    assert!(flows.iter().all(|f| f["app_proto"] == "ssh"), "{flows:?}");
}
