//! Linux live capture: the XDP program and AF_XDP sockets.
//!
//! [`Capture::start`] probes what the kernel offers ([`KernelFeatures`]),
//! loads the embedded XDP object with the metadata block on or off to match,
//! attaches it to an interface in an explicit mode (a BPF link, or netlink
//! where the kernel has no XDP links), creates `S` AF_XDP sockets
//! per RX queue (sharing that queue's UMEM), and runs one pinned worker thread
//! per socket. Each worker hands its frames, in batches read straight from the
//! UMEM, to a [`FrameHandler`] it owns, then returns them to the fill ring.
//! This module holds the live capture's `unsafe` code and syscalls (the
//! crate's others are listed in its root documentation).

pub mod bpf_sys;
mod cbpf;
mod datapath;
mod error;
mod iface;
mod netlink;
mod probe;
mod socket;
mod stats;
mod worker;
mod xdp_filter;

pub use datapath::{AttachKind, AttachPolicy, Datapath, SketchSnapshot, XdpAttachMode};
pub use error::CaptureError;
pub use iface::{CAPABILITIES, rx_queue_count};
pub use probe::{Answer, Feature, KernelFeatures};
pub use stats::{RingLevel, RingLevels, SocketStats, WorkerStats};
pub use worker::{FrameCtx, FrameHandler, HANDLER_BATCH, RxFrame, WorkerId};
pub use xdp_filter::{FilterAction, FilterMaps, FilterSpec, XdpFilter, set_jump};

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use flowscope_common::{
    CounterBlock, XdpConfig,
    config::{MODE_COUNT_ONLY, MODE_REDIRECT},
};

/// Ring and UMEM sizes; all powers of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSizes {
    /// Descriptors in each socket's RX ring.
    pub rx_ring: u32,
    /// UMEM frames per queue, all offered to the kernel through its fill
    /// ring. The ring itself has twice as many slots (see
    /// [`RingSizes::fill_slots`]).
    pub fill_ring: u32,
    /// Bytes per UMEM frame (2048 or 4096).
    pub frame_size: u32,
    /// Most descriptors read per batch.
    pub batch: u32,
}

impl RingSizes {
    /// Slots of a queue's fill ring: twice its frames. The kernel publishes
    /// how far it consumed the ring only when it has used up what it read
    /// of it (`xskq_cons_peek_addr_unchecked` in net/xdp/xsk_queue.h), so
    /// frames can come back through the RX ring while the ring still counts
    /// them as unread: with as many slots as frames, a refill then finds no
    /// room. With twice as many, the frames in flight and those the kernel
    /// took but has not yet released always fit.
    pub fn fill_slots(&self) -> u32 {
        self.fill_ring.saturating_mul(2)
    }
}

impl Default for RingSizes {
    fn default() -> Self {
        Self {
            rx_ring: 2048,
            fill_ring: 8192,
            frame_size: 4096,
            batch: 64,
        }
    }
}

/// What to capture and how.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// Interface name.
    pub iface: String,
    /// RX queues `0..queues`; `None` means every RX queue of the interface.
    pub queues: Option<u32>,
    /// AF_XDP sockets (and workers) per queue, S ≥ 1.
    pub sockets_per_queue: u32,
    /// XDP attach mode; never silently changed.
    pub mode: XdpAttachMode,
    /// Count every frame in the XDP program and pass it on; no sockets.
    pub count_only: bool,
    /// Seed of the flow and steering hashes.
    pub hash_seed: u32,
    /// Ring sizes.
    pub rings: RingSizes,
    /// Pin worker `i` to core `i % cores`.
    pub pin_workers: bool,
    /// Have the program write the metadata block when the kernel allows
    /// it; false forces it off (`--no-xdp-meta`).
    pub xdp_meta: bool,
    /// How to attach.
    pub attach: AttachPolicy,
    /// A filter expression run in XDP after counting (`--filter`): the
    /// frames it rejects are counted and passed or dropped, never
    /// redirected.
    pub filter: Option<FilterSpec>,
}

