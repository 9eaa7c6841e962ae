//! The send loop: one thread per TX queue, pinned to a CPU that maps to that
//! queue (see [`crate::cpu`]), sending its share of the flows round-robin in
//! `sendmmsg` batches until every planned frame was taken by the kernel.

use std::io;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::cpu;
use crate::flows::{self, Flow};
use crate::frame::{self, FrameSpec, MAX_FRAME_LEN};
use crate::packet_socket::{self, MAX_BATCH, PacketSocket};

/// What to send.
#[derive(Clone, Debug)]
pub struct Config {
    /// Interface to send on.
    pub iface: String,
    /// Exact number of frames to send.
    pub frames: u64,
    /// Number of flows (`1..=flows::MAX_FLOWS`).
    pub flows: u32,
    /// Frame length without FCS; frames whose headers are longer get the
    /// headers' length.
    pub size: usize,
    /// Alternate A→B and B→A frames of each flow.
    pub both_directions: bool,
    /// Number of TX queues (and sender threads); flow `f` goes on queue
    /// `f % queues`.
    pub queues: usize,
    /// Make flows with `index % 4 >= 2` IPv6.
    pub ipv6: bool,
    /// Ethernet address of side A.
    pub a_mac: [u8; 6],
    /// Ethernet address of side B.
    pub b_mac: [u8; 6],
    /// Total frames per second over all queues; `None` sends as fast as the
    /// kernel takes them.
    pub rate_pps: Option<u64>,
}

/// Frames and bytes sent for one flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowReport {
    /// The flow.
    pub flow: Flow,
    /// Queue it was sent on.
    pub queue: usize,
    /// Frames A→B.
    pub frames_ab: u64,
    /// Frames B→A.
    pub frames_ba: u64,
    /// Bytes A→B (whole frames, no FCS).
    pub bytes_ab: u64,
    /// Bytes B→A.
    pub bytes_ba: u64,
}

impl FlowReport {
    /// Nothing sent yet for `flow` on `queue`.
    pub fn new(flow: Flow, queue: usize) -> Self {
        Self {
            flow,
            queue,
            frames_ab: 0,
            frames_ba: 0,
            bytes_ab: 0,
            bytes_ba: 0,
        }
    }

    /// Counts one frame of `len` bytes sent A→B (`ab`) or B→A.
    pub fn count(&mut self, ab: bool, len: u64) {
        if ab {
            self.frames_ab += 1;
            self.bytes_ab += len;
        } else {
            self.frames_ba += 1;
            self.bytes_ba += len;
        }
    }
}

/// What one queue's thread sent.
#[derive(Clone, Debug)]
pub struct QueueReport {
    /// Queue index.
    pub queue: usize,
    /// CPU the thread was pinned to.
    pub cpu: usize,
    /// Frames sent.
    pub frames: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// `sendmmsg` calls that took nothing (device queue full) and were retried.
    pub retries: u64,
    /// Per-flow figures.
    pub flows: Vec<FlowReport>,
}

/// Result of a whole run.
#[derive(Clone, Debug)]
pub struct Report {
    /// One entry per queue, in queue order.
    pub queues: Vec<QueueReport>,
    /// Time from the common start to the last thread's end.
    pub elapsed: Duration,
}

impl Report {
    /// Frames sent in total.
    pub fn frames(&self) -> u64 {
        self.queues.iter().map(|q| q.frames).sum()
    }

    /// Bytes sent in total.
    pub fn bytes(&self) -> u64 {
        self.queues.iter().map(|q| q.bytes).sum()
    }
}

