//! A live capture: AF_XDP sockets as the frame source, one flow worker per
//! socket, shards, and the writer, as one object the CLI and the tests
//! drive.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use flowscope_common::{CounterBlock, XdpMeta, anomaly::AnomalyBlock};

use super::config::{RunConfig, decap, plain};
use super::frames::{self, FrameTapCounts, PcapReport, PcapThread};
use super::out::{Backpressure, RecordRing, push_with};
use super::shard::Shard;
use super::worker::{FlowWorker, WorkerConfig};
use super::writer::{WriterThread, rings};
use crate::capture::{
    Capture, CaptureConfig, CaptureError, DatapathInfo, FrameCtx, FrameHandler, HANDLER_BATCH,
    RxFrame, SketchSnapshot, WorkerStats,
};
use crate::extract::{AutoDetectEncap, FiveTuple, FiveTupleKey, FrameHint};
use crate::extractor::FlowExtractor;
use crate::output::{EveOptions, OutputReport, Outputs, Record, WriterStats};
use crate::view::{PacketView, Timestamp};

type Ring = RecordRing;

/// A live flow worker, keying flows on the outer packet or through tunnels.
pub enum LiveWorker {
    /// Outer packets.
    Plain(FlowWorker<FiveTuple, Ring>),
    /// Innermost packets (`--decap`).
    Decap(FlowWorker<AutoDetectEncap<FiveTuple>, Ring>),
}

