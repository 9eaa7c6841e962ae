//! The few `bpf(2)` commands aya 0.14 does not offer for raw instructions:
//! loading a hand-assembled program, creating a map for it and filling it,
//! linking it to an interface, running it, and reading back what the
//! verifier made of a loaded program; and the encoding of the instructions
//! themselves. Used by the feature probes, the filter translation
//! (`super::cbpf`) and their tests.
//!
//! Each attribute struct is the prefix of `union bpf_attr` its command reads
//! (<https://docs.kernel.org/userspace-api/ebpf/syscall.html>); the kernel
//! treats the bytes past the size we pass as zero.

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

/// `BPF_PROG_TYPE_SOCKET_FILTER`.
pub const PROG_TYPE_SOCKET_FILTER: u32 = 1;
/// `BPF_PROG_TYPE_XDP`.
pub const PROG_TYPE_XDP: u32 = 6;
/// `BPF_MAP_TYPE_PROG_ARRAY`: the programs a tail call jumps to.
pub const MAP_TYPE_PROG_ARRAY: u32 = 3;
/// `BPF_MAP_TYPE_PERCPU_ARRAY`.
pub const MAP_TYPE_PERCPU_ARRAY: u32 = 6;
/// `BPF_MAP_TYPE_XSKMAP`.
pub const MAP_TYPE_XSKMAP: u32 = 17;
/// `BPF_XDP`, the attach type of an XDP BPF link (Linux 5.9).
pub const ATTACH_TYPE_XDP: u32 = 37;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_CREATE: libc::c_long = 28;

/// One eBPF instruction: opcode, registers, offset, immediate
/// (<https://docs.kernel.org/bpf/standardization/instruction-set.html>).
pub const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    (code as u64)
        | (((dst & 0xf) as u64) << 8)
        | (((src & 0xf) as u64) << 12)
        | ((off as u16 as u64) << 16)
        | ((imm as u32 as u64) << 32)
}

/// Opcode fields: instruction classes, operations, sizes and sources.
pub mod op {
    /// Class: load from memory into a register.
    pub const LDX: u8 = 0x01;
    /// Class: store an immediate.
    pub const ST: u8 = 0x02;
    /// Class: store a register.
    pub const STX: u8 = 0x03;
    /// Class: 32-bit arithmetic (the upper half of the result is zeroed).
    pub const ALU: u8 = 0x04;
    /// Class: 64-bit jumps.
    pub const JMP: u8 = 0x05;
    /// Class: jumps comparing the lower 32 bits.
    pub const JMP32: u8 = 0x06;
    /// Class: 64-bit arithmetic.
    pub const ALU64: u8 = 0x07;
    /// Source: the immediate.
    pub const K: u8 = 0x00;
    /// Source: the source register.
    pub const X: u8 = 0x08;
    /// Memory mode of loads and stores.
    pub const MEM: u8 = 0x60;
    /// Size: 4 bytes.
    pub const W: u8 = 0x00;
    /// Size: 2 bytes.
    pub const H: u8 = 0x08;
    /// Size: 1 byte.
    pub const B: u8 = 0x10;
    /// Size: 8 bytes.
    pub const DW: u8 = 0x18;
    /// `+`.
    pub const ADD: u8 = 0x00;
    /// `-`.
    pub const SUB: u8 = 0x10;
    /// `*`.
    pub const MUL: u8 = 0x20;
    /// Unsigned `/` (0 when dividing by 0).
    pub const DIV: u8 = 0x30;
    /// `|`.
    pub const OR: u8 = 0x40;
    /// `&`.
    pub const AND: u8 = 0x50;
    /// `<<` (by the low 5 bits in 32-bit arithmetic).
    pub const LSH: u8 = 0x60;
    /// Logical `>>`.
    pub const RSH: u8 = 0x70;
    /// Negation.
    pub const NEG: u8 = 0x80;
    /// Unsigned `%`.
    pub const MOD: u8 = 0x90;
    /// `^`.
    pub const XOR: u8 = 0xa0;
    /// Move.
    pub const MOV: u8 = 0xb0;
    /// Byte swap (`END`), with [`X`] as the source bit: to big endian.
    pub const END: u8 = 0xd0;
    /// Unconditional jump.
    pub const JA: u8 = 0x00;
    /// `==`.
    pub const JEQ: u8 = 0x10;
    /// Unsigned `>`.
    pub const JGT: u8 = 0x20;
    /// Unsigned `>=`.
    pub const JGE: u8 = 0x30;
    /// `&` is not zero.
    pub const JSET: u8 = 0x40;
    /// `!=`.
    pub const JNE: u8 = 0x50;
    /// Unsigned `<`.
    pub const JLT: u8 = 0xa0;
    /// Unsigned `<=`.
    pub const JLE: u8 = 0xb0;
    /// Helper call.
    pub const CALL: u8 = 0x80;
    /// Return r0.
    pub const EXIT: u8 = 0x90;
}

