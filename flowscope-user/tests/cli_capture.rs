//! `flowscope capture` as a user meets it: wrong flags, missing privileges or
//! interfaces, signals, a killed process, two instances on one interface.

mod common;

use std::{
    io::{Read, Write},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use common::capture::{in_ns, start, xdp_attached};
use common::stderr;
use common::{kernel_tests_enabled, netns::TestBed};

const BIN: &str = env!("CARGO_BIN_EXE_flowscope");

/// Asserts a failed run with one line on stderr containing `needle`.
fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "must fail: {err}");
    assert!(
        err.contains(needle),
        "stderr {err:?} must contain {needle:?}"
    );
    assert!(!err.contains("panicked"), "no panic: {err}");
}

#[test]
fn bad_flag_values_are_named() {
    for (args, needle) in [
        (
            &["--iface", "fsx", "--xdp-mode", "turbo"][..],
            "unknown XDP mode \"turbo\"",
        ),
        (&["--iface", "fsx", "--queues", "0"][..], "--queues"),
        (
            &["--iface", "fsx", "--sockets-per-queue", "0"][..],
            "--sockets-per-queue",
        ),
        (&["--iface", "fsx", "--duration=-3"][..], "--duration"),
        (&["--iface", "fsx", "--interval", "0"][..], "--interval"),
        (&["--xdp-mode", "drv"][..], "--iface"),
        (
            &["--iface", "fsx", "--filter", "tcp port"][..],
            "--filter: filter \"tcp port\": can't parse filter expression",
        ),
        (
            &[
                "--iface",
                "fsx",
                "--filter",
                "udp",
                "--filter-action",
                "keep",
            ][..],
            "--filter-action: unknown filter action \"keep\"",
        ),
        (
            &["--iface", "fsx", "--filter-action", "drop"][..],
            "--filter-action drop: there is no --filter",
        ),
        (
            &["--iface", "fsx", "--rotate-secs", "60"][..],
            "--rotate-bytes/--rotate-secs: no file output to rotate",
        ),
        (
            &[
                "--iface",
                "fsx",
                "--rotate-bytes",
                "1000000",
                "-o",
                "ipfix:udp://127.0.0.1:4739",
            ][..],
            "no file output to rotate",
        ),
        (
            &[
                "--iface",
                "fsx",
                "-o",
                "/tmp/fsx.json",
                "-o",
                "eve:/tmp/fsx.json",
            ][..],
            "writes to the same place as \"eve:/tmp/fsx.json\"",
        ),
        (
            &["--iface", "fsx", "--close-wait=-1"][..],
            "--close-wait -1",
        ),
    ] {
        let o = Command::new(BIN)
            .arg("capture")
            .args(args)
            .output()
            .unwrap();
        assert_one_line_error(&o, needle);
    }
}

#[test]
fn not_root_is_refused_with_a_hint() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let o = if root {
        // Drop to nobody for this one run.
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                BIN,
                "capture",
                "--iface",
                "lo",
            ])
            .output()
            .unwrap()
    } else {
        Command::new(BIN)
            .args(["capture", "--iface", "lo"])
            .output()
            .unwrap()
    };
    assert_one_line_error(&o, "live capture needs root or the capabilities CAP_BPF");
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn missing_interface_and_queue_out_of_range() {
    if !kernel_tests_enabled("missing_interface_and_queue_out_of_range") {
        return;
    }
    let bed = TestBed::new(2);
    let o = in_ns(&bed, &["--iface", "fsnosuch0", "--duration", "1"])
        .output()
        .unwrap();
    assert_one_line_error(&o, "no interface named \"fsnosuch0\"");
    let o = in_ns(
        &bed,
        &["--iface", &bed.cap_if, "--queues", "4", "--duration", "1"],
    )
    .output()
    .unwrap();
    assert_one_line_error(&o, "has 2 RX queue(s), 4 requested");
}

#[test]
fn sigint_detaches_and_exits_zero() {
    if !kernel_tests_enabled("sigint_detaches_and_exits_zero") {
        return;
    }
    let bed = TestBed::new(2);
    let child = start(&bed, &["--sockets-per-queue", "2"]);
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "exit 0 after SIGINT: {err}");
    assert!(err.contains("in drv mode, 4 worker(s)"), "{err}");
    assert!(
        err.contains("0 zero-copy, 4 copy mode"),
        "veth gives copy mode, reported: {err}"
    );
    assert!(err.contains("flowscope summary"), "{err}");
    assert!(!xdp_attached(&bed), "program detached");
}

