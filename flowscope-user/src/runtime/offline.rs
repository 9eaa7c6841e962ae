//! Capture files as a frame source: the same flow workers, record rings and
//! writer as live capture, on every core.
//!
//! ```text
//! file ─(mapped, or large reads)─► reader (calling thread)
//!        steer: extract::Steering   ──► batch ring w ──► worker w ──► record ring w ─┐
//!                                                                  (N workers)       ▼
//!                                                                     writer thread ─► outputs
//! ```
//!
//! The reader parses records in place, up to a batch at a time
//! ([`PcapReader::next_frames`]), and steers each frame by the XDP
//! program's symmetric policy ([`crate::extract::Steering`]: the outer
//! five-tuple, or the address pair and protocol for tunnels and frames
//! without ports, and the program's fragment table, so both directions of a
//! flow and every fragment of a datagram whose first fragment comes first
//! reach the same worker), scaled into `0..N` as the program picks a
//! socket among a queue's `S`. Frames travel in batches of up to [`BATCH`], each holding
//! a handle on the chunk of the file its frames live in (no copy); a worker
//! runs [`FlowWorker::process`] on the batch, exactly as a live worker runs
//! a ring read. With one worker there is no thread at all: the calling
//! thread reads, tracks and writes.
//!
//! Packet time is the clock. Every batch carries the reader's clock (the
//! latest packet time read so far) at its first frame, and a frame earlier
//! than that clock (a capture out of time order) starts a new batch, so
//! each worker's clock before each of its frames is the one a single
//! worker would have had: every flow ends exactly as it would with one
//! worker. Flow IDs are `worker << 48` plus a count (as live), so they
//! depend on the worker count; everything else in the records does not, as
//! long as no flow table, reassembly budget or fragment table is full
//! (those bounds hold per worker). Records of one flow come out in order;
//! records of different flows interleave as the workers go.
//!
//! With a filter (`--filter`), the reader skips the frames it rejects
//! before steering, and counts them. Nothing else is dropped: a worker
//! waits for room in its record ring, the
//! reader for room in a batch ring (memory is bounded by the ring sizes).
//! The reader stops early when asked (`stop`, a signal): every flow is then
//! ended, as at the end of the file.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use anyhow::Context;

use super::config::{MAX_WORKERS, RunConfig, decap, plain};
use super::frames::{self, FrameTapCounts, PcapReport};
use super::out::{Backpressure, InlineOut, RecordOut};
use super::worker::{FlowWorker, WorkerConfig};
use super::writer::{WriterThread, rings};
use crate::extract::{FiveTupleKey, Steering};
use crate::extractor::FlowExtractor;
use crate::filter::{FilterError, LinkFilters};
use crate::output::{Outputs, WriterStats};
use crate::pcap::{Chunk, FrameRef, PcapError, PcapReader, ReaderStats, link_type_from_pcap};
use crate::pipeline::PipelineCounters;
use crate::view::{PacketView, Timestamp};

/// Frames per batch (a live ring read hands over as many).
pub const BATCH: usize = 64;

/// Batches buffered per worker between the reader and the worker, for a
/// stream: each queued batch may hold a read buffer of its own (1 MiB).
const BATCH_RING: usize = 64;
/// The same for a mapped file, whose batches all share the mapping: deep
/// enough that a worker keeps going while the reader is off its core (the
/// reader and the workers share the cores); about 1 MiB of batches.
const BATCH_RING_MAPPED: usize = 512;
/// Batches waiting that wake a parked worker (half a stream's ring, a
/// sixteenth of a mapped file's), so that a worker that keeps up with the
/// reader (the reader is the slower stage on two cores) is woken once per
/// 2 048 frames, not once per 512.
const WAKE_AT: usize = 32;

/// Seed of the steering hash: fixed, so that a file always splits the same
/// way (live capture draws one per start).
pub const STEER_SEED: u32 = 0x5eed_0001;

/// Settings of a capture-file run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineConfig {
    /// What the workers do and where records go.
    pub run: RunConfig,
    /// Worker threads; 1 runs everything on the calling thread.
    pub workers: usize,
    /// A tcpdump expression: the reader passes on only the frames it
    /// matches (`--filter`).
    pub filter: Option<String>,
}

