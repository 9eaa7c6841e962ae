//! Live and offline are one runtime: a capture replayed frame by frame
//! through the veth bed into `flowscope capture` gives the flow, L7 and
//! per-flow anomaly records `flowscope read` gives for the same file,
//! timestamps aside (live, the clock is the arrival time).
//!
//! The frames leave the sending namespace unchanged through an AF_PACKET
//! socket, in file order, on one queue: one worker live, `--workers 1`
//! offline, so flow IDs are numbered alike (they are compared through each
//! flow's five-tuple and rank all the same). Live-only records (the XDP
//! anomaly intervals, which carry no flow) are left out. The captures
//! chosen have every frame within the veth's MTU and last less than any
//! idle timeout, so no timer ends a flow on one side only; ICMP flows check
//! that live keys ICMP by type and code as offline does. Every record of
//! both runs validates against Suricata's EVE schema, and every live one
//! names the capture interface (`in_iface`), which offline records lack.
//! The L7 parsers count alike in both (`l7` of `--summary-json`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::capture::start;
use common::frames::{cat, eth, ipv4, pcap, udp};
use common::{kernel_tests_enabled, netns::TestBed};
use flowscope::pcap::PcapReader;
use serde_json::Value;

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");
const BIN: &str = env!("CARGO_BIN_EXE_flowscope");

/// The frames of a capture.
fn frames(name: &str) -> Vec<Vec<u8>> {
    let mut reader = PcapReader::open(Path::new(PCAPS).join(name)).expect("open");
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet().expect("read") {
        assert_eq!(
            p.frame.len() as u32,
            p.orig_len,
            "{name}: whole frames only"
        );
        out.push(p.frame.to_vec());
    }
    out
}

