//! Output specifications (`--output`) and the set of writers they open.
//!
//! A specification is one of:
//! - `-` or `eve:-`: EVE JSON to standard output; `FILE` or `eve:FILE`: EVE
//!   JSON to a file;
//! - `ipfix:udp://HOST:PORT` or `ipfix:tcp://HOST:PORT`, optionally followed
//!   by `?mode=biflow|uni&domain=N&ingress=N&mtu=N`;
//! - `zeek:DIR` (conn.log, and ssh.log once an SSH connection is seen;
//!   TSV) or `zeek-json:DIR` (the same logs as JSON lines); the directory is
//!   created if needed.
//!
//! [`WriterSet`] holds the writers of several specifications and gives each
//! ended flow record to all of them; it is also an [`EventSink`], so a
//! tracker can feed it directly. Every writer counts records written and
//! dropped (a failed write, a full IPFIX queue).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

use crate::extract::FiveTupleKey;
use crate::l7::L7Record;
use crate::offline::{IcmpFirstPackets, community_id, endpoints};
use crate::output::EveWriter;
use crate::output::ipfix::{IpfixConfig, IpfixExporter, IpfixMode, IpfixTransport};
use crate::output::zeek::{ZeekConnWriter, ZeekFormat};
use crate::output::zeek_ssh::ZeekSshWriter;
use crate::pipeline::{FAILED, FlowSummary, PipelineSink};
use crate::tracker::{EndReason, EventSink, FlowEvent, FlowRecord};
use crate::view::Timestamp;

/// Where flow records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// EVE JSON lines to a file, or standard output (`None`).
    Eve(Option<PathBuf>),
    /// IPFIX to a collector.
    Ipfix(IpfixSpec),
    /// Zeek logs in a directory.
    Zeek {
        /// The directory.
        dir: PathBuf,
        /// TSV or JSON.
        format: ZeekFormat,
    },
}

impl std::fmt::Display for OutputSpec {
    /// The specification in its canonical form (it parses back to itself).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Eve(None) => f.write_str("-"),
            Self::Eve(Some(p)) => write!(f, "eve:{}", p.display()),
            Self::Zeek { dir, format } => {
                let kind = match format {
                    ZeekFormat::Tsv => "zeek",
                    ZeekFormat::Json => "zeek-json",
                };
                write!(f, "{kind}:{}", dir.display())
            }
            Self::Ipfix(s) => {
                let (t, m) = (
                    match s.transport {
                        IpfixTransport::Udp => "udp",
                        IpfixTransport::Tcp => "tcp",
                    },
                    match s.mode {
                        IpfixMode::Biflow => "biflow",
                        IpfixMode::Unidirectional => "uni",
                    },
                );
                write!(
                    f,
                    "ipfix:{t}://{}?mode={m}&domain={}&ingress={}&mtu={}",
                    s.collector, s.domain_id, s.ingress_interface, s.mtu
                )
            }
        }
    }
}

/// The IPFIX part of a specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpfixSpec {
    /// UDP or TCP.
    pub transport: IpfixTransport,
    /// `HOST:PORT` as given (resolved when the writer opens).
    pub collector: String,
    /// Biflow (default) or unidirectional records.
    pub mode: IpfixMode,
    /// Observation domain ID (default 0).
    pub domain_id: u32,
    /// `ingressInterface` (default 0).
    pub ingress_interface: u32,
    /// Path MTU (default 1500).
    pub mtu: usize,
}

/// A specification that could not be parsed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The part before `:` names no output kind.
    #[error("output {spec:?}: unknown kind {kind:?} (expected eve, ipfix, zeek or zeek-json)")]
    UnknownKind {
        /// The whole specification.
        spec: String,
        /// The kind given.
        kind: String,
    },
    /// A malformed value.
    #[error("output {spec:?}: {problem}")]
    Invalid {
        /// The whole specification.
        spec: String,
        /// What is wrong, naming the bad part.
        problem: String,
    },
    /// Opening the file, directory, socket or thread failed.
    #[error("output {spec:?}: cannot open {what}")]
    Open {
        /// The whole specification.
        spec: String,
        /// What could not be opened.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn invalid(spec: &str, problem: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        spec: spec.to_owned(),
        problem: problem.into(),
    }
}