/// What a capture-file run did.
#[derive(Debug)]
pub struct OfflineReport {
    /// Everything the workers' pipelines counted, merged.
    pub counters: PipelineCounters,
    /// What the reader read and skipped.
    pub reader: ReaderStats,
    /// What the writer stage wrote, per output.
    pub writer: WriterStats,
    /// Workers that ran.
    pub workers: usize,
    /// Packets each worker tracked, by worker index: how evenly the
    /// steering split the file (a flow stays on one worker, so a few large
    /// flows can load one worker more than the others).
    pub worker_packets: Vec<u64>,
    /// The read error that ended the file early (every flow was still
    /// ended and written).
    pub error: Option<PcapError>,
    /// Reading stopped because `stop` was set.
    pub interrupted: bool,
    /// The filter and what it rejected.
    pub filter: Option<LinkFilters>,
    /// What `--write-pcap` wrote.
    pub pcap: Option<PcapReport>,
    /// The filter could not be compiled for a link type met in the file,
    /// which ended the reading (every flow was still ended and written).
    pub filter_error: Option<FilterError>,
    /// Later IP fragments steered without their first (it came later, or
    /// a newer datagram took its table entry): by the address pair, so
    /// perhaps to another worker than the first (see
    /// [`Steering::unsteered`]). 0 with one worker, which steers nothing.
    pub fragments_unsteered: u64,
}

/// Frames of one worker, in file order, with the reader's clock at the first.
struct Batch {
    chunk: Chunk,
    /// Move the worker's clock here before the first frame.
    clock: Timestamp,
    len: usize,
    frames: [FrameRef; BATCH],
}

const NO_FRAME: FrameRef = FrameRef {
    start: 0,
    len: 0,
    orig_len: 0,
    timestamp: Timestamp(0),
    link: crate::view::LinkType::Ethernet,
};

impl Batch {
    fn new(chunk: Chunk, clock: Timestamp) -> Self {
        Self {
            chunk,
            clock,
            len: 0,
            frames: [NO_FRAME; BATCH],
        }
    }
}

/// Runs one batch through `w`: the clock first, then the frames.
fn run_batch<E: FlowExtractor<Key = FiveTupleKey>, O: RecordOut>(
    w: &mut FlowWorker<E, O>,
    b: &Batch,
) {
    w.tick(b.clock);
    let bytes = b.chunk.bytes();
    let mut views = [PacketView::new(&[], b.clock); BATCH];
    for (v, f) in views.iter_mut().zip(&b.frames[..b.len]) {
        *v = f.view(bytes);
    }
    w.process(&views[..b.len], 0);
}

/// Where the reader's batches go.
trait Dispatch {
    fn send(&mut self, worker: usize, batch: Batch);
}

/// One worker on the reader's thread, writing inline.
struct Inline<E: FlowExtractor<Key = FiveTupleKey>>(FlowWorker<E, InlineOut>);

impl<E: FlowExtractor<Key = FiveTupleKey>> Dispatch for Inline<E> {
    fn send(&mut self, _worker: usize, batch: Batch) {
        run_batch(&mut self.0, &batch);
    }
}

/// Worker threads behind batch rings.
struct Threads {
    rings: Vec<rtrb::Producer<Batch>>,
    threads: Vec<Thread>,
}

/// How long a worker sleeps when its batch ring is empty (the reader wakes
/// it when it pushes).
const WORKER_PARK: Duration = Duration::from_millis(1);
/// How long the reader naps when a batch ring is full.
const READER_NAP: Duration = Duration::from_micros(50);

impl Dispatch for Threads {
    fn send(&mut self, worker: usize, mut batch: Batch) {
        let Some(ring) = self.rings.get_mut(worker) else {
            return;
        };
        let mut tries = 0u32;
        loop {
            match ring.push(batch) {
                Ok(()) => break,
                Err(rtrb::PushError::Full(b)) => batch = b,
            }
            tries += 1;
            if tries < 16 {
                thread::yield_now();
            } else {
                thread::sleep(READER_NAP);
            }
        }
        // Wake a waiting worker once a few batches wait for it (or when
        // it has the last one), not for every batch: each wake-up of a
        // parked thread is a system call on both sides.
        if ring.slots() + WAKE_AT <= ring.buffer().capacity()
            && let Some(t) = self.threads.get(worker)
        {
            t.unpark();
        }
    }
}

/// What the reader loop ended with.
struct ReadEnd {
    error: Option<PcapError>,
    filter_error: Option<FilterError>,
    interrupted: bool,
    /// [`OfflineReport::fragments_unsteered`].
    unsteered: u64,
}

