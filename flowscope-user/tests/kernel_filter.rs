//! Issue 22: tcpdump filter expressions in XDP. Each expression of
//! `common::filters::EXPRESSIONS` is translated to eBPF, loaded as the XDP
//! filter program (the kernel's verifier must accept it) and run with
//! `BPF_PROG_TEST_RUN` on every frame of every shared capture: its verdict
//! must equal libpcap's own `pcap_offline_filter` on the same bytes, and
//! its `filter_rejected` counter must hold exactly the frames and bytes it
//! rejected.
//!
//! The filter runs standalone here: its program array's accept slot holds a
//! tiny program returning `XDP_TX`, so an accepted frame is told apart from
//! a rejected one (`XDP_PASS` or `XDP_DROP`, the `--filter-action`).
//! Then through the main program (`Datapath` with a filter): every frame is
//! classified and counted exactly as without the filter, the rejected ones
//! are counted in `filter_rejected` and dropped, the others delivered by
//! `flowscope_accepted`; without a filter no tail call is left in it.
//! Raw-IP and loopback frames get a synthetic Ethernet header (both sides
//! see the same bytes); frames longer than a test run's linear buffer or
//! shorter than an Ethernet header are skipped and counted.

mod common;

use std::os::fd::{AsFd, OwnedFd};