impl CaptureConfig {
    /// Every queue of `iface`, one socket per queue, driver mode.
    pub fn new(iface: impl Into<String>) -> Self {
        Self {
            iface: iface.into(),
            queues: None,
            sockets_per_queue: 1,
            mode: XdpAttachMode::Driver,
            count_only: false,
            hash_seed: random_seed(),
            rings: RingSizes::default(),
            pin_workers: true,
            xdp_meta: true,
            attach: AttachPolicy::Auto,
            filter: None,
        }
    }
}

/// Whether the program writes the metadata block, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metadata {
    /// Written in front of every redirected frame.
    On,
    /// `bpf_xdp_adjust_meta` refused, or the probe could not ask; why, as
    /// the probe gave it.
    Refused(String),
    /// Forced off (`--no-xdp-meta`).
    Disabled,
    /// Count-only mode redirects nothing.
    CountOnly,
}

impl Metadata {
    /// `on` or `off`, the Prometheus label value.
    pub fn label(&self) -> &'static str {
        if *self == Self::On { "on" } else { "off" }
    }
}

impl std::fmt::Display for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::On => f.write_str("metadata on"),
            Self::Refused(why) => write!(
                f,
                "metadata off, bpf_xdp_adjust_meta unavailable ({why}); workers parse headers themselves"
            ),
            Self::Disabled => f.write_str("metadata off (--no-xdp-meta)"),
            Self::CountOnly => f.write_str("metadata off (count-only)"),
        }
    }
}

/// What the datapath obtained from the kernel, for the startup line, the
/// summary and the `flowscope_datapath_info` series.
#[derive(Debug, Clone)]
pub struct DatapathInfo {
    /// Attach mode in force.
    pub xdp_mode: XdpAttachMode,
    /// The metadata block.
    pub metadata: Metadata,
    /// How the program is attached.
    pub attach: AttachKind,
    /// Sockets bound with need-wakeup.
    pub need_wakeup: bool,
    /// Per socket: whether the kernel gave it zero-copy mode.
    pub zero_copy: Vec<bool>,
    /// Id of a program of ours a killed flowscope had left attached, now
    /// replaced.
    pub replaced_stale: Option<u32>,
    /// Every probe's answer.
    pub features: KernelFeatures,
    /// The filter run after counting, if any.
    pub filter: Option<FilterSpec>,
}

impl DatapathInfo {
    /// `true`, `false` or `mixed`: the sockets' zero-copy mode.
    pub fn zero_copy_label(&self) -> &'static str {
        match (
            self.zero_copy.iter().any(|z| *z),
            self.zero_copy.iter().all(|z| *z),
        ) {
            (_, true) if !self.zero_copy.is_empty() => "true",
            (true, false) => "mixed",
            _ => "false",
        }
    }

    /// One line: mode, metadata (and why off), attachment, wake-ups, the
    /// filter, and the features that could not be probed.
    pub fn line(&self) -> String {
        let stale = self
            .replaced_stale
            .map(|id| format!(", replaced stale flowscope program id {id}"))
            .unwrap_or_default();
        let filter = self
            .filter
            .as_ref()
            .map(|f| {
                format!(
                    ", filter {:?} in XDP (rejected frames: {})",
                    f.filter.expression(),
                    f.action.label()
                )
            })
            .unwrap_or_default();
        let unprobed = self
            .features
            .unprobed()
            .map(|u| format!("; not probed, so tried directly: {u}"))
            .unwrap_or_default();
        format!(
            "{}, xdp {} attached by {}{stale}, need-wakeup {}{filter}{unprobed}",
            self.metadata,
            self.xdp_mode.label(),
            self.attach.label(),
            if self.need_wakeup { "on" } else { "off" },
        )
    }
}

/// A running capture: the attached program and its workers.
///
/// Dropping it stops the workers and detaches the program; [`Capture::stop`]
/// does the same and hands back each worker's handler and statistics.
pub struct Capture<H: FrameHandler> {
    datapath: Datapath,
    stop: Arc<AtomicBool>,
    workers: Vec<Running<H>>,
    info: DatapathInfo,
}

/// A running worker: who it is, what it publishes, its socket, its thread.
struct Running<H> {
    id: WorkerId,
    shared: Arc<stats::WorkerShared>,
    fd: i32,
    thread: JoinHandle<(H, SocketStats)>,
}