/// Sends `frames` out of the bed's sending end, in order, unchanged.
fn send(bed: &TestBed, frames: Vec<Vec<u8>>) {
    let ifname = bed.gen_if.clone();
    bed.in_gen_ns(move || {
        // The veth peer runs the program on the sending CPU: one CPU, as
        // one NIC queue's frames, keeps a datagram's fragments on one
        // per-CPU fragment table.
        common::xdp::pinned_cpu();
        let name = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: if_nametoindex reads a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert!(ifindex > 0, "sending interface");
        // SAFETY: plain socket(2); the fd is closed below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        assert!(fd >= 0, "AF_PACKET socket");
        // SAFETY: a zeroed sockaddr_ll with family and ifindex set, passed
        // with its size for each send.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        for (i, f) in frames.iter().enumerate() {
            // SAFETY: sends `f` (valid for its length) to `addr`.
            let n = unsafe {
                libc::sendto(
                    fd,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&raw const addr).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert_eq!(n, f.len() as isize, "frame {i} sent whole");
            // A debug build's worker is slow: keep the socket's ring from
            // filling (bounded pacing, not a timing assertion).
            if i % 64 == 63 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // SAFETY: closes the socket opened above.
        unsafe { libc::close(fd) };
    })
    .join()
    .expect("sender");
}

/// Records by flow, as [`by_flow`] groups them.
type Flows = BTreeMap<String, Vec<String>>;

/// Records by flow (five-tuple and rank among the flows of that
/// five-tuple), each without its flow IDs, interface and times, in output
/// order.
fn by_flow(text: &str) -> Flows {
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .filter(|r: &Value| r.get("flow_id").is_some())
        .collect();
    let mut rank: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let tuple = |r: &Value| {
        format!(
            "{} {}:{} {}:{}",
            r["proto"], r["src_ip"], r["src_port"], r["dest_ip"], r["dest_port"]
        ) + &format!(" {}/{}", r["icmp_type"], r["icmp_code"])
    };
    for r in &records {
        let ids = rank.entry(tuple(r)).or_default();
        let id = r["flow_id"].as_u64().unwrap();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut out: Flows = BTreeMap::new();
    for mut r in records {
        let t = tuple(&r);
        let id = r["flow_id"].as_u64().unwrap();
        let n = rank[&t].iter().position(|&x| x == id).unwrap();
        if let Some(o) = r.as_object_mut() {
            o.remove("flow_id");
            o.remove("timestamp");
            o.remove("in_iface");
        }
        if let Some(f) = r.get_mut("flow").and_then(Value::as_object_mut) {
            for k in ["start", "end", "age"] {
                f.remove(k);
            }
        }
        out.entry(format!("{t} #{n}"))
            .or_default()
            .push(r.to_string());
    }
    out
}

fn replay(name: &str) {
    let file = PathBuf::from(PCAPS).join(name);
    let (live, offline, _) = live_and_offline(name, frames(name), &file, &[]);
    assert_eq!(
        live.keys().collect::<Vec<_>>(),
        offline.keys().collect::<Vec<_>>(),
        "{name}: the same flows"
    );
    for (flow, records) in &offline {
        assert_eq!(&live[flow], records, "{name}: the records of {flow}");
    }
    let l7 = offline
        .values()
        .flatten()
        .filter(|r| !r.contains("\"event_type\":\"flow\""))
        .count();
    eprintln!(
        "{name}: {} flows, {l7} L7 and anomaly records alike",
        offline.len()
    );
}

/// Sends `frames` through the bed into `capture` (with `live_only`), reads
/// `file` (the same frames) with `read --workers 1`, checks both runs'
/// records against Suricata's schema, and returns the live and offline
/// records, as [`by_flow`] groups them, and the live run's summary.
fn live_and_offline(
    name: &str,
    frames: Vec<Vec<u8>>,
    file: &Path,
    live_only: &[&str],
) -> (Flows, Flows, Value) {
    let bed = TestBed::new(1);
    let dir = std::env::temp_dir().join(format!("{}.replay", bed.cap_ns));
    std::fs::create_dir_all(&dir).unwrap();
    let live_eve = dir.join("live.json");
    let summary = dir.join("summary.json");
    let live_out = format!("eve:{}", live_eve.display());
    let child = start(
        &bed,
        &[
            &["--plain", "--output", &live_out, "--summary-json"][..],
            &[summary.to_str().unwrap()],
            live_only,
        ]
        .concat(),
    );
    let sent = frames.len() as u64;
    send(&bed, frames);
    // Let the last frames through the veth before the program detaches
    // (what already sits in the socket is drained at the stop).
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{name}: capture: {err}");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(
        s["rx_packets"], sent,
        "{name}: every frame reached a worker"
    );

    let offline_eve = dir.join("read.json");
    let offline_summary = dir.join("read-summary.json");
    let o = Command::new(BIN)
        .args(["read", "--workers", "1", "-o"])
        .arg(format!("eve:{}", offline_eve.display()))
        .arg("--summary-json")
        .arg(&offline_summary)
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{name}: read");
    let l7_lines = |text: &str| -> Vec<String> {
        (text.lines().map(str::trim))
            .filter(|l| l.starts_with("l7 "))
            .map(str::to_owned)
            .collect()
    };
    let offline_lines = l7_lines(&String::from_utf8_lossy(&o.stderr));
    assert!(!offline_lines.is_empty(), "{name}: no l7 line");
    assert_eq!(
        l7_lines(&err),
        offline_lines,
        "{name}: the summaries' l7 lines"
    );
    let offline_summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&offline_summary).unwrap()).unwrap();
    assert!(s["l7"]["tcp"]["flows"].is_object(), "{name}: {s}");
    assert_eq!(
        s["l7"], offline_summary["l7"],
        "{name}: the parsers' counts"
    );
    // One run of the validator for both (it starts slowly in an emulated VM).
    common::eve_schema::assert_valid(
        &format!("{name} live and offline"),
        &[live_eve.clone(), offline_eve.clone()],
    );
    for r in common::eve_schema::records(&live_eve) {
        if r.get("flow_id").is_some() {
            assert_eq!(r["in_iface"], bed.cap_if.as_str(), "{name}: {r}");
        }
    }
    let live = by_flow(&std::fs::read_to_string(&live_eve).unwrap());
    let offline = by_flow(&std::fs::read_to_string(&offline_eve).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!offline.is_empty());
    (live, offline, s)
}

#[test]
fn http_methods_live_as_offline() {
    if kernel_tests_enabled("http_methods_live_as_offline") {
        replay("zeek__http_methods.pcap");
    }
}

#[test]
fn tls_live_as_offline() {
    if kernel_tests_enabled("tls_live_as_offline") {
        replay("zeek__tls_tls-conn-with-extensions.pcap");
    }
}

#[test]
fn dns_and_icmp_live_as_offline() {
    if kernel_tests_enabled("dns_and_icmp_live_as_offline") {
        replay("ws__dns+icmp.pcapng");
    }
}

