//! Reading the human output of Rust's test harness (libtest): the
//! `test NAME ... ok` lines and the `test result:` line of each binary,
//! and the `*** SKIPPED` lines our kernel tests write past its capture.

/// Passed and failed tests, added up over test binaries, and the tests
/// that said they skipped (they pass, and are counted as passed too).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// The `*** SKIPPED test: why ***` lines.
    pub skipped: Vec<String>,
}

impl Tally {
    /// A tally of one failure.
    pub fn one_failure() -> Tally {
        Tally {
            failed: 1,
            ..Tally::default()
        }
    }

    /// Takes in one line of output: adds the counts of a `test result:`
    /// line or keeps a `*** SKIPPED` line; true for a `test result:` line.
    pub fn add_line(&mut self, line: &str) -> bool {
        if let Some(at) = line.find("*** SKIPPED") {
            self.skipped.push(line[at..].to_owned());
        }
        let Some(rest) = line.strip_prefix("test result: ") else {
            return false;
        };
        self.passed += count(rest, " passed");
        self.failed += count(rest, " failed");
        true
    }

    /// Adds another tally.
    pub fn add(&mut self, other: &Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped.extend(other.skipped.iter().cloned());
    }
}

/// The lines of `text`, with a `*** SKIPPED` text that a test wrote in the
/// middle of a `test NAME ... OUTCOME` line (a sequential run prints the
/// name before the test runs) put on a line of its own, before that one.
pub fn lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut held = String::new();
    for line in text.lines() {
        let line = std::mem::take(&mut held) + line;
        match line.find("*** SKIPPED") {
            Some(at) if at > 0 => {
                out.push(line[at..].to_owned());
                held = line[..at].to_owned();
            }
            _ => out.push(line),
        }
    }
    if !held.is_empty() {
        out.push(held);
    }
    out
}

/// The name and outcome (`ok`, `FAILED`, `ignored`) of a `test NAME ... OUTCOME` line.
pub fn test_line(line: &str) -> Option<(&str, &str)> {
    let (name, outcome) = line.strip_prefix("test ")?.split_once(" ... ")?;
    (!name.is_empty() && !outcome.is_empty()).then_some((name, outcome))
}

/// The number before `word` in a `test result:` line (`ok. 3 passed; 0 failed; …`).
fn count(line: &str, word: &str) -> u64 {
    line.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(word)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_test_result_and_skipped_lines() {
        let mut t = Tally::default();
        assert!(t.add_line(
            "test result: ok. 12 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s"
        ));
        assert!(t.add_line("test result: FAILED. 3 passed; 2 failed; 0 ignored"));
        assert!(!t.add_line("running 3 tests"));
        assert!(!t.add_line("*** SKIPPED a: no metadata ***"));
        assert_eq!(
            t,
            Tally {
                passed: 15,
                failed: 3,
                skipped: vec!["*** SKIPPED a: no metadata ***".into()],
            }
        );
    }

    #[test]
    fn a_skipped_line_inside_a_test_line_goes_before_it() {
        let text = "running 1 test\ntest a ... *** SKIPPED a: no metadata ***\nok\n";
        assert_eq!(
            lines(text),
            [
                "running 1 test",
                "*** SKIPPED a: no metadata ***",
                "test a ... ok"
            ]
        );
    }

    #[test]
    fn reads_test_lines() {
        assert_eq!(
            test_line("test vlan_and_qinq ... ok"),
            Some(("vlan_and_qinq", "ok"))
        );
        assert_eq!(
            test_line("test tests::a::b ... FAILED"),
            Some(("tests::a::b", "FAILED"))
        );
        assert_eq!(test_line("test result: ok. 1 passed"), None);
        assert_eq!(test_line("running 1 test"), None);
    }
}