/// Reads every frame of `reader` into batches for `workers` workers.
fn read_all<R: Read>(
    reader: &mut PcapReader<R>,
    workers: usize,
    to: &mut impl Dispatch,
    stop: &AtomicBool,
    mut filter: Option<&mut LinkFilters>,
) -> ReadEnd {
    let mut open: Vec<Batch> = (0..workers)
        .map(|_| Batch::new(reader.chunk().clone(), Timestamp(0)))
        .collect();
    let mut clock = Timestamp(0);
    let mut steering = Steering::new(STEER_SEED);
    let mut end = ReadEnd {
        error: None,
        filter_error: None,
        interrupted: false,
        unsteered: 0,
    };
    let mut frames = [FrameRef::default(); BATCH];
    'read: loop {
        if stop.load(Ordering::Relaxed) {
            end.interrupted = true;
            break;
        }
        let n = match reader.next_frames(&mut frames) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.is_interrupted() => continue,
            Err(e) => {
                end.error = Some(e);
                break;
            }
        };
        let chunk = reader.chunk();
        for f in frames.get(..n).unwrap_or_default() {
            let v = f.view(chunk.bytes());
            if let Some(filter) = filter.as_deref_mut() {
                match filter.pass(v.frame, v.orig_len, v.link) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        end.filter_error = Some(e);
                        break 'read;
                    }
                }
            }
            let w = if workers > 1 {
                let steer = steering.steer(v.frame, v.link);
                flowscope_common::hash::xsk_slot(0, workers as u32, steer) as usize
            } else {
                0
            };
            let Some(b) = open.get_mut(w) else { continue };
            let late = f.timestamp < clock && b.clock < clock;
            if b.len == BATCH || late || !b.chunk.same(chunk) {
                let full = std::mem::replace(b, Batch::new(chunk.clone(), clock));
                if full.len > 0 {
                    to.send(w, full);
                }
            } else if b.len == 0 {
                b.clock = clock;
            }
            b.frames[b.len] = *f;
            b.len += 1;
            clock = clock.max(f.timestamp);
        }
    }
    // What is left, then the last clock to every worker: a flow whose
    // idle timeout passed before the end of the file ends idle, whichever
    // worker holds it, as with one worker.
    for (w, b) in open.into_iter().enumerate() {
        let last = Batch::new(b.chunk.clone(), clock);
        if b.len > 0 {
            to.send(w, b);
        }
        to.send(w, last);
    }
    end.unsteered = steering.unsteered();
    end
}

/// Worker `index`'s settings.
fn worker_config(run: &RunConfig, index: usize) -> WorkerConfig {
    WorkerConfig {
        pipeline: run.worker_pipeline(index),
        backpressure: Backpressure::Wait,
    }
}

/// Reads `reader` to its end (or until `stop` is set) through the workers
/// `cfg` describes, then ends every flow and closes every output. `ready`
/// is called on the calling thread once every other thread of the run has
/// started (the CLI lets signals reach the reader from then on).
///
/// # Errors
///
/// An output could not be opened, or a thread could not start or panicked.
/// A damaged file is not an error here: it ends the reading
/// ([`OfflineReport::error`]), and every record formed is written.
pub fn run<R: Read>(
    reader: PcapReader<R>,
    cfg: &OfflineConfig,
    stop: &AtomicBool,
    ready: impl FnOnce(),
) -> anyhow::Result<OfflineReport> {
    anyhow::ensure!(
        (1..=MAX_WORKERS).contains(&cfg.workers),
        "{} workers: must be 1..={MAX_WORKERS}",
        cfg.workers
    );
    if cfg.run.decap {
        run_with(decap, reader, cfg, stop, ready)
    } else {
        run_with(plain, reader, cfg, stop, ready)
    }
}

