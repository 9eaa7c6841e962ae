//! Options only `flowscope capture` has, from flags and the TOML config
//! file (see [`super::opts`] for the file and the shared options).
//!
//! ```toml
//! iface = "eth0"
//! sockets_per_queue = 2
//! xdp_mode = "drv"
//! filter = "not (port 873 or net 203.0.113.0/24)"   # tcpdump syntax
//! filter_action = "drop"   # what becomes of the frames it rejects
//! rotate_bytes = 1073741824
//! metrics_listen = "127.0.0.1:19739"
//! ```

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::bail;
use serde::Deserialize;

use super::opts::{Defaults, RunOpts, options, secs};
use crate::capture::{
    AttachPolicy, CaptureConfig, FilterAction, FilterSpec, RingSizes, XdpAttachMode,
};
use crate::filter::Filter;
use crate::output::OutputSpec;
use crate::runtime::RunConfig;

/// Where `/metrics` listens unless told otherwise: loopback, port 19739 —
/// outside the range of Prometheus's exporter port allocations (9100 is
/// node_exporter's), unassigned at IANA, below Linux's ephemeral ports.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:19739";

options! {
    /// Options of `flowscope capture` besides the shared ones; each is
    /// optional so a flag can be told apart from a value in the config file.
    #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
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
        /// Keep only the frames this tcpdump expression matches
        /// (pcap-filter(7) syntax, e.g. `not port 873`). It runs in the XDP
        /// program after the frame is counted: a frame it rejects is
        /// counted in filter_rejected and never reaches a socket or a
        /// worker.
        #[arg(long, value_name = "EXPR")]
        pub filter: Option<String>,
        /// What becomes of the frames the filter rejects: pass (to the
        /// host's own stack, the default, which keeps its traffic alive) or
        /// drop.
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
        /// Rotate every file output (EVE files, each Zeek log) when it
        /// reaches this many bytes.
        #[arg(long)]
        pub rotate_bytes: Option<u64>,
        /// Rotate every file output (EVE files, each Zeek log) after this
        /// many seconds.
        #[arg(long)]
        pub rotate_secs: Option<f64>,
        /// Prometheus /metrics listener, or `off` (default 127.0.0.1:19739).
        #[arg(long)]
        pub metrics_listen: Option<String>,
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
}

/// Validated settings for a live capture.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Capture configuration.
    pub capture: CaptureConfig,
    /// What the workers do and where records go.
    pub run: RunConfig,
    /// Stop after.
    pub duration: Option<Duration>,
    /// Live figures every.
    pub interval: Duration,
    /// Summary file.
    pub summary_json: Option<PathBuf>,
    /// Prometheus listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Plain lines only.
    pub plain: bool,
    /// Print the whole verifier log on a load failure.
    pub verbose: bool,
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