/// Errors of a run, each with what the user can do about it.
#[derive(Debug)]
pub enum Error {
    /// Invalid configuration.
    Config(String),
    /// A system call failed; the string says what was attempted.
    Io(String, io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(msg) => f.write_str(msg),
            Error::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for Error {}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |e| Error::Io(what, e)
}

/// Sends `cfg.frames` frames and returns what was sent.
///
/// # Errors
/// [`Error::Config`] for impossible settings (no CPU for a queue, frames
/// larger than the MTU), [`Error::Io`] when the interface does not exist,
/// the socket cannot be opened (not root) or a send fails.
pub fn run(cfg: &Config) -> Result<Report, Error> {
    if cfg.flows == 0 || cfg.flows > flows::MAX_FLOWS {
        return Err(Error::Config(format!(
            "--flows must be in 1..={}",
            flows::MAX_FLOWS
        )));
    }
    run_queues(cfg, send_queue)
}

/// Opens one socket per queue, starts one pinned thread per queue running
/// `send(socket, queue, cpu, cfg)` from a common start, and collects their
/// reports in queue order. Checks every setting except the flows.
///
/// # Errors
/// As [`run`].
pub(crate) fn run_queues<F>(cfg: &Config, send: F) -> Result<Report, Error>
where
    F: Fn(&PacketSocket, usize, usize, &Config) -> Result<QueueReport, Error>
        + Clone
        + Send
        + 'static,
{
    if cfg.queues == 0 {
        return Err(Error::Config("--queues must be at least 1".into()));
    }
    let ifindex = packet_socket::ifindex(&cfg.iface).map_err(io_err("looking up the interface"))?;
    let mtu: usize = std::fs::read_to_string(format!("/sys/class/net/{}/mtu", cfg.iface))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1500);
    let max_len = MAX_FRAME_LEN.min(mtu + frame::ETH_LEN);
    if cfg.size > max_len {
        return Err(Error::Config(format!(
            "--size {} exceeds {max_len} bytes (MTU {mtu} of {} plus the Ethernet header)",
            cfg.size, cfg.iface
        )));
    }
    let tx_queues = cpu::tx_queues(&cfg.iface)
        .map_err(io_err(format!("reading the TX queues of {}", cfg.iface)))?;
    if cfg.queues > tx_queues {
        return Err(Error::Config(format!(
            "--queues {} exceeds the {tx_queues} TX queues of {}",
            cfg.queues, cfg.iface
        )));
    }
    let allowed = cpu::allowed_cpus().map_err(io_err("sched_getaffinity"))?;
    let mut plan = Vec::with_capacity(cfg.queues);
    for queue in 0..cfg.queues {
        let cpu = cpu::cpu_for_queue(queue, tx_queues, &allowed).ok_or_else(|| {
            Error::Config(format!(
                "no allowed CPU c with c % {tx_queues} == {queue} (allowed: {allowed:?}): \
                 TX queue {queue} of {} cannot be reached; use fewer --queues",
                cfg.iface
            ))
        })?;
        let sock = PacketSocket::open(ifindex).map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::PermissionDenied {
                " (needs root or CAP_NET_RAW)"
            } else {
                ""
            };
            Error::Io(format!("opening an AF_PACKET socket{hint}"), e)
        })?;
        plan.push((queue, cpu, sock));
    }
    let barrier = Arc::new(Barrier::new(cfg.queues + 1));
    let handles: Vec<_> = plan
        .into_iter()
        .map(|(queue, cpu, sock)| {
            let cfg = cfg.clone();
            let send = send.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let pinned =
                    cpu::pin_current_thread(cpu).map_err(io_err(format!("pinning to CPU {cpu}")));
                barrier.wait();
                pinned?;
                send(&sock, queue, cpu, &cfg)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut queues = Vec::with_capacity(handles.len());
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(q)) => queues.push(q),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(Error::Config("a sender thread panicked".into()));
            }
        }
    }
    let elapsed = start.elapsed();
    match first_err {
        Some(e) => Err(e),
        None => Ok(Report { queues, elapsed }),
    }
}

/// Per-flow send state of one thread.
struct FlowState {
    report: FlowReport,
    left_ab: u64,
    left_ba: u64,
    next_ab: bool,
    seq_ab: u32,
    seq_ba: u32,
    /// Frame length of this flow.
    len: usize,
    /// Header length of this flow's frames.
    header: usize,
}

impl FlowState {
    /// Takes the next direction to send (true = A→B), alternating.
    fn take(&mut self) -> Option<bool> {
        let ab = if self.left_ab > 0 && (self.next_ab || self.left_ba == 0) {
            self.left_ab -= 1;
            true
        } else if self.left_ba > 0 {
            self.left_ba -= 1;
            false
        } else {
            return None;
        };
        self.next_ab = !ab;
        Some(ab)
    }

    /// The frame of the next segment in direction `ab`; advances the TCP
    /// sequence number of that direction.
    fn next_spec(&mut self, ab: bool, cfg: &Config) -> FrameSpec {
        let f = &self.report.flow;
        // The payload is at most MAX_FRAME_LEN bytes.
        let payload = (self.len - self.header) as u32;
        let (seq, ack) = if ab {
            let s = self.seq_ab;
            self.seq_ab = s.wrapping_add(payload);
            (s, self.seq_ba)
        } else {
            let s = self.seq_ba;
            self.seq_ba = s.wrapping_add(payload);
            (s, self.seq_ab)
        };
        let (src_mac, dst_mac, ips, src_port, dst_port) = if ab {
            (cfg.a_mac, cfg.b_mac, f.ips, f.a_port, f.b_port)
        } else {
            (cfg.b_mac, cfg.a_mac, f.ips.reversed(), f.b_port, f.a_port)
        };
        FrameSpec {
            src_mac,
            dst_mac,
            ips,
            transport: f.transport,
            src_port,
            dst_port,
            tcp_seq: seq,
            tcp_ack: ack,
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR)
    )
}

