//! Options of `flowscope capture`, from flags and a TOML config file.
//!
//! Every option can be given as a flag or as a key of the same name (with
//! `_` for `-`) in the file named by `--config`; a flag overrides the file.
//! Unknown keys and invalid values are errors that name the key.
//!
//! ```toml
//! iface = "eth0"
//! sockets_per_queue = 2
//! xdp_mode = "drv"
//! filter = "not (port 873 or net 203.0.113.0/24)"   # tcpdump syntax
//! filter_action = "drop"   # what becomes of the frames it rejects
//! output = ["eve:/var/log/flowscope/eve.json", "ipfix:udp://192.0.2.10:4739"]
//! rotate_bytes = 1073741824
//! metrics_listen = "127.0.0.1:19739"
//! max_flows = 1000000      # per worker
//! tcp_timeout = 300.0      # seconds
//! ```

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::capture::{
    AttachPolicy, CaptureConfig, FilterAction, FilterSpec, RingSizes, XdpAttachMode,
};
use crate::filter::Filter;
use crate::output::spec::OutputSpec;
use crate::pipeline::PipelineConfig;
use crate::runtime::Destination;
use crate::tracker::TrackerConfig;

/// Where `/metrics` listens unless told otherwise: loopback, port 19739 —
/// outside the range of Prometheus's exporter port allocations (9100 is
/// node_exporter's), unassigned at IANA, below Linux's ephemeral ports.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:19739";

/// Options of `flowscope capture`; each is optional so a flag can be told
/// apart from a value in the config file.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureOpts {
    /// Interface to capture on.
    #[arg(long)]
    pub iface: Option<String>,
    /// Capture RX queues 0..N (default: every RX queue).
    #[arg(long)]
    pub queues: Option<u32>,
    /// AF_XDP sockets (and pinned workers) per queue (default 1).
    #[arg(long)]
    pub sockets_per_queue: Option<u32>,
    /// XDP attach mode: drv (native, default) or skb (generic, ~10× slower).
    #[arg(long)]
    pub xdp_mode: Option<String>,
    /// Never write the XDP metadata block; workers parse every frame's
    /// headers themselves (the path of kernels that refuse
    /// bpf_xdp_adjust_meta, which flowscope takes on its own there).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub no_xdp_meta: Option<bool>,
    /// How to attach the program: auto (a BPF link where the kernel has
    /// them, else netlink), link or netlink.
    #[arg(long)]
    pub xdp_attach: Option<String>,
    /// Print the whole verifier log when the kernel refuses the program
    /// (it is always saved to the file the error names).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub verbose: Option<bool>,
    /// Count every frame in the XDP program and pass it to the stack.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub count_only: Option<bool>,
    /// Keep only the frames this tcpdump expression matches (pcap-filter(7)
    /// syntax, e.g. `not port 873`). It runs in the XDP program after the
    /// frame is counted: a frame it rejects is counted in filter_rejected
    /// and never reaches a socket or a worker.
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// What becomes of the frames the filter rejects: pass (to the host's
    /// own stack, the default, which keeps its traffic alive) or drop.
    #[arg(long, value_name = "pass|drop")]
    pub filter_action: Option<String>,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds between live figures (default 1).
    #[arg(long)]
    pub interval: Option<f64>,
    /// Write a JSON summary here at exit.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Record outputs, repeatable: `-` or `eve:FILE` (EVE JSON lines, with
    /// L7 and anomaly records; at most one), `ipfix:udp://HOST:PORT`,
    /// `ipfix:tcp://HOST:PORT`, `zeek:DIR`, `zeek-json:DIR`.
    #[arg(long, short)]
    pub output: Option<Vec<String>>,
    /// Rotate the output file when it reaches this many bytes.
    #[arg(long)]
    pub rotate_bytes: Option<u64>,
    /// Rotate the output file after this many seconds.
    #[arg(long)]
    pub rotate_secs: Option<f64>,
    /// Prometheus /metrics listener, or `off` (default 127.0.0.1:19739).
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Flow table capacity per worker (default 262144).
    #[arg(long)]
    pub max_flows: Option<usize>,
    /// TCP idle timeout, seconds (default 300).
    #[arg(long)]
    pub tcp_timeout: Option<f64>,
    /// UDP idle timeout, seconds (default 60).
    #[arg(long)]
    pub udp_timeout: Option<f64>,
    /// Idle timeout of other protocols, seconds (default 30).
    #[arg(long)]
    pub other_timeout: Option<f64>,
    /// Active timeout: interim records for longer flows, seconds.
    #[arg(long)]
    pub active_timeout: Option<f64>,
    /// Records buffered per worker on the way to the writer (default 65536).
    #[arg(long)]
    pub record_ring: Option<usize>,
    /// Descriptors per socket RX ring (power of two, default 2048).
    #[arg(long)]
    pub rx_ring: Option<u32>,
    /// UMEM frames per queue, all offered through the fill ring (which has
    /// twice as many slots); power of two, default 8192.
    #[arg(long)]
    pub fill_ring: Option<u32>,
    /// Benchmark only: bare receivers that count and return frames, no
    /// tracking (the upper bound of the capture path).
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true")]
    pub bare: Option<bool>,
    /// Plain lines instead of the full-screen view even on a terminal.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub plain: Option<bool>,
}

