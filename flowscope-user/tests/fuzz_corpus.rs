//! Replays every committed fuzz seed (`fuzz/corpus/<target>/`) and crash
//! regression (`fuzz/regressions/<target>/`) through the fuzz targets'
//! bodies, on stable and without cargo-fuzz: a fixed crash stays fixed.
//!
//! The kernel-gated test runs every frame of the `frame` target's corpus
//! through the XDP program (`BPF_PROG_TEST_RUN`) and compares the metadata
//! it writes with `wire::classify` and the reader's steering (its fragment
//! table fed the same frames in order): the XDP-vs-userspace differential,
//! which needs root and so is no libFuzzer target.

mod common;

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code, reason = "the seed encoders serve the seed generator")]
mod targets;

use std::path::{Path, PathBuf};

use flowscope_common::{XdpConfig, XdpMeta, config::MODE_REDIRECT};

const FUZZ: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz");

/// The files of `fuzz/<kind>/<target>/`, sorted (none if the directory is absent).
fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(FUZZ).join(kind).join(target);
    let mut out: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.map(|e| e.expect("corpus entry").path()).collect(),
        Err(_) => Vec::new(),
    };
    out.retain(|p| p.is_file());
    out.sort();
    out
}

/// Runs `run` on each file, naming the file of the first failure.
fn replay(target: &str, run: fn(&[u8]), paths: &[PathBuf]) {
    for path in paths {
        let data = std::fs::read(path).expect("read corpus file");
        if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?");
            panic!("fuzz target {target} fails on {}: {msg}", path.display());
        }
    }
}

#[test]
fn every_target_has_seeds() {
    for (target, _) in targets::TARGETS {
        assert!(
            files("corpus", target).len() >= 5,
            "fuzz/corpus/{target} needs seeds (cargo xtask fuzz --seed)"
        );
        assert!(
            Path::new(FUZZ)
                .join(format!("fuzz_targets/{target}.rs"))
                .is_file(),
            "no libFuzzer binary for {target}"
        );
    }
}

#[test]
fn corpora_replay() {
    for (target, run) in targets::TARGETS {
        replay(target, run, &files("corpus", target));
    }
}

#[test]
fn regressions_replay() {
    for (target, run) in targets::TARGETS {
        replay(target, run, &files("regressions", target));
    }
}

#[test]
fn xdp_agrees_with_classify_on_frame_corpus() {
    if !common::kernel_tests_enabled("xdp_agrees_with_classify_on_frame_corpus") {
        return;
    }
    let mut dp = common::xdp::load(XdpConfig {
        mode: MODE_REDIRECT,
        sockets_per_queue: 2,
        hash_seed: targets::frame::SEED,
        _reserved: 0,
    });
    let mut compared = 0;
    // The reader's steering, fed the frames the program sees in the same
    // order: its fragment table moves as the program's does.
    let mut steering = flowscope::extract::Steering::new(targets::frame::SEED);
    for kind in ["corpus", "regressions"] {
        for path in files(kind, "frame") {
            let frame = std::fs::read(&path).unwrap();
            // BPF_PROG_TEST_RUN takes at least an Ethernet header and at
            // most about a page.
            if !(14..=3000).contains(&frame.len()) {
                continue;
            }
            let kernel = common::xdp::test_run(&mut dp, &frame).parsed.meta;
            let twin = XdpMeta {
                steer_hash: steering.steer(&frame, flowscope::view::LinkType::Ethernet),
                ..flowscope::wire::classify(&frame, targets::frame::SEED)
            };
            assert_eq!(
                kernel,
                twin,
                "XDP and classify disagree on {}",
                path.display()
            );
            compared += 1;
        }
    }
    assert!(compared >= 20, "only {compared} frames compared");
}