/// One ring read of frames as views through `w`'s pipeline.
fn feed<E: FlowExtractor<Key = FiveTupleKey>>(
    w: &mut FlowWorker<E, Ring>,
    frames: &[RxFrame<'_>],
    ctx: &FrameCtx,
) {
    let mut views = [PacketView::new(&[], ctx.timestamp); HANDLER_BATCH];
    for chunk in frames.chunks(HANDLER_BATCH) {
        let mut with_meta = 0;
        for (view, f) in views.iter_mut().zip(chunk) {
            with_meta += u64::from(f.meta.is_some());
            *view = PacketView::new(f.frame, ctx.timestamp).with_hint(
                f.meta
                    .as_ref()
                    .and_then(|m| FrameHint::from_meta(m, f.frame.len())),
            );
        }
        w.process(views.get(..chunk.len()).unwrap_or_default(), with_meta);
    }
}

impl LiveWorker {
    /// Ends every flow and sends its records, waiting for ring space until
    /// `deadline` instead of dropping.
    fn finish(&mut self, deadline: Instant) {
        match self {
            Self::Plain(w) => w.finish(Backpressure::WaitUntil(deadline)),
            Self::Decap(w) => w.finish(Backpressure::WaitUntil(deadline)),
        }
    }

    /// Its frame tap's counts.
    fn tap_counts(&self) -> FrameTapCounts {
        match self {
            Self::Plain(w) => w.tap_counts(),
            Self::Decap(w) => w.tap_counts(),
        }
    }
}

impl FrameHandler for LiveWorker {
    fn on_frame(&mut self, frame: &[u8], meta: Option<&XdpMeta>, ctx: &FrameCtx) {
        let meta = meta.copied();
        self.on_frames(&[RxFrame { frame, meta }], ctx);
    }

    /// The frames as one batch through the pipeline (the tracker prefetches
    /// across it).
    fn on_frames(&mut self, frames: &[RxFrame<'_>], ctx: &FrameCtx) {
        match self {
            Self::Plain(w) => feed(w, frames, ctx),
            Self::Decap(w) => feed(w, frames, ctx),
        }
    }

    fn on_tick(&mut self, now: Timestamp) {
        match self {
            Self::Plain(w) => w.tick(now),
            Self::Decap(w) => w.tick(now),
        }
    }
}

/// Figures of one instant, merged from every source.
#[derive(Debug, Clone)]
pub struct LiveSnapshot {
    /// When it was taken.
    pub at: Instant,
    /// XDP class counters (all CPUs).
    pub xdp: CounterBlock,
    /// XDP anomaly counters (all CPUs).
    pub anomalies: AnomalyBlock,
    /// Per socket: frames received and kernel drop counters.
    pub sockets: Vec<WorkerStats>,
    /// Per worker: its last published shard.
    pub shards: Vec<Shard>,
    /// All shards merged.
    pub total: Shard,
    /// Every output's counts (as the writer last published them).
    pub outputs: Vec<OutputReport>,
}

/// What a finished capture hands back.
#[derive(Debug, Clone)]
pub struct LiveReport {
    /// The last figures, taken after every flow was ended and written.
    pub last: LiveSnapshot,
    /// What the writer did.
    pub writer: WriterStats,
    /// What the datapath obtained from the kernel.
    pub datapath: DatapathInfo,
    /// What `--write-pcap` wrote.
    pub pcap: Option<PcapReport>,
}

/// A running live capture.
pub struct LiveCapture {
    capture: Capture<LiveWorker>,
    shards: Vec<Arc<Mutex<Shard>>>,
    control: Ring,
    control_dropped: u64,
    writer: Option<WriterThread>,
    pcap: Option<PcapThread>,
}

impl LiveCapture {
    /// Starts the capture with one [`LiveWorker`] per socket, each with the
    /// pipeline `run` says (none: bare receivers that only return frames)
    /// and a ring of `run.record_ring` records to the writer, which writes
    /// to every output of `run`.
    ///
    /// # Errors
    ///
    /// The capture, an output or the writer could not start (the error
    /// says why).
    pub fn start(cfg: &CaptureConfig, run: &RunConfig) -> anyhow::Result<Self> {
        // Sized for the largest possible worker count; unused rings cost
        // only their allocation. Asked first: a missing interface is named
        // before any output file is created.
        let max_workers = if cfg.count_only { 0 } else { max_workers(cfg)? };
        let outputs = Outputs::open(&run.outputs, run.files)?.with_eve(EveOptions {
            in_iface: Some(cfg.iface.clone()),
            ..run.eve.clone()
        });
        // One ring per worker, and the last for the control thread.
        let (producers, consumers) = rings(max_workers + 1, run.record_ring);
        let writer = WriterThread::start(consumers, outputs)?;
        let mut producers: Vec<_> = producers.into_iter().map(Some).collect();
        let control = producers
            .pop()
            .flatten()
            .expect("the control thread's ring");
        let (mut taps, pcap) = match &run.pcap {
            Some(p) => {
                let mut p = p.clone();
                p.files.iface = Some(cfg.iface.clone());
                let max_flows = run.pipeline.as_ref().map_or(0, |c| c.tracker.max_flows);
                let (taps, thread) = frames::start(&p, max_workers, max_flows)?;
                (taps.into_iter().map(Some).collect(), Some(thread))
            }
            None => (Vec::new(), None),
        };
        let mut shards = Vec::new();
        let capture = Capture::start(cfg, |id| {
            let tap = taps.get_mut(id.index).and_then(Option::take);
            let shard = Arc::new(Mutex::new(Shard::default()));
            shards.push(Arc::clone(&shard));
            let ring = producers[id.index]
                .take()
                .expect("one producer per worker index");
            let config = WorkerConfig {
                pipeline: run.worker_pipeline(id.index),
                backpressure: Backpressure::Drop,
            };
            if run.decap {
                LiveWorker::Decap(FlowWorker::new(decap(), config, ring, Some(shard)).with_tap(tap))
            } else {
                LiveWorker::Plain(FlowWorker::new(plain(), config, ring, Some(shard)).with_tap(tap))
            }
        });
        let capture = match capture {
            Ok(c) => c,
            Err(e) => {
                drop(producers);
                let _ = writer.finish();
                if let Some(p) = pcap {
                    let _ = p.finish(&[]);
                }
                return Err(e.into());
            }
        };
        Ok(Self {
            capture,
            shards,
            control,
            control_dropped: 0,
            writer: Some(writer),
            pcap,
        })
    }

    /// What the datapath obtained from the kernel.
    pub fn info(&self) -> &DatapathInfo {
        self.capture.info()
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.shards.len()
    }

    /// Hands one record of the control thread (an anomaly interval) to the
    /// writer; dropped and counted if its ring is full.
    pub fn send(&mut self, record: Record) {
        if !push_with(&mut self.control, record, Backpressure::Drop) {
            self.control_dropped += 1;
        }
    }

    /// Asks the writer to reopen every file output (EVE files, Zeek logs)
    /// between two records: after logrotate moved them, new files.
    pub fn reopen(&self) {
        if let Some(w) = &self.writer {
            w.reopen();
        }
    }

    /// Records [`send`](Self::send) dropped.
    pub fn control_dropped(&self) -> u64 {
        self.control_dropped
    }

    /// Reads and resets the XDP sketches of this interval.
    ///
    /// # Errors
    ///
    /// A map access failed.
    pub fn take_sketches(&mut self) -> Result<SketchSnapshot, CaptureError> {
        self.capture.take_sketches()
    }

    /// Current figures: one read of each per-CPU map, each socket's
    /// statistics, and each worker's last shard (one lock each).
    ///
    /// # Errors
    ///
    /// A map read failed.
    pub fn snapshot(&self) -> Result<LiveSnapshot, CaptureError> {
        let shards: Vec<Shard> = self
            .shards
            .iter()
            .map(|s| s.lock().map(|g| g.clone()).unwrap_or_default())
            .collect();
        let mut total = Shard::default();
        for s in &shards {
            total.merge(s);
        }
        Ok(LiveSnapshot {
            at: Instant::now(),
            xdp: self.capture.xdp_counters()?,
            anomalies: self.capture.anomalies()?,
            sockets: self.capture.worker_stats(),
            shards,
            total,
            outputs: self
                .writer
                .as_ref()
                .map(WriterThread::outputs)
                .unwrap_or_default(),
        })
    }

    /// Graceful stop: detach the program, let each worker drain its socket,
    /// end every live flow `ForceClosed`, hand every record to the writer,
    /// flush every output.
    ///
    /// # Errors
    ///
    /// A worker or the writer panicked.
    pub fn stop(mut self) -> anyhow::Result<LiveReport> {
        let datapath = self.capture.info().clone();
        let stopped = self.capture.stop()?;
        let (xdp, anomalies) = (stopped.xdp, stopped.anomalies);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut sockets = Vec::new();
        let mut shards = Vec::new();
        let mut tap_counts = Vec::new();
        for mut r in stopped.workers {
            r.handler.finish(deadline);
            tap_counts.push(r.handler.tap_counts());
            sockets.push(WorkerStats {
                id: r.id.clone(),
                socket: r.stats,
            });
        }
        for s in &self.shards {
            shards.push(s.lock().map(|g| g.clone()).unwrap_or_default());
        }
        let writer = self
            .writer
            .take()
            .map(WriterThread::finish)
            .transpose()?
            .unwrap_or_default();
        let pcap = self
            .pcap
            .take()
            .map(|p| p.finish(&tap_counts))
            .transpose()?;
        let mut total = Shard::default();
        for s in &shards {
            total.merge(s);
        }
        Ok(LiveReport {
            last: LiveSnapshot {
                at: Instant::now(),
                xdp,
                anomalies,
                sockets,
                shards,
                total,
                outputs: writer.outputs.clone(),
            },
            writer,
            datapath,
            pcap,
        })
    }
}

/// Workers the capture will start: queues × sockets per queue.
fn max_workers(cfg: &CaptureConfig) -> Result<usize, CaptureError> {
    let queues = match cfg.queues {
        Some(q) => q,
        None => crate::capture::rx_queue_count(&cfg.iface)?,
    };
    Ok((queues.max(1) * cfg.sockets_per_queue.max(1)) as usize)
}