use aya::maps::{Map, MapData, PerCpuArray};
use common::filters::{Compiled, EXPRESSIONS, as_ethernet, captures};
use common::kernel_tests_enabled;
use flowscope::{
    LinkType,
    capture::{
        Datapath, FilterAction, FilterMaps, FilterSpec, XdpFilter,
        bpf_sys::{self, EXIT, mov64_imm},
        set_jump,
    },
    filter::Filter,
};
use flowscope_common::{
    ClassCounter, Counter, CounterBlock, XdpConfig,
    config::{JUMP_ACCEPTED, JUMP_SLOTS, MODE_COUNT_ONLY, MODE_REDIRECT},
    counters::CpuBlock,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
/// Largest frame a test run takes in its linear buffer (one page less the
/// kernel's head- and tailroom).
const MAX_TEST_RUN_FRAME: usize = 3500;

/// The maps the filter program uses, made here (the counters as the main
/// program's `COUNTERS`: one `CpuBlock` per CPU).
struct Maps {
    counters: OwnedFd,
    view: PerCpuArray<MapData, CpuBlock>,
    jump: OwnedFd,
    /// The accept slot's program, kept loaded.
    _accepted: Option<OwnedFd>,
}

impl Maps {
    /// With `accept_slot`, slot [`JUMP_ACCEPTED`] returns `XDP_TX`.
    fn new(accept_slot: bool) -> Self {
        let counters = bpf_sys::map_create(
            bpf_sys::MAP_TYPE_PERCPU_ARRAY,
            4,
            std::mem::size_of::<CpuBlock>() as u32,
            1,
        )
        .expect("per-CPU array");
        let data = MapData::from_fd(counters.try_clone().unwrap()).unwrap();
        let view = PerCpuArray::try_from(Map::PerCpuArray(data)).unwrap();
        let jump = bpf_sys::map_create(bpf_sys::MAP_TYPE_PROG_ARRAY, 4, 4, JUMP_SLOTS)
            .expect("program array");
        let accepted = accept_slot.then(|| {
            let prog = bpf_sys::prog_load(
                bpf_sys::PROG_TYPE_XDP,
                &[mov64_imm(0, XDP_TX as i32), EXIT],
                "fs_test_accept",
            )
            .expect("load the accept slot's program");
            set_jump(jump.as_fd(), JUMP_ACCEPTED, prog.as_fd()).unwrap();
            prog
        });
        Self {
            counters,
            view,
            jump,
            _accepted: accepted,
        }
    }

    fn load(&self, filter: &Filter, action: FilterAction) -> XdpFilter {
        XdpFilter::load(
            filter,
            FilterMaps {
                counters: self.counters.as_fd(),
                jump: self.jump.as_fd(),
            },
            action,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Class `c` summed over CPUs, as `Datapath::counters` reads it.
    fn get(&self, c: Counter) -> ClassCounter {
        let mut sum = CounterBlock::default();
        for b in self.view.get(&0, 0).unwrap().iter() {
            b.counts.add_classes(&mut sum);
        }
        sum.get(c)
    }
}

/// Every frame of every capture as XDP would see it.
fn ethernet_frames() -> (Vec<(String, usize, Vec<u8>)>, usize) {
    let mut frames = Vec::new();
    let mut skipped = 0;
    for cap in captures() {
        for (i, f) in cap.frames.iter().enumerate() {
            match as_ethernet(f) {
                Some(e) if (14..=MAX_TEST_RUN_FRAME).contains(&e.len()) => {
                    frames.push((cap.name.clone(), i + 1, e));
                }
                _ => skipped += 1,
            }
        }
    }
    (frames, skipped)
}

fn run(prog: &XdpFilter, frame: &[u8]) -> u32 {
    bpf_sys::test_run(prog.fd(), frame, 1)
        .expect("BPF_PROG_TEST_RUN")
        .0
}

#[test]
fn xdp_filter_decides_as_libpcap_on_every_frame() {
    if !kernel_tests_enabled("xdp_filter_decides_as_libpcap_on_every_frame") {
        return;
    }
    decides_as_libpcap(1);
}

/// The same on every 50th frame: every expression's program still passes
/// the verifier and runs, for the kernel matrix's VM, where software
/// emulation makes the six million test runs above take too long.
#[test]
fn xdp_filter_decides_as_libpcap_on_a_sample() {
    if !kernel_tests_enabled("xdp_filter_decides_as_libpcap_on_a_sample") {
        return;
    }
    decides_as_libpcap(50);
}

/// Every expression, loaded as the XDP filter, on every `step`th frame:
/// the verdict and the interpreter's equal libpcap's, `filter_rejected`
/// holds the rejected frames and bytes.
fn decides_as_libpcap(step: usize) {
    let (frames, skipped) = ethernet_frames();
    let frames: Vec<_> = frames.into_iter().step_by(step).collect();
    let maps = Maps::new(true);
    let mut runs = 0u64;
    for expr in EXPRESSIONS {
        let mut compiled = Compiled::new(expr);
        let (ours, theirs) = compiled
            .get(LinkType::Ethernet)
            .expect("every expression compiles for Ethernet");
        let prog = maps.load(ours, FilterAction::Pass);
        let before = (
            maps.get(Counter::FilterRejected),
            maps.get(Counter::PassFallback),
        );
        let mut rejected = ClassCounter::default();
        for (name, n, frame) in &frames {
            let libpcap = theirs.filter(frame);
            let verdict = run(&prog, frame);
            assert_eq!(
                (verdict, ours.matches(frame, frame.len() as u32)),
                (if libpcap { XDP_TX } else { XDP_PASS }, libpcap),
                "{expr:?}: {name} frame {n} ({} bytes): XDP verdict and interpreter vs libpcap",
                frame.len()
            );
            if !libpcap {
                rejected.packets += 1;
                rejected.bytes += frame.len() as u64;
            }
            runs += 1;
        }
        let after = (
            maps.get(Counter::FilterRejected),
            maps.get(Counter::PassFallback),
        );
        assert_eq!(
            (
                after.0.packets - before.0.packets,
                after.0.bytes - before.0.bytes
            ),
            (rejected.packets, rejected.bytes),
            "{expr:?}: filter_rejected counts every rejected frame and its bytes"
        );
        assert_eq!(after.1, before.1, "{expr:?}: no tail call failed");
        println!(
            "{expr:?}: {} of {} frames rejected in XDP, as libpcap",
            rejected.packets,
            frames.len()
        );
    }
    println!(
        "{} expressions × {} frames (one in {step}): {runs} XDP verdicts equal to libpcap's; \
         {skipped} frames skipped in all (longer than {MAX_TEST_RUN_FRAME} or shorter than 14 \
         bytes, or not Ethernet-able)",
        EXPRESSIONS.len(),
        frames.len()
    );
    assert!(skipped < frames.len() * step / 20, "{skipped} skipped");
}

#[test]
fn rejected_frames_are_dropped_with_the_drop_action() {
    if !kernel_tests_enabled("rejected_frames_are_dropped_with_the_drop_action") {
        return;
    }
    let (frames, _) = ethernet_frames();
    let maps = Maps::new(true);
    let filter = Filter::compile("tcp port 80", LinkType::Ethernet).unwrap();
    let prog = maps.load(&filter, FilterAction::Drop);
    let mut seen = [0u64; 4];
    for (_, _, frame) in frames.iter().take(20_000) {
        let verdict = run(&prog, frame);
        let expected = if filter.matches(frame, frame.len() as u32) {
            XDP_TX
        } else {
            XDP_DROP
        };
        assert_eq!(verdict, expected);
        seen[verdict as usize] += 1;
    }
    assert!(
        seen[XDP_TX as usize] > 0 && seen[XDP_DROP as usize] > 0,
        "{seen:?}"
    );
    assert_eq!(
        maps.get(Counter::FilterRejected).packets,
        seen[XDP_DROP as usize]
    );
}

#[test]
fn a_missing_accept_slot_passes_the_frame_and_counts_it() {
    if !kernel_tests_enabled("a_missing_accept_slot_passes_the_frame_and_counts_it") {
        return;
    }
    let maps = Maps::new(false);
    let prog = maps.load(
        &Filter::compile("ip", LinkType::Ethernet).unwrap(),
        FilterAction::Drop,
    );
    // An IPv4 frame (accepted: the tail call finds no program) and an ARP
    // one (rejected: dropped).
    let mut ipv4 = vec![0u8; 12];
    ipv4.extend_from_slice(&[0x08, 0x00, 0x45]);
    ipv4.resize(60, 0);
    let mut arp = ipv4.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(run(&prog, &ipv4), XDP_PASS);
    assert_eq!(run(&prog, &arp), XDP_DROP);
    assert_eq!(
        (
            maps.get(Counter::PassFallback),
            maps.get(Counter::FilterRejected)
        ),
        (
            ClassCounter {
                packets: 1,
                bytes: 60
            },
            ClassCounter {
                packets: 1,
                bytes: 60
            }
        )
    );
}

/// Counter slots that say what became of a frame; all others describe it.
const VERDICTS: [Counter; 4] = [
    Counter::Redirected,
    Counter::PassFallback,
    Counter::PassCountOnly,
    Counter::FilterRejected,
];

fn datapath(mode: u32, metadata: bool, filter: Option<&FilterSpec>) -> Datapath {
    Datapath::load_detached(
        XdpConfig {
            mode,
            sockets_per_queue: 2,
            hash_seed: 7,
            _reserved: 0,
        },
        metadata,
        filter,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `frames` through `dp`'s main program: the verdicts and how much
/// each counter slot moved.
fn replay(dp: &mut Datapath, frames: &[&[u8]]) -> (Vec<u32>, CounterBlock) {
    let before = dp.counters().unwrap();
    let fd = dp.program().unwrap().fd().unwrap().as_fd();
    let verdicts = frames
        .iter()
        .map(|f| bpf_sys::test_run(fd, f, 1).expect("BPF_PROG_TEST_RUN").0)
        .collect();
    let after = dp.counters().unwrap();
    let mut delta = CounterBlock::default();
    for ((d, a), b) in delta.slots.iter_mut().zip(&after.slots).zip(&before.slots) {
        d.packets = a.packets - b.packets;
        d.bytes = a.bytes - b.bytes;
    }
    (verdicts, delta)
}

#[test]
fn main_program_counts_every_frame_then_filters() {
    if !kernel_tests_enabled("main_program_counts_every_frame_then_filters") {
        return;
    }
    let (all, _) = ethernet_frames();
    let frames: Vec<&[u8]> = all.iter().map(|(_, _, f)| &f[..]).step_by(7).collect();
    let expr = "tcp port 80 or vlan";
    let filter = Filter::compile(expr, LinkType::Ethernet).unwrap();
    let keep: Vec<bool> = frames
        .iter()
        .map(|f| filter.matches(f, f.len() as u32))
        .collect();
    let kept = |b: bool| ClassCounter {
        packets: keep.iter().filter(|k| **k == b).count() as u64,
        bytes: frames
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k == b)
            .map(|(f, _)| f.len() as u64)
            .sum(),
    };
    assert!(kept(true).packets > 1000 && kept(false).packets > 1000);
    let spec = FilterSpec {
        filter,
        action: FilterAction::Drop,
    };
    for mode in [MODE_REDIRECT, MODE_COUNT_ONLY] {
        let mut plain = datapath(mode, false, None);
        let mut filtered = datapath(mode, false, Some(&spec));
        assert_eq!(
            plain.tail_calls().unwrap(),
            0,
            "no filter: no tail call left"
        );
        assert!(filtered.tail_calls().unwrap() > 0);
        let (_, unfiltered) = replay(&mut plain, &frames);
        let (verdicts, delta) = replay(&mut filtered, &frames);
        // Every frame is classified and counted before the filter runs.
        for c in Counter::ALL.iter().filter(|c| !VERDICTS.contains(c)) {
            assert_eq!(
                delta.get(*c),
                unfiltered.get(*c),
                "{expr}: {c:?}, mode {mode}"
            );
        }
        assert_eq!(delta.get(Counter::All).packets, frames.len() as u64);
        // Rejected: counted and dropped. Kept: delivered by
        // flowscope_accepted (no socket in a test run: the pass fallback).
        let delivered = if mode == MODE_REDIRECT {
            Counter::PassFallback
        } else {
            Counter::PassCountOnly
        };
        assert_eq!(
            delta.get(Counter::FilterRejected),
            kept(false),
            "mode {mode}"
        );
        assert_eq!(delta.get(delivered), kept(true), "mode {mode}");
        for (v, k) in verdicts.iter().zip(&keep) {
            assert_eq!(*v, if *k { XDP_PASS } else { XDP_DROP });
        }
        println!(
            "{expr:?}, mode {mode}: {} frames counted, {} rejected and dropped, {} delivered",
            frames.len(),
            kept(false).packets,
            kept(true).packets
        );
    }
}

#[test]
fn accepted_frames_carry_the_main_programs_parse_result() {
    if !kernel_tests_enabled("accepted_frames_carry_the_main_programs_parse_result")
        || !common::xdp::metadata_block_enabled(
            "accepted_frames_carry_the_main_programs_parse_result",
        )
    {
        return;
    }
    let (all, _) = ethernet_frames();
    let spec = FilterSpec {
        filter: Filter::compile("ip or ip6", LinkType::Ethernet).unwrap(),
        action: FilterAction::Pass,
    };
    let mut dp = datapath(MODE_REDIRECT, true, Some(&spec));
    for (_, _, frame) in all.iter().step_by(97) {
        // Checks that the block written in front of the frame (by
        // flowscope_accepted, after two tail calls) is the parse result.
        let run = common::xdp::test_run(&mut dp, frame);
        assert_eq!(
            run.written.is_some(),
            spec.filter.matches(frame, frame.len() as u32)
        );
    }
}
