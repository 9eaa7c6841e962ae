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
//!
//! Every output counts the records it took (a Zeek output: the log lines
//! it formed, as one L7 record may give none or several, plus the records
//! it refused once failed): written (a file's bytes
//! accepted by the kernel, see `file`; an IPFIX message sent), failed (a
//! write or send that failed) and dropped (never tried: the output had
//! already failed, or the IPFIX queue was full); the rest are still
//! buffered. At [`finish`](Outputs::finish) nothing is buffered, so
//! `records = written + failed + dropped` for each output. An output that
//! fails keeps its first error and drops every record after it; the other
//! outputs go on.
//!
//! Files are appended to unless [`FileOptions::overwrite`]; every file
//! output (EVE files, each Zeek log) is reopened through one function
//! (`RecordFile::reopen`), for time/size rotation and for
//! [`reopen`](Outputs::reopen) (SIGHUP, after logrotate moved the files).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use super::community::FlowIdCache;
use super::eve::{EveEncoder, EveOptions};
use super::file::RecordFile;
use super::ipfix::{IpfixConfig, IpfixExporter};
use super::record::{FlowEnd, FlowHeader, Record};
use super::spec::{OutputSpec, SpecError};
use super::zeek_logs::ZeekLogs;
use super::zeek_tunnel::TunnelAction;
use crate::extractor::Encap;
use crate::l7::L7Record;
use crate::view::Timestamp;

/// How outputs are opened, rotated and closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileOptions {
    /// Truncate existing files instead of appending to them (the default,
    /// as Suricata does).
    pub overwrite: bool,
    /// Rotate a file output when it reaches this many bytes.
    pub rotate_bytes: Option<u64>,
    /// Rotate a file output after it has been open this long.
    pub rotate_after: Option<Duration>,
    /// How long closing waits for a collector to take what is queued
    /// before counting it failed (default 5 s).
    pub close_wait: Duration,
}

/// The default wait for a collector at close.
pub const DEFAULT_CLOSE_WAIT: Duration = Duration::from_secs(5);

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            overwrite: false,
            rotate_bytes: None,
            rotate_after: None,
            close_wait: DEFAULT_CLOSE_WAIT,
        }
    }
}

/// One output's counts and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputReport {
    /// Its static name: kind and position among the outputs (`eve0`,
    /// `zeek1`, `ipfix2`), the `output` label of its metrics.
    pub name: String,
    /// Its specification.
    pub spec: String,
    /// Records it took.
    pub records: u64,
    /// Records written (a file: bytes accepted by the kernel; IPFIX: sent).
    pub written: u64,
    /// Records never tried: the output had failed, or the IPFIX queue was
    /// full.
    pub dropped: u64,
    /// Records whose write or send failed (IPFIX: also those still queued
    /// when the close wait ran out).
    pub failed: u64,
    /// Bytes of a partial last line an earlier run left, trimmed when the
    /// file was opened for appending.
    pub trimmed: u64,
    /// The first error, if any.
    pub error: Option<String>,
}

impl OutputReport {
    /// Records still buffered or queued: taken, neither written nor lost.
    pub fn pending(&self) -> u64 {
        self.records
            .saturating_sub(self.written + self.dropped + self.failed)
    }

    /// True when a record was lost or an error happened.
    pub fn lost_any(&self) -> bool {
        self.dropped > 0 || self.failed > 0 || self.error.is_some()
    }

    /// One line: the name, spec and counts.
    pub fn line(&self) -> String {
        format!(
            "output {} ({}): {} records, {} written, {} dropped, {} failed",
            self.name, self.spec, self.records, self.written, self.dropped, self.failed
        )
    }
}

/// What the writer stage did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records the stage took (given to every output concerned, or
    /// counted when there is no output).
    pub records: u64,
    /// Files rotated.
    pub rotations: u64,
    /// Reopens asked for ([`Outputs::reopen`]).
    pub reopens: u64,
    /// Every output, in the order given.
    pub outputs: Vec<OutputReport>,
}

