//! Frames of chosen flows to pcapng (`--write-pcap DIR`): each worker's
//! [`FrameTap`] decides per flow and copies the frames it keeps into a
//! bounded byte ring; the pcap writer thread ([`PcapThread`]) drains every
//! ring into a [`PcapngWriter`]. A worker never writes a file: its cost is
//! the decision and one copy. A full ring drops the frame (live) or waits
//! (capture files), and every frame not written is counted.
//!
//! Which flows: all, those whose first frame a tcpdump expression matches
//! (`--pcap-flows EXPR`: every frame of the flow, in both directions), or,
//! from the moment the condition holds (as Suricata's conditional pcap
//! logging), flows whose TLS/QUIC server name or HTTP host is in a domain
//! (`sni:DOMAIN`, `http-host:DOMAIN`) or that raised an anomaly
//! (`anomaly`); optionally only while the flow has carried fewer than
//! `--pcap-flow-bytes` bytes on the wire (the frame that crosses the limit
//! is the last). Frames that are in no flow (non-first IP fragments,
//! non-IP) are not written.

use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::out::{Backpressure, wait_for_room};
use crate::extract::FiveTupleKey;
use crate::filter::{FilterError, LinkFilters};
use crate::l7::L7Record;
use crate::output::pcapng::{PcapngConfig, PcapngStats, PcapngWriter};
use crate::tracker::FlowRecord;
use crate::view::{LinkType, PacketView, Timestamp};

/// Bytes of each worker's frame ring.
pub const FRAME_RING_BYTES: usize = 8 << 20;

/// Header of a frame in the ring: time, length on the wire, captured
/// length, link type.
const HEAD: usize = 17;

/// Which flows' frames are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcapFlows {
    /// Every flow.
    All,
    /// Flows whose first frame this tcpdump expression matches.
    Matching(String),
    /// From their TLS or QUIC hello on, flows whose server name is this
    /// domain or under it (`sni:example.com`).
    Sni(String),
    /// From the request on, HTTP flows whose host is this domain or under
    /// it (`http-host:example.com`).
    HttpHost(String),
    /// From the anomaly on, flows the tracker saw an anomaly in (`anomaly`).
    Anomaly,
}

impl std::str::FromStr for PcapFlows {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let domain = |d: &str| {
            if d.is_empty() {
                Err(format!("{s:?}: a domain is missing"))
            } else {
                Ok(d.trim_end_matches('.').to_ascii_lowercase())
            }
        };
        Ok(match s {
            "all" => Self::All,
            "anomaly" => Self::Anomaly,
            _ => match s.split_once(':') {
                Some(("sni", d)) => Self::Sni(domain(d)?),
                Some(("http-host", d)) => Self::HttpHost(domain(d)?),
                _ => Self::Matching(s.to_owned()),
            },
        })
    }
}

/// `name` is `domain` or a name under it, ignoring case.
fn in_domain(name: &str, domain: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.len() >= domain.len()
        && name[name.len() - domain.len()..].eq_ignore_ascii_case(domain)
        && (name.len() == domain.len() || name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

/// `--write-pcap` and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapConfig {
    /// The files.
    pub files: PcapngConfig,
    /// Which flows.
    pub flows: PcapFlows,
    /// Only each flow's frames until it has carried this many bytes.
    pub flow_bytes: Option<u64>,
}

/// What the taps and the writer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcapReport {
    /// The directory.
    pub dir: std::path::PathBuf,
    /// The first write error (frames after it are counted as failed).
    pub error: Option<String>,
    /// The writer's figures.
    pub writer: PcapngStats,
    /// Frames of chosen flows dropped because a ring was full.
    pub ring_full: u64,
    /// Frames of chosen flows past their flow's byte limit.
    pub past_flow_bytes: u64,
}