/// DNS exchanges of one address pair (192.0.2.1 ↔ 198.51.100.2) from
/// [`EXCHANGES`] client ports: a query, then an answer whose TXT record
/// (3 000 bytes) leaves in three IPv4 fragments, in order, each datagram
/// with its own identification.
const EXCHANGES: u16 = 24;

fn fragmented_dns() -> Vec<Vec<u8>> {
    let (client, server) = ([192, 0, 2, 1], [198, 51, 100, 2]);
    let name: &[u8] = b"\x02fs\x07example\x00";
    let question = cat(&[name, &16u16.to_be_bytes(), &1u16.to_be_bytes()]);
    let mut frames = Vec::new();
    for n in 0..EXCHANGES {
        let id = 0x4000 + n;
        let port = 40_000 + n * 7;
        let header = |flags: u16, answers: u16| {
            cat(&[
                &id.to_be_bytes(),
                &flags.to_be_bytes(),
                &1u16.to_be_bytes(),
                &answers.to_be_bytes(),
                &[0; 4],
            ])
        };
        let query = cat(&[&header(0x0100, 0), &question]);
        frames.push(cat(&[
            &eth(&[], 0x0800),
            &with_id(ipv4(client, server, 17, &[], 8 + query.len(), 0), 2 * n),
            &udp(port, 53, query.len()),
            &query,
        ]));
        // TXT rdata: twelve strings of 250 bytes.
        let text: Vec<u8> = (0..12u8)
            .flat_map(|i| std::iter::once(250).chain(std::iter::repeat_n(b'a' + i, 250)))
            .collect();
        let answer_rr = cat(&[
            &[0xc0, 12],
            &16u16.to_be_bytes(),
            &1u16.to_be_bytes(),
            &300u32.to_be_bytes(),
            &(text.len() as u16).to_be_bytes(),
            &text,
        ]);
        let answer = cat(&[&header(0x8180, 1), &question, &answer_rr]);
        let datagram = cat(&[&udp(53, port, answer.len()), &answer]);
        for (i, piece) in datagram.chunks(1480).enumerate() {
            let more = if (i + 1) * 1480 < datagram.len() {
                0x2000
            } else {
                0
            };
            let frag = more | (i * 1480 / 8) as u16;
            frames.push(cat(&[
                &eth(&[], 0x0800),
                &with_id(ipv4(server, client, 17, &[], piece.len(), frag), 2 * n + 1),
                piece,
            ]));
        }
    }
    frames
}

/// An IPv4 header with identification `id`.
fn with_id(mut header: Vec<u8>, id: u16) -> Vec<u8> {
    header[4..6].copy_from_slice(&(0x1000 + id).to_be_bytes());
    header
}

/// Two sockets on one queue: the XDP program spreads the flows of one
/// address pair over both by their five-tuples, and sends the later
/// fragments of each answer where its first went (the fragment table), so
/// every answer is reassembled and parsed live as offline.
#[test]
fn fragments_follow_their_first_over_two_sockets() {
    if !kernel_tests_enabled("fragments_follow_their_first_over_two_sockets") {
        return;
    }
    let frames = fragmented_dns();
    assert!(frames.iter().all(|f| f.len() <= 1514), "within the MTU");
    let file = std::env::temp_dir().join(format!("fs-fragmented-dns-{}.pcap", std::process::id()));
    std::fs::write(&file, pcap(&frames, 1000)).unwrap();
    let name = "fragmented DNS, one address pair";
    let (live, offline, summary) =
        live_and_offline(name, frames, &file, &["--sockets-per-queue", "2"]);
    std::fs::remove_file(&file).unwrap();
    let answers = |records: &Flows| {
        records
            .values()
            .flatten()
            .filter(|r| r.contains("\"type\":\"answer\""))
            .count()
    };
    assert_eq!(
        answers(&offline),
        usize::from(EXCHANGES),
        "every answer reassembled offline"
    );
    assert_eq!(live, offline, "{name}: live records differ from read's");
    let flows: Vec<u64> = summary["sockets"]
        .as_array()
        .expect("sockets")
        .iter()
        .map(|w| w["flows_created"].as_u64().unwrap())
        .collect();
    assert_eq!(
        summary["xdp"]["fragment_unsteered"]["packets"], 0,
        "every later fragment found its first in the table"
    );
    assert_eq!(flows.len(), 2, "two sockets");
    assert!(
        flows.iter().all(|&n| n > 0),
        "the flows of one address pair spread over both sockets: {flows:?}"
    );
}
