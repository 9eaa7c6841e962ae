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
//! [`Outputs`](super::Outputs) opens them.

use std::io;
use std::path::PathBuf;
use std::str::FromStr;

use crate::output::ipfix::{IpfixMode, IpfixTransport};
use crate::output::local_nets::LocalNets;
use crate::output::zeek::ZeekFormat;

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
        /// The networks `--local-nets` calls local (not part of the
        /// specification's text).
        local_nets: LocalNets,
    },
}

impl std::fmt::Display for OutputSpec {
    /// The specification in its canonical form (it parses back to itself).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Eve(None) => f.write_str("-"),
            Self::Eve(Some(p)) => write!(f, "eve:{}", p.display()),
            Self::Zeek { dir, format, .. } => {
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

impl OutputSpec {
    /// The kind: `eve`, `zeek`, `zeek-json` or `ipfix`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Eve(_) => "eve",
            Self::Zeek {
                format: ZeekFormat::Tsv,
                ..
            } => "zeek",
            Self::Zeek {
                format: ZeekFormat::Json,
                ..
            } => "zeek-json",
            Self::Ipfix(_) => "ipfix",
        }
    }

    /// True for outputs that write files (EVE to a file, Zeek logs).
    pub fn is_file(&self) -> bool {
        matches!(self, Self::Eve(Some(_)) | Self::Zeek { .. })
    }

    /// Where it writes, comparable across specifications: the absolute
    /// path (through the symbolic links of what exists), `-`, or the
    /// collector with its transport.
    fn destination(&self) -> (Option<PathBuf>, String) {
        let path = |p: &std::path::Path| {
            let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
            Some(std::fs::canonicalize(&abs).unwrap_or(abs))
        };
        match self {
            Self::Eve(None) => (None, "-".to_owned()),
            Self::Eve(Some(p)) => (path(p), String::new()),
            Self::Zeek { dir, .. } => (path(dir), String::new()),
            Self::Ipfix(s) => (None, format!("{:?}://{}", s.transport, s.collector)),
        }
    }
}

/// Refuses two specifications that write to the same place (the same file,
/// directory, standard output or collector): their records would be
/// interleaved or counted twice.
///
/// # Errors
///
/// The second of the two, naming the first.
pub fn check_distinct(specs: &[OutputSpec]) -> Result<(), SpecError> {
    for (i, a) in specs.iter().enumerate() {
        for b in &specs[..i] {
            if a.destination() == b.destination() {
                return Err(invalid(
                    &a.to_string(),
                    format!(
                        "writes to the same place as {b:?}; name each output once",
                        b = b.to_string()
                    ),
                ));
            }
        }
    }
    Ok(())
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
                local_nets: LocalNets::default(),
            }),
            "zeek-json" => Ok(Self::Zeek {
                dir: need_path("a directory")?,
                format: ZeekFormat::Json,
                local_nets: LocalNets::default(),
            }),
            _ => Err(SpecError::UnknownKind {
                spec: spec.to_owned(),
                kind: kind.to_owned(),
            }),
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
                format: ZeekFormat::Json,
                local_nets: LocalNets::default(),
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

    #[test]
    fn the_same_destination_twice_is_refused() {
        let specs = |list: &[&str]| -> Vec<OutputSpec> {
            list.iter().map(|s| s.parse().unwrap()).collect()
        };
        for list in [
            &["a.json", "a.json"][..],
            &["a.json", "eve:./a.json"],
            &["-", "eve:-"],
            &["zeek:logs", "zeek-json:logs/"],
            &[
                "ipfix:udp://127.0.0.1:4739",
                "ipfix:udp://127.0.0.1:4739?mode=uni",
            ],
        ] {
            let e = check_distinct(&specs(list)).expect_err(list[1]).to_string();
            assert!(e.contains("writes to the same place as"), "{e}");
        }
        check_distinct(&specs(&[
            "a.json",
            "b.json",
            "zeek:a",
            "ipfix:tcp://127.0.0.1:4739",
            "ipfix:udp://127.0.0.1:4739",
        ]))
        .unwrap();
    }
}
