//! The options `read` and `capture` share, from flags and from the TOML
//! file `--config` names, and the config file itself.
//!
//! Every option can be given as a flag or as a key of the same name (with
//! `_` for `-`) in the config file; a flag overrides the file. One file
//! serves both commands: `read` uses the keys below and ignores those only
//! `capture` has (see `capture_opts`). A key neither command knows, or a
//! bad value, is an error that names the key.
//!
//! ```toml
//! output = ["eve:/var/log/flowscope/eve.json", "ipfix:udp://192.0.2.10:4739"]
//! max_flows = 1000000      # per worker
//! tcp_timeout = 300.0      # seconds
//! decap = true
//! l7 = true
//! stream_depth = 1048576   # bytes per side of a TCP flow; 0: whole streams
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::filter::Filter;
use crate::output::pcapng::PcapngConfig;
use crate::output::{
    DEFAULT_CLOSE_WAIT, EveOptions, FileOptions, LocalNets, OutputSpec, check_distinct,
};
use crate::pipeline::PipelineConfig;
use crate::runtime::RunConfig;
use crate::runtime::frames::{PcapConfig, PcapFlows};
use crate::tracker::TrackerConfig;
use crate::view::LinkType;

/// Most flows a worker's table may hold. The table and every slot's
/// pipeline state are allocated whole when the worker starts, so a value
/// far beyond any memory is refused with its flag instead of aborting in
/// that allocation.
const MAX_FLOWS: usize = 1 << 24;

/// Defines an options struct whose fields are all `Option`s, with its
/// config-file keys and the flags-over-file merge.
macro_rules! options {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : Option<$ty:ty>, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
        }

        impl $name {
            /// The config-file keys.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Flags over the file: each field of `self` wins when set.
            pub fn over(self, file: Self) -> Self {
                Self { $($field: self.$field.or(file.$field),)* }
            }
        }
    };
}
// `capture`'s options use it too.
#[cfg(live)]
pub(crate) use options;

options! {
    /// Options of both `read` and `capture`; each is optional so a flag can
    /// be told apart from a value in the config file.
    #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
    pub struct RunOpts {
        /// Record outputs, repeatable: `-` or `eve:FILE` (EVE JSON lines:
        /// flow, L7 and anomaly records), `ipfix:udp://HOST:PORT`,
        /// `ipfix:tcp://HOST:PORT` (options
        /// `?mode=biflow|uni&domain=N&ingress=N&mtu=N`), `zeek:DIR`,
        /// `zeek-json:DIR`. Default: `read` writes EVE to standard output,
        /// `capture` writes nothing.
        #[arg(long, short, value_name = "SPEC")]
        pub output: Option<Vec<String>>,
        /// Flow table capacity per worker (default 262144, at most
        /// 16777216: the table and each flow's state are preallocated);
        /// when full the least valuable flow is evicted and counted.
        #[arg(long)]
        pub max_flows: Option<usize>,
        /// TCP idle timeout, seconds (default 300).
        #[arg(long, value_name = "SECS")]
        pub tcp_timeout: Option<f64>,
        /// UDP idle timeout, seconds (default 60).
        #[arg(long, value_name = "SECS")]
        pub udp_timeout: Option<f64>,
        /// Idle timeout of other protocols (ICMP, …), seconds (default 30).
        #[arg(long, value_name = "SECS")]
        pub other_timeout: Option<f64>,
        /// Active timeout: end a record after this many seconds and
        /// continue the flow in a new one (default: never).
        #[arg(long, value_name = "SECS")]
        pub active_timeout: Option<f64>,
        /// Key flows on the innermost packet of VXLAN, Geneve, GRE,
        /// IP-in-IP, GTP-U and Teredo tunnels instead of the outer one.
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        pub decap: Option<bool>,
        /// Reassemble IP fragments and TCP streams, detect each flow's
        /// protocol (`app_proto`) and parse HTTP, TLS, DNS, QUIC and SSH
        /// (EVE `http`, `tls`, `dns`, `quic`, `ssh` records; Zeek http, dns,
        /// ssl, ssh and quic logs;
        /// default on).
        #[arg(
            long,
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "true",
            conflicts_with = "no_l7"
        )]
        pub l7: Option<bool>,
        /// Flow records only: no stream reassembly, no L7 parsing.
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        pub no_l7: Option<bool>,
        /// Bytes of each side of a TCP flow that are reassembled and
        /// parsed (Suricata's stream depth; default 1048576; 0: whole
        /// streams). A side's segments past it, and every segment of a flow
        /// whose parser is done (or found no protocol), are only counted.
        #[arg(long, value_name = "BYTES")]
        pub stream_depth: Option<u64>,
        /// Networks whose addresses are local, `CIDR,CIDR,…` (Zeek's
        /// `Site::local_nets`): conn.log's `local_orig` and `local_resp`
        /// (unset without them, as in Zeek).
        #[arg(long, value_name = "CIDRS")]
        pub local_nets: Option<String>,
        /// Records buffered per worker on the way to the writer (default
        /// 65536 live, where a full ring drops a record; 4096 reading a
        /// file, where a full ring makes the worker wait and a smaller ring
        /// stays in the cache).
        #[arg(long)]
        pub record_ring: Option<usize>,
        /// EVE: also write flowscope's own fields and records, which
        /// Suricata's EVE schema does not allow (Zeek `history` and
        /// `conn_state`, `end_reason`, `reassembly`, `bounds`, anomaly
        /// counts and intervals).
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        pub eve_extras: Option<bool>,
        /// Truncate existing EVE files and Zeek logs instead of appending
        /// to them (appending is the default, as Suricata does).
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        pub overwrite: Option<bool>,
        /// At exit, wait at most this many seconds for an IPFIX collector
        /// to take the queued records; what is left is counted failed
        /// (default 5).
        #[arg(long, value_name = "SECS")]
        pub close_wait: Option<f64>,
        /// Write the frames of chosen flows (`--pcap-flows`) as pcapng
        /// files (nanosecond timestamps) into this directory.
        #[arg(long, value_name = "DIR")]
        pub write_pcap: Option<PathBuf>,
        /// Which flows `--write-pcap` writes: `all` (default), those whose
        /// first frame a tcpdump expression matches (every frame of the
        /// flow, both directions), or from the moment it holds:
        /// `sni:DOMAIN` (TLS/QUIC server name), `http-host:DOMAIN`,
        /// `anomaly`.
        #[arg(long, value_name = "all|EXPR|sni:D|http-host:D|anomaly")]
        pub pcap_flows: Option<String>,
        /// Write only each flow's frames until it has carried this many
        /// bytes on the wire (the frame crossing the limit is the last).
        #[arg(long, value_name = "BYTES")]
        pub pcap_flow_bytes: Option<u64>,
        /// Start a new pcap file after this many bytes (default 100 MB).
        #[arg(long, value_name = "BYTES")]
        pub pcap_rotate_bytes: Option<u64>,
        /// Start a new pcap file after this many seconds.
        #[arg(long, value_name = "SECS")]
        pub pcap_rotate_secs: Option<f64>,
        /// Keep this run's pcap files under this many bytes in total,
        /// removing the oldest (counted in the summary).
        #[arg(long, value_name = "BYTES")]
        pub pcap_max_bytes: Option<u64>,
    }
}