enum Sink {
    Eve(RecordFile),
    Zeek(Box<ZeekLogs>),
    Ipfix(IpfixExporter),
}

struct Output {
    name: String,
    spec: String,
    sink: Sink,
    records: u64,
    dropped: u64,
    /// Records that failed outside the sink's own counts (an EVE record
    /// that could not be encoded).
    failed: u64,
    error: Option<io::Error>,
}

impl Output {
    /// Takes one record: false (and counted dropped) when the output has
    /// failed.
    fn take(&mut self) -> bool {
        self.records += 1;
        if self.error.is_some() {
            self.dropped += 1;
            return false;
        }
        true
    }

    /// Keeps the first error.
    fn fail(&mut self, e: io::Error) {
        self.error.get_or_insert(e);
    }

    fn report(&self) -> OutputReport {
        let (written, dropped, failed, trimmed) = match &self.sink {
            Sink::Eve(f) => (f.written, 0, f.failed, f.trimmed),
            Sink::Zeek(z) => {
                let c = z.counts();
                (c.written, 0, c.failed, c.trimmed)
            }
            Sink::Ipfix(x) => {
                let st = x.stats();
                (
                    st.records_sent,
                    st.queue_overflow,
                    st.records_dropped - st.queue_overflow,
                    0,
                )
            }
        };
        let records = match &self.sink {
            // Log lines formed, and records refused once failed.
            Sink::Zeek(z) => {
                let c = z.counts();
                c.written + c.failed + c.pending + self.dropped
            }
            Sink::Eve(_) | Sink::Ipfix(_) => self.records,
        };
        OutputReport {
            name: self.name.clone(),
            spec: self.spec.clone(),
            records,
            written,
            dropped: dropped + self.dropped,
            failed: failed + self.failed,
            trimmed,
            error: self.error.as_ref().map(ToString::to_string),
        }
    }
}

