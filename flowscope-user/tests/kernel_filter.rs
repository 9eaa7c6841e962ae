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
        FilterAction, FilterMaps, XdpFilter,
        bpf_sys::{self, EXIT, mov64_imm},
        set_jump,
    },
    filter::Filter,
};
use flowscope_common::{
    ClassCounter, Counter, CounterBlock,
    config::{JUMP_ACCEPTED, JUMP_SLOTS},
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
/// Largest frame a test run takes in its linear buffer (one page less the
/// kernel's head- and tailroom).
const MAX_TEST_RUN_FRAME: usize = 3500;

/// The maps the filter program uses, made here.
struct Maps {
    counters: OwnedFd,
    view: PerCpuArray<MapData, CounterBlock>,
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
            std::mem::size_of::<CounterBlock>() as u32,
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

    /// Slot `c` summed over CPUs.
    fn get(&self, c: Counter) -> ClassCounter {
        let mut sum = CounterBlock::default();
        for b in self.view.get(&0, 0).unwrap().iter() {
            sum.add(b);
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
    let (frames, skipped) = ethernet_frames();
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
        "{} expressions × {} frames: {runs} XDP verdicts equal to libpcap's; {skipped} frames \
         skipped (longer than {MAX_TEST_RUN_FRAME} or shorter than 14 bytes, or not Ethernet-able)",
        EXPRESSIONS.len(),
        frames.len()
    );
    assert!(skipped < frames.len() / 20, "{skipped} skipped");
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
