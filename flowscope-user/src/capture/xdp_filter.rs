//! The filter expression as an XDP program of its own.
//!
//! The main program classifies and counts every frame first (so class and
//! anomaly counts never depend on the filter), then tail-calls this one
//! through slot [`JUMP_FILTER`] of its `FILTER_JUMP` program array. This
//! program runs the expression ([`super::cbpf`]) and then
//!
//! - on reject, counts the frame in the `filter_rejected` slot of this
//!   CPU's [`KindBlock`] (packets and bytes; read back as
//!   [`Counter::FilterRejected`](flowscope_common::Counter::FilterRejected))
//!   and returns `XDP_PASS` or `XDP_DROP` ([`FilterAction`]): no redirect,
//!   no copy;
//! - on accept, tail-calls slot [`JUMP_ACCEPTED`]: the part of our object
//!   that writes the metadata and redirects (the per-CPU [`CpuBlock`] keeps
//!   the parse result across the calls). Should that tail call fail (an
//!   empty slot), the frame is counted in `pass_fallback` and passed.
//!
//! It is loaded with raw `bpf(BPF_PROG_LOAD)` against the maps it is given,
//! so it can run (and be tested) without the main program as well.
//! Multi-buffer frames are not supported: like the main program, it is
//! loaded without `BPF_F_XDP_HAS_FRAGS` and sees the linear part only.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use flowscope_common::{
    KindBlock,
    config::{JUMP_ACCEPTED, JUMP_FILTER},
    counters::CpuBlock,
};

use super::{
    CaptureError,
    bpf_sys::{
        self, EXIT, alu64_imm, alu64_reg, call, helper, jmp_imm, ld_map_fd, ldx, mov64_imm,
        mov64_reg, op, st_imm, stx,
    },
    cbpf::{self, CTX, DATA, DATA_END, STACK_BYTES},
};
use crate::filter::Filter;

const XDP_DROP: i32 = 1;
const XDP_PASS: i32 = 2;

/// What happens to a frame the filter rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterAction {
    /// Passed to the kernel stack (the default: keeps the host's own
    /// traffic alive).
    #[default]
    Pass,
    /// Dropped.
    Drop,
}

impl FilterAction {
    /// `pass` or `drop`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Drop => "drop",
        }
    }

    fn xdp_action(self) -> i32 {
        match self {
            Self::Pass => XDP_PASS,
            Self::Drop => XDP_DROP,
        }
    }
}

impl std::str::FromStr for FilterAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pass" => Ok(Self::Pass),
            "drop" => Ok(Self::Drop),
            other => Err(format!("unknown filter action {other:?}: use pass or drop")),
        }
    }
}

/// A filter expression to run in XDP, and what becomes of the frames it
/// rejects.
#[derive(Debug, Clone)]
pub struct FilterSpec {
    /// The compiled expression (for Ethernet).
    pub filter: Filter,
    /// Pass or drop what it rejects.
    pub action: FilterAction,
}

/// The maps the filter program uses.
#[derive(Clone, Copy)]
pub struct FilterMaps<'a> {
    /// A per-CPU array whose value 0 is a [`CpuBlock`] (`COUNTERS`).
    pub counters: BorrowedFd<'a>,
    /// The program array it tail-calls through ([`JUMP_ACCEPTED`]).
    pub jump: BorrowedFd<'a>,
}

/// A loaded filter program.
#[derive(Debug)]
pub struct XdpFilter {
    prog: OwnedFd,
}