/// A stopped capture: every worker's report and the XDP counters read after
/// the program was detached and the sockets drained, so they are final.
pub struct Stopped<H> {
    /// One report per worker, in socket order.
    pub workers: Vec<WorkerReport<H>>,
    /// Final class counters.
    pub xdp: CounterBlock,
    /// Final anomaly counters.
    pub anomalies: flowscope_common::anomaly::AnomalyBlock,
}

/// What a finished worker hands back.
pub struct WorkerReport<H> {
    /// Which socket it served.
    pub id: WorkerId,
    /// Its handler, with whatever it accumulated.
    pub handler: H,
    /// Final socket statistics.
    pub stats: SocketStats,
}

impl<H: FrameHandler> Capture<H> {
    /// Loads and attaches the XDP program and starts one worker per socket,
    /// each with the handler `make_handler` builds for it.
    ///
    /// # Errors
    ///
    /// [`CaptureError`] says what failed and what to try: not root, no such
    /// interface, queue out of range, attach mode unavailable, AF_XDP socket
    /// creation.
    pub fn start(
        cfg: &CaptureConfig,
        mut make_handler: impl FnMut(&WorkerId) -> H,
    ) -> Result<Self, CaptureError> {
        let available = iface::rx_queue_count(&cfg.iface)?;
        let queues = cfg.queues.unwrap_or(available);
        let umem_bytes =
            u64::from(queues) * u64::from(cfg.rings.fill_ring) * u64::from(cfg.rings.frame_size);
        iface::check_privileges(!cfg.count_only, umem_bytes)?;
        if queues == 0 || queues > available {
            return Err(CaptureError::QueueOutOfRange {
                iface: cfg.iface.clone(),
                requested: queues,
                available,
            });
        }
        let spq = cfg.sockets_per_queue;
        if spq == 0 || queues * spq > flowscope_common::config::MAX_XSK_SLOTS {
            return Err(CaptureError::BadConfig(format!(
                "--sockets-per-queue {spq} with {queues} queues: need 1 ≤ S and queues × S ≤ {}",
                flowscope_common::config::MAX_XSK_SLOTS
            )));
        }
        let features = KernelFeatures::probe();
        let metadata = if cfg.count_only {
            Metadata::CountOnly
        } else if !cfg.xdp_meta {
            Metadata::Disabled
        } else {
            match features.get(Feature::XdpMeta) {
                Answer::No(why) | Answer::Unknown(why) => Metadata::Refused(why.clone()),
                Answer::Yes => Metadata::On,
            }
        };
        // Unknown (no namespace to probe in): try a link, netlink if refused.
        let (attach, fallback) = match (cfg.attach, features.get(Feature::XdpLink)) {
            (AttachPolicy::Netlink, _) | (AttachPolicy::Auto, Answer::No(_)) => {
                (AttachKind::Netlink, false)
            }
            (AttachPolicy::Link, _) | (AttachPolicy::Auto, Answer::Yes) => {
                (AttachKind::Link, false)
            }
            (AttachPolicy::Auto, Answer::Unknown(_)) => (AttachKind::Link, true),
        };
        if spq > 1
            && let Answer::No(why) = features.get(Feature::SharedUmem)
        {
            return Err(CaptureError::BadConfig(format!(
                "--sockets-per-queue {spq} needs AF_XDP shared UMEM, which this kernel refused ({why}); use --sockets-per-queue 1"
            )));
        }
        // Unknown (no namespace to probe in): asked for, dropped if refused.
        let need_wakeup = !matches!(features.get(Feature::NeedWakeup), Answer::No(_));
        let config = XdpConfig {
            mode: if cfg.count_only {
                MODE_COUNT_ONLY
            } else {
                MODE_REDIRECT
            },
            sockets_per_queue: spq,
            hash_seed: cfg.hash_seed,
            _reserved: 0,
        };
        // Built first so that an error below stops and joins what started.
        let mut cap = Self {
            datapath: Datapath::load(
                &cfg.iface,
                cfg.mode,
                config,
                metadata == Metadata::On,
                cfg.filter.as_ref(),
            )?,
            stop: Arc::new(AtomicBool::new(false)),
            workers: Vec::new(),
            info: DatapathInfo {
                xdp_mode: cfg.mode,
                metadata,
                attach,
                need_wakeup,
                zero_copy: Vec::new(),
                replaced_stale: None,
                features,
                filter: cfg.filter.clone(),
            },
        };
        let read_meta = cap.info.metadata == Metadata::On;
        if !cfg.count_only {
            for queue in 0..queues {
                let sockets = match socket::QueueSockets::create(
                    &cfg.iface,
                    queue,
                    spq,
                    &cfg.rings,
                    cap.info.need_wakeup,
                ) {
                    Err(_) if cap.info.need_wakeup && queue == 0 => {
                        cap.info.need_wakeup = false;
                        socket::QueueSockets::create(&cfg.iface, queue, spq, &cfg.rings, false)?
                    }
                    other => other?,
                };
                for sock in sockets {
                    let slot = queue * spq + sock.index_in_queue;
                    cap.datapath.insert_socket(slot, sock.fd)?;
                    cap.info.zero_copy.push(sock.zero_copy);
                    let index = cap.workers.len();
                    let id = WorkerId {
                        index,
                        queue,
                        slot,
                        core: cfg.pin_workers.then_some(index),
                    };
                    let shared = Arc::new(stats::WorkerShared::default());
                    let fd = sock.fd;
                    let thread = worker::spawn(
                        id.clone(),
                        sock,
                        make_handler(&id),
                        Arc::clone(&cap.stop),
                        Arc::clone(&shared),
                        cfg.rings,
                        read_meta,
                    )?;
                    cap.workers.push(Running {
                        id,
                        shared,
                        fd,
                        thread,
                    });
                }
            }
        }
        (cap.info.attach, cap.info.replaced_stale) = cap.datapath.attach(attach, fallback)?;
        Ok(cap)
    }