/// `r{dst} = imm` (64-bit move).
pub const fn mov64_imm(dst: u8, imm: i32) -> u64 {
    insn(op::ALU64 | op::MOV | op::K, dst, 0, 0, imm)
}

/// `r{dst} = r{src}`.
pub const fn mov64_reg(dst: u8, src: u8) -> u64 {
    insn(op::ALU64 | op::MOV | op::X, dst, src, 0, 0)
}

/// `r{dst} = r{dst} <operation> imm`, 64-bit.
pub const fn alu64_imm(operation: u8, dst: u8, imm: i32) -> u64 {
    insn(op::ALU64 | operation | op::K, dst, 0, 0, imm)
}

/// `r{dst} = r{dst} <operation> r{src}`, 64-bit.
pub const fn alu64_reg(operation: u8, dst: u8, src: u8) -> u64 {
    insn(op::ALU64 | operation | op::X, dst, src, 0, 0)
}

/// `w{dst} = w{dst} <operation> imm`, 32-bit (upper half zeroed).
pub const fn alu32_imm(operation: u8, dst: u8, imm: i32) -> u64 {
    insn(op::ALU | operation | op::K, dst, 0, 0, imm)
}

/// `w{dst} = w{dst} <operation> w{src}`, 32-bit (upper half zeroed).
pub const fn alu32_reg(operation: u8, dst: u8, src: u8) -> u64 {
    insn(op::ALU | operation | op::X, dst, src, 0, 0)
}

/// `r{dst}` = its low `bits` (16 or 32) in big-endian order.
pub const fn to_be(dst: u8, bits: i32) -> u64 {
    insn(op::ALU | op::END | op::X, dst, 0, 0, bits)
}

/// `r{dst} = *(size *)(r{src} + off)`, zero-extended.
pub const fn ldx(size: u8, dst: u8, src: u8, off: i16) -> u64 {
    insn(op::LDX | op::MEM | size, dst, src, off, 0)
}

/// `r{dst} = *(u32 *)(r{src} + off)`.
pub const fn ldx_u32(dst: u8, src: u8, off: i16) -> u64 {
    ldx(op::W, dst, src, off)
}

/// `*(size *)(r{dst} + off) = r{src}`.
pub const fn stx(size: u8, dst: u8, off: i16, src: u8) -> u64 {
    insn(op::STX | op::MEM | size, dst, src, off, 0)
}

/// `*(size *)(r{dst} + off) = imm`.
pub const fn st_imm(size: u8, dst: u8, off: i16, imm: i32) -> u64 {
    insn(op::ST | op::MEM | size, dst, 0, off, imm)
}

/// `if r{dst} <cond> imm goto +off` (`class` [`op::JMP`] or [`op::JMP32`]).
pub const fn jmp_imm(class: u8, cond: u8, dst: u8, imm: i32, off: i16) -> u64 {
    insn(class | cond | op::K, dst, 0, off, imm)
}

/// `if r{dst} <cond> r{src} goto +off`.
pub const fn jmp_reg(class: u8, cond: u8, dst: u8, src: u8, off: i16) -> u64 {
    insn(class | cond | op::X, dst, src, off, 0)
}

