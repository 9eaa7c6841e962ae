//! Classic BPF: the raw instruction, the decoded operation, and the
//! validation that turns one into the other once, so that running a
//! [`Program`] can neither leave it nor index out of range.
//!
//! Accepted are exactly the operations libpcap's own interpreter
//! (`bpf_filter.c`) executes, with its semantics: packet loads are big
//! endian and a load past the captured bytes ends the filter with 0,
//! `len` is the length on the wire, the arithmetic is unsigned 32-bit, a
//! division or remainder by a zero `x` ends it with 0 and a shift by an `x`
//! of 32 or more gives 0. Refused are backward or out-of-range jumps, a last
//! instruction that is not a return, scratch indexes past 15, a division,
//! remainder or shift by a constant that is 0 (resp. ≥ 32), unknown opcodes
//! and Linux's ancillary loads, which only a live Linux socket can answer.

/// Most instructions accepted: Linux's limit for classic filters
/// (`BPF_MAXINSNS`), what tcpdump on Linux could attach.
pub const MAX_INSNS: usize = 4096;

/// Scratch memory words `M[0..16]` (`BPF_MEMWORDS`).
pub const MEM_WORDS: usize = 16;

/// One classic BPF instruction, as `struct bpf_insn` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode: class, size or operation, mode or source.
    pub code: u16,
    /// Jump offset when the condition holds.
    pub jt: u8,
    /// Jump offset when it does not.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

/// Width of a packet load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// One byte.
    B = 1,
    /// Two bytes, big endian.
    H = 2,
    /// Four bytes, big endian.
    W = 4,
}

impl Size {
    /// Bytes loaded.
    pub const fn bytes(self) -> u32 {
        self as u32
    }
}

/// The second operand of an ALU operation or comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Src {
    /// The constant.
    K(u32),
    /// The index register.
    X,
}

/// A binary ALU operation on `A`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AluOp {
    /// `A + s`.
    Add,
    /// `A - s`.
    Sub,
    /// `A * s`.
    Mul,
    /// `A / s` (unsigned).
    Div,
    /// `A % s`.
    Mod,
    /// `A | s`.
    Or,
    /// `A & s`.
    And,
    /// `A ^ s`.
    Xor,
    /// `A << s`.
    Lsh,
    /// `A >> s` (logical).
    Rsh,
}

/// The condition of a conditional jump (unsigned comparisons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// `A == s`.
    Eq,
    /// `A > s`.
    Gt,
    /// `A >= s`.
    Ge,
    /// `A & s != 0`.
    Set,
}

/// A validated operation. Jump targets are absolute instruction indexes,
/// always past the jump and inside the program; scratch indexes are < 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `A = P[k:size]`.
    LdAbs(Size, u32),
    /// `A = P[X + k:size]`.
    LdInd(Size, u32),
    /// `A = len` (on the wire).
    LdLen,
    /// `A = k`.
    LdImm(u32),
    /// `A = M[i]`.
    LdMem(u8),
    /// `X = k`.
    LdxImm(u32),
    /// `X = M[i]`.
    LdxMem(u8),
    /// `X = len`.
    LdxLen,
    /// `X = 4 * (P[k] & 0xf)`: an IPv4 header's length.
    LdxMsh(u32),
    /// `M[i] = A`.
    St(u8),
    /// `M[i] = X`.
    Stx(u8),
    /// `A = A op s`.
    Alu(AluOp, Src),
    /// `A = -A`.
    Neg,
    /// Go to the target.
    Ja(u16),
    /// Go to `jt` if `A cond s`, else to `jf`.
    Jmp {
        /// The comparison.
        cond: Cond,
        /// Its right-hand side.
        src: Src,
        /// Target when it holds.
        jt: u16,
        /// Target when it does not.
        jf: u16,
    },
    /// End with `k` (0 rejects the frame).
    RetK(u32),
    /// End with `A`.
    RetA,
    /// `X = A`.
    Tax,
    /// `A = X`.
    Txa,
}

/// Why a classic program was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// No instructions.
    #[error("empty program")]
    Empty,
    /// More than [`MAX_INSNS`].
    #[error("{0} instructions, at most {MAX_INSNS} are accepted")]
    TooLong(usize),
    /// The instruction at `at` is refused.
    #[error("instruction {at}: {why}")]
    Insn {
        /// Its index.
        at: usize,
        /// Why.
        why: &'static str,
    },
}

/// A validated classic program: every path ends in a return, forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    ops: Vec<Op>,
}