fn parse_ipfix(spec: &str, rest: &str) -> Result<IpfixSpec, SpecError> {
    let (transport, addr) = if let Some(a) = rest.strip_prefix("udp://") {
        (IpfixTransport::Udp, a)
    } else if let Some(a) = rest.strip_prefix("tcp://") {
        (IpfixTransport::Tcp, a)
    } else {
        return Err(invalid(
            spec,
            format!("{rest:?} must start with udp:// or tcp://"),
        ));
    };
    let (addr, query) = addr.split_once('?').unwrap_or((addr, ""));
    let port_ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok {
        return Err(invalid(
            spec,
            format!("collector {addr:?} is not HOST:PORT (IPv6 as [ADDR]:PORT)"),
        ));
    }
    let mut out = IpfixSpec {
        transport,
        collector: addr.to_owned(),
        mode: IpfixMode::Biflow,
        domain_id: 0,
        ingress_interface: 0,
        mtu: 1500,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let num = |max: u64| {
            v.parse::<u64>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| invalid(spec, format!("{k}={v:?} is not a number up to {max}")))
        };
        match k {
            "mode" => {
                out.mode = match v {
                    "biflow" => IpfixMode::Biflow,
                    "uni" => IpfixMode::Unidirectional,
                    _ => return Err(invalid(spec, format!("mode={v:?}: expected biflow or uni"))),
                }
            }
            "domain" => out.domain_id = num(u64::from(u32::MAX))? as u32,
            "ingress" => out.ingress_interface = num(u64::from(u32::MAX))? as u32,
            "mtu" => out.mtu = num(65_535)? as usize,
            _ => {
                return Err(invalid(
                    spec,
                    format!("unknown option {k:?} (expected mode, domain, ingress or mtu)"),
                ));
            }
        }
    }
    Ok(out)
}

impl FromStr for OutputSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, SpecError> {
        if spec.is_empty() {
            return Err(invalid(spec, "empty"));
        }
        if spec == "-" {
            return Ok(Self::Eve(None));
        }
        // A plain path (no `kind:` prefix) is an EVE file.
        let Some((kind, rest)) = spec.split_once(':').filter(|(k, _)| {
            k.len() > 1 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }) else {
            return Ok(Self::Eve(Some(PathBuf::from(spec))));
        };
        let need_path = |what: &str| {
            if rest.is_empty() {
                Err(invalid(spec, format!("missing {what} after {kind:?}")))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        match kind {
            "eve" if rest == "-" => Ok(Self::Eve(None)),
            "eve" => Ok(Self::Eve(Some(need_path("a file")?))),
            "ipfix" => parse_ipfix(spec, rest).map(Self::Ipfix),
            "zeek" => Ok(Self::Zeek {
                dir: need_path("a directory")?,
                format: ZeekFormat::Tsv,
            }),
            "zeek-json" => Ok(Self::Zeek {
                dir: need_path("a directory")?,
                format: ZeekFormat::Json,
            }),
            _ => Err(SpecError::UnknownKind {
                spec: spec.to_owned(),
                kind: kind.to_owned(),
            }),
        }
    }
}

/// What the writers need about a record beyond the record itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlowExtras<'a> {
    /// Community ID (EVE).
    pub community_id: Option<&'a str>,
    /// What reassembly and parsing did (EVE; Zeek's `service`).
    pub summary: Option<&'a FlowSummary>,
}