/// A positive number of seconds as a duration.
pub(crate) fn secs(name: &str, v: Option<f64>) -> anyhow::Result<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 => Duration::try_from_secs_f64(s)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{name} {s}: {e}")),
        Some(s) => bail!("{name} {s}: must be a positive number of seconds"),
    }
}

/// What differs between the commands' defaults.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    /// Write EVE to standard output when no output is given.
    pub stdout: bool,
    /// `--record-ring` when neither flag nor file gives it.
    pub record_ring: usize,
}

impl RunOpts {
    /// Flags over the file, where giving `--l7` or `--no-l7` as a flag
    /// overrides either key in the file.
    pub fn merged(self, mut file: Self) -> Self {
        if self.l7.is_some() || self.no_l7.is_some() {
            (file.l7, file.no_l7) = (None, None);
        }
        self.over(file)
    }

    /// Validated settings.
    ///
    /// # Errors
    ///
    /// A bad value, named with its flag.
    pub fn settings(self, d: Defaults) -> anyhow::Result<RunConfig> {
        let max_flows = self.max_flows.unwrap_or(1 << 18);
        if !(1..=MAX_FLOWS).contains(&max_flows) {
            bail!("--max-flows {max_flows}: must be 1..={MAX_FLOWS} (per worker)");
        }
        let record_ring = self.record_ring.unwrap_or(d.record_ring);
        if record_ring == 0 {
            bail!("--record-ring 0: must be at least 1");
        }
        let mut tracker = TrackerConfig {
            max_flows,
            active_timeout: secs("--active-timeout", self.active_timeout)?,
            ..TrackerConfig::default()
        };
        if let Some(t) = secs("--tcp-timeout", self.tcp_timeout)? {
            tracker.idle_timeout_tcp = t;
        }
        if let Some(t) = secs("--udp-timeout", self.udp_timeout)? {
            tracker.idle_timeout_udp = t;
        }
        if let Some(t) = secs("--other-timeout", self.other_timeout)? {
            tracker.idle_timeout_other = t;
        }
        let l7 = match (self.l7, self.no_l7) {
            (Some(a), Some(b)) if a == b => bail!("--l7 and --no-l7 say opposite things"),
            (_, Some(no)) => !no,
            (Some(l7), None) => l7,
            (None, None) => true,
        };
        let mut pipeline = PipelineConfig {
            tracker,
            ..PipelineConfig::default()
        };
        if !l7 {
            pipeline.l7 = None;
        }
        if let Some(depth) = self.stream_depth {
            pipeline.stream_depth = (depth > 0).then_some(depth);
        }
        let texts = match self.output {
            Some(o) => o,
            None if d.stdout => vec!["-".to_owned()],
            None => Vec::new(),
        };
        let nets: LocalNets = match &self.local_nets {
            Some(n) => n
                .parse()
                .map_err(|e| anyhow::anyhow!("--local-nets: {e}"))?,
            None => LocalNets::default(),
        };
        let outputs = texts
            .iter()
            .map(|t| {
                let mut spec = t
                    .parse::<OutputSpec>()
                    .map_err(|e| anyhow::anyhow!("--output {t:?}: {e}"))?;
                if let OutputSpec::Zeek { local_nets, .. } = &mut spec {
                    local_nets.clone_from(&nets);
                }
                Ok(spec)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        check_distinct(&outputs).map_err(|e| anyhow::anyhow!("--output: {e}"))?;
        let files = FileOptions {
            overwrite: self.overwrite.unwrap_or(false),
            close_wait: match self.close_wait {
                Some(w) if w.is_finite() && w >= 0.0 => Duration::try_from_secs_f64(w)
                    .map_err(|e| anyhow::anyhow!("--close-wait {w}: {e}"))?,
                Some(w) => bail!("--close-wait {w}: must be 0 or more seconds"),
                None => DEFAULT_CLOSE_WAIT,
            },
            ..FileOptions::default()
        };
        let pcap = pcap_config(
            self.write_pcap,
            self.pcap_flows,
            self.pcap_flow_bytes,
            self.pcap_rotate_bytes,
            secs("--pcap-rotate-secs", self.pcap_rotate_secs)?,
            self.pcap_max_bytes,
        )?;
        Ok(RunConfig {
            pipeline: Some(pipeline),
            decap: self.decap.unwrap_or(false),
            record_ring,
            outputs,
            files,
            eve: EveOptions {
                extras: self.eve_extras.unwrap_or(false),
                in_iface: None,
            },
            pcap,
        })
    }
}

/// `--write-pcap` and its options; a `--pcap-*` option without it is an
/// error.
fn pcap_config(
    dir: Option<PathBuf>,
    flows: Option<String>,
    flow_bytes: Option<u64>,
    rotate_bytes: Option<u64>,
    rotate_after: Option<Duration>,
    max_total_bytes: Option<u64>,
) -> anyhow::Result<Option<PcapConfig>> {
    let Some(dir) = dir else {
        if flows.is_some()
            || flow_bytes.is_some()
            || rotate_bytes.is_some()
            || rotate_after.is_some()
            || max_total_bytes.is_some()
        {
            bail!(
                "--pcap-flows, --pcap-flow-bytes, --pcap-rotate-* and --pcap-max-bytes need --write-pcap DIR"
            );
        }
        return Ok(None);
    };
    if dir.is_file() {
        bail!(
            "--write-pcap {}: is a file; it takes a directory",
            dir.display()
        );
    }
    if matches!(flow_bytes, Some(0))
        || matches!(rotate_bytes, Some(0))
        || matches!(max_total_bytes, Some(0))
    {
        bail!("--pcap-flow-bytes, --pcap-rotate-bytes and --pcap-max-bytes must be at least 1");
    }
    let flows: PcapFlows = flows
        .as_deref()
        .unwrap_or("all")
        .parse()
        .map_err(|e| anyhow::anyhow!("--pcap-flows {e}"))?;
    if let PcapFlows::Matching(expr) = &flows {
        // Refuse a bad expression now, with its flag.
        Filter::compile(expr, LinkType::Ethernet)
            .map_err(|e| anyhow::anyhow!("--pcap-flows: {e}"))?;
    }
    Ok(Some(PcapConfig {
        files: PcapngConfig {
            dir,
            rotate_bytes: Some(rotate_bytes.unwrap_or(100_000_000)),
            rotate_after,
            max_total_bytes,
            iface: None,
        },
        flows,
        flow_bytes,
    }))
}

/// Reads a config file into `T`, ignoring keys `T` does not have.
///
/// # Errors
///
/// TOML syntax or a wrong type, with the line.
pub fn parse_config<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> anyhow::Result<T> {
    toml::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "config {}: {} ({})",
            path.display(),
            e.message().trim(),
            span(text, e.span())
        )
    })
}

/// Reads the config file at `path`: its text, after checking that every
/// key is one of `known` (the options of both commands).
///
/// # Errors
///
/// Unreadable file, TOML syntax, or an unknown key (named).
pub fn config_text(path: &Path, known: &[&[&str]]) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("config {}", path.display()))?;
    let table: toml::Table = parse_config(path, &text)?;
    for key in table.keys() {
        if !known.iter().any(|k| k.contains(&key.as_str())) {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with(key.as_str()))
                .map(|n| format!(" at line {}", n + 1))
                .unwrap_or_default();
            bail!("config {}: unknown key {key:?}{line}", path.display());
        }
    }
    Ok(text)
}

/// Where a TOML error is: the line number and the line itself, which names
/// the key (toml's type errors name only the expected type).
fn span(text: &str, at: Option<std::ops::Range<usize>>) -> String {
    match at {
        Some(r) => {
            let start = r.start.min(text.len());
            let n = text[..start].matches('\n').count();
            let line = text.lines().nth(n).unwrap_or_default().trim();
            format!("at line {}: {line}", n + 1)
        }
        None => String::new(),
    }
}