impl Program {
    /// Validates `insns` and decodes them.
    ///
    /// # Errors
    ///
    /// [`Invalid`]: see the module documentation for what is refused.
    pub fn validate(insns: &[Insn]) -> Result<Self, Invalid> {
        if insns.is_empty() {
            return Err(Invalid::Empty);
        }
        if insns.len() > MAX_INSNS {
            return Err(Invalid::TooLong(insns.len()));
        }
        let ops = insns
            .iter()
            .enumerate()
            .map(|(at, insn)| {
                decode(at, insns.len(), insn).map_err(|why| Invalid::Insn { at, why })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !matches!(ops.last(), Some(Op::RetK(_) | Op::RetA)) {
            return Err(Invalid::Insn {
                at: ops.len() - 1,
                why: "the last instruction must be a return",
            });
        }
        check_scratch(&ops)?;
        Ok(Self { ops })
    }

    /// The decoded operations.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
}

/// Refuses a scratch load that some path reaches before a store to that
/// word, as Linux's classic checker does: libpcap leaves the words
/// uninitialised, so such a program has no defined result.
fn check_scratch(ops: &[Op]) -> Result<(), Invalid> {
    // The words stored on every path into each instruction; `None` while
    // no path has reached it. Jumps go forward, so one pass settles it.
    let mut stored: Vec<Option<u16>> = vec![None; ops.len()];
    stored[0] = Some(0);
    for (at, op) in ops.iter().enumerate() {
        let Some(mut have) = stored[at] else {
            continue;
        };
        match *op {
            Op::LdMem(i) | Op::LdxMem(i) if have & (1 << i) == 0 => {
                return Err(Invalid::Insn {
                    at,
                    why: "scratch word read before it is stored",
                });
            }
            Op::St(i) | Op::Stx(i) => have |= 1 << i,
            _ => {}
        }
        let mut reach = |to: usize| {
            stored[to] = Some(stored[to].map_or(have, |m| m & have));
        };
        match *op {
            Op::Ja(t) => reach(t.into()),
            Op::Jmp { jt, jf, .. } => {
                reach(jt.into());
                reach(jf.into());
            }
            Op::RetK(_) | Op::RetA => {}
            _ => reach(at + 1),
        }
    }
    Ok(())
}

// Fields of a classic opcode (<linux/bpf_common.h>, <linux/filter.h>).
const CLASS_LD: u16 = 0x00;
const CLASS_LDX: u16 = 0x01;
const CLASS_ST: u16 = 0x02;
const CLASS_STX: u16 = 0x03;
const CLASS_ALU: u16 = 0x04;
const CLASS_JMP: u16 = 0x05;
const CLASS_RET: u16 = 0x06;
const CLASS_MISC: u16 = 0x07;
const SRC_X: u16 = 0x08;
const RET_A: u16 = 0x10;
const MISC_TXA: u16 = 0x80;
/// Loads at or above this offset are Linux's ancillary data (`SKF_AD_OFF`).
const ANCILLARY: u32 = 0xffff_f000;

fn decode(at: usize, len: usize, i: &Insn) -> Result<Op, &'static str> {
    let k = i.k;
    let target = |off: u8| jump_target(at, len, u64::from(off));
    let mem = || {
        u8::try_from(k)
            .ok()
            .filter(|m| usize::from(*m) < MEM_WORDS)
            .ok_or("scratch index past 15")
    };
    let pkt = |size: Size| {
        if k >= ANCILLARY {
            Err("Linux ancillary data load")
        } else {
            Ok(size)
        }
    };
    let src = if i.code & SRC_X != 0 {
        Src::X
    } else {
        Src::K(k)
    };
    // Class in bits 0-2, size/operation in 3-7; nothing above.
    let (class, rest) = (i.code & 0x07, i.code & !0x07);
    Ok(match (class, rest) {
        (CLASS_LD, 0x20) => Op::LdAbs(pkt(Size::W)?, k),
        (CLASS_LD, 0x28) => Op::LdAbs(pkt(Size::H)?, k),
        (CLASS_LD, 0x30) => Op::LdAbs(pkt(Size::B)?, k),
        (CLASS_LD, 0x40) => Op::LdInd(pkt(Size::W)?, k),
        (CLASS_LD, 0x48) => Op::LdInd(pkt(Size::H)?, k),
        (CLASS_LD, 0x50) => Op::LdInd(pkt(Size::B)?, k),
        (CLASS_LD, 0x80) => Op::LdLen,
        (CLASS_LD, 0x00) => Op::LdImm(k),
        (CLASS_LD, 0x60) => Op::LdMem(mem()?),
        (CLASS_LDX, 0x00) => Op::LdxImm(k),
        (CLASS_LDX, 0x60) => Op::LdxMem(mem()?),
        (CLASS_LDX, 0x80) => Op::LdxLen,
        (CLASS_LDX, 0xb0) => Op::LdxMsh(k),
        (CLASS_ST, 0x00) => Op::St(mem()?),
        (CLASS_STX, 0x00) => Op::Stx(mem()?),
        (CLASS_ALU, 0x80) => Op::Neg,
        (CLASS_ALU, r) if r <= 0xff => {
            let op = match r & 0xf0 {
                0x00 => AluOp::Add,
                0x10 => AluOp::Sub,
                0x20 => AluOp::Mul,
                0x30 => AluOp::Div,
                0x40 => AluOp::Or,
                0x50 => AluOp::And,
                0x60 => AluOp::Lsh,
                0x70 => AluOp::Rsh,
                0x90 => AluOp::Mod,
                0xa0 => AluOp::Xor,
                _ => return Err("unknown opcode"),
            };
            match (op, src) {
                (AluOp::Div | AluOp::Mod, Src::K(0)) => return Err("division by constant zero"),
                (AluOp::Lsh | AluOp::Rsh, Src::K(32..)) => return Err("shift by 32 or more"),
                _ => Op::Alu(op, src),
            }
        }
        (CLASS_JMP, 0x00) => Op::Ja(jump_target(at, len, u64::from(k))?),
        (CLASS_JMP, r) if r <= 0xff => {
            let cond = match r & 0xf0 {
                0x10 => Cond::Eq,
                0x20 => Cond::Gt,
                0x30 => Cond::Ge,
                0x40 => Cond::Set,
                _ => return Err("unknown opcode"),
            };
            Op::Jmp {
                cond,
                src,
                jt: target(i.jt)?,
                jf: target(i.jf)?,
            }
        }
        (CLASS_RET, 0x00) => Op::RetK(k),
        (CLASS_RET, RET_A) => Op::RetA,
        (CLASS_MISC, 0x00) => Op::Tax,
        (CLASS_MISC, MISC_TXA) => Op::Txa,
        _ => return Err("unknown opcode"),
    })
}

/// A program from `(code, jt, jf, k)` rows, for tests; panics if refused.
#[cfg(test)]
pub(crate) fn program(rows: &[(u16, u8, u8, u32)]) -> Program {
    let insns: Vec<Insn> = rows
        .iter()
        .map(|&(code, jt, jf, k)| Insn { code, jt, jf, k })
        .collect();
    Program::validate(&insns).unwrap()
}

/// The absolute target of a jump by `off` from `at`: forward by
/// construction, and it must land inside the program.
fn jump_target(at: usize, len: usize, off: u64) -> Result<u16, &'static str> {
    let t = at as u64 + 1 + off;
    if t < len as u64 {
        // len ≤ MAX_INSNS, so every index fits.
        Ok(t as u16)
    } else {
        Err("jump outside the program (jumps go forward only)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }
    const RET_0: Insn = insn(0x06, 0, 0, 0);

    fn refused(insns: &[Insn]) -> String {
        Program::validate(insns).unwrap_err().to_string()
    }

    #[test]
    fn refuses_what_could_misbehave() {
        assert_eq!(refused(&[]), "empty program");
        assert_eq!(
            refused(&vec![RET_0; MAX_INSNS + 1]),
            "4097 instructions, at most 4096 are accepted"
        );
        // Falls off the end.
        assert_eq!(
            refused(&[insn(0x00, 0, 0, 1)]),
            "instruction 0: the last instruction must be a return"
        );
        // ja +1 from the last-but-one instruction lands past the end.
        assert_eq!(
            refused(&[insn(0x05, 0, 0, 1), RET_0]),
            "instruction 0: jump outside the program (jumps go forward only)"
        );
        // jeq with jf past the end; jt in range.
        assert_eq!(
            refused(&[insn(0x15, 0, 1, 7), RET_0]),
            "instruction 0: jump outside the program (jumps go forward only)"
        );
        // A huge ja offset does not wrap around to a backward jump.
        assert_eq!(
            refused(&[insn(0x05, 0, 0, u32::MAX), RET_0]),
            "instruction 0: jump outside the program (jumps go forward only)"
        );
        assert_eq!(
            refused(&[insn(0x02, 0, 0, 16), RET_0]),
            "instruction 0: scratch index past 15"
        );
        assert_eq!(
            refused(&[insn(0x61, 0, 0, 99), RET_0]),
            "instruction 0: scratch index past 15"
        );
        assert_eq!(
            refused(&[insn(0x34, 0, 0, 0), RET_0]),
            "instruction 0: division by constant zero"
        );
        assert_eq!(
            refused(&[insn(0x94, 0, 0, 0), RET_0]),
            "instruction 0: division by constant zero"
        );
        assert_eq!(
            refused(&[insn(0x64, 0, 0, 32), RET_0]),
            "instruction 0: shift by 32 or more"
        );
        // ld M[0] with nothing stored; then on one branch only.
        assert_eq!(
            refused(&[insn(0x60, 0, 0, 0), insn(0x16, 0, 0, 0)]),
            "instruction 0: scratch word read before it is stored"
        );
        assert_eq!(
            refused(&[
                insn(0x15, 0, 1, 7),
                insn(0x02, 0, 0, 3),
                insn(0x61, 0, 0, 3),
                RET_0,
            ]),
            "instruction 2: scratch word read before it is stored"
        );
        // Stored on both branches: accepted.
        assert!(
            Program::validate(&[
                insn(0x15, 0, 1, 7),
                insn(0x02, 0, 0, 3),
                insn(0x03, 0, 0, 3),
                insn(0x61, 0, 0, 3),
                RET_0,
            ])
            .is_ok()
        );
        // SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT.
        assert_eq!(
            refused(&[insn(0x20, 0, 0, 0xffff_f030), RET_0]),
            "instruction 0: Linux ancillary data load"
        );
        // ret x, ja with the x bit, neg x, arsh, the eBPF-only end, jne,
        // and codes with bits above the byte.
        for code in [0x0e, 0x0d, 0x8c, 0xc4, 0xd4, 0x55, 0x104, 0x187] {
            assert_eq!(
                refused(&[insn(code, 0, 0, 1), RET_0]),
                "instruction 0: unknown opcode",
                "opcode {code:#x}"
            );
        }
    }

    #[test]
    fn decodes_every_operation_libpcap_runs() {
        // ldh [12]; jeq #0x800 jt 0 jf 1; ret #262144; ret #0 (`ip`, as
        // `tcpdump -dd ip` prints it).
        let p = Program::validate(&[
            insn(0x28, 0, 0, 12),
            insn(0x15, 0, 1, 0x800),
            insn(0x06, 0, 0, 262_144),
            RET_0,
        ])
        .unwrap();
        assert_eq!(
            p.ops(),
            [
                Op::LdAbs(Size::H, 12),
                Op::Jmp {
                    cond: Cond::Eq,
                    src: Src::K(0x800),
                    jt: 2,
                    jf: 3
                },
                Op::RetK(262_144),
                Op::RetK(0),
            ]
        );
        let all = [
            (0x20, Op::LdAbs(Size::W, 3)),
            (0x50, Op::LdInd(Size::B, 3)),
            (0x80, Op::LdLen),
            (0x00, Op::LdImm(3)),
            (0x60, Op::LdMem(3)),
            (0x01, Op::LdxImm(3)),
            (0x61, Op::LdxMem(3)),
            (0x81, Op::LdxLen),
            (0xb1, Op::LdxMsh(3)),
            (0x02, Op::St(3)),
            (0x03, Op::Stx(3)),
            (0x0c, Op::Alu(AluOp::Add, Src::X)),
            (0x1c, Op::Alu(AluOp::Sub, Src::X)),
            (0x24, Op::Alu(AluOp::Mul, Src::K(3))),
            (0x3c, Op::Alu(AluOp::Div, Src::X)),
            (0x94, Op::Alu(AluOp::Mod, Src::K(3))),
            (0x44, Op::Alu(AluOp::Or, Src::K(3))),
            (0x5c, Op::Alu(AluOp::And, Src::X)),
            (0xa4, Op::Alu(AluOp::Xor, Src::K(3))),
            (0x64, Op::Alu(AluOp::Lsh, Src::K(3))),
            (0x7c, Op::Alu(AluOp::Rsh, Src::X)),
            (0x84, Op::Neg),
            (0x16, Op::RetA),
            (0x07, Op::Tax),
            (0x87, Op::Txa),
        ];
        for (code, op) in all {
            assert_eq!(
                Program::validate(&[insn(0x02, 0, 0, 3), insn(code, 0, 0, 3), RET_0])
                    .unwrap()
                    .ops()[1],
                op,
                "opcode {code:#x}"
            );
        }
    }
}
