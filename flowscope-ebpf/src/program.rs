//! Maps, counting and the redirect decision.

use aya_ebpf::{
    bindings::xdp_action,
    helpers::generated::bpf_xdp_adjust_meta,
    macros::{map, xdp},
    maps::{Array, PerCpuArray, XskMap},
    programs::XdpContext,
};
use flowscope_common::{
    config::{MAX_XSK_SLOTS, MODE_COUNT_ONLY},
    frame::{L3Class, L4Class},
    hash::xsk_slot,
    meta::{self, XdpMeta},
    Counter, CounterBlock, XdpConfig,
};

use crate::parse::classify;

/// Load-time configuration, one entry, written by userspace before attach.
#[map(name = "CONFIG")]
static CONFIG: Array<XdpConfig> = Array::with_max_entries(1, 0);

/// Per-CPU class counters, one block.
#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<CounterBlock> = PerCpuArray::with_max_entries(1, 0);

/// AF_XDP sockets, slot `queue * S + steer % S`.
#[map(name = "XSKS")]
static XSKS: XskMap = XskMap::with_max_entries(MAX_XSK_SLOTS, 0);

#[xdp]
pub fn flowscope(ctx: XdpContext) -> u32 {
    let cfg = CONFIG.get(0).copied().unwrap_or_default();
    let m = classify(&ctx, cfg.hash_seed);
    let len = (ctx.data_end() - ctx.data()) as u64;
    let Some(block) = COUNTERS.get_ptr_mut(0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: the pointer comes from a successful per-CPU map lookup; this CPU
    // is the only writer of its slot and XDP runs with preemption disabled.
    let block = unsafe { &mut *block };
    count_classes(block, &m, len);

    if cfg.mode == MODE_COUNT_ONLY {
        bump(block, Counter::PassCountOnly, len);
        return xdp_action::XDP_PASS;
    }
    write_meta(&ctx, &m);
    // SAFETY: reads the RX queue index from the context the kernel passed in.
    let queue = unsafe { (*ctx.ctx).rx_queue_index };
    let slot = xsk_slot(queue, cfg.sockets_per_queue, m.steer_hash);
    match XSKS.redirect(slot, u64::from(xdp_action::XDP_PASS)) {
        Ok(action) => {
            bump(block, Counter::Redirected, len);
            action
        }
        Err(_) => {
            bump(block, Counter::PassFallback, len);
            xdp_action::XDP_PASS
        }
    }
}

#[inline(always)]
fn bump(block: &mut CounterBlock, c: Counter, len: u64) {
    let slot = &mut block.slots[c as usize];
    slot.packets += 1;
    slot.bytes += len;
}

#[inline(always)]
fn count_classes(block: &mut CounterBlock, m: &XdpMeta, len: u64) {
    bump(block, Counter::All, len);
    match m.l3_class() {
        L3Class::Ipv4 => bump(block, Counter::Ipv4, len),
        L3Class::Ipv6 => bump(block, Counter::Ipv6, len),
        L3Class::Other => bump(block, Counter::L3Other, len),
    }
    match m.l4_class() {
        L4Class::Tcp => bump(block, Counter::Tcp, len),
        L4Class::Udp => bump(block, Counter::Udp, len),
        L4Class::Icmp => bump(block, Counter::Icmp, len),
        L4Class::Icmpv6 => bump(block, Counter::Icmpv6, len),
        L4Class::Other => bump(block, Counter::L4Other, len),
        L4Class::None => {}
    }
    if m.flags & meta::FLAG_FRAGMENT != 0 {
        bump(block, Counter::Fragment, len);
    }
    if m.flags & meta::FLAG_ERR_L2 != 0 {
        bump(block, Counter::ErrL2, len);
    }
    if m.flags & meta::FLAG_ERR_L3 != 0 {
        bump(block, Counter::ErrL3, len);
    }
    if m.flags & meta::FLAG_ERR_L4 != 0 {
        bump(block, Counter::ErrL4, len);
    }
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
    // bounded by `data` as checked above.
    unsafe { core::ptr::write_unaligned(start as *mut XdpMeta, *m) };
}
