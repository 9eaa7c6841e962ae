//! Maps, counting and the redirect decision.

use aya_ebpf::{
    bindings::xdp_action,
    helpers::generated::bpf_xdp_adjust_meta,
    macros::{map, xdp},
    maps::{PerCpuArray, ProgramArray, XskMap},
    programs::XdpContext,
};
use flowscope_common::{
    ClassCounter,
    anomaly::{
        ANOMALY_SLOTS, Anomaly, AnomalyBlock, PAIR_FILTER_BITS, PAIR_FILTER_SEED, PairFilter,
        SKETCH_DEPTH, SKETCH_KEY_SEED, SKETCH_SRC_PORTS, SKETCH_SYN_DST, SKETCH_TOP, Sketch,
        TopEntry, sketch_column,
    },
    config::{JUMP_FILTER, JUMP_SLOTS, MAX_XSK_SLOTS, MODE_COUNT_ONLY},
    counters::{CpuBlock, KindBlock, frame_kind},
    frag::{FRAG_SLOTS, FragEntry, frag_slot},
    frame::L4Class,
    hash::xsk_slot,
    meta::{self, Parsed, XdpMeta},
};

use crate::parse::classify;

/// 1: write the metadata block in front of redirected frames; 0: don't.
///
/// A read-only global (`.rodata`, frozen before the verifier runs; set by the
/// loader, see `flowscope_common::config::XDP_META_GLOBAL`): with 0 the
/// verifier knows the `bpf_xdp_adjust_meta` branch is dead, never checks the
/// helper, and removes the call, so the program loads on kernels that refuse
/// it.
#[unsafe(no_mangle)]
static XDP_META: u32 = 1;

/// [`MODE_REDIRECT`](flowscope_common::config::MODE_REDIRECT) or
/// [`MODE_COUNT_ONLY`]: a read-only global like [`XDP_META`], so the
/// verifier drops the other mode's code and no map lookup reads it.
#[unsafe(no_mangle)]
static MODE: u32 = 0;

/// Sockets per RX queue (S, 0 taken as 1); read-only, set by the loader.
#[unsafe(no_mangle)]
static SOCKETS_PER_QUEUE: u32 = 1;

/// Seed of the flow and steering hashes; read-only, set by the loader.
#[unsafe(no_mangle)]
static HASH_SEED: u32 = 0;

/// 1: after counting, tail-call the filter program (`--filter`); 0: no
/// filter, and no tail call either (read-only like [`XDP_META`], so the
/// verifier removes the branch). See `flowscope_common::config::FILTER_ON_GLOBAL`.
#[unsafe(no_mangle)]
static FILTER_ON: u32 = 0;

/// The filter's tail calls: slot [`JUMP_FILTER`] holds the filter program
/// userspace translated from the expression, slot
/// `flowscope_common::config::JUMP_ACCEPTED` [`flowscope_accepted`].
#[map(name = "FILTER_JUMP")]
static FILTER_JUMP: ProgramArray = ProgramArray::with_max_entries(JUMP_SLOTS, 0);

/// The value the loader gave read-only global `g`.
#[inline(always)]
fn global(g: &'static u32) -> u32 {
    // SAFETY: a volatile read of a global, so the compiler keeps the load
    // the verifier resolves to the loader's value.
    unsafe { core::ptr::read_volatile(g) }
}

/// Per CPU: the parse result of the current frame (see [`classify`]), the
/// frame counters by kind and the anomaly counters, one block.
#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<CpuBlock> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU sketches: SYN destinations, distinct destination ports per source.
#[map(name = "SKETCHES")]
static SKETCHES: PerCpuArray<Sketch> = PerCpuArray::with_max_entries(2, 0);

/// Per-CPU filter of (source, destination port) pairs already counted.
#[map(name = "PAIR_FILTER")]
static PAIR_FILTER: PerCpuArray<PairFilter> = PerCpuArray::with_max_entries(1, 0);

/// Bits of the anomaly mask in use (kinds 0..29, indicators 32..36).
const ANOMALY_BITS: usize = 36;

/// Per CPU: the fragment table (`flowscope_common::frag`).
#[map(name = "FRAGS")]
static FRAGS: PerCpuArray<FragEntry> = PerCpuArray::with_max_entries(FRAG_SLOTS, 0);

/// AF_XDP sockets, slot [`xsk_slot`].
#[map(name = "XSKS")]
static XSKS: XskMap = XskMap::with_max_entries(MAX_XSK_SLOTS, 0);