impl PcapReport {
    /// The summary line.
    pub fn summary_line(&self) -> String {
        format!(
            "pcap {}: {} frames ({} bytes) written in {} files ({} removed for --pcap-max-bytes), {} not written past --pcap-flow-bytes, {} dropped on a full ring, {} failed",
            self.dir.display(),
            self.writer.frames,
            self.writer.bytes,
            self.writer.files,
            self.writer.files_removed,
            self.past_flow_bytes,
            self.ring_full,
            self.writer.failed
        )
    }

    /// The figures for `--summary-json`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "dir": self.dir.display().to_string(),
            "frames_written": self.writer.frames, "bytes_written": self.writer.bytes,
            "frames_failed": self.writer.failed, "frames_ring_full": self.ring_full,
            "frames_past_flow_bytes": self.past_flow_bytes,
            "files": self.writer.files, "files_removed": self.writer.files_removed,
            "error": self.error,
        })
    }
}

/// One worker's side: the choice of flows and the ring's producer.
pub struct FrameTap {
    ring: rtrb::Producer<u8>,
    flows: PcapFlows,
    /// The expression of [`PcapFlows::Matching`].
    filter: Option<LinkFilters>,
    /// Flows chosen so far (all but [`PcapFlows::All`]), at most the
    /// flow table's size.
    chosen: HashSet<u64, ahash::RandomState>,
    flow_bytes: Option<u64>,
    ring_full: u64,
    past_flow_bytes: u64,
    /// The frame last put in the ring (its address and time): a tunnelled
    /// frame is offered for its carrier and for the flow inside, and is
    /// written once.
    last: Option<(usize, Timestamp)>,
}

impl FrameTap {
    /// Offers the frame `view` of `flow` (already counted in it).
    #[inline]
    pub fn offer(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        view: &PacketView<'_>,
        policy: Backpressure,
    ) {
        if let Some(filter) = &mut self.filter
            && flow.packets() == 1
            && filter
                .pass(view.frame, view.orig_len, view.link)
                .unwrap_or(false)
        {
            self.chosen.insert(flow.flow_id);
        }
        if self.flows != PcapFlows::All && !self.chosen.contains(&flow.flow_id) {
            return;
        }
        let at = (view.frame.as_ptr() as usize, view.timestamp);
        if self.last == Some(at) {
            return;
        }
        let len = view.frame.len();
        if let Some(limit) = self.flow_bytes
            && flow.bytes().saturating_sub(u64::from(view.orig_len)) >= limit
        {
            self.past_flow_bytes += 1;
            return;
        }
        let mut head = [0u8; HEAD];
        head[0..8].copy_from_slice(&view.timestamp.0.to_le_bytes());
        head[8..12].copy_from_slice(&view.orig_len.to_le_bytes());
        head[12..16].copy_from_slice(&(len as u32).to_le_bytes());
        head[16] = link_code(view.link);
        let mut tries = 0u32;
        while self.ring.slots() < HEAD + len {
            // An abandoned ring (the writer thread gone) never frees room.
            if self.ring.is_abandoned() || !wait_for_room(policy, &mut tries) {
                self.ring_full += 1;
                return;
            }
        }
        push_frame(&mut self.ring, &head, view.frame);
        self.last = Some(at);
    }

    /// Chooses `flow` from now on if `record` meets the L7 condition.
    pub fn l7(&mut self, flow: &FlowRecord<FiveTupleKey>, record: &L7Record) {
        let name = match (&self.flows, record) {
            (PcapFlows::Sni(d), L7Record::Tls(r)) => r.sni().map(|n| (n, d)),
            (PcapFlows::Sni(d), L7Record::Quic(r)) => r.sni().map(|n| (n, d)),
            (PcapFlows::HttpHost(d), L7Record::Http(r)) => r.hostname().map(|n| (n, d)),
            _ => None,
        };
        if name.is_some_and(|(n, d)| in_domain(n, d)) {
            self.chosen.insert(flow.flow_id);
        }
    }

    /// Chooses `flow` from now on for [`PcapFlows::Anomaly`].
    pub fn anomaly(&mut self, flow: &FlowRecord<FiveTupleKey>) {
        if self.flows == PcapFlows::Anomaly {
            self.chosen.insert(flow.flow_id);
        }
    }