impl XdpFilter {
    /// Translates `filter` and loads it as an XDP program using `maps`.
    ///
    /// # Errors
    ///
    /// [`CaptureError::Filter`]: too large for eBPF, or the kernel refused
    /// it (the verifier log is saved to a file the message names).
    pub fn load(
        filter: &Filter,
        maps: FilterMaps<'_>,
        action: FilterAction,
    ) -> Result<Self, CaptureError> {
        let fail = |reason: String| CaptureError::Filter {
            expr: filter.expression().to_owned(),
            reason,
        };
        let mut on_reject = count(maps.counters, REJECTED);
        on_reject.extend([mov64_imm(0, action.xdp_action()), EXIT]);
        let mut on_accept = vec![mov64_reg(1, CTX)];
        on_accept.extend(ld_map_fd(2, maps.jump));
        on_accept.extend([mov64_imm(3, JUMP_ACCEPTED as i32), call(helper::TAIL_CALL)]);
        on_accept.extend(count(maps.counters, FALLBACK));
        on_accept.extend([mov64_imm(0, XDP_PASS), EXIT]);
        let insns = cbpf::translate(filter.program(), &on_accept, &on_reject)
            .map_err(|e| fail(e.to_string()))?;
        let prog =
            bpf_sys::prog_load(bpf_sys::PROG_TYPE_XDP, &insns, "fs_filter").map_err(|refused| {
                let last = refused
                    .log
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let saved = match super::datapath::save_verifier_log(&refused.log) {
                    Ok(path) => format!("verifier log: {}", path.display()),
                    Err(why) => why,
                };
                // The verifier's summary last: it accepted the program and
                // something after it (a map's compatibility) refused.
                let what = if last.starts_with("processed ") {
                    "the verifier accepted the program, then the kernel refused it"
                } else {
                    "the kernel refused the program"
                };
                fail(format!("{what}: {} ({last}); {saved}", refused.error))
            })?;
        Ok(Self { prog })
    }

    /// The program, for the program array and `BPF_PROG_TEST_RUN`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.prog.as_fd()
    }

    /// Puts the program in slot [`JUMP_FILTER`] of `jump`.
    ///
    /// # Errors
    ///
    /// The map update failed.
    pub fn install(&self, jump: BorrowedFd<'_>) -> Result<(), CaptureError> {
        set_jump(jump, JUMP_FILTER, self.fd())
    }
}

/// Puts program `prog` in slot `slot` of the program array `jump`.
///
/// # Errors
///
/// [`CaptureError::Map`]: the kernel refused (an incompatible program).
pub fn set_jump(jump: BorrowedFd<'_>, slot: u32, prog: BorrowedFd<'_>) -> Result<(), CaptureError> {
    let fd = prog.as_raw_fd() as u32;
    bpf_sys::map_update(jump, &slot.to_ne_bytes(), &fd.to_ne_bytes(), 0).map_err(|e| {
        CaptureError::Map {
            map: flowscope_common::config::FILTER_JUMP_MAP,
            reason: format!("setting slot {slot}: {e}"),
        }
    })
}

/// Offset of the `filter_rejected` counter in a [`CpuBlock`].
const REJECTED: i16 = counter_offset(std::mem::offset_of!(KindBlock, filter_rejected));
/// Offset of the `pass_fallback` counter in a [`CpuBlock`].
const FALLBACK: i16 = counter_offset(std::mem::offset_of!(KindBlock, pass_fallback));

/// Offset in a [`CpuBlock`] of the counter at `in_kinds` in its
/// [`KindBlock`]; it must fit an instruction's 16-bit offset.
const fn counter_offset(in_kinds: usize) -> i16 {
    let at = std::mem::offset_of!(CpuBlock, counts) + in_kinds;
    assert!(at + 16 <= i16::MAX as usize);
    at as i16
}

/// Adds the frame (one packet, `data_end - data` bytes) to the counter at
/// offset `packets` of the per-CPU [`CpuBlock`] in `counters`. Clobbers
/// r0–r5; keeps r6–r9.
fn count(counters: BorrowedFd<'_>, packets: i16) -> Vec<u64> {
    let key = -STACK_BYTES - 8;
    let bytes = packets + 8;
    let add = [
        mov64_reg(1, DATA_END),
        alu64_reg(op::SUB, 1, DATA),
        ldx(op::DW, 2, 0, packets),
        alu64_imm(op::ADD, 2, 1),
        stx(op::DW, 0, packets, 2),
        ldx(op::DW, 2, 0, bytes),
        alu64_reg(op::ADD, 2, 1),
        stx(op::DW, 0, bytes, 2),
    ];
    let mut out = vec![
        st_imm(op::W, 10, key, 0),
        mov64_reg(2, 10),
        alu64_imm(op::ADD, 2, i32::from(key)),
    ];
    out.extend(ld_map_fd(1, counters));
    out.extend([
        call(helper::MAP_LOOKUP_ELEM),
        jmp_imm(op::JMP, op::JEQ, 0, 0, add.len() as i16),
    ]);
    out.extend(add);
    out
}