fn run_with<E, R>(
    extractor: fn() -> E,
    reader: PcapReader<R>,
    cfg: &OfflineConfig,
    stop: &AtomicBool,
    ready: impl FnOnce(),
) -> anyhow::Result<OfflineReport>
where
    E: FlowExtractor<Key = FiveTupleKey> + Send + 'static,
    R: Read,
{
    let mut filter = match &cfg.filter {
        Some(expr) => {
            let link = reader.pcap_link_type().and_then(link_type_from_pcap);
            Some(LinkFilters::new(expr, link).context("--filter")?)
        }
        None => None,
    };
    let mut reader = reader.interruptible();
    let reader = &mut reader;
    let outputs = Outputs::open(&cfg.run.outputs, cfg.run.files)?.with_eve(cfg.run.eve.clone());
    let n = cfg.workers.max(1);
    let (mut taps, pcap) = match &cfg.run.pcap {
        Some(p) => {
            let max_flows = cfg.run.pipeline.as_ref().map_or(0, |p| p.tracker.max_flows);
            let (taps, thread) = frames::start(p, n, max_flows)?;
            (taps.into_iter().map(Some).collect(), Some(thread))
        }
        None => (Vec::new(), None),
    };
    let mut tap = |i: usize| taps.get_mut(i).and_then(Option::take);
    if n == 1 {
        let mut inline = Inline(
            FlowWorker::new(
                extractor(),
                worker_config(&cfg.run, 0),
                InlineOut::new(outputs),
                None,
            )
            .with_tap(tap(0)),
        );
        ready();
        let end = read_all(reader, 1, &mut inline, stop, filter.as_mut());
        let mut w = inline.0;
        w.finish(Backpressure::Wait);
        let counters = w.counters().unwrap_or_default();
        let pcap = pcap.map(|p| p.finish(&[w.tap_counts()])).transpose()?;
        return Ok(OfflineReport {
            pcap,
            worker_packets: vec![counters.tracker.packets],
            counters,
            reader: reader.stats(),
            writer: w.into_out().into_outputs().finish(),
            workers: 1,
            error: end.error,
            interrupted: end.interrupted,
            filter,
            filter_error: end.filter_error,
            fragments_unsteered: end.unsteered,
        });
    }
    let (producers, consumers) = rings(n, cfg.run.record_ring);
    let depth = if reader.chunk().is_whole_file() {
        BATCH_RING_MAPPED
    } else {
        BATCH_RING
    };
    let writer = WriterThread::start(consumers, outputs).context("starting the writer thread")?;
    let mut handles: Vec<JoinHandle<(Option<PipelineCounters>, FrameTapCounts)>> =
        Vec::with_capacity(n);
    let mut batch_rings = Vec::with_capacity(n);
    for (index, records) in producers.into_iter().enumerate() {
        let (tx, mut rx) = rtrb::RingBuffer::<Batch>::new(depth);
        let config = worker_config(&cfg.run, index);
        let tap = tap(index);
        let handle = thread::Builder::new()
            .name(format!("fs-worker-{index}"))
            .spawn(move || {
                let mut w = FlowWorker::new(extractor(), config, records, None).with_tap(tap);
                loop {
                    match rx.pop() {
                        Ok(b) => run_batch(&mut w, &b),
                        Err(_) if rx.is_abandoned() => {
                            // The reader is done; take what it left.
                            while let Ok(b) = rx.pop() {
                                run_batch(&mut w, &b);
                            }
                            break;
                        }
                        Err(_) => thread::park_timeout(WORKER_PARK),
                    }
                }
                w.finish(Backpressure::Wait);
                (w.counters(), w.tap_counts())
            })
            .context("starting a worker thread")?;
        batch_rings.push(tx);
        handles.push(handle);
    }
    let mut threads = Threads {
        threads: handles.iter().map(|h| h.thread().clone()).collect(),
        rings: batch_rings,
    };
    ready();
    let end = read_all(reader, n, &mut threads, stop, filter.as_mut());
    // Dropping the rings tells every worker the reading is over; the
    // unparks below wake those waiting for their last batches.
    drop(threads);
    let mut counters = PipelineCounters::default();
    let mut tap_counts = Vec::with_capacity(n);
    let mut worker_packets = Vec::with_capacity(n);
    for h in handles {
        h.thread().unpark();
        let (c, t) = h
            .join()
            .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
        worker_packets.push(c.as_ref().map_or(0, |c| c.tracker.packets));
        if let Some(c) = c {
            counters.merge(&c);
        }
        tap_counts.push(t);
    }
    let writer = writer.finish()?;
    let pcap = pcap.map(|p| p.finish(&tap_counts)).transpose()?;
    Ok(OfflineReport {
        pcap,
        counters,
        reader: reader.stats(),
        writer,
        workers: n,
        worker_packets,
        error: end.error,
        interrupted: end.interrupted,
        filter,
        filter_error: end.filter_error,
        fragments_unsteered: end.unsteered,
    })
}