/// Waits until `sent` frames are due at `rate` frames per second since
/// `started`: sleeps for long waits, spins for the last stretch.
pub(crate) fn pace(started: std::time::Instant, sent: u64, rate: f64) {
    let due = started + std::time::Duration::from_secs_f64(sent as f64 / rate);
    loop {
        let now = std::time::Instant::now();
        if now >= due {
            return;
        }
        let wait = due - now;
        if wait > std::time::Duration::from_micros(200) {
            std::thread::sleep(wait - std::time::Duration::from_micros(100));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Hands every frame of `frames` to the kernel, in order, retrying (and
/// counting in `retries`) while the device queue is full.
///
/// # Errors
/// [`Error::Io`] when a send fails for another reason.
pub(crate) fn send_all(
    sock: &PacketSocket,
    frames: &[&[u8]],
    retries: &mut u64,
    iface: &str,
    queue: usize,
) -> Result<(), Error> {
    let mut done = 0;
    while done < frames.len() {
        match sock.send_batch(&frames[done..]) {
            Ok(k) if k > 0 => done += k,
            Ok(_) => *retries += 1,
            Err(e) if is_transient(&e) => {
                *retries += 1;
                std::thread::yield_now();
            }
            Err(e) => return Err(Error::Io(format!("sendmmsg on {iface} queue {queue}"), e)),
        }
    }
    Ok(())
}

fn send_queue(
    sock: &PacketSocket,
    queue: usize,
    cpu: usize,
    cfg: &Config,
) -> Result<QueueReport, Error> {
    let mut states: Vec<FlowState> = (queue as u32..cfg.flows)
        .step_by(cfg.queues)
        .map(|index| {
            let flow = Flow::new(index, cfg.ipv6);
            let (left_ab, left_ba) = flows::split_directions(
                flows::frames_of(index, cfg.frames, cfg.flows),
                cfg.both_directions,
            );
            let seq_ab = index.wrapping_mul(2_654_435_761);
            let header = frame::headers_len(flow.ips, flow.transport);
            FlowState {
                report: FlowReport::new(flow, queue),
                left_ab,
                left_ba,
                next_ab: true,
                seq_ab,
                seq_ba: seq_ab ^ 0x5555_5555,
                len: cfg.size.max(header),
                header,
            }
        })
        .collect();
    let mut left: u64 = states.iter().map(|s| s.left_ab + s.left_ba).sum();
    let mut bufs = vec![[0u8; MAX_FRAME_LEN]; MAX_BATCH];
    // Per batch slot: (state index, A→B?, frame length).
    let mut slots = [(0usize, true, 0usize); MAX_BATCH];
    let mut report = QueueReport {
        queue,
        cpu,
        frames: 0,
        bytes: 0,
        retries: 0,
        flows: Vec::new(),
    };
    let mut cursor = 0;
    let started = std::time::Instant::now();
    let per_queue = cfg
        .rate_pps
        .map(|r| (r as f64 / cfg.queues as f64).max(1.0));
    while left > 0 {
        if let Some(rate) = per_queue {
            pace(started, report.frames, rate);
        }
        let mut n = 0;
        while n < MAX_BATCH && left > 0 {
            let i = cursor;
            cursor = (cursor + 1) % states.len();
            let st = &mut states[i];
            let Some(ab) = st.take() else { continue };
            let spec = st.next_spec(ab, cfg);
            frame::write(&spec, st.len, &mut bufs[n]).map_err(|e| Error::Config(e.to_string()))?;
            slots[n] = (i, ab, st.len);
            n += 1;
            left -= 1;
        }
        let frames: [&[u8]; MAX_BATCH] = std::array::from_fn(|k| &bufs[k][..slots[k].2]);
        send_all(sock, &frames[..n], &mut report.retries, &cfg.iface, queue)?;
        for &(i, ab, len) in &slots[..n] {
            let len = len as u64;
            states[i].report.count(ab, len);
            report.frames += 1;
            report.bytes += len;
        }
    }
    report.flows = states.into_iter().map(|s| s.report).collect();
    Ok(report)
}
