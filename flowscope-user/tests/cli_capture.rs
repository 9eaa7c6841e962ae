//! `flowscope capture` as a user meets it: wrong flags, missing privileges or
//! interfaces, signals, a killed process, two instances on one interface.

mod common;

use std::{
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use common::{kernel_tests_enabled, netns::TestBed};

const BIN: &str = env!("CARGO_BIN_EXE_flowscope");

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

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
    assert_one_line_error(&o, "needs root");
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

fn in_ns(bed: &TestBed, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    // Metrics off: these tests are about the datapath, and two instances in
    // one namespace would otherwise collide on the metrics port first.
    c.args([
        "netns",
        "exec",
        &bed.cap_ns,
        BIN,
        "capture",
        "--metrics-listen",
        "off",
    ])
    .args(args);
    c
}

fn xdp_attached(bed: &TestBed) -> bool {
    let o = Command::new("ip")
        .args(["-n", &bed.cap_ns, "link", "show", "dev", &bed.cap_if])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).contains("xdp")
}

/// Starts a capture and waits (bounded) until its program is attached.
fn start(bed: &TestBed, extra: &[&str]) -> Child {
    let child = in_ns(bed, &[&["--iface", &bed.cap_if][..], extra].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !xdp_attached(bed) {
        assert!(Instant::now() < deadline, "capture did not attach");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
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
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("attaching XDP") || err.contains("AF_XDP socket"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
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
    let capture = start(&bed, &["--plain", "--output", &out, "--duration", "4"]);
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