/// `goto +off`.
pub const fn ja(off: i16) -> u64 {
    insn(op::JMP | op::JA, 0, 0, off, 0)
}

/// `call helper`.
pub const fn call(helper: i32) -> u64 {
    insn(op::JMP | op::CALL, 0, 0, 0, helper)
}

/// `exit`.
pub const EXIT: u64 = insn(op::JMP | op::EXIT, 0, 0, 0, 0);

/// A program that only calls `helper` (context in r1, 0 in r2) and returns
/// `ret`: what a helper probe loads.
pub const fn only_calling(helper: i32, ret: i32) -> [u64; 4] {
    [mov64_imm(2, 0), call(helper), mov64_imm(0, ret), EXIT]
}

/// `r{dst} = map` as the two instructions of a `BPF_PSEUDO_MAP_FD` load.
pub fn ld_map_fd(dst: u8, map: BorrowedFd<'_>) -> [u64; 2] {
    [insn(0x18, dst, 1, 0, map.as_raw_fd()), 0]
}

/// Helper numbers of `enum bpf_func_id`.
pub mod helper {
    /// `bpf_map_lookup_elem`.
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    /// `bpf_tail_call`.
    pub const TAIL_CALL: i32 = 12;
    /// `bpf_redirect_map`.
    pub const REDIRECT_MAP: i32 = 51;
    /// `bpf_xdp_adjust_meta`.
    pub const XDP_ADJUST_META: i32 = 54;
}

/// A program the verifier refused: the kernel's error and its log.
#[derive(Debug)]
pub struct Refused {
    /// What `bpf(BPF_PROG_LOAD)` returned.
    pub error: io::Error,
    /// The verifier log (possibly empty).
    pub log: String,
}

fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a repr(C) prefix of `union bpf_attr` for `cmd`, valid
    // for reads and writes of its size, which is what we pass; every pointer
    // inside it points to memory that outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            (attr as *mut T).cast::<libc::c_void>(),
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor and nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Loads `insns` as a program of `prog_type` (GPL-licensed, so every helper
/// is allowed by licence). XDP programs expect attach type `BPF_XDP`, as
/// aya's and libbpf's do: a program array only takes programs whose attach
/// type matches its first user's (this machine's 6.18 kernel refuses the
/// load otherwise, after verification, with `EINVAL`).
///
/// # Errors
///
/// [`Refused`] with the verifier log.
pub fn prog_load(prog_type: u32, insns: &[u64], name: &str) -> Result<OwnedFd, Refused> {
    let mut prog_name = [0u8; 16];
    for (d, s) in prog_name.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: c"GPL".as_ptr() as u64,
        prog_name,
        expected_attach_type: if prog_type == PROG_TYPE_XDP {
            ATTACH_TYPE_XDP
        } else {
            0
        },
        ..ProgLoadAttr::default()
    };
    // Without a log first: a log that does not fit its buffer fails the
    // load (ENOSPC), and a large program's log is large. Only a refused
    // program is loaded again for its log, as libbpf does.
    if let Ok(fd) = sys_bpf(BPF_PROG_LOAD, &mut attr) {
        return Ok(owned(fd));
    }
    let mut log = vec![0u8; 4 << 20];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    match sys_bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(error) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            Err(Refused {
                error,
                log: String::from_utf8_lossy(&log[..end]).into_owned(),
            })
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// Creates a map.
///
/// # Errors
///
/// The kernel refused it.
pub fn map_create(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
) -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags: 0,
    };
    sys_bpf(BPF_MAP_CREATE, &mut attr).map(owned)
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Sets `map[key] = value` (both as the map lays them out; `flags`
/// `BPF_ANY` = 0). A program array takes the program's descriptor as a
/// `u32` value.
///
/// # Errors
///
/// The kernel refused: wrong sizes, index out of range, incompatible
/// program.
pub fn map_update(map: BorrowedFd<'_>, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        flags,
        ..MapElemAttr::default()
    };
    sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// Attaches the XDP program `prog` to interface `ifindex` through a BPF
/// link (`flags`: `XDP_FLAGS_*` mode bits). Closing the link detaches it.
///
/// # Errors
///
/// The kernel refused: `EINVAL` when it has no XDP links.
pub fn xdp_link_create(prog: BorrowedFd<'_>, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type: ATTACH_TYPE_XDP,
        flags,
    };
    sys_bpf(BPF_LINK_CREATE, &mut attr).map(owned)
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
}

