//! The script the VM runs, and reading back what it wrote into the shared
//! results folder: `booted` (the guest's `uname -r`), then for each test
//! binary `NAME.out` (its output) and `NAME.rc` (its exit status).

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::libtest::Tally;

/// Guest threads per test binary: one per virtual CPU.
pub const TEST_THREADS: u32 = 2;

/// A test binary to run in the VM.
pub struct Run {
    /// Target name (`kernel_xdp`), which prefixes its test names.
    pub name: String,
    /// The executable.
    pub exe: PathBuf,
    /// Its package's directory, the working directory cargo gives tests.
    pub dir: PathBuf,
    /// Tests to run (exact names); empty for all.
    pub tests: &'static [&'static str],
}

/// The shell script the guest runs: records that it booted, then runs each
/// binary as root with `env`, its output and status into `results`.
pub fn script(results: &Path, env: &[(&str, &OsStr)], runs: &[Run]) -> String {
    let r = quote(results.as_os_str());
    let mut s = format!(
        "# Written by `cargo xtask test`; runs inside the VM.\n\
         R={r}\n\
         uname -r > \"$R/booted\"\n\
         export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         # Verifier logs of refused programs land beside the results.\n\
         export RUNTIME_DIRECTORY=\"$R\"\n"
    );
    for (key, value) in env {
        let _ = writeln!(s, "export {key}={}", quote(value));
    }
    for run in runs {
        let mut line = format!(
            "cd {} && {} --test-threads={TEST_THREADS} --show-output",
            quote(run.dir.as_os_str()),
            quote(run.exe.as_os_str())
        );
        if !run.tests.is_empty() {
            line.push_str(" --exact");
            for t in run.tests {
                line.push(' ');
                line.push_str(&quote(OsStr::new(t)));
            }
        }
        let n = &run.name;
        // The status file appears whole (rename), so the host never reads half of it.
        let _ = writeln!(
            s,
            "{line} > \"$R/{n}.out\" 2>&1; echo $? > \"$R/{n}.rc.tmp\"; mv \"$R/{n}.rc.tmp\" \"$R/{n}.rc\""
        );
    }
    s
}

/// Single-quotes `s` for sh.
fn quote(s: &OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
}

/// The guest's `uname -r`, once it has booted.
pub fn booted(results: &Path) -> Option<String> {
    let text = std::fs::read_to_string(results.join("booted")).ok()?;
    let release = text.trim();
    (!release.is_empty()).then(|| release.to_owned())
}

/// The exit status of `name`, once it has finished.
pub fn exit_status(results: &Path, name: &str) -> Option<i32> {
    std::fs::read_to_string(results.join(format!("{name}.rc")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Prints the results of `name` (exit status `rc`) with its tests named
/// `[release] name::test`, its `*** SKIPPED` lines and, when it failed, its
/// failure messages; returns its counts. A binary that failed without a
/// failed test (a crash) counts as one failed test.
pub fn report(release: &str, results: &Path, name: &str, rc: i32) -> Tally {
    let path = results.join(format!("{name}.out"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut tally = Tally::default();
    let mut seen_result = false;
    let mut in_failures = false;
    for line in crate::libtest::lines(&text) {
        let line = line.as_str();
        let skips = tally.skipped.len();
        if tally.add_line(line) {
            seen_result = true;
            in_failures = false;
        } else if let Some((test, outcome)) = crate::libtest::test_line(line) {
            println!("test [{release}] {name}::{test} ... {outcome}");
        } else if line == "failures:" {
            in_failures = true;
        } else if in_failures || tally.skipped.len() > skips {
            println!("[{release}] {name}: {line}");
        }
    }
    if rc != 0 && tally.failed == 0 {
        let why = if seen_result {
            "failed after its tests passed"
        } else {
            "ended without a test result"
        };
        println!("test [{release}] {name} ... FAILED ({why}, exit status {rc})");
        tally.failed += 1;
    }
    if tally.failed > 0 {
        println!("[{release}] {name}: full output in {}", path.display());
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_runs_each_binary_with_its_env_and_tests() {
        let runs = [
            Run {
                name: "kernel_xdp".into(),
                exe: "/t/kernel_xdp-1".into(),
                dir: "/w/it's".into(),
                tests: &[],
            },
            Run {
                name: "fuzz_corpus".into(),
                exe: "/t/fuzz_corpus-2".into(),
                dir: "/w".into(),
                tests: &["xdp_agrees"],
            },
        ];
        let s = script(
            Path::new("/r"),
            &[("FLOWSCOPE_KERNEL_TESTS", OsStr::new("1"))],
            &runs,
        );
        assert!(s.contains("R='/r'\nuname -r > \"$R/booted\"\n"));
        assert!(s.contains("export FLOWSCOPE_KERNEL_TESTS='1'\n"));
        assert!(s.contains(
            "cd '/w/it'\\''s' && '/t/kernel_xdp-1' --test-threads=2 --show-output > \"$R/kernel_xdp.out\" 2>&1; \
             echo $? > \"$R/kernel_xdp.rc.tmp\"; mv \"$R/kernel_xdp.rc.tmp\" \"$R/kernel_xdp.rc\"\n"
        ));
        assert!(
            s.contains("'/t/fuzz_corpus-2' --test-threads=2 --show-output --exact 'xdp_agrees' >")
        );
    }

    #[test]
    fn a_crash_without_a_result_is_a_failure() {
        let dir = std::env::temp_dir().join(format!("xtask-guest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a.out"),
            "\nrunning 2 tests\ntest x ... ok\ntest y ... ok\n\n\
             test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n",
        )
        .unwrap();
        std::fs::write(dir.join("b.out"), "\nrunning 1 test\n").unwrap();
        let a = report("6.1", &dir, "a", 0);
        assert_eq!((a.passed, a.failed), (2, 0));
        assert_eq!(report("6.1", &dir, "b", 134), Tally::one_failure());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