#[test]
fn kill_9_leaves_no_program_and_restart_works() {
    if !kernel_tests_enabled("kill_9_leaves_no_program_and_restart_works") {
        return;
    }
    let bed = TestBed::new(2);
    let mut child = start(&bed, &[]);
    child.kill().unwrap();
    child.wait().unwrap();
    // The BPF link dies with its last fd: the interface is left clean.
    let deadline = Instant::now() + Duration::from_secs(5);
    while xdp_attached(&bed) {
        assert!(
            Instant::now() < deadline,
            "program still attached after kill -9"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = in_ns(&bed, &["--iface", &bed.cap_if, "--duration", "0.5"])
        .output()
        .unwrap();
    assert!(o.status.success(), "restart after kill -9: {}", stderr(&o));
}

#[test]
fn a_second_instance_is_refused() {
    if !kernel_tests_enabled("a_second_instance_is_refused") {
        return;
    }
    let bed = TestBed::new(1);
    let first = start(&bed, &[]);
    let o = in_ns(&bed, &["--iface", &bed.cap_if, "--duration", "1"])
        .output()
        .unwrap();
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "first instance unharmed: {}",
        stderr(&first)
    );
    // The queue is taken: the message says so, not a kernel-config hint.
    assert_one_line_error(
        &o,
        &format!(
            "queue 0 of {} is already bound by another AF_XDP socket — another flowscope?",
            bed.cap_if
        ),
    );
    assert!(!stderr(&o).contains("CONFIG_XDP_SOCKETS"), "{}", stderr(&o));
}

#[test]
fn skb_mode_and_count_only() {
    if !kernel_tests_enabled("skb_mode_and_count_only") {
        return;
    }
    let bed = TestBed::new(1);
    for (args, want) in [
        (&["--xdp-mode", "skb"][..], "in skb mode"),
        (&["--count-only"][..], "count-only"),
    ] {
        let o = in_ns(
            &bed,
            &[&["--iface", &bed.cap_if, "--duration", "0.5"][..], args].concat(),
        )
        .output()
        .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }
}

#[test]
fn full_screen_view_on_a_terminal_plain_lines_otherwise() {
    if !kernel_tests_enabled("full_screen_view_on_a_terminal_plain_lines_otherwise") {
        return;
    }
    let bed = TestBed::new(2);
    // Under script(1) stdout is a pseudo-terminal: the full-screen view.
    let cmd = format!(
        "stty cols 120 rows 40; ip netns exec {} {BIN} capture --metrics-listen off --iface {} --duration 2.5 --sockets-per-queue 2",
        bed.cap_ns, bed.cap_if
    );
    let o = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("\x1b[?1049h"), "enters the alternate screen");
    // The terminal moves the cursor over blank cells instead of writing
    // spaces: compare with escape sequences and blanks removed.
    let mut text = String::new();
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for e in chars.by_ref() {
                if e.is_ascii_alphabetic() {
                    break;
                }
            }
        } else if !c.is_whitespace() {
            text.push(c);
        }
    }
    for needle in [
        "workers",
        "topflowsbybytes",
        "pass_fallback",
        "fill_empty",
        "ringfull",
        "q:quit",
    ] {
        assert!(
            text.contains(needle),
            "full-screen view shows {needle:?}: {text}"
        );
    }
    assert!(out.contains("\x1b[?1049l"), "restores the terminal");
    // Through a pipe: one plain line per interval, no escape codes.
    let o = in_ns(&bed, &["--iface", &bed.cap_if, "--duration", "2.5"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(!out.contains('\x1b'), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!((2..=3).contains(&lines.len()), "one line per second: {out}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("pps") && l.contains("rx_dropped") && l.contains("flows")),
        "{out}"
    );
}

#[test]
fn a_syn_flood_shows_in_the_eve_anomaly_records() {
    if !kernel_tests_enabled("a_syn_flood_shows_in_the_eve_anomaly_records") {
        return;
    }
    const N: u64 = 20_000;
    let bed = TestBed::new(2);
    let eve = std::env::temp_dir().join(format!("{}.anomaly.json", bed.cap_ns));
    let out = format!("eve:{}", eve.display());
    // The interval records are flowscope's own shape: an EVE extra.
    let capture = start(
        &bed,
        &[
            "--plain",
            "--output",
            &out,
            "--eve-extras",
            "--duration",
            "4",
        ],
    );
    let fsgen = std::env::var("FLOWSCOPE_FSGEN").expect("FLOWSCOPE_FSGEN");
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &bed.gen_ns,
            &fsgen,
            "--iface",
            &bed.gen_if,
            "--frames",
            &N.to_string(),
        ])
        .args(["--syn-flood", "--queues", "2", "--rate", "20000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = capture.wait_with_output().unwrap();
    assert!(c.status.success(), "{}", stderr(&c));
    let text = std::fs::read_to_string(&eve).unwrap();
    let _ = std::fs::remove_file(&eve);
    let (mut syn, mut flows, mut targets) = (0, 0, Vec::new());
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        match r["event_type"].as_str() {
            Some("anomaly") => {
                syn += r["indicators"]["syn"].as_u64().unwrap();
                // A bare SYN raises the SYN indicator and no anomaly kind.
                assert!(
                    r["anomalies"].as_object().is_none_or(|a| a.is_empty()),
                    "{line}"
                );
                for t in r["top_syn_targets"].as_array().unwrap() {
                    targets.push(t["ip"].as_str().unwrap().to_owned());
                }
            }
            Some("flow") => flows += 1,
            other => panic!("unexpected record {other:?}: {line}"),
        }
    }
    assert_eq!(syn, N, "every SYN counted once across the interval records");
    assert_eq!(flows, N, "each spoofed SYN is a flow of its own");
    assert!(!targets.is_empty(), "the flood's targets are named");
    for t in &targets {
        assert!(
            t.starts_with("203.0.113.") || t.starts_with("2001:db8:d::"),
            "target {t} is one the flood hit"
        );
    }
}

/// The first line names what the datapath obtained; the summary and
/// `--summary-json` repeat it. The metadata block is on exactly where the
/// kernel allows the helper, off with the kernel's reason where it does not
/// (here also forced through the probe's answer), and off by `--no-xdp-meta`.
#[test]
fn the_datapath_line_says_what_was_obtained() {
    if !kernel_tests_enabled("the_datapath_line_says_what_was_obtained") {
        return;
    }
    let allowed = common::xdp::features()
        .get(flowscope::capture::Feature::XdpMeta)
        .is_yes();
    let bed = TestBed::new(1);
    let json = std::env::temp_dir().join(format!("{}-summary.json", bed.cap_ns));
    const UNAVAILABLE: &str = "bpf_xdp_adjust_meta unavailable";
    for (args, assume, metadata, why) in [
        (&[][..], "", if allowed { "on" } else { "off" }, UNAVAILABLE),
        (&[][..], "xdp_meta=no", "off", UNAVAILABLE),
        (&["--no-xdp-meta"][..], "", "off", "--no-xdp-meta"),
        (
            &["--xdp-attach", "netlink"][..],
            "",
            if allowed { "on" } else { "off" },
            UNAVAILABLE,
        ),
    ] {
        let mut c = in_ns(
            &bed,
            &[
                &[
                    "--iface",
                    &bed.cap_if,
                    "--duration",
                    "0.5",
                    "--summary-json",
                ][..],
                &[json.to_str().unwrap()],
                args,
            ]
            .concat(),
        );
        // An empty assumption keeps the environment's (the kernel's own
        // answers, or those a whole test run assumes).
        if !assume.is_empty() {
            c.env("FLOWSCOPE_PROBE_ASSUME", assume);
        }
        let o = c.output().unwrap();
        let err = stderr(&o);
        assert!(o.status.success(), "{args:?}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!(
                "flowscope: datapath on {}: metadata {metadata}",
                bed.cap_if
            )),
            "{args:?} {assume}: {first}"
        );
        if metadata == "off" {
            assert!(first.contains(why), "{args:?} {assume}: {first}");
        }
        let attach = if args.contains(&"netlink") {
            "netlink"
        } else {
            "link"
        };
        assert!(first.contains(&format!("attached by {attach}")), "{first}");
        assert!(
            err.contains(&format!("  datapath: metadata {metadata}")),
            "{err}"
        );
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let d = &s["datapath"];
        assert_eq!(
            (
                d["metadata"].as_str(),
                d["attach"].as_str(),
                d["xdp_mode"].as_str()
            ),
            (Some(metadata), Some(attach), Some("drv")),
            "{d}"
        );
        assert_eq!(d["kernel_features"].as_object().unwrap().len(), 5, "{d}");
        assert!(!xdp_attached(&bed), "{attach} attachment removed at exit");
    }
    let _ = std::fs::remove_file(&json);
}

