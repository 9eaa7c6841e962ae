//! Suricata's EVE schema (`../shared/schemas/suricata-eve.schema.json`,
//! a copy of OISF/suricata `etc/schema.json`) applied to EVE files by
//! Python's `jsonschema` (Draft 7, as Suricata's own tests use it;
//! `cargo xtask deps` installs the pinned version).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/schemas/suricata-eve.schema.json"
);
const VALIDATOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/eve_schema/validate.py");

/// What the validator says about `files`: `checked` (records per
/// `event_type`) and `violations` (each distinct one, with a count, the
/// first file and line, and the message).
pub fn validate(files: &[PathBuf]) -> Value {
    assert!(!files.is_empty(), "files to validate");
    run_validator(&[], files)
}

/// Checks the schema itself against Draft 7's metaschema (the validator
/// fails if it does not conform).
pub fn check_schema() {
    run_validator(&["--check-schema"], &[]);
}

fn run_validator(flags: &[&str], files: &[PathBuf]) -> Value {
    // `cargo xtask test` names the interpreter `cargo xtask deps` checked.
    let python = std::env::var_os("FLOWSCOPE_PYTHON").unwrap_or_else(|| "python3".into());
    let o = Command::new(python)
        .arg(VALIDATOR)
        .args(flags)
        .arg(SCHEMA)
        .args(files)
        .output()
        .expect("python3 runs (cargo xtask deps installs it and jsonschema)");
    assert!(
        o.status.success(),
        "the validator ran (python3 with jsonschema: `cargo xtask deps`): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("the validator's JSON")
}

/// Asserts that every record of `files` validates, and says how many of
/// each kind were checked; `what` names the run in messages.
pub fn assert_valid(what: &str, files: &[PathBuf]) -> Value {
    let report = validate(files);
    let violations = report["violations"].as_array().expect("violations");
    let listed: Vec<String> = violations
        .iter()
        .map(|v| {
            format!(
                "{} x{} at {} ({}): {} [first: {}]",
                v["event_type"], v["count"], v["where"], v["rule"], v["message"], v["first"]
            )
        })
        .collect();
    assert!(
        listed.is_empty(),
        "{what}: records Suricata's schema rejects:\n{}",
        listed.join("\n")
    );
    eprintln!("{what}: valid records by kind: {}", report["checked"]);
    report
}

/// `flowscope read CAPTURE ARGS -o eve:OUT`, its output.
pub fn flowscope_read(capture: &Path, args: &[&str], out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flowscope"))
        .arg("read")
        .arg(capture)
        .args(args)
        .arg("-o")
        .arg(format!("eve:{}", out.display()))
        .output()
        .expect("flowscope runs")
}

/// The records of an EVE file.
pub fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("EVE file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}
