//! [`Outputs`]: the writer stage, the one place records are written, live
//! and offline. It holds every output opened from the `--output`
//! specifications (EVE files or standard output, Zeek log directories,
//! IPFIX collectors), encodes each record once per format and gives it to
//! every output of that format, and keeps each output's own counts.
//!
//! EVE outputs get every record, with its flow's Community ID (computed
//! once per flow, see `community`); Zeek outputs get flow records
//! (conn.log) and L7 records (their logs, see `zeek_logs`); IPFIX outputs
//! get flow records.
//! An output that fails keeps its first error and drops (and counts) every
//! record after it; the other outputs go on.
//!
//! Each output is reopened from its specification through one function
//! (`open_sink`): time/size rotation of EVE files uses it, and so can a
//! reopen on a signal.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::community::CommunityIds;
use super::eve::EveEncoder;
use super::ipfix::{IpfixConfig, IpfixExporter};
use super::record::{FlowEnd, FlowHeader, Record};
use super::spec::{OutputSpec, SpecError};
use super::zeek_logs::ZeekLogs;
use crate::l7::L7Record;
use crate::view::Timestamp;

/// How files are opened and rotated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileOptions {
    /// Append to an existing EVE file (live) rather than truncate it
    /// (offline).
    pub append: bool,
    /// Rotate an EVE file when it reaches this many bytes.
    pub rotate_bytes: Option<u64>,
    /// Rotate an EVE file after it has been open this long.
    pub rotate_after: Option<Duration>,
}

/// One output's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputReport {
    /// Its specification.
    pub spec: String,
    /// Records written (IPFIX: sent to the collector).
    pub written: u64,
    /// Records dropped (failed write, full IPFIX queue, collector gone).
    pub dropped: u64,
    /// The first error, if any (records after it were dropped).
    pub error: Option<String>,
}

/// What the writer stage did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records the stage took (written to every output concerned, or
    /// counted when there is no output).
    pub records: u64,
    /// EVE files rotated.
    pub rotations: u64,
    /// Every output, in the order given.
    pub outputs: Vec<OutputReport>,
}

/// An EVE destination: standard output or a file.
struct EveSink {
    path: Option<PathBuf>,
    out: BufWriter<Box<dyn Write + Send>>,
    written: u64,
    opened: Instant,
}

enum Sink {
    Eve(EveSink),
    Zeek(Box<ZeekLogs>),
    Ipfix(IpfixExporter),
}

struct Output {
    spec: String,
    sink: Sink,
    dropped: u64,
    error: Option<io::Error>,
}

impl Output {
    /// Counts `result`: the first error is kept, and a record that was not
    /// written is dropped.
    fn account(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            self.dropped += 1;
            self.error.get_or_insert(e);
        }
    }
}

/// The writer stage. See the [module docs](self).
pub struct Outputs {
    outputs: Vec<Output>,
    files: FileOptions,
    eve: EveEncoder,
    ids: CommunityIds,
    any_eve: bool,
    records: u64,
    rotations: u64,
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs")
            .field(
                "outputs",
                &self.outputs.iter().map(|o| &o.spec).collect::<Vec<_>>(),
            )
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

fn open_err(spec: &str, what: &Path) -> impl FnOnce(io::Error) -> SpecError {
    let (spec, what) = (spec.to_owned(), what.display().to_string());
    move |source| SpecError::Open { spec, what, source }
}

fn open_eve(path: Option<&Path>, append: bool) -> io::Result<EveSink> {
    let out: Box<dyn Write + Send> = match path {
        None => Box::new(io::stdout()),
        Some(p) => Box::new(
            File::options()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(p)?,
        ),
    };
    Ok(EveSink {
        path: path.map(Path::to_owned),
        out: BufWriter::with_capacity(1 << 16, out),
        written: 0,
        opened: Instant::now(),
    })
}

/// Opens the sink of one specification.
fn open_sink(spec: &OutputSpec, label: &str, files: FileOptions) -> Result<Sink, SpecError> {
    Ok(match spec {
        OutputSpec::Eve(path) => Sink::Eve(
            open_eve(path.as_deref(), files.append)
                .map_err(open_err(label, path.as_deref().unwrap_or(Path::new("-"))))?,
        ),
        OutputSpec::Zeek {
            dir,
            format,
            local_nets,
        } => Sink::Zeek(Box::new(
            ZeekLogs::open(dir, *format, local_nets.clone())
                .map_err(|(path, e)| open_err(label, &path)(e))?,
        )),
        OutputSpec::Ipfix(s) => {
            let what = format!("collector {}", s.collector);
            let err = |source| SpecError::Open {
                spec: label.to_owned(),
                what: what.clone(),
                source,
            };
            let collector: SocketAddr = s
                .collector
                .to_socket_addrs()
                .map_err(err)?
                .next()
                .ok_or_else(|| {
                    err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "the name has no address",
                    ))
                })?;
            let config = IpfixConfig {
                mode: s.mode,
                domain_id: s.domain_id,
                ingress_interface: s.ingress_interface,
                mtu: s.mtu,
                ..IpfixConfig::new(s.transport, collector)
            };
            Sink::Ipfix(IpfixExporter::start(config).map_err(err)?)
        }
    })
}