/// Zeek's `service` name of a flow's application protocol: Zeek's DNS
/// analyzer also takes mDNS and LLMNR; SSDP has no Zeek analyzer, and Zeek
/// leaves a flow no analyzer recognised unset.
fn zeek_service(proto: &'static str) -> Option<&'static str> {
    match proto {
        "tls" => Some("ssl"),
        "mdns" | "llmnr" => Some("dns"),
        "ssdp" | FAILED => None,
        other => Some(other),
    }
}

/// The logs of one Zeek output directory: conn.log, and ssh.log, created
/// when the first SSH record arrives (Zeek writes no empty logs).
#[derive(Debug)]
pub struct ZeekLogs {
    dir: PathBuf,
    format: ZeekFormat,
    conn: ZeekConnWriter<BufWriter<File>>,
    ssh: Option<ZeekSshWriter<BufWriter<File>>>,
}

impl ZeekLogs {
    fn create(dir: &std::path::Path, name: &str) -> io::Result<BufWriter<File>> {
        File::create(dir.join(name)).map(BufWriter::new)
    }

    /// Writes an L7 record to the log of its protocol, if Zeek has one
    /// here; returns whether it did.
    fn l7(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        ts: Timestamp,
        record: &L7Record,
    ) -> io::Result<bool> {
        let L7Record::Ssh(r) = record else {
            return Ok(false);
        };
        let ssh = match &mut self.ssh {
            Some(w) => w,
            None => self.ssh.insert(ZeekSshWriter::new(
                Self::create(&self.dir, "ssh.log")?,
                self.format,
            )?),
        };
        ssh.write_ssh(flow, ts, r)
    }

    /// Records written, all logs.
    pub fn records(&self) -> u64 {
        self.conn.records() + self.ssh.as_ref().map_or(0, ZeekSshWriter::records)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()?;
        self.ssh.as_mut().map_or(Ok(()), ZeekSshWriter::flush)
    }

    fn finish(self) -> io::Result<()> {
        self.conn.finish()?;
        self.ssh.map_or(Ok(()), |w| w.finish().map(drop))
    }
}

/// One open writer.
pub enum FlowWriter {
    /// EVE JSON lines.
    Eve(EveWriter<BufWriter<Box<dyn Write + Send>>>),
    /// An IPFIX exporter.
    Ipfix(IpfixExporter),
    /// Zeek logs.
    Zeek(ZeekLogs),
}

impl std::fmt::Debug for FlowWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Eve(w) => write!(f, "Eve({} records)", w.records()),
            Self::Ipfix(x) => f.debug_tuple("Ipfix").field(x).finish(),
            Self::Zeek(w) => f.debug_tuple("Zeek").field(w).finish(),
        }
    }
}

/// Counters and outcome of one writer.
#[derive(Debug)]
pub struct WriterReport {
    /// The specification it was opened from.
    pub spec: String,
    /// Records written (IPFIX: sent to the collector).
    pub written: u64,
    /// Records dropped.
    pub dropped: u64,
    /// The first write error, if any (records after it were dropped).
    pub error: Option<io::Error>,
}

#[derive(Debug)]
struct Slot {
    spec: String,
    writer: FlowWriter,
    dropped: u64,
    error: Option<io::Error>,
}

/// The writers of several output specifications. See the [module docs](self).
#[derive(Debug)]
pub struct WriterSet {
    slots: Vec<Slot>,
    /// Community IDs are computed only for EVE.
    wants_community_id: bool,
    /// Type and code of the first packet of each live ICMP flow.
    icmp_first: IcmpFirstPackets,
}

fn open_err(spec: &str, what: String) -> impl FnOnce(io::Error) -> SpecError {
    let spec = spec.to_owned();
    move |source| SpecError::Open { spec, what, source }
}

