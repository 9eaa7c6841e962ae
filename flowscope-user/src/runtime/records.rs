//! Records from every worker to one writer: a bounded single-producer ring
//! per worker, drained by a writer thread that formats EVE JSON lines and
//! rotates the output file by size or age. A slow writer never blocks a
//! worker: a full ring drops the record and the worker counts it.

use crate::offline::{community_id, endpoints};
use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::extract::FiveTupleKey;
use crate::l7::L7Record;
use crate::output::EveWriter;
use crate::output::spec::{FlowExtras, OutputSpec, WriterSet};
use crate::pipeline::FlowSummary;
use crate::tracker::{EndReason, FlowRecord};
use crate::view::Timestamp;

/// What a worker sends to the writer.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "flow records, the common message, travel inline in the preallocated ring: boxing them would allocate per flow"
)]
pub enum RecordMsg {
    /// A finished (or interim) flow record, copied out of the worker's table.
    Flow {
        /// The record.
        flow: FlowRecord<FiveTupleKey>,
        /// Why it ended (`ActiveTimeout` for interim records).
        reason: EndReason,
        /// What reassembly and parsing did, when the pipeline kept state.
        summary: Option<FlowSummary>,
    },
    /// A record already formatted as one EVE line (without the newline),
    /// e.g. the control thread's per-interval anomaly record.
    Line(String),
    /// An L7 record (HTTP, TLS, DNS) with its flow's identity.
    L7 {
        /// The flow at the time of the record.
        flow: Box<FlowRecord<FiveTupleKey>>,
        /// Packet time of the record.
        ts: Timestamp,
        /// The record.
        record: Box<L7Record>,
    },
}

impl RecordMsg {
    /// A flow record message (copied out of the table).
    pub fn flow(
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
        summary: Option<&FlowSummary>,
    ) -> Self {
        Self::Flow {
            flow: *flow,
            reason,
            summary: summary.copied(),
        }
    }

    /// An L7 record message; allocates per message (as parsers do), never
    /// per packet.
    pub fn l7(flow: &FlowRecord<FiveTupleKey>, ts: Timestamp, record: L7Record) -> Self {
        Self::L7 {
            flow: Box::new(*flow),
            ts,
            record: Box::new(record),
        }
    }
}

/// Where records go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Nowhere: records are counted, not kept.
    Discard,
    /// Standard output.
    Stdout,
    /// A file, rotated when it exceeds `rotate_bytes` or gets older than
    /// `rotate_after` (either optional): renamed to `FILE.<unix seconds>`.
    File {
        /// Path.
        path: PathBuf,
        /// Size bound.
        rotate_bytes: Option<u64>,
        /// Age bound.
        rotate_after: Option<Duration>,
    },
}

/// What the writer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records written to the EVE output.
    pub written: u64,
    /// EVE files rotated.
    pub rotations: u64,
    /// The other outputs (IPFIX, Zeek), each with its counts.
    pub outputs: Vec<OutputReport>,
}

/// One non-EVE output's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputReport {
    /// Its specification.
    pub spec: String,
    /// Flow records written or sent.
    pub written: u64,
    /// Flow records dropped (queue overflow, collector gone, write error).
    pub dropped: u64,
    /// The first error, if any.
    pub error: Option<String>,
}

/// The writer thread and the flag that tells it to drain and stop.
pub struct RecordWriter {
    done: Arc<AtomicBool>,
    thread: JoinHandle<io::Result<WriterStats>>,
}

