//! Shared helpers of the tests: kernel-test gating, frame building,
//! namespaces, temporary directories, captures edited at test time and
//! metrics scrapes.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod capture_edit;
pub mod filters;
pub mod frames;
pub mod fsgen;
pub mod netns;
pub mod scrape;
pub mod tap;
pub mod temp;
pub mod xdp;

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