    /// Forgets an ended flow's choice.
    #[inline]
    pub fn ended(&mut self, flow: &FlowRecord<FiveTupleKey>) {
        self.chosen.remove(&flow.flow_id);
    }
}

/// Pushes a frame's head and bytes in one commit, so the writer never sees
/// half a frame (the caller checked the room).
fn push_frame(ring: &mut rtrb::Producer<u8>, head: &[u8; HEAD], frame: &[u8]) {
    if let Ok(mut chunk) = ring.write_chunk(HEAD + frame.len()) {
        let (a, b) = chunk.as_mut_slices();
        copy_at(a, b, 0, head);
        copy_at(a, b, HEAD, frame);
        chunk.commit_all();
    }
}

/// Copies `src` to offset `at` of the ring space split in `a` then `b`.
fn copy_at(a: &mut [u8], b: &mut [u8], at: usize, src: &[u8]) {
    let in_a = a.len().saturating_sub(at).min(src.len());
    if in_a > 0 {
        a[at..at + in_a].copy_from_slice(&src[..in_a]);
    }
    let rest = &src[in_a..];
    let from = (at + in_a).saturating_sub(a.len());
    b[from..from + rest.len()].copy_from_slice(rest);
}

/// Link types as the ring's header byte holds them: their index here.
const LINKS: [LinkType; 5] = LinkType::ALL;

fn link_code(link: LinkType) -> u8 {
    LINKS.iter().position(|l| *l == link).unwrap_or(0) as u8
}

/// The pcap writer thread and the flag that tells it to drain and stop.
pub struct PcapThread {
    dir: std::path::PathBuf,
    done: Arc<AtomicBool>,
    thread: JoinHandle<(PcapngStats, Option<io::Error>)>,
}

/// Frame taps for `workers` workers (each choosing among at most
/// `max_flows` open flows) and the writer thread draining them.
///
/// # Errors
///
/// The expression does not compile, the directory cannot be created, or
/// the thread cannot start.
pub fn start(
    cfg: &PcapConfig,
    workers: usize,
    max_flows: usize,
) -> anyhow::Result<(Vec<FrameTap>, PcapThread)> {
    let mut writer = PcapngWriter::open(cfg.files.clone())?;
    let mut taps = Vec::with_capacity(workers);
    let mut consumers = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (p, c) = rtrb::RingBuffer::new(FRAME_RING_BYTES);
        let filter = match &cfg.flows {
            PcapFlows::Matching(expr) => Some(
                LinkFilters::new(expr, Some(LinkType::Ethernet))
                    .map_err(|e: FilterError| anyhow::anyhow!("--pcap-flows: {e}"))?,
            ),
            _ => None,
        };
        let chosen = match cfg.flows {
            PcapFlows::All => HashSet::default(),
            _ => HashSet::with_capacity_and_hasher(max_flows, ahash::RandomState::new()),
        };
        taps.push(FrameTap {
            ring: p,
            flows: cfg.flows.clone(),
            filter,
            chosen,
            flow_bytes: cfg.flow_bytes,
            ring_full: 0,
            past_flow_bytes: 0,
            last: None,
        });
        consumers.push(c);
    }
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let thread = std::thread::Builder::new()
        .name("fs-pcap".into())
        .spawn(move || {
            let mut frame = Vec::with_capacity(1 << 16);
            loop {
                let last = flag.load(Ordering::Acquire);
                let mut any = false;
                for c in &mut consumers {
                    while let Some((link, ts, orig)) = pop_frame(c, &mut frame) {
                        writer.write(link, ts, orig, &frame);
                        any = true;
                    }
                }
                writer.rotate_due();
                if last {
                    break;
                }
                if !any {
                    writer.flush();
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            writer.finish()
        })?;
    Ok((
        taps,
        PcapThread {
            dir: cfg.files.dir.clone(),
            done,
            thread,
        },
    ))
}

/// The next frame of `c` into `frame`: link type, time, length on the wire.
fn pop_frame(
    c: &mut rtrb::Consumer<u8>,
    frame: &mut Vec<u8>,
) -> Option<(LinkType, Timestamp, u32)> {
    let mut head = [0u8; HEAD];
    c.pop_entire_slice(&mut head).ok()?;
    let u32_at = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let ts = Timestamp(u64::from_le_bytes(head[0..8].try_into().ok()?));
    let (orig, len) = (u32_at(8), u32_at(12) as usize);
    frame.resize(len, 0);
    // A worker pushes a frame's head and bytes together.
    c.pop_entire_slice(frame).ok()?;
    let link = LINKS
        .get(usize::from(head[16]))
        .copied()
        .unwrap_or_default();
    Some((link, ts, orig))
}

impl PcapThread {
    /// Drains every ring, closes the last file; the writer's figures and
    /// the taps' counts.
    ///
    /// # Errors
    ///
    /// The thread panicked.
    pub fn finish(self, taps: &[FrameTapCounts]) -> anyhow::Result<PcapReport> {
        self.done.store(true, Ordering::Release);
        let (writer, error) = self
            .thread
            .join()
            .map_err(|_| anyhow::anyhow!("the pcap writer thread panicked"))?;
        Ok(PcapReport {
            dir: self.dir,
            error: error.map(|e| e.to_string()),
            writer,
            ring_full: taps.iter().map(|t| t.ring_full).sum(),
            past_flow_bytes: taps.iter().map(|t| t.past_flow_bytes).sum(),
        })
    }
}

/// A tap's counts, taken when its worker ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameTapCounts {
    /// Frames dropped on a full ring.
    pub ring_full: u64,
    /// Frames past their flow's byte limit.
    pub past_flow_bytes: u64,
}