#[xdp]
pub fn flowscope(ctx: XdpContext) -> u32 {
    let Some(state) = COUNTERS.get_ptr_mut(0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: per-CPU map value; this CPU is its only user while XDP runs
    // with preemption disabled.
    let CpuBlock {
        parsed,
        counts: block,
        anomalies: anomaly_block,
    } = unsafe { &mut *state };
    classify(&ctx, global(&HASH_SEED), parsed);
    // Read back from map memory (volatile, so not forwarded from the
    // parser's registers): what the verifier knew per parser path is
    // forgotten and the rest of the program is verified once. Each field
    // is read at the width it was written (a wider load would wait for the
    // narrower stores to leave the store buffer).
    // SAFETY: reads of a valid, initialised per-CPU value.
    let (flags, l3, l4, anomalies) = unsafe {
        (
            core::ptr::read_volatile(&parsed.meta.flags),
            core::ptr::read_volatile(&parsed.meta.l3),
            core::ptr::read_volatile(&parsed.meta.l4),
            core::ptr::read_volatile(&parsed.meta.anomalies),
        )
    };
    let len = (ctx.data_end() - ctx.data()) as u64;
    if flags & meta::FLAG_FRAGMENT != 0 && steer_fragment(parsed) {
        bump(&mut block.frag_unsteered, len);
    }
    let mode = global(&MODE);
    // Opaque to the compiler, so the bounds check below stays whole: LLVM
    // would otherwise prove part of it from the flag bits, and Linux 6.1's
    // verifier loses the bounds of the bitwise OR in `frame_kind`
    // ("math between map_value pointer and register with unbounded min
    // value").
    let kind = frame_kind(mode, l3, l4, flags);
    // SAFETY: a volatile read of a local just written.
    let kind = unsafe { core::ptr::read_volatile(&kind) };
    if let Some(slot) = block.kinds.get_mut(kind) {
        bump(slot, len);
    }
    if anomalies != 0 {
        count_anomalies(anomaly_block, anomalies);
    }
    let syn = anomalies & Anomaly::Syn.bit() != 0;
    let udp = l4 == L4Class::Udp as u8;
    if syn || udp {
        count_scans(parsed, syn, udp);
    }
    if global(&FILTER_ON) != 0 {
        // SAFETY: a tail call with the context the kernel passed in; it
        // returns only if the slot is empty, and then no filter runs.
        unsafe { FILTER_JUMP.tail_call(&ctx, JUMP_FILTER) };
    }
    deliver(&ctx, &parsed.meta, block, len, mode)
}

/// The frames the filter program accepted, tail-called from it: delivered
/// as the main program would have, from the parse result the main program
/// left in this CPU's [`CpuBlock`].
#[xdp]
pub fn flowscope_accepted(ctx: XdpContext) -> u32 {
    let Some(state) = COUNTERS.get_ptr_mut(0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: as in `flowscope`: this CPU's value, preemption disabled.
    let CpuBlock { parsed, counts, .. } = unsafe { &mut *state };
    let len = (ctx.data_end() - ctx.data()) as u64;
    deliver(&ctx, &parsed.meta, counts, len, global(&MODE))
}

/// Passes the frame (count-only mode) or writes its metadata `m` and
/// redirects it to its socket; a failed redirect is counted in `block`.
#[inline(always)]
fn deliver(ctx: &XdpContext, m: &XdpMeta, block: &mut KindBlock, len: u64, mode: u32) -> u32 {
    if mode == MODE_COUNT_ONLY {
        return xdp_action::XDP_PASS;
    }
    if global(&XDP_META) != 0 {
        write_meta(ctx, m);
    }
    // SAFETY: reads the RX queue index from the context the kernel passed in.
    let queue = unsafe { (*ctx.ctx).rx_queue_index };
    let slot = xsk_slot(queue, global(&SOCKETS_PER_QUEUE), m.steer_hash);
    match XSKS.redirect(slot, u64::from(xdp_action::XDP_PASS)) {
        Ok(action) => action,
        Err(_) => {
            bump(&mut block.pass_fallback, len);
            xdp_action::XDP_PASS
        }
    }
}

/// Replaces a fragment's steering hash by its datagram's, from this CPU's
/// fragment table (a first fragment leaves its own there); true for a
/// later fragment whose first was not found there.
#[inline(always)]
fn steer_fragment(p: &mut Parsed) -> bool {
    let m = &mut p.meta;
    // Every fragment's flow hash is its address pair's.
    let slot = frag_slot(m.flow_hash, p.frag_id);
    let Some(entry) = FRAGS.get_ptr_mut(slot) else {
        return false;
    };
    let nonfirst = m.flags & meta::FLAG_NONFIRST_FRAGMENT != 0;
    // SAFETY: per-CPU map value; this CPU is its only user while XDP runs
    // with preemption disabled.
    let entry = unsafe { &mut *entry };
    let (steer, unsteered) = entry.steer(
        &p.src,
        &p.dst,
        p.frag_id,
        m.ip_proto,
        nonfirst,
        m.steer_hash,
    );
    m.steer_hash = steer;
    unsteered
}

#[inline(always)]
fn bump(slot: &mut ClassCounter, len: u64) {
    slot.packets += 1;
    slot.bytes += len;
}

/// Writes `m` into the metadata area in front of the frame. Drivers without
/// metadata support make the helper fail; userspace then parses the frame.
#[inline(always)]
fn write_meta(ctx: &XdpContext, m: &XdpMeta) {
    // SAFETY: plain helper call on the context the kernel passed in.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(XdpMeta::SIZE as i32)) } != 0 {
        return;
    }
    // Packet pointers must be reloaded after the helper call.
    let start = ctx.metadata();
    if start + XdpMeta::SIZE > ctx.data() {
        return;
    }
    // SAFETY: `start .. start + SIZE` is the metadata area just reserved,
    // bounded by `data` as checked above. `m` is read field by field at the
    // width each was written (volatile, so not as wider words that would
    // wait for the parser's stores to drain).
    unsafe { core::ptr::write_unaligned(start as *mut XdpMeta, core::ptr::read_volatile(m)) };
}

#[inline(always)]
fn count_anomalies(block: &mut AnomalyBlock, mask: u64) {
    // One step per bit set (a frame raises one or two kinds), the bit's
    // index computed without branches so the verifier sees one state.
    let mut rest = mask;
    for _ in 0..ANOMALY_BITS {
        if rest == 0 {
            break;
        }
        let low = rest & rest.wrapping_neg();
        rest ^= low;
        block.counts[bit_index(low)] += 1;
    }
}

/// Feeds the scan sketches: a SYN's destination, and the destination port
/// of a SYN or of a UDP datagram (a probe, whether or not it raised an
/// anomaly) once per (source, port) pair.
#[inline(always)]
fn count_scans(p: &Parsed, syn: bool, udp: bool) {
    if syn {
        sketch_add(SKETCH_SYN_DST, &p.dst, p.family);
    }
    let probe = syn || (udp && p.dport != 0);
    if probe && first_time_pair(p) {
        sketch_add(SKETCH_SRC_PORTS, &p.src, p.family);
    }
}

/// The index of the one bit set in `bit`: the population count of the bits
/// below it (SWAR, no branches), masked so the verifier sees it in `0..64`.
#[inline(always)]
fn bit_index(bit: u64) -> usize {
    let mut x = bit.wrapping_sub(1);
    x -= (x >> 1) & 0x5555_5555_5555_5555;
    x = (x & 0x3333_3333_3333_3333) + ((x >> 2) & 0x3333_3333_3333_3333);
    x = (x + (x >> 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    (x.wrapping_mul(0x0101_0101_0101_0101) >> 56) as usize & (ANOMALY_SLOTS - 1)
}

/// Sets the filter bit of (source, destination port); true if it was clear.
#[inline(always)]
fn first_time_pair(p: &Parsed) -> bool {
    let Some(filter) = PAIR_FILTER.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: per-CPU map value; this CPU is its only writer.
    let filter = unsafe { &mut *filter };
    let h = flowscope_common::hash::endpoint_hash(PAIR_FILTER_SEED, &p.src, p.dport) as usize
        & (PAIR_FILTER_BITS - 1);
    let (word, bit) = (h / 64, 1u64 << (h % 64));
    let Some(w) = filter.bits.get_mut(word) else {
        return false;
    };
    let fresh = *w & bit == 0;
    *w |= bit;
    fresh
}

/// Counts `addr` in sketch `index` and keeps it as a candidate when its
/// estimate beats the slot's current holder.
#[inline(always)]
fn sketch_add(index: u32, addr: &[u32; 4], family: u32) {
    let Some(sketch) = SKETCHES.get_ptr_mut(index) else {
        return;
    };
    // SAFETY: per-CPU map value; this CPU is its only writer.
    let sketch = unsafe { &mut *sketch };
    let h = flowscope_common::hash::endpoint_hash(SKETCH_KEY_SEED, addr, 0);
    let mut estimate = u32::MAX;
    for row in 0..SKETCH_DEPTH {
        let col = sketch_column(h, row);
        if let Some(c) = sketch.rows.get_mut(row).and_then(|r| r.get_mut(col)) {
            *c = c.saturating_add(1);
            estimate = estimate.min(*c);
        }
    }
    let Some(top) = sketch.top.get_mut(h as usize % SKETCH_TOP) else {
        return;
    };
    if top.addr == *addr || estimate > top.estimate {
        *top = TopEntry {
            addr: *addr,
            family,
            estimate,
        };
    }
}