impl Settings {
    /// Validates the shared options `run` and the live ones `o`.
    ///
    /// # Errors
    ///
    /// A bad value, named with its flag.
    pub fn new(run: RunOpts, o: CaptureOpts) -> anyhow::Result<Settings> {
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
        let rings = RingSizes {
            rx_ring: pow2("--rx-ring", o.rx_ring, RingSizes::default().rx_ring)?,
            fill_ring: pow2("--fill-ring", o.fill_ring, RingSizes::default().fill_ring)?,
            ..RingSizes::default()
        };
        let metrics_listen = match o.metrics_listen.as_deref().unwrap_or(DEFAULT_METRICS_LISTEN) {
            "off" | "none" => None,
            a => Some(a.parse().map_err(|_| {
                anyhow::anyhow!(
                    "--metrics-listen {a:?}: expected ADDR:PORT (e.g. {DEFAULT_METRICS_LISTEN}) or off"
                )
            })?),
        };
        if o.rotate_bytes == Some(0) {
            bail!("--rotate-bytes 0: must be at least 1");
        }
        let filter = filter_spec(o.filter, o.filter_action)?;
        let mut run = run.settings(Defaults {
            stdout: false,
            record_ring: 1 << 16,
        })?;
        run.files.rotate_bytes = o.rotate_bytes;
        run.files.rotate_after = secs("--rotate-secs", o.rotate_secs)?;
        let rotating = run.files.rotate_bytes.is_some() || run.files.rotate_after.is_some();
        if rotating && !run.outputs.iter().any(OutputSpec::is_file) {
            bail!(
                "--rotate-bytes/--rotate-secs: no file output to rotate (give -o eve:FILE or -o zeek:DIR)"
            );
        }
        if o.bare.unwrap_or(false) {
            run.pipeline = None;
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
            run,
            duration: secs("--duration", o.duration)?,
            interval: secs("--interval", o.interval)?.unwrap_or(Duration::from_secs(1)),
            summary_json: o.summary_json,
            metrics_listen,
            plain: o.plain.unwrap_or(false),
            verbose: o.verbose.unwrap_or(false),
        })
    }

    /// Reads the config file at `path` and validates the flags over it.
    ///
    /// # Errors
    ///
    /// As [`super::opts::config_text`] and [`Settings::new`].
    pub fn with_file(
        run: RunOpts,
        live: CaptureOpts,
        path: Option<&std::path::Path>,
    ) -> anyhow::Result<Settings> {
        let (file_run, file_live) = match path {
            Some(p) => {
                let text = super::opts::config_text(p, &[RunOpts::KEYS, CaptureOpts::KEYS])?;
                (
                    super::opts::parse_config::<RunOpts>(p, &text)?,
                    super::opts::parse_config::<CaptureOpts>(p, &text)?,
                )
            }
            None => Default::default(),
        };
        Settings::new(run.merged(file_run), live.over(file_live))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::OutputSpec;

    #[test]
    fn flags_override_the_file_and_bad_values_are_named() {
        let file: CaptureOpts =
            toml::from_str("iface = \"fsx0\"\nsockets_per_queue = 2\n").unwrap();
        let file_run: RunOpts = toml::from_str("max_flows = 10\nl7 = true\n").unwrap();
        let flags = CaptureOpts {
            sockets_per_queue: Some(4),
            ..CaptureOpts::default()
        };
        let run_flags = RunOpts {
            no_l7: Some(true),
            ..RunOpts::default()
        };
        let s = Settings::new(run_flags.merged(file_run), flags.over(file)).unwrap();
        assert_eq!(s.capture.iface, "fsx0");
        assert_eq!(s.capture.sockets_per_queue, 4);
        let p = s.run.pipeline.unwrap();
        assert_eq!(p.tracker.max_flows, 10);
        assert!(p.l7.is_none(), "--no-l7 beats l7 = true in the file");
        for (o, r, needle) in [
            (
                CaptureOpts {
                    iface: Some("x".into()),
                    rx_ring: Some(1000),
                    ..Default::default()
                },
                RunOpts::default(),
                "--rx-ring 1000",
            ),
            (
                CaptureOpts {
                    iface: Some("x".into()),
                    ..Default::default()
                },
                RunOpts {
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
                RunOpts::default(),
                "--metrics-listen",
            ),
            (CaptureOpts::default(), RunOpts::default(), "no interface"),
        ] {
            let e = Settings::new(r, o).unwrap_err().to_string();
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
        let s = Settings::new(RunOpts::default(), file.clone()).unwrap();
        let f = s.capture.filter.expect("a filter");
        assert_eq!(
            (f.filter.expression(), f.action),
            ("udp", FilterAction::Drop)
        );
        let flags = CaptureOpts {
            filter: Some("tcp port 80".into()),
            ..CaptureOpts::default()
        };
        let f = Settings::new(RunOpts::default(), flags.over(file))
            .unwrap()
            .capture
            .filter;
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
        let f = Settings::new(RunOpts::default(), plain)
            .unwrap()
            .capture
            .filter
            .unwrap();
        assert_eq!(f.action, FilterAction::Pass);
        let none = CaptureOpts {
            iface: Some("x".into()),
            ..CaptureOpts::default()
        };
        assert!(
            Settings::new(RunOpts::default(), none)
                .unwrap()
                .capture
                .filter
                .is_none()
        );
    }

    /// The example the package installs as /etc/flowscope/flowscope.toml:
    /// valid once an interface is named (it names none, so the service
    /// cannot start on a guess), and still valid with every commented
    /// `key = value` example taken in.
    #[test]
    fn the_packaged_example_config_is_valid() {
        let text = include_str!("../../debian/flowscope.toml");
        let dir = std::env::temp_dir().join(format!("fs-shipped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let settings = |text: &str, iface: Option<&str>| {
            let path = dir.join("flowscope.toml");
            std::fs::write(&path, text).unwrap();
            let flags = CaptureOpts {
                iface: iface.map(str::to_owned),
                ..CaptureOpts::default()
            };
            Settings::with_file(RunOpts::default(), flags, Some(&path))
        };
        let e = settings(text, None).unwrap_err();
        assert!(e.to_string().contains("no interface"), "{e}");
        let s = settings(text, Some("fsx0")).unwrap();
        assert!(
            matches!(&s.run.outputs[..], [OutputSpec::Eve(Some(p))] if p.starts_with("/var/log/flowscope")),
            "{:?}",
            s.run.outputs
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
        let s = settings(&format!("{text}\n{}\n", examples.join("\n")), None).unwrap();
        assert_eq!(s.capture.iface, "eth0");
        assert!(s.capture.filter.is_some());
        std::fs::remove_dir_all(&dir).unwrap();
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
            ("output = \"-\"", "output"),
            ("rotate_bytes = 0", "--rotate-bytes"),
            ("rotate_secs = 0.0", "--rotate-secs"),
            ("metrics_listen = \"nowhere\"", "--metrics-listen"),
            ("max_flows = 0", "--max-flows"),
            ("max_flows = 16777217", "--max-flows"),
            ("tcp_timeout = 0.0", "--tcp-timeout"),
            ("udp_timeout = -5.0", "--udp-timeout"),
            ("other_timeout = 0.0", "--other-timeout"),
            ("active_timeout = 0.0", "--active-timeout"),
            ("record_ring = 0", "--record-ring"),
            ("decap = \"inner\"", "decap"),
            ("l7 = 1", "l7"),
            ("l7 = false\nno_l7 = false", "--no-l7"),
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
            let e = Settings::with_file(RunOpts::default(), CaptureOpts::default(), Some(&path))
                .unwrap_err();
            let e = format!("{e:#}");
            assert!(e.contains(needle), "{line:?}: {e:?} should name {needle}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