/// Runs `prog` `repeat` times on `data` with `BPF_PROG_TEST_RUN`: its
/// return value and the kernel's mean time per run in ns. (The runs share
/// one buffer: what a run changes in it, the next one sees.)
///
/// # Errors
///
/// The kernel refused the run.
pub fn test_run(prog: BorrowedFd<'_>, data: &[u8], repeat: u32) -> io::Result<(u32, u32)> {
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: data.len() as u32,
        data_in: data.as_ptr() as u64,
        repeat,
        ..TestRunAttr::default()
    };
    sys_bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok((attr.retval, attr.duration))
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The head of `struct bpf_prog_info`, up to the translated instructions.
#[repr(C)]
#[derive(Default)]
struct ProgInfoHead {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
}

fn prog_info(prog: BorrowedFd<'_>, info: &mut ProgInfoHead) -> io::Result<()> {
    let mut attr = InfoAttr {
        bpf_fd: prog.as_raw_fd() as u32,
        info_len: std::mem::size_of::<ProgInfoHead>() as u32,
        info: (info as *mut ProgInfoHead) as u64,
    };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).map(drop)
}

/// The program as the verifier left it (dead code removed, helpers
/// resolved), one instruction per word.
///
/// # Errors
///
/// The kernel refused the query.
pub fn xlated_insns(prog: BorrowedFd<'_>) -> io::Result<Vec<u64>> {
    let mut head = ProgInfoHead::default();
    prog_info(prog, &mut head)?;
    let mut insns = vec![0u64; head.xlated_prog_len as usize / 8];
    let mut head = ProgInfoHead {
        xlated_prog_len: (insns.len() * 8) as u32,
        xlated_prog_insns: insns.as_mut_ptr() as u64,
        ..ProgInfoHead::default()
    };
    prog_info(prog, &mut head)?;
    Ok(insns)
}

/// The immediates of the helper calls in `insns` (`call imm` with no pseudo
/// source register). In a program the verifier translated they are no
/// longer helper numbers but each helper's address relative to the kernel's
/// call base: the same for every program, so a one-call reference program
/// tells which helper an immediate stands for.
pub fn helper_calls(insns: &[u64]) -> impl Iterator<Item = i32> + '_ {
    insns.iter().filter_map(|&i| {
        let (code, src) = (i as u8, (i >> 12) as u8 & 0xf);
        (code == 0x85 && src == 0).then_some((i >> 32) as u32 as i32)
    })
}

/// The tail calls in `insns`: `call bpf_tail_call` before verification,
/// the verifier's own tail-call instruction (`BPF_JMP | 0xf0`) after.
pub fn tail_calls(insns: &[u64]) -> usize {
    insns
        .iter()
        .filter(|&&i| {
            let (code, src, imm) = (i as u8, (i >> 12) as u8 & 0xf, (i >> 32) as i32);
            code == op::JMP | 0xf0
                || (code == op::JMP | op::CALL && src == 0 && imm == helper::TAIL_CALL)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_encode_as_the_kernel_lays_them_out() {
        // `r1 = 2` is b7 01 00 00 02 00 00 00 in memory (little endian).
        assert_eq!(
            mov64_imm(1, 2).to_le_bytes(),
            [0xb7, 0x01, 0, 0, 2, 0, 0, 0]
        );
        assert_eq!(EXIT.to_le_bytes(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            insn(0x18, 1, 1, 0, 7).to_le_bytes(),
            [0x18, 0x11, 0, 0, 7, 0, 0, 0]
        );
        assert_eq!(
            helper_calls(&[mov64_imm(0, 2), call(54), insn(0x85, 0, 1, 0, 3), EXIT])
                .collect::<Vec<_>>(),
            [54],
            "a call to a BPF-to-BPF function (src 1) is not a helper"
        );
    }
}