fn open_one(spec: &OutputSpec, label: &str) -> Result<FlowWriter, SpecError> {
    Ok(match spec {
        OutputSpec::Eve(None) => {
            let out: Box<dyn Write + Send> = Box::new(io::stdout());
            FlowWriter::Eve(EveWriter::new(BufWriter::new(out)))
        }
        OutputSpec::Eve(Some(path)) => {
            let f = File::create(path).map_err(open_err(label, path.display().to_string()))?;
            let out: Box<dyn Write + Send> = Box::new(f);
            FlowWriter::Eve(EveWriter::new(BufWriter::new(out)))
        }
        OutputSpec::Zeek { dir, format } => {
            std::fs::create_dir_all(dir).map_err(open_err(label, dir.display().to_string()))?;
            let what = dir.join("conn.log").display().to_string();
            let conn = ZeekLogs::create(dir, "conn.log")
                .and_then(|f| ZeekConnWriter::new(f, *format))
                .map_err(open_err(label, what))?;
            FlowWriter::Zeek(ZeekLogs {
                dir: dir.clone(),
                format: *format,
                conn,
                ssh: None,
            })
        }
        OutputSpec::Ipfix(s) => {
            let what = format!("collector {}", s.collector);
            let collector: SocketAddr = s
                .collector
                .to_socket_addrs()
                .map_err(open_err(label, what.clone()))?
                .next()
                .ok_or_else(|| {
                    open_err(label, what.clone())(io::Error::new(
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
            FlowWriter::Ipfix(IpfixExporter::start(config).map_err(open_err(label, what))?)
        }
    })
}

impl WriterSet {
    /// Opens a writer per specification (`labels` name them in reports).
    ///
    /// # Errors
    ///
    /// The first specification that cannot be opened.
    pub fn open<'a>(
        specs: impl IntoIterator<Item = (&'a OutputSpec, String)>,
    ) -> Result<Self, SpecError> {
        let mut slots = Vec::new();
        for (spec, label) in specs {
            let writer = open_one(spec, &label)?;
            slots.push(Slot {
                spec: label,
                writer,
                dropped: 0,
                error: None,
            });
        }
        Ok(Self::from_writers(slots))
    }

    fn from_writers(slots: Vec<Slot>) -> Self {
        let wants_community_id = slots.iter().any(|s| matches!(s.writer, FlowWriter::Eve(_)));
        Self {
            slots,
            wants_community_id,
            icmp_first: IcmpFirstPackets::default(),
        }
    }

    /// Gives one ended record to every writer.
    pub fn flow(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
        extras: &FlowExtras<'_>,
    ) {
        for s in &mut self.slots {
            if s.error.is_some() {
                s.dropped += 1;
                continue;
            }
            let result = match &mut s.writer {
                FlowWriter::Eve(w) => w.write_flow_summary(
                    flow,
                    reason,
                    &endpoints(flow),
                    extras.community_id,
                    extras.summary,
                ),
                FlowWriter::Zeek(w) => w.conn.write_flow_summary(
                    flow,
                    extras
                        .summary
                        .and_then(FlowSummary::app_proto)
                        .and_then(zeek_service),
                    extras.summary,
                ),
                FlowWriter::Ipfix(x) => {
                    x.flow(flow, reason);
                    Ok(())
                }
            };
            if let Err(e) = result {
                s.dropped += 1;
                s.error = Some(e);
            }
        }
    }

    /// Pushes buffered records out (files flushed, IPFIX messages sent).
    pub fn flush(&mut self) {
        for s in &mut self.slots {
            let result = match &mut s.writer {
                FlowWriter::Eve(w) => w.flush(),
                FlowWriter::Zeek(w) => w.flush(),
                FlowWriter::Ipfix(x) => {
                    x.flush();
                    Ok(())
                }
            };
            if let (Err(e), None) = (result, &s.error) {
                s.error = Some(e);
            }
        }
    }

    /// Counters of every writer now.
    pub fn reports(&self) -> Vec<WriterReport> {
        self.slots
            .iter()
            .map(|s| {
                let (written, dropped) = match &s.writer {
                    FlowWriter::Eve(w) => (w.records(), 0),
                    FlowWriter::Zeek(w) => (w.records(), 0),
                    FlowWriter::Ipfix(x) => {
                        let st = x.stats();
                        (st.records_sent, st.records_dropped)
                    }
                };
                WriterReport {
                    spec: s.spec.clone(),
                    written,
                    dropped: dropped + s.dropped,
                    error: None,
                }
            })
            .collect()
    }

    /// Flushes and closes every writer (IPFIX: sends what is queued, within
    /// its finish timeout) and reports on each.
    pub fn finish(self) -> Vec<WriterReport> {
        self.slots
            .into_iter()
            .map(|s| {
                let (written, dropped, err) = match s.writer {
                    FlowWriter::Eve(w) => {
                        let n = w.records();
                        (n, 0, w.into_inner().err())
                    }
                    FlowWriter::Zeek(w) => {
                        let n = w.records();
                        (n, 0, w.finish().err())
                    }
                    FlowWriter::Ipfix(x) => {
                        let st = x.finish();
                        (st.records_sent, st.records_dropped, None)
                    }
                };
                WriterReport {
                    spec: s.spec,
                    written,
                    dropped: dropped + s.dropped,
                    error: s.error.or(err),
                }
            })
            .collect()
    }
}

impl WriterSet {
    /// Gives an ended record to every writer, with its Community ID.
    fn ended(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
        summary: Option<&FlowSummary>,
    ) {
        let icmp = self.icmp_first.take(flow, reason);
        let id = self.wants_community_id.then(|| community_id(flow, icmp));
        let extras = FlowExtras {
            community_id: id.as_ref().map(|i| i.as_str()),
            summary,
        };
        self.flow(flow, reason, &extras);
    }
}

impl PipelineSink<FiveTupleKey> for WriterSet {
    fn event(&mut self, event: &FlowEvent<'_, FiveTupleKey>) {
        EventSink::event(self, *event);
    }

    /// L7 records go to the EVE writers, and to the Zeek logs that have a
    /// log for their protocol (ssh.log).
    fn l7(&mut self, flow: &FlowRecord<FiveTupleKey>, ts: Timestamp, record: L7Record) {
        let id = self.wants_community_id.then(|| community_id(flow, None));
        let ep = endpoints(flow);
        for s in &mut self.slots {
            let applies = match &s.writer {
                FlowWriter::Eve(_) => true,
                FlowWriter::Zeek(_) => matches!(record, L7Record::Ssh(_)),
                FlowWriter::Ipfix(_) => false,
            };
            if !applies {
                continue;
            }
            if s.error.is_some() {
                s.dropped += 1;
                continue;
            }
            let result = match &mut s.writer {
                FlowWriter::Eve(w) => {
                    let id = id.as_ref().map(|i| i.as_str());
                    w.write_l7(flow, ts, &ep, id, &record)
                }
                FlowWriter::Zeek(z) => z.l7(flow, ts, &record).map(drop),
                FlowWriter::Ipfix(_) => Ok(()),
            };
            if let Err(e) = result {
                s.dropped += 1;
                s.error = Some(e);
            }
        }
    }

    fn flow_ended(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
        summary: Option<&FlowSummary>,
    ) {
        self.ended(flow, reason, summary);
    }
}

impl EventSink<FiveTupleKey> for WriterSet {
    fn event(&mut self, event: FlowEvent<'_, FiveTupleKey>) {
        if self.wants_community_id {
            self.icmp_first.observe(&event);
        }
        if let FlowEvent::Ended { flow, reason } = event {
            self.ended(flow, reason, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<OutputSpec, String> {
        s.parse::<OutputSpec>().map_err(|e| e.to_string())
    }

    #[test]
    fn plain_paths_and_dash_are_eve() {
        assert_eq!(parse("-"), Ok(OutputSpec::Eve(None)));
        assert_eq!(parse("eve:-"), Ok(OutputSpec::Eve(None)));
        assert_eq!(
            parse("out.json"),
            Ok(OutputSpec::Eve(Some("out.json".into())))
        );
        assert_eq!(parse("eve:a:b"), Ok(OutputSpec::Eve(Some("a:b".into()))));
        assert_eq!(parse("./x:y"), Ok(OutputSpec::Eve(Some("./x:y".into()))));
    }

    #[test]
    fn ipfix_and_zeek() {
        let Ok(OutputSpec::Ipfix(s)) = parse("ipfix:tcp://[::1]:4739?mode=uni&domain=7&mtu=9000")
        else {
            panic!("not ipfix")
        };
        assert_eq!(s.transport, IpfixTransport::Tcp);
        assert_eq!(s.collector, "[::1]:4739");
        assert_eq!(
            (s.mode, s.domain_id, s.mtu),
            (IpfixMode::Unidirectional, 7, 9000)
        );
        assert_eq!(
            parse("zeek-json:logs"),
            Ok(OutputSpec::Zeek {
                dir: "logs".into(),
                format: ZeekFormat::Json
            })
        );
    }

    #[test]
    fn display_parses_back() {
        for spec in [
            "-",
            "out.json",
            "eve:a:b",
            "zeek:logs",
            "zeek-json:logs",
            "ipfix:udp://127.0.0.1:4739",
            "ipfix:tcp://[::1]:4739?mode=uni&domain=7&ingress=3&mtu=9000",
        ] {
            let parsed: OutputSpec = spec.parse().expect(spec);
            assert_eq!(parsed.to_string().parse::<OutputSpec>().ok(), Some(parsed));
        }
    }

    #[test]
    fn errors_name_the_bad_value() {
        for (spec, needle) in [
            ("ipfx:udp://h:1", "\"ipfx\""),
            ("ipfix:sctp://h:1", "\"sctp://h:1\""),
            ("ipfix:udp://h", "\"h\""),
            ("ipfix:udp://h:99999", "\"h:99999\""),
            ("ipfix:udp://h:1?mode=both", "mode=\"both\""),
            ("ipfix:udp://h:1?domain=x", "domain=\"x\""),
            ("ipfix:udp://h:1?color=red", "\"color\""),
            ("zeek:", "directory"),
            ("", "empty"),
        ] {
            let e = parse(spec).expect_err(spec);
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }
}