impl Outputs {
    /// Opens every specification, in order.
    ///
    /// # Errors
    ///
    /// The first specification that cannot be opened (what and why).
    pub fn open(specs: &[OutputSpec], files: FileOptions) -> Result<Self, SpecError> {
        let mut outputs = Vec::with_capacity(specs.len());
        for spec in specs {
            let label = spec.to_string();
            outputs.push(Output {
                sink: open_sink(spec, &label, files)?,
                spec: label,
                dropped: 0,
                error: None,
            });
        }
        Ok(Self {
            any_eve: outputs.iter().any(|o| matches!(o.sink, Sink::Eve(_))),
            outputs,
            files,
            eve: EveEncoder::new(),
            ids: CommunityIds::default(),
            records: 0,
            rotations: 0,
        })
    }

    /// True when an EVE output is open: ICMP flow records then need the type
    /// and code of their first packet for their Community ID.
    pub fn wants_community_id(&self) -> bool {
        self.any_eve
    }

    /// Writes one record to every output it concerns.
    pub fn write(&mut self, record: &Record) {
        self.records += 1;
        if self.any_eve {
            let id = self.ids.of(record);
            let line = self.eve.encode(record, id.as_ref());
            for o in &mut self.outputs {
                let Sink::Eve(e) = &mut o.sink else { continue };
                if o.error.is_some() {
                    o.dropped += 1;
                    continue;
                }
                let result = match &line {
                    Ok(line) => e.out.write_all(line).map(|()| e.written += 1),
                    Err(err) => Err(io::Error::new(err.kind(), err.to_string())),
                };
                o.account(result);
            }
        }
        match record {
            Record::Flow(f) => self.write_flow(f),
            Record::L7 { header, ts, record } => self.write_l7(header, *ts, record),
            Record::Anomaly { .. } | Record::Interval(_) => {}
        }
    }

    /// Gives an L7 record to the Zeek outputs (its log).
    fn write_l7(&mut self, header: &FlowHeader, ts: Timestamp, r: &L7Record) {
        for o in &mut self.outputs {
            let Sink::Zeek(z) = &mut o.sink else { continue };
            if o.error.is_some() {
                o.dropped += 1;
                continue;
            }
            let result = z.l7(header, ts, r);
            o.account(result);
        }
    }

    /// Gives a flow record to the Zeek and IPFIX outputs.
    fn write_flow(&mut self, f: &FlowEnd) {
        for o in &mut self.outputs {
            if matches!(o.sink, Sink::Eve(_)) {
                continue;
            }
            if o.error.is_some() {
                o.dropped += 1;
                continue;
            }
            let result = match &mut o.sink {
                Sink::Zeek(w) => w.flow(f),
                Sink::Ipfix(x) => {
                    x.flow(&f.flow, f.reason);
                    Ok(())
                }
                Sink::Eve(_) => Ok(()),
            };
            o.account(result);
        }
    }

    /// Pushes buffered records out (files flushed, IPFIX messages sent).
    pub fn flush(&mut self) {
        for o in &mut self.outputs {
            let result = match &mut o.sink {
                Sink::Eve(e) => e.out.flush(),
                Sink::Zeek(w) => w.flush(),
                Sink::Ipfix(x) => {
                    x.flush();
                    Ok(())
                }
            };
            if let Err(e) = result {
                o.error.get_or_insert(e);
            }
        }
    }

    /// Rotates every EVE file past its size or age bound: renamed to
    /// `FILE.<unix seconds>` (`.N` added if taken), a new file opened.
    pub fn rotate_due(&mut self) {
        let files = self.files;
        if files.rotate_bytes.is_none() && files.rotate_after.is_none() {
            return;
        }
        for o in &mut self.outputs {
            let Sink::Eve(e) = &mut o.sink else { continue };
            let Some(path) = e.path.clone() else { continue };
            if o.error.is_some() {
                continue;
            }
            let too_big = files
                .rotate_bytes
                .is_some_and(|limit| std::fs::metadata(&path).is_ok_and(|m| m.len() >= limit));
            let too_old = files
                .rotate_after
                .is_some_and(|age| e.opened.elapsed() >= age);
            if !(too_big || too_old) {
                continue;
            }
            match rotate(e, &path, files.append) {
                Ok(()) => self.rotations += 1,
                Err(err) => o.error = Some(err),
            }
        }
    }

    /// Flushes and closes every output (IPFIX: sends what is queued, within
    /// its finish timeout) and reports on each.
    pub fn finish(self) -> WriterStats {
        let outputs = self
            .outputs
            .into_iter()
            .map(|o| {
                let (written, dropped, err) = match o.sink {
                    Sink::Eve(mut e) => (e.written, 0, e.out.flush().err()),
                    Sink::Zeek(w) => {
                        let (written, result) = w.finish();
                        (written, 0, result.err())
                    }
                    Sink::Ipfix(x) => {
                        let st = x.finish();
                        (st.records_sent, st.records_dropped, None)
                    }
                };
                OutputReport {
                    spec: o.spec,
                    written,
                    dropped: dropped + o.dropped,
                    error: o.error.or(err).map(|e| e.to_string()),
                }
            })
            .collect();
        WriterStats {
            records: self.records,
            rotations: self.rotations,
            outputs,
        }
    }
}

/// Flushes `e`, renames its file aside and opens a fresh one.
fn rotate(e: &mut EveSink, path: &Path, append: bool) -> io::Result<()> {
    e.out.flush()?;
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
    std::fs::rename(path, &target)?;
    let written = e.written;
    *e = open_eve(Some(path), append)?;
    e.written = written;
    Ok(())
}