/// The writer stage: every output opened from the `--output`
/// specifications; each record is encoded once per format, given to every
/// output of that format and counted per output.
pub struct Outputs {
    outputs: Vec<Output>,
    files: FileOptions,
    eve: EveEncoder,
    ids: FlowIdCache,
    any_eve: bool,
    records: u64,
    rotations: u64,
    reopens: u64,
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

/// Opens the sink of one specification.
fn open_sink(spec: &OutputSpec, label: &str, files: FileOptions) -> Result<Sink, SpecError> {
    let append = !files.overwrite;
    Ok(match spec {
        OutputSpec::Eve(path) => Sink::Eve(
            RecordFile::open(path.as_deref(), append)
                .map_err(open_err(label, path.as_deref().unwrap_or(Path::new("-"))))?,
        ),
        OutputSpec::Zeek {
            dir,
            format,
            local_nets,
        } => {
            if dir.exists() && !dir.is_dir() {
                return Err(SpecError::Invalid {
                    spec: label.to_owned(),
                    problem: format!(
                        "{} is a file, but a Zeek output needs a directory (it writes its logs there)",
                        dir.display()
                    ),
                });
            }
            Sink::Zeek(Box::new(
                ZeekLogs::open(dir, *format, local_nets.clone(), append)
                    .map_err(|(path, e)| open_err(label, &path)(e))?,
            ))
        }
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
                finish_timeout: files.close_wait,
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
        for (i, spec) in specs.iter().enumerate() {
            let label = spec.to_string();
            outputs.push(Output {
                name: format!("{}{i}", spec.kind()),
                sink: open_sink(spec, &label, files)?,
                spec: label,
                records: 0,
                dropped: 0,
                failed: 0,
                error: None,
            });
        }
        Ok(Self {
            any_eve: outputs.iter().any(|o| matches!(o.sink, Sink::Eve(_))),
            outputs,
            files,
            eve: EveEncoder::new(),
            ids: FlowIdCache::default(),
            records: 0,
            rotations: 0,
            reopens: 0,
        })
    }

    /// EVE lines from now on as `opts` asks.
    #[must_use]
    pub fn with_eve(mut self, opts: EveOptions) -> Self {
        self.eve = EveEncoder::with_options(opts);
        self
    }

    /// Writes one record to every output it concerns.
    pub fn write(&mut self, record: &Record) {
        self.records += 1;
        if self.any_eve {
            let id = self.ids.of(record);
            let line = self.eve.encode(record, id.as_ref());
            // An empty line is a record EVE does not write (an anomaly
            // interval without the extras): no EVE output takes it.
            let outputs = if matches!(line, Ok([])) {
                &mut []
            } else {
                &mut self.outputs[..]
            };
            for o in outputs {
                if !matches!(o.sink, Sink::Eve(_)) || !o.take() {
                    continue;
                }
                let Sink::Eve(e) = &mut o.sink else { continue };
                let result = match &line {
                    Ok(line) => io::Write::write_all(e, line).and_then(|()| e.end_record()),
                    Err(err) => {
                        o.failed += 1;
                        Err(io::Error::new(err.kind(), err.to_string()))
                    }
                };
                if let Err(err) = result {
                    o.fail(err);
                }
            }
        }
        match record {
            Record::Flow(f) => self.write_flow(f),
            Record::L7 { header, ts, record } => self.write_l7(header, *ts, record),
            Record::TunnelFound { header, encap, ts } => self.write_tunnel(header, *encap, *ts),
            Record::Anomaly { .. } | Record::Interval(_) => {}
        }
    }

    /// Gives a tunnel's discovery to the Zeek outputs (tunnel.log).
    fn write_tunnel(&mut self, header: &FlowHeader, encap: Encap, ts: Timestamp) {
        for o in &mut self.outputs {
            if !matches!(o.sink, Sink::Zeek(_)) || !o.take() {
                continue;
            }
            let Sink::Zeek(z) = &mut o.sink else { continue };
            if let Err(e) = z.tunnel(header, encap, ts, TunnelAction::Discover) {
                o.fail(e);
            }
        }
    }

    /// Gives an L7 record to the Zeek outputs (its log).
    fn write_l7(&mut self, header: &FlowHeader, ts: Timestamp, r: &L7Record) {
        for o in &mut self.outputs {
            if !matches!(o.sink, Sink::Zeek(_)) || !o.take() {
                continue;
            }
            let Sink::Zeek(z) = &mut o.sink else { continue };
            if let Err(e) = z.l7(header, ts, r) {
                o.fail(e);
            }
        }
    }

    /// Gives a flow record to the Zeek and IPFIX outputs.
    fn write_flow(&mut self, f: &FlowEnd) {
        for o in &mut self.outputs {
            if matches!(o.sink, Sink::Eve(_)) || !o.take() {
                continue;
            }
            let result = match &mut o.sink {
                Sink::Zeek(z) => z.flow(f),
                Sink::Ipfix(x) => {
                    x.flow(&f.flow, f.reason);
                    Ok(())
                }
                Sink::Eve(_) => Ok(()),
            };
            if let Err(e) = result {
                o.fail(e);
            }
        }
    }

    /// Pushes buffered records out (files written, IPFIX messages sent).
    pub fn flush(&mut self) {
        for o in &mut self.outputs {
            let result = match &mut o.sink {
                Sink::Eve(e) => io::Write::flush(e),
                Sink::Zeek(w) => w.flush(),
                Sink::Ipfix(x) => {
                    x.flush();
                    Ok(())
                }
            };
            if let Err(e) = result {
                o.fail(e);
            }
        }
    }

    /// Rotates every file output past its size or age bound: renamed to
    /// `FILE.<unix seconds>` (`.N` added if taken), a new file opened.
    pub fn rotate_due(&mut self) {
        let files = self.files;
        if files.rotate_bytes.is_none() && files.rotate_after.is_none() {
            return;
        }
        for o in &mut self.outputs {
            if o.error.is_some() {
                continue;
            }
            let result = match &mut o.sink {
                Sink::Eve(e) if e.due(files.rotate_bytes, files.rotate_after) => {
                    e.reopen(true).map(|()| 1)
                }
                Sink::Zeek(z) => z.cycle(&files, false),
                Sink::Eve(_) | Sink::Ipfix(_) => Ok(0),
            };
            match result {
                Ok(n) => self.rotations += n,
                Err(e) => o.fail(e),
            }
        }
    }

    /// Reopens every file output at its path (SIGHUP): what was buffered
    /// goes to the old file first, so no record is lost or written twice;
    /// a file an outside rotation moved away is created anew. Standard
    /// output and collectors are left as they are.
    pub fn reopen(&mut self) {
        self.reopens += 1;
        let files = self.files;
        for o in &mut self.outputs {
            if o.error.is_some() {
                continue;
            }
            let result = match &mut o.sink {
                Sink::Eve(e) if e.path().is_some() => e.reopen(false),
                Sink::Zeek(z) => z.cycle(&files, true).map(drop),
                Sink::Eve(_) | Sink::Ipfix(_) => Ok(()),
            };
            if let Err(e) = result {
                o.fail(e);
            }
        }
    }

    /// Every output's counts now (records still buffered are pending).
    pub fn reports(&self) -> Vec<OutputReport> {
        self.outputs.iter().map(Output::report).collect()
    }

    /// Flushes and closes every output (IPFIX: sends what is queued, within
    /// [`FileOptions::close_wait`]) and reports on each.
    pub fn finish(self) -> WriterStats {
        let outputs = self
            .outputs
            .into_iter()
            .map(|mut o| {
                let result = match &mut o.sink {
                    Sink::Eve(e) => io::Write::flush(e),
                    Sink::Zeek(z) => z.close(),
                    Sink::Ipfix(_) => Ok(()),
                };
                if let Err(e) = result {
                    o.fail(e);
                }
                let mut report = o.report();
                if let Sink::Ipfix(x) = o.sink {
                    let st = x.finish();
                    report.written = st.records_sent;
                    report.dropped = st.queue_overflow + o.dropped;
                    report.failed = st.records_dropped - st.queue_overflow + o.failed;
                    if report.failed > 0 && report.error.is_none() {
                        report.error = Some(format!(
                            "{} records not sent to the collector (unreachable, or it stopped reading)",
                            report.failed
                        ));
                    }
                }
                report
            })
            .collect();
        WriterStats {
            records: self.records,
            rotations: self.rotations,
            reopens: self.reopens,
            outputs,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::tracker::EndReason;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fs-outputs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn flows(n: u16) -> Vec<Record> {
        crate::runtime::test_records::records(n)
            .iter()
            .map(|r| Record::flow(r, EndReason::IdleTimeout, None, None))
            .collect()
    }

    /// Record lines of a file: EVE lines, or Zeek lines that are not `#`.
    fn lines(p: &Path) -> usize {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count()
    }

    fn balanced(r: &OutputReport) {
        assert_eq!(r.records, r.written + r.dropped + r.failed, "{r:?}");
    }

    #[test]
    fn a_full_disk_fails_its_records_and_the_other_outputs_go_on() {
        let d = dir("full");
        let specs = [
            OutputSpec::Eve(Some("/dev/full".into())),
            OutputSpec::Eve(Some(d.join("eve.json"))),
        ];
        let mut out = Outputs::open(&specs, FileOptions::default()).unwrap();
        for r in &flows(30) {
            out.write(r);
        }
        // Nothing was accepted yet: buffered records are pending.
        let live = out.reports();
        assert_eq!((live[0].written, live[0].pending()), (0, 30));
        let stats = out.finish();
        let (full, file) = (&stats.outputs[0], &stats.outputs[1]);
        assert_eq!((full.name.as_str(), file.name.as_str()), ("eve0", "eve1"));
        assert_eq!((full.written, full.failed, full.dropped), (0, 30, 0));
        assert!(
            full.error.as_deref().unwrap().contains("No space left"),
            "{full:?}"
        );
        assert_eq!((file.written, file.failed), (30, 0));
        assert_eq!(lines(&d.join("eve.json")), 30);
        stats.outputs.iter().for_each(balanced);
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// As logrotate does: rename every file, then ask for a reopen; the
    /// records before it are in the old files, those after in new ones,
    /// none lost or twice.
    #[test]
    fn a_reopen_after_an_outside_rename_splits_the_records_exactly() {
        let d = dir("reopen");
        let (eve, zeek) = (d.join("eve.json"), d.join("zeek"));
        let specs = [
            OutputSpec::Eve(Some(eve.clone())),
            format!("zeek:{}", zeek.display()).parse().unwrap(),
        ];
        let mut out = Outputs::open(&specs, FileOptions::default()).unwrap();
        let recs = flows(50);
        for r in &recs[..20] {
            out.write(r);
        }
        std::fs::rename(&eve, d.join("eve.json.1")).unwrap();
        std::fs::rename(zeek.join("conn.log"), zeek.join("conn.log.1")).unwrap();
        out.reopen();
        for r in &recs[20..] {
            out.write(r);
        }
        let stats = out.finish();
        assert_eq!(stats.reopens, 1);
        assert_eq!((lines(&d.join("eve.json.1")), lines(&eve)), (20, 30));
        let old = std::fs::read_to_string(zeek.join("conn.log.1")).unwrap();
        assert!(old.lines().last().unwrap().starts_with("#close"), "{old}");
        assert_eq!(
            (
                lines(&zeek.join("conn.log.1")),
                lines(&zeek.join("conn.log"))
            ),
            (20, 30)
        );
        for o in &stats.outputs {
            assert_eq!((o.written, o.error.as_deref()), (50, None), "{o:?}");
            balanced(o);
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn zeek_logs_rotate_by_size_and_files_are_appended_to_unless_overwrite() {
        let d = dir("zrotate");
        let zeek = d.join("zeek");
        let specs: [OutputSpec; 1] = [format!("zeek-json:{}", zeek.display()).parse().unwrap()];
        let files = FileOptions {
            rotate_bytes: Some(1500),
            ..FileOptions::default()
        };
        let mut out = Outputs::open(&specs, files).unwrap();
        for (i, r) in flows(40).iter().enumerate() {
            out.write(r);
            if i % 10 == 9 {
                out.rotate_due();
            }
        }
        let stats = out.finish();
        assert!(stats.rotations >= 2, "{stats:?}");
        let total: usize = std::fs::read_dir(&zeek)
            .unwrap()
            .map(|e| lines(&e.unwrap().path()))
            .sum();
        assert_eq!(total, 40);
        // Appending (the default), then overwriting.
        let conn = zeek.join("conn.log");
        let before = lines(&conn);
        let mut out = Outputs::open(&specs, FileOptions::default()).unwrap();
        flows(3).iter().for_each(|r| out.write(r));
        out.finish();
        assert_eq!(lines(&conn), before + 3);
        let files = FileOptions {
            overwrite: true,
            ..FileOptions::default()
        };
        let mut out = Outputs::open(&specs, files).unwrap();
        flows(2).iter().for_each(|r| out.write(r));
        out.finish();
        assert_eq!(lines(&conn), 2);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_zeek_output_on_a_file_says_it_needs_a_directory() {
        let d = dir("zfile");
        let f = d.join("logs");
        std::fs::write(&f, "x").unwrap();
        let spec: OutputSpec = format!("zeek:{}", f.display()).parse().unwrap();
        let e = Outputs::open(&[spec], FileOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("is a file, but a Zeek output needs a directory"),
            "{e}"
        );
        let e = Outputs::open(&[OutputSpec::Eve(Some(d.clone()))], FileOptions::default())
            .err()
            .unwrap();
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(chain.contains("is a directory"), "{chain}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
