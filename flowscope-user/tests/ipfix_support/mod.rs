//! Shared helpers of the IPFIX tests: tracked captures, an nfcapd
//! collector, an in-test TCP collector, an IPFIX message splitter, a
//! pcap writer for tshark and tshark's IP bytes per flow direction.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use flowscope::extract::{FiveTuple, FiveTupleKey};
use flowscope::pcap::PcapReader;
use flowscope::tracker::{EndReason, EventSink, FlowEvent, FlowRecord, FlowTracker, TrackerConfig};

#[path = "../common/temp.rs"]
mod temp;
pub use temp::TempDir;

/// The shared captures.
pub const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// Every ended record of a capture, in end order.
pub fn records(name: &str, config: TrackerConfig) -> Vec<(FlowRecord<FiveTupleKey>, EndReason)> {
    struct Collect(Vec<(FlowRecord<FiveTupleKey>, EndReason)>);
    impl EventSink<FiveTupleKey> for Collect {
        fn event(&mut self, e: FlowEvent<'_, FiveTupleKey>) {
            if let FlowEvent::Ended { flow, reason, .. } = e {
                self.0.push((*flow, reason));
            }
        }
    }
    let f = std::fs::File::open(Path::new(PCAPS).join(name)).expect(name);
    let mut reader = PcapReader::new(f).expect(name);
    let mut tracker = FlowTracker::with_config(FiveTuple::bidirectional(), config);
    let mut sink = Collect(Vec::new());
    while let Some(view) = reader.next_packet().expect(name) {
        tracker.track(view, &mut sink);
    }
    tracker.finish(&mut sink);
    sink.0
}

/// The standard output of `cmd`, which must succeed (`what` names it in
/// the failure message, with its standard error).
pub fn stdout_of(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Bytes queued unread on the UDP socket bound to 127.0.0.1:`port`, from
/// `/proc/net/udp` (`None` when no such socket is listed).
fn udp_rx_queue(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.get(1) != Some(&local.as_str()) {
            return None;
        }
        let (_, rx) = f.get(4)?.split_once(':')?;
        u64::from_str_radix(rx, 16).ok()
    })
}

/// A UDP port free on 127.0.0.1 just now.
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// nfcapd listening on 127.0.0.1:`port`, writing into `dir`; killed (and
/// its directory removed) on drop.
pub struct Nfcapd {
    child: Child,
    /// Its UDP port.
    pub port: u16,
    /// Where it writes.
    pub dir: TempDir,
}

