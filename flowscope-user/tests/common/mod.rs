//! Shared helpers of the tests: kernel-test gating, frame building,
//! namespaces, temporary directories, captures edited at test time and
//! metrics scrapes.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod capture;
pub mod capture_edit;
pub mod eve_schema;
pub mod filters;
pub mod frames;
pub mod fsgen;
pub mod netns;
pub mod scrape;
pub mod tap;
pub mod temp;
pub mod xdp;
pub mod zeek;

/// True when the kernel tests must run (`cargo xtask test` sets
/// `FLOWSCOPE_KERNEL_TESTS=1` as root). Otherwise prints a loud SKIPPED line.
pub fn kernel_tests_enabled(test: &str) -> bool {
    if std::env::var("FLOWSCOPE_KERNEL_TESTS").as_deref() == Ok("1") {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "FLOWSCOPE_KERNEL_TESTS=1 but not root: kernel tests need root"
        );
        assert!(
            !flowscope::capture::Datapath::object().is_empty(),
            "FLOWSCOPE_KERNEL_TESTS=1 but no XDP object embedded: build through `cargo xtask test`"
        );
        true
    } else {
        skipped(
            test,
            "kernel test (needs root and BPF); run `cargo xtask test`",
        );
        false
    }
}

/// Says loudly that `test` did not run, and why: one `*** SKIPPED` line
/// written straight to standard output (past the test harness's capture,
/// so it shows for a passing test too); `cargo xtask test` lists them all
/// in its final summary.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let line = format!("*** SKIPPED {test}: {why} ***\n");
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

/// A live run with `pipeline`, `record_ring` records per worker ring and
/// EVE with its extras appended to `path`.
pub fn eve_run(
    pipeline: flowscope::pipeline::PipelineConfig,
    record_ring: usize,
    path: std::path::PathBuf,
) -> flowscope::runtime::RunConfig {
    flowscope::runtime::RunConfig {
        pipeline: Some(pipeline),
        record_ring,
        outputs: vec![flowscope::output::OutputSpec::Eve(Some(path))],
        // The tests read flowscope's own fields (`end_reason`, …).
        eve: flowscope::output::EveOptions {
            extras: true,
            in_iface: None,
        },
        ..Default::default()
    }
}

/// Every shared capture (`../shared/pcaps/*.pcap`, `*.pcapng`), sorted.
pub fn shared_captures() -> Vec<std::path::PathBuf> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");
    let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .expect("shared captures")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    assert!(v.len() > 40, "the shared captures are there");
    v
}

/// `reader` through `flowscope read`'s runtime with `run` on `workers`
/// workers, EVE to a temporary file: the records, in output order, and the
/// run's report.
pub fn read_eve<R: std::io::Read>(
    reader: flowscope::pcap::PcapReader<R>,
    mut run: flowscope::runtime::RunConfig,
    workers: usize,
) -> (
    Vec<serde_json::Value>,
    flowscope::runtime::offline::OfflineReport,
) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let dir = temp::TempDir::new(&format!(
        "read-eve-{}",
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let eve = dir.path().join("eve.json");
    run.outputs = vec![flowscope::output::OutputSpec::Eve(Some(eve.clone()))];
    let cfg = flowscope::runtime::offline::OfflineConfig {
        run,
        workers,
        filter: None,
    };
    let report = flowscope::runtime::offline::run(reader, &cfg, &AtomicBool::new(false), || {})
        .expect("runs");
    let text = std::fs::read_to_string(&eve).expect("EVE file");
    let records = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    (records, report)
}

/// tshark's `fields` of the frames of `../shared/pcaps/CAPTURE` that match
/// `filter`, with its `options` (`-o` preferences, `-E` settings), one row
/// per frame split at tabs.
pub fn tshark_fields(
    capture: &str,
    options: &[&str],
    filter: &str,
    fields: &[&str],
) -> Vec<Vec<String>> {
    let mut cmd = std::process::Command::new("tshark");
    cmd.args(["-n", "-r", &format!("{}/{capture}", filters::PCAPS)])
        .args(options)
        .args(["-Y", filter, "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run tshark ({e}): install it with `cargo xtask deps`"));
    assert!(out.status.success(), "tshark on {capture}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// Runs the `flowscope` binary with `args` to its end.
pub fn flowscope(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .args(args)
        .output()
        .expect("start flowscope")
}

/// A finished run's standard error, as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