impl RecordWriter {
    /// Creates one ring of `capacity` records per producer and starts the
    /// writer, which writes EVE (flows, L7, lines) to `dest` and flow
    /// records to every output in `others` (IPFIX, Zeek); returns the
    /// producers, in order.
    ///
    /// # Errors
    ///
    /// The output file cannot be created, or the thread cannot start.
    pub fn start(
        producers_wanted: usize,
        capacity: usize,
        dest: Destination,
        others: &[OutputSpec],
    ) -> io::Result<(Self, Vec<rtrb::Producer<RecordMsg>>)> {
        let mut producers = Vec::with_capacity(producers_wanted);
        let mut consumers = Vec::with_capacity(producers_wanted);
        for _ in 0..producers_wanted {
            let (p, c) = rtrb::RingBuffer::new(capacity.max(1));
            producers.push(p);
            consumers.push(c);
        }
        let mut out = Output::open(dest)?;
        let mut set =
            WriterSet::open(others.iter().map(|o| (o, o.to_string()))).map_err(io::Error::other)?;
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("fs-writer".into())
            .spawn(move || {
                let mut stats = WriterStats::default();
                loop {
                    // Read the flag before draining: after it is set, one more
                    // full pass empties every ring.
                    let last = flag.load(Ordering::Acquire);
                    let mut any = false;
                    for c in &mut consumers {
                        while let Ok(msg) = c.pop() {
                            out.write(&msg)?;
                            if let RecordMsg::Flow {
                                flow,
                                reason,
                                summary,
                            } = &msg
                            {
                                let extras = FlowExtras {
                                    community_id: None,
                                    summary: summary.as_ref(),
                                };
                                set.flow(flow, *reason, &extras);
                            }
                            stats.written += 1;
                            any = true;
                        }
                    }
                    stats.rotations += u64::from(out.maybe_rotate()?);
                    if last {
                        break;
                    }
                    if !any {
                        out.flush()?;
                        set.flush();
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                out.flush()?;
                stats.outputs = set
                    .finish()
                    .into_iter()
                    .map(|r| OutputReport {
                        spec: r.spec,
                        written: r.written,
                        dropped: r.dropped,
                        error: r.error.map(|e| e.to_string()),
                    })
                    .collect();
                Ok(stats)
            })?;
        Ok((Self { done, thread }, producers))
    }

    /// Drains every ring, flushes and stops the writer.
    ///
    /// # Errors
    ///
    /// A write failed (the first error is returned) or the thread panicked.
    pub fn finish(self) -> io::Result<WriterStats> {
        self.done.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| io::Error::other("record writer thread panicked"))?
    }
}

/// The writer's output, with rotation.
struct Output {
    dest: Destination,
    eve: EveWriter<BufWriter<Box<dyn Write + Send>>>,
    opened: Instant,
}

impl Output {
    fn open(dest: Destination) -> io::Result<Self> {
        let sink: Box<dyn Write + Send> = match &dest {
            Destination::Discard => Box::new(io::sink()),
            Destination::Stdout => Box::new(io::stdout()),
            Destination::File { path, .. } => Box::new(
                File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
            ),
        };
        Ok(Self {
            dest,
            eve: EveWriter::new(BufWriter::new(sink)),
            opened: Instant::now(),
        })
    }

    fn write(&mut self, msg: &RecordMsg) -> io::Result<()> {
        match msg {
            RecordMsg::Flow {
                flow,
                reason,
                summary,
            } => {
                let (ep, id) = (endpoints(flow), community_id(flow, None));
                self.eve
                    .write_flow_summary(flow, *reason, &ep, Some(id.as_str()), summary.as_ref())
            }
            RecordMsg::L7 { flow, ts, record } => {
                let (ep, id) = (endpoints(flow), community_id(flow, None));
                self.eve.write_l7(flow, *ts, &ep, Some(id.as_str()), record)
            }
            RecordMsg::Line(line) => self.eve.write_line(line.as_bytes()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.eve.flush()
    }

    /// Rotates when a bound is passed; true if it did.
    fn maybe_rotate(&mut self) -> io::Result<bool> {
        let Destination::File {
            path,
            rotate_bytes,
            rotate_after,
        } = self.dest.clone()
        else {
            return Ok(false);
        };
        let too_big = match rotate_bytes {
            Some(limit) => std::fs::metadata(&path)
                .map(|m| m.len() >= limit)
                .unwrap_or(false),
            None => false,
        };
        let too_old = rotate_after.is_some_and(|age| self.opened.elapsed() >= age);
        if !(too_big || too_old) {
            return Ok(false);
        }
        self.flush()?;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut target = PathBuf::from(format!("{}.{secs}", path.display()));
        let mut n = 1;
        while target.exists() {
            target = PathBuf::from(format!("{}.{secs}.{n}", path.display()));
            n += 1;
        }
        std::fs::rename(&path, &target)?;
        *self = Self::open(self.dest.clone())?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(flow: FlowRecord<FiveTupleKey>) -> RecordMsg {
        RecordMsg::Flow {
            flow,
            reason: EndReason::IdleTimeout,
            summary: None,
        }
    }

    #[test]
    fn every_ring_is_drained_into_one_output_and_rotated_by_size() {
        let dir = std::env::temp_dir().join(format!("fs-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("eve.json");
        let dest = Destination::File {
            path: path.clone(),
            rotate_bytes: Some(2000),
            rotate_after: None,
        };
        let (writer, mut producers) = RecordWriter::start(2, 64, dest, &[]).unwrap();
        let recs = super::super::test_records::records(40);
        for (i, r) in recs.iter().enumerate() {
            producers[i % 2].push(msg(*r)).unwrap();
            if i % 10 == 9 {
                // Let the writer see the size bound between bursts.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let stats = writer.finish().unwrap();
        assert_eq!(stats.written, 40);
        assert!(stats.rotations >= 1, "{stats:?}");
        let mut lines = 0;
        let mut files = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            lines += text
                .lines()
                .inspect(|l| assert!(l.contains("\"event_type\":\"flow\"")))
                .count();
            files += 1;
        }
        assert_eq!(lines, 40, "every record once, across {files} files");
        assert_eq!(files as u64, stats.rotations + 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