impl CaptureOpts {
    /// Flags over the file: each field of `self` wins when set.
    pub fn over(self, file: CaptureOpts) -> CaptureOpts {
        macro_rules! pick {
            ($($f:ident),*) => { CaptureOpts { $($f: self.$f.or(file.$f),)* } };
        }
        pick!(
            iface,
            queues,
            sockets_per_queue,
            xdp_mode,
            no_xdp_meta,
            xdp_attach,
            verbose,
            count_only,
            filter,
            filter_action,
            duration,
            interval,
            summary_json,
            output,
            rotate_bytes,
            rotate_secs,
            metrics_listen,
            max_flows,
            tcp_timeout,
            udp_timeout,
            other_timeout,
            active_timeout,
            record_ring,
            rx_ring,
            fill_ring,
            bare,
            plain
        )
    }

    /// Reads a config file.
    ///
    /// # Errors
    ///
    /// Unreadable file, TOML syntax, unknown key or wrong type (named).
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<CaptureOpts> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("config {}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "config {}: {} ({})",
                path.display(),
                e.message().trim(),
                span(&text, e.span())
            )
        })
    }
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

/// Validated settings for a live capture.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Capture configuration.
    pub capture: CaptureConfig,
    /// Pipeline configuration (tracker, reassembly, parsers), per worker.
    pub pipeline: PipelineConfig,
    /// Stop after.
    pub duration: Option<Duration>,
    /// Live figures every.
    pub interval: Duration,
    /// Summary file.
    pub summary_json: Option<PathBuf>,
    /// The EVE output: none, stdout or a (rotated) file.
    pub eve: Destination,
    /// The other outputs (IPFIX, Zeek).
    pub others: Vec<OutputSpec>,

    /// Prometheus listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Records per worker ring.
    pub record_ring: usize,
    /// Plain lines only.
    pub plain: bool,
    /// Bare receivers (benchmark).
    pub bare: bool,
    /// Print the whole verifier log on a load failure.
    pub verbose: bool,
}

fn secs(name: &str, v: Option<f64>) -> anyhow::Result<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => bail!("{name} {s}: must be a positive number of seconds"),
    }
}

fn pow2(name: &str, v: Option<u32>, default: u32) -> anyhow::Result<u32> {
    let n = v.unwrap_or(default);
    if n.is_power_of_two() && n >= 64 {
        Ok(n)
    } else {
        bail!("{name} {n}: must be a power of two ≥ 64")
    }
}