/// Through netlink a program outlives a `kill -9`; the next start finds it,
/// sees nobody holds it, replaces it and says so; a clean exit detaches.
#[test]
fn netlink_attach_survives_kill_9_and_the_next_start_replaces_it() {
    if !kernel_tests_enabled("netlink_attach_survives_kill_9_and_the_next_start_replaces_it") {
        return;
    }
    let bed = TestBed::new(1);
    let mut child = start(&bed, &["--xdp-attach", "netlink"]);
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(xdp_attached(&bed), "netlink attachment outlives kill -9");
    let o = in_ns(&bed, &["--iface", &bed.cap_if, "--duration", "0.5"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("replaced stale flowscope program id"), "{err}");
    assert!(!xdp_attached(&bed), "clean exit detaches");
    // SIGINT in netlink mode detaches too.
    let child = start(&bed, &["--xdp-attach", "netlink"]);
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!xdp_attached(&bed), "SIGINT detaches a netlink attachment");
}

/// Someone else's XDP program is never replaced: one line says whose.
#[test]
fn a_foreign_program_is_left_alone() {
    if !kernel_tests_enabled("a_foreign_program_is_left_alone") {
        return;
    }
    use flowscope::capture::bpf_sys::{self, EXIT, mov64_imm};
    let bed = TestBed::new(1);
    let cap_if = bed.cap_if.clone();
    let (attached_tx, attached_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder = bed.in_cap_ns(move || {
        let prog = bpf_sys::prog_load(
            bpf_sys::PROG_TYPE_XDP,
            &[mov64_imm(0, 2), EXIT],
            "fs_foreign",
        )
        .expect("load a trivial program");
        let name = std::ffi::CString::new(cap_if).unwrap();
        // SAFETY: a valid NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        use std::os::fd::AsFd;
        let link = bpf_sys::xdp_link_create(prog.as_fd(), ifindex, 1 << 1).expect("attach it");
        attached_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        drop(link);
    });
    attached_rx.recv().unwrap();
    let o = in_ns(
        &bed,
        &[
            "--iface",
            &bed.cap_if,
            "--duration",
            "0.5",
            "--xdp-mode",
            "skb",
        ],
    )
    .output()
    .unwrap();
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_one_line_error(&o, "XDP program \"fs_foreign\"");
    assert!(
        stderr(&o).contains("replaces only its own programs"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

/// A helper the kernel refuses gives one line naming it and the file the
/// verifier log went to. Where the kernel refuses `bpf_xdp_adjust_meta`,
/// the capture is told the probe said yes; elsewhere the same message is
/// built from a real refusal of the helper (a socket filter may not use it).
#[test]
fn a_refused_helper_is_one_line_with_the_log_in_a_file() {
    if !kernel_tests_enabled("a_refused_helper_is_one_line_with_the_log_in_a_file") {
        return;
    }
    use flowscope::capture::bpf_sys::{self, helper};
    // The kernel's own answer, whatever FLOWSCOPE_PROBE_ASSUME says.
    let allowed = flowscope::capture::KernelFeatures::probe_kernel()
        .get(flowscope::capture::Feature::XdpMeta)
        .is_yes();
    let line = if allowed {
        let refused = bpf_sys::prog_load(
            bpf_sys::PROG_TYPE_SOCKET_FILTER,
            &bpf_sys::only_calling(helper::XDP_ADJUST_META, 0),
            "fs_refused",
        )
        .expect_err("socket filters may not call bpf_xdp_adjust_meta");
        format!(
            "flowscope: {}",
            flowscope::capture::CaptureError::from_verifier(&refused.error, &refused.log)
        )
    } else {
        let bed = TestBed::new(1);
        let o = in_ns(&bed, &["--iface", &bed.cap_if, "--duration", "0.5"])
            .env("FLOWSCOPE_PROBE_ASSUME", "xdp_meta=yes")
            .output()
            .unwrap();
        assert!(!o.status.success());
        stderr(&o)
    };
    assert_eq!(line.trim_end().lines().count(), 1, "{line}");
    assert!(
        line.contains("loading the XDP program failed: the kernel refused a helper")
            && line.contains("bpf_xdp_adjust_meta#54")
            && line.contains("--no-xdp-meta"),
        "{line}"
    );
    let path = line
        .trim_end()
        .rsplit_once("(verifier log: ")
        .and_then(|(_, p)| p.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no log path in {line}"));
    let log = std::fs::read_to_string(path).expect("the named log file");
    assert!(
        log.contains("cannot use helper bpf_xdp_adjust_meta#54"),
        "{log}"
    );
    let _ = std::fs::remove_file(path);
}

/// Without `--metrics-listen`, the binary serves `/metrics` on the default
/// loopback port from its start: text promtool accepts, with the datapath
/// it reported; any other path is 404.
#[test]
fn metrics_are_served_on_the_default_port_from_the_start() {
    use std::io::{BufRead, BufReader};
    if !kernel_tests_enabled("metrics_are_served_on_the_default_port_from_the_start") {
        return;
    }
    let bed = TestBed::new(1);
    let mut child = Command::new("ip")
        .args(["netns", "exec", &bed.cap_ns, BIN, "capture", "--plain"])
        .args(["--iface", &bed.cap_if, "--duration", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = lines
        .find_map(|l| l.ok().filter(|l| l.contains("capturing on")))
        .expect("the capturing line");
    let (_, url) = started.split_once("metrics on http://").unwrap();
    let addr = url.strip_suffix("/metrics").unwrap().to_owned();
    assert_eq!(addr, "127.0.0.1:19739", "{started}");
    let (text, elsewhere) = bed
        .in_cap_ns(move || {
            let addr = addr.parse().unwrap();
            (
                common::scrape::scrape(addr),
                common::scrape::get(addr, "/").0,
            )
        })
        .join()
        .unwrap();
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success());
    common::scrape::promtool_accepts(&text);
    assert_eq!(elsewhere, "HTTP/1.1 404 Not Found");
    assert!(
        text.lines().any(
            |l| l.starts_with("flowscope_datapath_info{xdp_mode=\"drv\",") && l.ends_with("} 1")
        ),
        "{text}"
    );
    assert!(text.contains("# TYPE flowscope_flow_duration_seconds histogram\n"));
}

/// `--filter` with `--filter-action drop` on a veth: the first line names
/// the expression and the action; of fsgen's traffic the frames of the
/// flows it rejects (IPv4 UDP: `tcp or ip6` keeps the rest) are what the
/// live lines add up to as filtered out, what the summary, the summary
/// JSON and the Prometheus scrape count in filter_rejected, and all that
/// the sockets did not receive.
#[test]
fn a_filter_is_named_and_what_it_rejects_is_counted_everywhere() {
    if !kernel_tests_enabled("a_filter_is_named_and_what_it_rejects_is_counted_everywhere") {
        return;
    }
    const N: u64 = 4000;
    let bed = TestBed::new(1);
    let json = std::env::temp_dir().join(format!("{}-filter.json", bed.cap_ns));
    let addr = format!("127.0.0.1:{}", 20_000 + std::process::id() % 20_000);
    let child = Command::new("ip")
        .args(["netns", "exec", &bed.cap_ns, BIN, "capture", "--plain"])
        .args(["--iface", &bed.cap_if, "--interval", "0.3"])
        .args(["--metrics-listen", &addr, "--summary-json"])
        .arg(&json)
        .args(["--filter", "tcp or ip6", "--filter-action", "drop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !xdp_attached(&bed) {
        assert!(Instant::now() < deadline, "capture did not attach");
        std::thread::sleep(Duration::from_millis(50));
    }
    let flows = common::fsgen::send(&bed, N, 40, 1, 20_000);
    let rejected = flows
        .iter()
        .filter(|f| f.proto != 6 && f.a.is_ipv4())
        .fold((0, 0), |(n, b), f| {
            (n + f.frames_ab + f.frames_ba, b + f.bytes_ab + f.bytes_ba)
        });
    assert!(rejected.0 > 0 && rejected.0 < N, "{rejected:?}");
    // Scrape (from inside the namespace) until an interval has published
    // every frame.
    let line =
        |class: &str, v: u64| format!("flowscope_xdp_packets_total{{class=\"{class}\"}} {v}");
    let all = line("all", N);
    let scraped = bed
        .in_cap_ns(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let mut s = std::net::TcpStream::connect(&addr).expect("connect to /metrics");
                s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
                let mut text = String::new();
                s.read_to_string(&mut text).unwrap();
                if text.lines().any(|l| l == all) || Instant::now() > deadline {
                    return text;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .join()
        .unwrap();
    for want in [line("all", N), line("filter_rejected", rejected.0)] {
        assert!(scraped.lines().any(|l| l == want), "no {want} in {scraped}");
    }
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.ends_with(", filter \"tcp or ip6\" in XDP (rejected frames: drop)"),
        "{first}"
    );
    let want = format!(
        "  filter \"tcp or ip6\": {} frames ({} bytes) filtered out, dropped",
        rejected.0, rejected.1
    );
    assert!(err.lines().any(|l| l == want), "no {want:?} in {err}");
    // The live lines' intervals add up to the total: the scrape above came
    // from a snapshot whose line was printed.
    let out = String::from_utf8_lossy(&o.stdout);
    let per_interval: u64 = out
        .lines()
        .map(|l| {
            let (_, rest) = l.split_once(" | filtered out ").expect(l);
            rest.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(per_interval, rejected.0, "{out}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(
        s["datapath"]["filter"],
        serde_json::json!({"expression": "tcp or ip6", "rejected_frames": "drop"})
    );
    let xdp = |class: &str| s["xdp"][class]["packets"].as_u64().unwrap();
    assert_eq!(
        (
            xdp("all"),
            xdp("filter_rejected"),
            s["xdp"]["filter_rejected"]["bytes"].as_u64()
        ),
        (N, rejected.0, Some(rejected.1))
    );
    assert_eq!(xdp("redirected"), N - rejected.0);
    assert_eq!(s["rx_packets"].as_u64(), Some(N - rejected.0));
}

/// An output that fails during a capture: one line names it and the cause
/// as soon as the writer sees it, the live lines carry every output's
/// counts, Prometheus has `flowscope_output_records_total` per output and
/// result, and the summary JSON's books balance per output while the other
/// output writes every record.
#[test]
fn a_failing_output_is_named_live_in_the_metrics_and_the_summary() {
    if !kernel_tests_enabled("a_failing_output_is_named_live_in_the_metrics_and_the_summary") {
        return;
    }
    const N: u64 = 2_000;
    let bed = TestBed::new(1);
    let dir = std::env::temp_dir().join(format!("{}.outfail", bed.cap_ns));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (eve, summary) = (dir.join("eve.json"), dir.join("sum.json"));
    let child = Command::new("ip")
        .args(["netns", "exec", &bed.cap_ns, BIN, "capture", "--plain"])
        .args(["--iface", &bed.cap_if, "--tcp-timeout", "0.3"])
        .args([
            "-o",
            "eve:/dev/full",
            "-o",
            &format!("eve:{}", eve.display()),
        ])
        .args(["--summary-json", summary.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !xdp_attached(&bed) {
        assert!(Instant::now() < deadline, "capture did not attach");
        std::thread::sleep(Duration::from_millis(50));
    }
    let fsgen = std::env::var("FLOWSCOPE_FSGEN").expect("FLOWSCOPE_FSGEN");
    let o = Command::new("ip")
        .args(["netns", "exec", &bed.gen_ns, &fsgen, "--iface", &bed.gen_if])
        .args(["--frames", &N.to_string(), "--syn-flood", "--rate", "4000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Poll the scrape until every flow's record reached both outputs (a
    // hang guard bounds it).
    let addr: std::net::SocketAddr = "127.0.0.1:19739".parse().unwrap();
    let value = |text: &str, output: &str, result: &str| -> u64 {
        let series =
            format!("flowscope_output_records_total{{output=\"{output}\",result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0, |v| v.parse().unwrap())
    };
    let mut text = String::new();
    let guard = Instant::now() + Duration::from_secs(60);
    // Every flow record (and the anomaly interval records) through both.
    while value(&text, "eve1", "written") < N
        || value(&text, "eve0", "dropped") + value(&text, "eve0", "failed")
            != value(&text, "eve1", "written")
    {
        assert!(Instant::now() < guard, "outputs never caught up:\n{text}");
        std::thread::sleep(Duration::from_millis(300));
        text = bed
            .in_cap_ns(move || common::scrape::scrape(addr))
            .join()
            .unwrap();
    }
    common::scrape::promtool_accepts(&text);
    assert_eq!(value(&text, "eve0", "written"), 0);
    assert!(
        value(&text, "eve0", "failed") >= 1,
        "the first write failed"
    );
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(o.status.success(), "{err}");
    let named: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("flowscope: output eve0 (eve:/dev/full) lost records"))
        .collect();
    assert_eq!(named.len(), 1, "one line, once:\n{err}");
    assert!(
        named[0].ends_with("No space left on device (os error 28)"),
        "{err}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains(" | eve0 written 0 ") && l.contains(" FAILED")),
        "the live lines show it:\n{out}"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let outs = s["outputs"].as_array().unwrap();
    let n = |o: &serde_json::Value, k: &str| o[k].as_u64().unwrap();
    for o in outs {
        assert_eq!(
            n(o, "records"),
            n(o, "written") + n(o, "dropped") + n(o, "failed"),
            "{o}"
        );
    }
    assert_eq!(n(&outs[0], "records"), n(&outs[1], "records"));
    assert_eq!(n(&outs[0], "written"), 0);
    let text = std::fs::read_to_string(&eve).unwrap();
    assert_eq!(text.lines().count() as u64, n(&outs[1], "written"));
    let flows = text
        .lines()
        .filter(|l| l.contains("\"event_type\":\"flow\""))
        .count();
    assert_eq!(flows as u64, N);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--write-pcap` live: the frames of the flows `--pcap-flows` chooses (here
/// UDP, by their first frame) are written, every one of them, in a pcapng
/// file tshark reads without a warning, whose interface block names the
/// captured interface; the summary counts them.
#[test]
fn write_pcap_keeps_every_frame_of_the_chosen_flows() {
    if !kernel_tests_enabled("write_pcap_keeps_every_frame_of_the_chosen_flows") {
        return;
    }
    const N: u64 = 3000;
    let bed = TestBed::new(1);
    let dir = std::env::temp_dir().join(format!("{}-pcap", bed.cap_ns));
    let json = std::env::temp_dir().join(format!("{}-pcap.json", bed.cap_ns));
    let _ = std::fs::remove_dir_all(&dir);
    let child = start(
        &bed,
        &[
            "--plain",
            "--write-pcap",
            dir.to_str().unwrap(),
            "--pcap-flows",
            "udp",
            "--summary-json",
            json.to_str().unwrap(),
        ],
    );
    let flows = common::fsgen::send(&bed, N, 40, 1, 20_000);
    let udp: u64 = flows
        .iter()
        .filter(|f| f.proto == 17)
        .map(|f| f.frames_ab + f.frames_ba)
        .sum();
    assert!(udp > 0 && udp < N, "{udp}");
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(s["pcap"]["frames_written"], udp, "{}", s["pcap"]);
    assert_eq!(s["pcap"]["frames_ring_full"], 0);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let t = Command::new("tshark")
        .arg("-r")
        .arg(&files[0])
        .args([
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
            "-e",
            "udp.srcport",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&t.stderr);
    assert!(
        t.status.success() && err.lines().all(|l| l.starts_with("Running as user")),
        "{err}"
    );
    let rows: Vec<String> = String::from_utf8_lossy(&t.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(rows.len() as u64, udp);
    for r in &rows {
        let (iface, port) = r.split_once('\t').unwrap();
        assert_eq!(iface, bed.cap_if, "{r}");
        assert!(!port.is_empty(), "a UDP frame: {r}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