impl Nfcapd {
    /// Starts nfcapd and waits (bounded) until it holds its port.
    pub fn start(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        let port = free_udp_port();
        let child = Command::new("nfcapd")
            .args([
                "-b",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "3600",
                "-w",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nfcapd (Debian package nfdump) must be installed: cargo xtask deps");
        // Owned by the guard at once: its Drop kills and reaps the child
        // on every path, the panic below included.
        let nfcapd = Self { child, port, dir };
        for _ in 0..200 {
            if UdpSocket::bind(("127.0.0.1", port)).is_err() {
                return nfcapd;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nfcapd did not bind 127.0.0.1:{port} within 5 s");
    }

    /// Stops nfcapd (SIGTERM flushes its file) once it has read every
    /// datagram queued on its socket (a SIGTERM during its start-up would
    /// leave them unread), and returns the file it wrote (valid while
    /// `self` lives).
    pub fn stop(&mut self) -> PathBuf {
        for _ in 0..400 {
            if udp_rx_queue(self.port) == Some(0) {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let mut exited = false;
        for _ in 0..400 {
            if self.child.try_wait().expect("wait").is_some() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(exited, "nfcapd did not exit within 10 s of SIGTERM");
        std::fs::read_dir(self.dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("nfcapd.2"))
            })
            .expect("nfcapd wrote no file")
    }
}

impl Drop for Nfcapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Splits a TCP byte stream into IPFIX messages by their length fields;
/// the tail of an incomplete message is left in `buf`.
pub fn split_messages(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 16 {
            return out;
        }
        assert_eq!(
            u16::from_be_bytes([buf[0], buf[1]]),
            10,
            "not an IPFIX message"
        );
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        assert!(len >= 16, "message length {len}");
        if buf.len() < len {
            return out;
        }
        out.push(buf.drain(..len).collect());
    }
}

/// Sequence number and data record count of each message, learning
/// record lengths from the template sets (which must come first).
pub fn count_records(messages: &[Vec<u8>]) -> Vec<(u32, usize)> {
    let be16 = |m: &[u8], at: usize| usize::from(u16::from_be_bytes([m[at], m[at + 1]]));
    let mut lens = std::collections::HashMap::new();
    let mut out = Vec::new();
    for msg in messages {
        let seq = u32::from_be_bytes([msg[8], msg[9], msg[10], msg[11]]);
        let mut at = 16;
        let mut n = 0;
        while at + 4 <= msg.len() {
            let (id, len) = (be16(msg, at), be16(msg, at + 2));
            assert!(
                len >= 4 && at + len <= msg.len(),
                "bad set length {len} at {at}"
            );
            if id == 2 {
                let mut t = at + 4;
                while t < at + len {
                    let (tid, count) = (be16(msg, t), be16(msg, t + 2));
                    t += 4;
                    let mut rec = 0;
                    for _ in 0..count {
                        let (ie, flen) = (be16(msg, t), be16(msg, t + 2));
                        rec += flen;
                        t += if ie & 0x8000 != 0 { 8 } else { 4 };
                    }
                    lens.insert(tid, rec);
                }
            } else if id >= 256 {
                let rec = *lens.get(&id).expect("data set before its template");
                assert_eq!((len - 4) % rec, 0, "set of {len} bytes, records of {rec}");
                n += (len - 4) / rec;
            }
            at += len;
        }
        assert_eq!(at, msg.len(), "sets do not fill the message");
        out.push((seq, n));
    }
    out
}

/// Reads a TCP connection until EOF (or `limit` seconds without data).
pub fn read_all(listener: &TcpListener) -> Vec<u8> {
    let (mut s, _) = listener.accept().expect("accept");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    v
}

/// Writes `messages` as UDP datagrams 127.0.0.1:50000 → 127.0.0.1:4739 in
/// an Ethernet pcap file.
pub fn write_pcap(path: &Path, messages: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, m) in messages.iter().enumerate() {
        let udp_len = 8 + m.len();
        let ip_len = 20 + udp_len;
        let mut f = Vec::with_capacity(14 + ip_len);
        f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
        let sum = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = !((sum & 0xffff) + (sum >> 16)) as u16;
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&50_000u16.to_be_bytes());
        f.extend_from_slice(&4739u16.to_be_bytes());
        f.extend_from_slice(&(udp_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(m);
        out.extend_from_slice(&(i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&f);
    }
    std::fs::write(path, out).expect("write pcap");
}

/// A flow direction as nfdump prints it: source, destination, source port,
/// destination port (`-` for protocols without ports), protocol number.
pub type Direction = (String, String, String, String, String);

/// tshark's IP-layer bytes of `captures` per direction: the sum of each
/// packet's IP length (IPv4 total length, IPv6 40 + payload length) —
/// what RFC 7012's `octetDeltaCount` counts, independently of our tracker.
pub fn tshark_ip_bytes(captures: &[&str]) -> std::collections::BTreeMap<Direction, u64> {
    let mut sums = std::collections::BTreeMap::new();
    for capture in captures {
        let mut tshark = Command::new("tshark");
        tshark
            .args(["-n", "-r"])
            .arg(format!("{PCAPS}/{capture}"))
            .args(["-Y", "ip or ipv6", "-T", "fields", "-E", "occurrence=f"])
            .args(["-E", "separator=|"])
            .args([
                "-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst",
            ])
            .args(["-e", "ip.len", "-e", "ipv6.plen", "-e", "ip.proto"])
            .args(["-e", "tcp.srcport", "-e", "tcp.dstport"])
            .args(["-e", "udp.srcport", "-e", "udp.dstport"])
            .args(["-e", "icmp.type", "-e", "icmpv6.type"]);
        for line in stdout_of(&mut tshark, "tshark").lines() {
            let f: Vec<&str> = line.split('|').collect();
            let num = |s: &str| {
                s.parse::<u64>()
                    .unwrap_or_else(|_| panic!("{capture}: {line}"))
            };
            let (src, dst, len) = if f[0].is_empty() {
                (f[2], f[3], 40 + num(f[5]))
            } else {
                (f[0], f[1], num(f[4]))
            };
            let (proto, sp, dp) = if !f[7].is_empty() {
                ("6", f[7], f[8])
            } else if !f[9].is_empty() {
                ("17", f[9], f[10])
            } else if !f[11].is_empty() {
                ("1", "-", "-")
            } else if !f[12].is_empty() {
                ("58", "-", "-")
            } else {
                (f[6], "-", "-")
            };
            let key = [src, dst, sp, dp, proto].map(str::to_owned);
            let [a, b, c, d, e] = key;
            *sums.entry((a, b, c, d, e)).or_insert(0) += len;
        }
    }
    sums
}