impl FrameTap {
    /// Its counts.
    pub fn counts(&self) -> FrameTapCounts {
        FrameTapCounts {
            ring_full: self.ring_full,
            past_flow_bytes: self.past_flow_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_the_ring_end_whole() {
        let (mut p, mut c) = rtrb::RingBuffer::new(3 * HEAD + 50);
        let mut buf = Vec::new();
        for n in 0..40u8 {
            let frame: Vec<u8> = (0..n % 23 + 1).map(|i| i ^ n).collect();
            let mut head = [0u8; HEAD];
            head[0..8].copy_from_slice(&u64::from(n).to_le_bytes());
            head[8..12].copy_from_slice(&(frame.len() as u32 + 4).to_le_bytes());
            head[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
            head[16] = n % 5;
            assert!(p.slots() >= HEAD + frame.len());
            push_frame(&mut p, &head, &frame);
            let (link, ts, orig) = pop_frame(&mut c, &mut buf).expect("a whole frame");
            assert_eq!(
                (ts, orig),
                (Timestamp(u64::from(n)), frame.len() as u32 + 4)
            );
            assert_eq!(link, LINKS[usize::from(n % 5)]);
            assert_eq!(buf, frame);
        }
        assert!(pop_frame(&mut c, &mut buf).is_none());
    }
}

#[cfg(test)]
mod condition_tests {
    use super::*;

    #[test]
    fn conditions_parse_and_domains_match_whole_labels() {
        assert_eq!("all".parse(), Ok(PcapFlows::All));
        assert_eq!("anomaly".parse(), Ok(PcapFlows::Anomaly));
        assert_eq!(
            "sni:Example.COM.".parse(),
            Ok(PcapFlows::Sni("example.com".into()))
        );
        assert_eq!(
            "http-host:example.org".parse(),
            Ok(PcapFlows::HttpHost("example.org".into()))
        );
        assert!("sni:".parse::<PcapFlows>().is_err());
        assert_eq!(
            "udp port 53".parse(),
            Ok(PcapFlows::Matching("udp port 53".into()))
        );
        assert!(in_domain("example.com", "example.com"));
        assert!(in_domain("www.EXAMPLE.com.", "example.com"));
        assert!(!in_domain("badexample.com", "example.com"));
        assert!(!in_domain("com", "example.com"));
    }
}