/// The filter expression compiled for Ethernet with its action; an action
/// without an expression is an error.
fn filter_spec(expr: Option<String>, action: Option<String>) -> anyhow::Result<Option<FilterSpec>> {
    let Some(expr) = expr else {
        if let Some(a) = action {
            bail!(
                "--filter-action {a}: there is no --filter whose rejected frames it would act on"
            );
        }
        return Ok(None);
    };
    let action: FilterAction = action
        .as_deref()
        .map_or(Ok(FilterAction::default()), str::parse)
        .map_err(|e: String| anyhow::anyhow!("--filter-action: {e}"))?;
    let filter = Filter::compile(&expr, crate::LinkType::Ethernet)
        .map_err(|e| anyhow::anyhow!("--filter: {e}"))?;
    Ok(Some(FilterSpec { filter, action }))
}

impl TryFrom<CaptureOpts> for Settings {
    type Error = anyhow::Error;

    fn try_from(o: CaptureOpts) -> anyhow::Result<Settings> {
        let Some(iface) = o.iface else {
            bail!("no interface: give --iface IFACE or set iface in the config file")
        };
        let mode: XdpAttachMode = o
            .xdp_mode
            .as_deref()
            .unwrap_or("drv")
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--xdp-mode: {e}"))?;
        let attach: AttachPolicy = o
            .xdp_attach
            .as_deref()
            .unwrap_or("auto")
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--xdp-attach: {e}"))?;
        if o.queues == Some(0) {
            bail!("--queues 0: must be at least 1");
        }
        let spq = o.sockets_per_queue.unwrap_or(1);
        if !(1..=64).contains(&spq) {
            bail!("--sockets-per-queue {spq}: must be 1..=64");
        }
        let max_flows = o.max_flows.unwrap_or(1 << 18);
        if max_flows == 0 {
            bail!("--max-flows 0: must be at least 1");
        }
        let record_ring = o.record_ring.unwrap_or(1 << 16);
        if record_ring == 0 {
            bail!("--record-ring 0: must be at least 1");
        }
        let rings = RingSizes {
            rx_ring: pow2("--rx-ring", o.rx_ring, RingSizes::default().rx_ring)?,
            fill_ring: pow2("--fill-ring", o.fill_ring, RingSizes::default().fill_ring)?,
            ..RingSizes::default()
        };
        let mut tracker = TrackerConfig {
            max_flows,
            active_timeout: secs("--active-timeout", o.active_timeout)?,
            ..TrackerConfig::default()
        };
        if let Some(t) = secs("--tcp-timeout", o.tcp_timeout)? {
            tracker.idle_timeout_tcp = t;
        }
        if let Some(t) = secs("--udp-timeout", o.udp_timeout)? {
            tracker.idle_timeout_udp = t;
        }
        if let Some(t) = secs("--other-timeout", o.other_timeout)? {
            tracker.idle_timeout_other = t;
        }
        let metrics_listen = match o.metrics_listen.as_deref().unwrap_or(DEFAULT_METRICS_LISTEN) {
            "off" | "none" => None,
            a => Some(a.parse().map_err(|_| {
                anyhow::anyhow!(
                    "--metrics-listen {a:?}: expected ADDR:PORT (e.g. {DEFAULT_METRICS_LISTEN}) or off"
                )
            })?),
        };
        if let Some(b) = o.rotate_bytes
            && b == 0
        {
            bail!("--rotate-bytes 0: must be at least 1");
        }
        let rotate_after = secs("--rotate-secs", o.rotate_secs)?;
        let filter = filter_spec(o.filter, o.filter_action)?;
        let (mut eve, mut others) = (Destination::Discard, Vec::new());
        for text in o.output.unwrap_or_default() {
            match text
                .parse::<OutputSpec>()
                .map_err(|e| anyhow::anyhow!("--output {text:?}: {e}"))?
            {
                OutputSpec::Eve(path) => {
                    if !matches!(eve, Destination::Discard) {
                        bail!("--output {text:?}: only one EVE output (file or -) in live mode");
                    }
                    eve = match path {
                        None => Destination::Stdout,
                        Some(path) => Destination::File {
                            path,
                            rotate_bytes: o.rotate_bytes,
                            rotate_after,
                        },
                    };
                }
                other => others.push(other),
            }
        }
        Ok(Settings {
            capture: CaptureConfig {
                queues: o.queues,
                sockets_per_queue: spq,
                mode,
                count_only: o.count_only.unwrap_or(false),
                xdp_meta: !o.no_xdp_meta.unwrap_or(false),
                attach,
                rings,
                filter,
                ..CaptureConfig::new(iface)
            },
            pipeline: PipelineConfig {
                tracker,
                ..PipelineConfig::default()
            },
            duration: secs("--duration", o.duration)?,
            interval: secs("--interval", o.interval)?.unwrap_or(Duration::from_secs(1)),
            summary_json: o.summary_json,
            eve,
            others,

            metrics_listen,
            record_ring,
            plain: o.plain.unwrap_or(false),
            bare: o.bare.unwrap_or(false),
            verbose: o.verbose.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_bad_values_are_named() {
        let file: CaptureOpts =
            toml::from_str("iface = \"fsx0\"\nsockets_per_queue = 2\nmax_flows = 10\n").unwrap();
        let flags = CaptureOpts {
            sockets_per_queue: Some(4),
            ..CaptureOpts::default()
        };
        let s = Settings::try_from(flags.over(file)).unwrap();
        assert_eq!(s.capture.iface, "fsx0");
        assert_eq!(s.capture.sockets_per_queue, 4);
        assert_eq!(s.pipeline.tracker.max_flows, 10);
        let e = toml::from_str::<CaptureOpts>("ifaec = \"x\"").unwrap_err();
        assert!(e.to_string().contains("ifaec"), "{e}");
        let e = toml::from_str::<CaptureOpts>("queues = \"two\"").unwrap_err();
        assert!(e.message().contains("invalid type"), "{e}");
        for (o, needle) in [
            (
                CaptureOpts {
                    iface: Some("x".into()),
                    rx_ring: Some(1000),
                    ..Default::default()
                },
                "--rx-ring 1000",
            ),
            (
                CaptureOpts {
                    iface: Some("x".into()),
                    tcp_timeout: Some(-1.0),
                    ..Default::default()
                },
                "--tcp-timeout -1",
            ),
            (
                CaptureOpts {
                    iface: Some("x".into()),
                    metrics_listen: Some("nowhere".into()),
                    ..Default::default()
                },
                "--metrics-listen",
            ),
            (CaptureOpts::default(), "no interface"),
        ] {
            let e = Settings::try_from(o).unwrap_err().to_string();
            assert!(e.contains(needle), "{e} should name {needle}");
        }
    }

    /// A filter and its action from the file, the expression overridden by
    /// a flag; the action defaults to pass.
    #[test]
    fn a_filter_from_the_file_or_a_flag() {
        let file: CaptureOpts =
            toml::from_str("iface = \"fsx0\"\nfilter = \"udp\"\nfilter_action = \"drop\"\n")
                .unwrap();
        let s = Settings::try_from(file.clone()).unwrap();
        let f = s.capture.filter.expect("a filter");
        assert_eq!(
            (f.filter.expression(), f.action),
            ("udp", FilterAction::Drop)
        );
        let flags = CaptureOpts {
            filter: Some("tcp port 80".into()),
            ..CaptureOpts::default()
        };
        let f = Settings::try_from(flags.over(file)).unwrap().capture.filter;
        let f = f.expect("a filter");
        assert_eq!(
            (f.filter.expression(), f.action),
            ("tcp port 80", FilterAction::Drop)
        );
        let plain = CaptureOpts {
            iface: Some("x".into()),
            filter: Some("ip6".into()),
            ..CaptureOpts::default()
        };
        let f = Settings::try_from(plain).unwrap().capture.filter.unwrap();
        assert_eq!(f.action, FilterAction::Pass);
        let none = CaptureOpts {
            iface: Some("x".into()),
            ..CaptureOpts::default()
        };
        assert!(Settings::try_from(none).unwrap().capture.filter.is_none());
    }

    /// The example the package installs as /etc/flowscope/flowscope.toml:
    /// valid once an interface is named (it names none, so the service
    /// cannot start on a guess), and still valid with every commented
    /// `key = value` example taken in.
    #[test]
    fn the_packaged_example_config_is_valid() {
        let text = include_str!("../../debian/flowscope.toml");
        let shipped: CaptureOpts = toml::from_str(text).unwrap();
        let e = Settings::try_from(shipped.clone()).unwrap_err();
        assert!(e.to_string().contains("no interface"), "{e}");
        let iface = CaptureOpts {
            iface: Some("fsx0".into()),
            ..CaptureOpts::default()
        };
        let s = Settings::try_from(iface.clone().over(shipped)).unwrap();
        assert!(
            matches!(&s.eve, Destination::File { path, .. } if path.starts_with("/var/log/flowscope")),
            "{:?}",
            s.eve
        );
        let examples: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| {
                l.split_once(" = ")
                    .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            })
            .collect();
        assert!(examples.len() >= 20, "{examples:?}");
        let all = format!("{text}\n{}\n", examples.join("\n"));
        let all: CaptureOpts = toml::from_str(&all).unwrap();
        let s = Settings::try_from(all).unwrap();
        assert_eq!(s.capture.iface, "eth0");
        assert!(s.capture.filter.is_some());
    }

    /// Every option with a bad value, given in the config file: the error
    /// names the key (or its flag), whether the type or the value is wrong.
    #[test]
    fn every_option_with_a_bad_value_is_named() {
        let dir = std::env::temp_dir().join(format!("fs-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("flowscope.toml");
        let cases = [
            ("iface = 3", "iface"),
            ("queues = 0", "--queues"),
            ("queues = \"two\"", "queues"),
            ("sockets_per_queue = 0", "--sockets-per-queue"),
            ("sockets_per_queue = 65", "--sockets-per-queue"),
            ("xdp_mode = \"turbo\"", "--xdp-mode"),
            ("xdp_attach = \"glue\"", "--xdp-attach"),
            ("no_xdp_meta = 1", "no_xdp_meta"),
            ("verbose = \"loud\"", "verbose"),
            ("count_only = \"yes\"", "count_only"),
            ("filter = 3", "filter"),
            ("filter = \"tcp port\"", "--filter"),
            ("filter = \"portt 80\"", "--filter"),
            (
                "filter = \"tcp\"\nfilter_action = \"keep\"",
                "--filter-action",
            ),
            ("filter_action = \"drop\"", "--filter-action"),
            ("filter_action = 1", "filter_action"),
            ("duration = -1.0", "--duration"),
            ("interval = 0.0", "--interval"),
            ("summary_json = 1", "summary_json"),
            ("output = [\"pigeon:x\"]", "--output"),
            ("output = [\"-\", \"eve:/tmp/x\"]", "--output"),
            ("output = \"-\"", "output"),
            ("rotate_bytes = 0", "--rotate-bytes"),
            ("rotate_secs = 0.0", "--rotate-secs"),
            ("metrics_listen = \"nowhere\"", "--metrics-listen"),
            ("max_flows = 0", "--max-flows"),
            ("tcp_timeout = 0.0", "--tcp-timeout"),
            ("udp_timeout = -5.0", "--udp-timeout"),
            ("other_timeout = 0.0", "--other-timeout"),
            ("active_timeout = 0.0", "--active-timeout"),
            ("record_ring = 0", "--record-ring"),
            ("rx_ring = 1000", "--rx-ring"),
            ("fill_ring = 32", "--fill-ring"),
            ("bare = 1", "bare"),
            ("plain = \"no\"", "plain"),
            ("colour = true", "colour"),
        ];
        for (line, needle) in cases {
            let text = if line.starts_with("iface") {
                line.to_owned()
            } else {
                format!("iface = \"fsx0\"\n{line}\n")
            };
            std::fs::write(&path, &text).unwrap();
            let e = CaptureOpts::from_file(&path)
                .and_then(Settings::try_from)
                .unwrap_err();
            let e = format!("{e:#}");
            assert!(e.contains(needle), "{line:?}: {e:?} should name {needle}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