    /// What the datapath obtained from the kernel.
    pub fn info(&self) -> &DatapathInfo {
        &self.info
    }

    /// The workers, in socket order.
    pub fn worker_ids(&self) -> impl Iterator<Item = &WorkerId> {
        self.workers.iter().map(|w| &w.id)
    }

    /// The XDP program's class counters, summed over CPUs (one map read).
    ///
    /// # Errors
    ///
    /// The map read failed.
    pub fn xdp_counters(&self) -> Result<CounterBlock, CaptureError> {
        self.datapath.counters()
    }

    /// Live per-worker figures: frames and bytes received (published by each
    /// worker once per batch) and its socket's `XDP_STATISTICS`.
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.workers
            .iter()
            .map(|w| WorkerStats {
                id: w.id.clone(),
                socket: stats::read_socket_stats(w.fd, &w.shared),
            })
            .collect()
    }

    /// The XDP program's anomaly counters, summed over CPUs.
    ///
    /// # Errors
    ///
    /// The map read failed.
    pub fn anomalies(&self) -> Result<flowscope_common::anomaly::AnomalyBlock, CaptureError> {
        self.datapath.anomalies()
    }

    /// This interval's sketches (read, then reset), see [`Datapath::take_sketches`].
    ///
    /// # Errors
    ///
    /// A map access failed.
    pub fn take_sketches(&mut self) -> Result<SketchSnapshot, CaptureError> {
        self.datapath.take_sketches()
    }

    /// Detaches the program first, so nothing new arrives, then lets every
    /// worker drain what its socket already holds, and joins them.
    ///
    /// # Errors
    ///
    /// A worker thread panicked.
    pub fn stop(mut self) -> Result<Stopped<H>, CaptureError> {
        self.datapath.detach();
        self.stop.store(true, Ordering::Relaxed);
        let mut reports = Vec::new();
        for w in self.workers.drain(..) {
            let (handler, stats) = w
                .thread
                .join()
                .map_err(|_| CaptureError::WorkerPanicked(w.id.index))?;
            reports.push(WorkerReport {
                id: w.id,
                handler,
                stats,
            });
        }
        Ok(Stopped {
            workers: reports,
            xdp: self.datapath.counters()?,
            anomalies: self.datapath.anomalies()?,
        })
    }
}

impl<H: FrameHandler> Drop for Capture<H> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers.drain(..) {
            let _ = w.thread.join();
        }
    }
}

/// A hash seed from the kernel's random source (falls back to the clock).
pub fn random_seed() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 4 {
        u32::from_ne_bytes(b)
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0x5eed)
    }
}
