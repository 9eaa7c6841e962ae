//! A live capture with its flow workers, shards and record writer, as one
//! object the CLI and the tests drive.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use flowscope_common::{CounterBlock, anomaly::AnomalyBlock};

use super::{
    records::{Destination, RecordMsg, RecordWriter, WriterStats},
    shard::Shard,
    worker::FlowWorker,
};
use crate::capture::{
    Capture, CaptureConfig, CaptureError, DatapathInfo, SketchSnapshot, WorkerStats,
};
use crate::output::spec::OutputSpec;
use crate::pipeline::PipelineConfig;

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
}

/// A running live capture.
pub struct LiveCapture {
    capture: Capture<FlowWorker>,
    shards: Vec<Arc<Mutex<Shard>>>,
    control: rtrb::Producer<RecordMsg>,
    control_dropped: u64,
    writer: Option<RecordWriter>,
}

impl LiveCapture {
    /// Starts the capture with one [`FlowWorker`] per socket, each with a
    /// pipeline built from `pipeline` (none: bare receivers that only
    /// return frames) and a ring of `record_ring` records to the writer, which
    /// writes EVE to `dest` and flow records to `others` (IPFIX, Zeek).
    ///
    /// # Errors
    ///
    /// The capture or the writer could not start (the error says why).
    pub fn start(
        cfg: &CaptureConfig,
        pipeline: Option<&PipelineConfig>,
        dest: Destination,
        record_ring: usize,
        others: &[OutputSpec],
    ) -> anyhow::Result<Self> {
        // Sized for the largest possible worker count; unused rings cost
        // only their allocation.
        let max_workers = if cfg.count_only { 0 } else { max_workers(cfg)? };
        // One ring per worker, and the last for the control thread.
        let (writer, producers) = RecordWriter::start(max_workers + 1, record_ring, dest, others)?;
        let mut producers: Vec<_> = producers.into_iter().map(Some).collect();
        let control = producers
            .pop()
            .flatten()
            .expect("the control thread's ring");
        let mut shards = Vec::new();
        let capture = Capture::start(cfg, |id| {
            let shard = Arc::new(Mutex::new(Shard::default()));
            shards.push(Arc::clone(&shard));
            let ring = producers[id.index]
                .take()
                .expect("one producer per worker index");
            let config = pipeline.map(|p| {
                let mut c = p.clone();
                c.tracker.flow_id_base = (id.index as u64) << 48;
                c
            });
            FlowWorker::new(config, ring, shard)
        });
        let capture = match capture {
            Ok(c) => c,
            Err(e) => {
                drop(producers);
                let _ = writer.finish();
                return Err(e.into());
            }
        };
        Ok(Self {
            capture,
            shards,
            control,
            control_dropped: 0,
            writer: Some(writer),
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

    /// Hands one formatted EVE line (e.g. an anomaly record) to the writer;
    /// dropped and counted if its ring is full.
    pub fn send_line(&mut self, line: String) {
        if self.control.push(RecordMsg::Line(line)).is_err() {
            self.control_dropped += 1;
        }
    }

    /// Lines [`send_line`](Self::send_line) dropped.
    pub fn lines_dropped(&self) -> u64 {
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
        })
    }

    /// Graceful stop: detach the program, let each worker drain its socket,
    /// end every live flow `ForceClosed`, hand every record to the writer,
    /// flush it.
    ///
    /// # Errors
    ///
    /// A worker panicked or the writer failed.
    pub fn stop(mut self) -> anyhow::Result<LiveReport> {
        let datapath = self.capture.info().clone();
        let stopped = self.capture.stop()?;
        let (xdp, anomalies) = (stopped.xdp, stopped.anomalies);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut sockets = Vec::new();
        let mut shards = Vec::new();
        for mut r in stopped.workers {
            r.handler.finish(deadline);
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
            .map(RecordWriter::finish)
            .transpose()?
            .unwrap_or_default();
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
            },
            writer,
            datapath,
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
