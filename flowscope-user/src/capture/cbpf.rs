//! Classic BPF to eBPF: a validated filter program ([`Program`]) becomes the
//! body of an XDP program that the verifier accepts and that decides every
//! frame exactly as libpcap's interpreter does.
//!
//! Registers: `r6` the context (kept for the tail call), `r7`/`r8` the
//! frame's start and end (`data`, `data_end`), `w4` the accumulator A,
//! `w5` the index register X, `r1`–`r3` scratch. `M[i]` is the stack word at
//! `fp - 64 + 4i`; the words the program reads are zeroed first, as
//! libpcap's interpreter starts them.
//!
//! - Loads: `P[k:n]` checks `data + k + n <= data_end` and otherwise ends on
//!   reject, then loads and swaps to big endian. `P[X+k:n]` first bounds
//!   `X + k` (≤ 0xffff − n: no linear XDP frame is longer) so the verifier
//!   can follow the variable offset, then checks it against `data_end`
//!   the same way. Offsets no frame can reach reject unconditionally.
//! - Arithmetic is 32-bit (`ALU`), comparisons compare the low 32 bits
//!   (`JMP32`), both unsigned as in classic BPF; division and remainder by
//!   X test X for zero and reject (eBPF would give 0 and go on); a shift by
//!   an X of 32 or more gives 0 (eBPF would shift by its low 5 bits).
//! - Jumps stay forward; jumps to a `ret #k` go straight to the accept or
//!   reject exit. Only instructions some path reaches are emitted (the
//!   verifier refuses unreachable code).
//!
//! The exits are the caller's: the body jumps to `on_accept` or
//! `on_reject`, appended after it, with `r6`–`r8` as above.

use crate::filter::classic::{AluOp, Cond, MEM_WORDS, Op, Program, Size, Src};

use super::bpf_sys::{
    alu32_imm, alu32_reg, alu64_imm, alu64_reg, ja, jmp_imm, jmp_reg, ldx, mov64_reg, op, st_imm,
    stx, to_be,
};

/// Context register while the filter runs.
pub const CTX: u8 = 6;
/// `data`.
pub const DATA: u8 = 7;
/// `data_end`.
pub const DATA_END: u8 = 8;
const A: u8 = 4;
const X: u8 = 5;
/// Largest offset a packet pointer may carry (the verifier's
/// `MAX_PACKET_OFF`), and more than any linear XDP frame holds.
const MAX_PACKET_OFF: u64 = 0xffff;
/// Stack bytes the body uses below the frame pointer (`M[0..16]`).
pub const STACK_BYTES: i16 = (MEM_WORDS * 4) as i16;

/// Where a jump goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Op(usize),
    Accept,
    Reject,
}

/// The program is too large for eBPF's 16-bit jump offsets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the filter is too large for XDP: a jump spans {0} instructions, at most 32767")]
pub struct TooLarge(usize);

/// The eBPF program: prologue, the translated body, then `on_accept` and
/// `on_reject` where some path reaches them.
///
/// # Errors
///
/// [`TooLarge`] when a jump does not fit eBPF's 16-bit offset.
pub fn translate(
    prog: &Program,
    on_accept: &[u64],
    on_reject: &[u64],
) -> Result<Vec<u64>, TooLarge> {
    let ops = prog.ops();
    let reach = reachable(ops);
    let mut e = Emitter::default();
    e.prologue(ops);
    let mut starts = vec![usize::MAX; ops.len()];
    for (at, op) in ops.iter().enumerate() {
        if !reach[at] {
            continue;
        }
        starts[at] = e.out.len();
        e.op(ops, at, *op);
    }
    let exits = [(Target::Accept, on_accept), (Target::Reject, on_reject)];
    let mut exit_at = [usize::MAX; 2];
    for (i, (target, code)) in exits.iter().enumerate() {
        if e.fixups.iter().any(|(_, t)| t == target) {
            exit_at[i] = e.out.len();
            e.out.extend_from_slice(code);
        }
    }
    for (at, target) in e.fixups {
        let dest = match target {
            Target::Op(i) => starts[i],
            Target::Accept => exit_at[0],
            Target::Reject => exit_at[1],
        };
        let span = dest - (at + 1);
        let off = i16::try_from(span).map_err(|_| TooLarge(span))?;
        e.out[at] = (e.out[at] & !(0xffff << 16)) | (u64::from(off as u16) << 16);
    }
    Ok(e.out)
}

/// Where a jump to `t` really goes: a `ret #k` is the exit it takes.
fn resolve(ops: &[Op], t: usize) -> Target {
    match ops.get(t) {
        Some(Op::RetK(0)) => Target::Reject,
        Some(Op::RetK(_)) => Target::Accept,
        _ => Target::Op(t),
    }
}

/// Whether a load of `size` at constant offset `k` can succeed on some frame.
fn fits(k: u64, size: Size) -> bool {
    k + u64::from(size.bytes()) <= MAX_PACKET_OFF
}

/// The operations some path from the first reaches. Jumps only go forward,
/// so one pass in order sees every predecessor before its successors.
fn reachable(ops: &[Op]) -> Vec<bool> {
    let mut reach = vec![false; ops.len()];
    if let Some(first) = reach.first_mut() {
        *first = true;
    }
    for at in 0..ops.len() {
        if !reach[at] {
            continue;
        }
        let mut mark = |t: usize| {
            if let Target::Op(i) = resolve(ops, t) {
                reach[i] = true;
            }
        };
        match ops[at] {
            Op::Ja(t) => mark(usize::from(t)),
            Op::Jmp { jt, jf, .. } => {
                mark(usize::from(jt));
                mark(usize::from(jf));
            }
            Op::RetK(_) | Op::RetA => {}
            Op::LdAbs(size, k) | Op::LdInd(size, k) if !fits(u64::from(k), size) => {}
            Op::LdxMsh(k) if !fits(u64::from(k), Size::B) => {}
            // Straight-line: falls through into the next operation itself,
            // not into the exit a `ret` there resolves to (validation put a
            // return last, so there is a next one).
            _ => {
                if let Some(r) = reach.get_mut(at + 1) {
                    *r = true;
                }
            }
        }
    }
    reach
}

#[derive(Default)]
struct Emitter {
    out: Vec<u64>,
    /// Jumps to patch: instruction index, destination.
    fixups: Vec<(usize, Target)>,
}

impl Emitter {
    fn push(&mut self, i: u64) {
        self.out.push(i);
    }

    /// A jump (conditional or not) to `t`, its offset patched later.
    fn jump(&mut self, i: u64, t: Target) {
        self.fixups.push((self.out.len(), t));
        self.out.push(i);
    }

    fn prologue(&mut self, ops: &[Op]) {
        self.push(mov64_reg(CTX, 1));
        // `struct xdp_md`: data at 0, data_end at 4.
        self.push(ldx(op::W, DATA, CTX, 0));
        self.push(ldx(op::W, DATA_END, CTX, 4));
        self.push(alu32_imm(op::MOV, A, 0));
        self.push(alu32_imm(op::MOV, X, 0));
        let mut zeroed = [false; MEM_WORDS];
        for o in ops {
            if let Op::LdMem(i) | Op::LdxMem(i) = *o
                && !std::mem::replace(&mut zeroed[usize::from(i)], true)
            {
                self.push(st_imm(op::W, 10, mem_off(i), 0));
            }
        }
    }

    fn op(&mut self, ops: &[Op], at: usize, o: Op) {
        let next = Target::Op(at + 1);
        match o {
            Op::LdAbs(size, k) => self.load_abs(A, size, u64::from(k)),
            Op::LdInd(size, k) => self.load_ind(size, u64::from(k)),
            Op::LdxMsh(k) => {
                self.load_abs(X, Size::B, u64::from(k));
                if fits(u64::from(k), Size::B) {
                    self.push(alu32_imm(op::AND, X, 0xf));
                    self.push(alu32_imm(op::LSH, X, 2));
                }
            }
            Op::LdLen | Op::LdxLen => {
                let r = if o == Op::LdLen { A } else { X };
                self.push(mov64_reg(r, DATA_END));
                self.push(alu64_reg(op::SUB, r, DATA));
            }
            Op::LdImm(k) => self.push(alu32_imm(op::MOV, A, k as i32)),
            Op::LdxImm(k) => self.push(alu32_imm(op::MOV, X, k as i32)),
            Op::LdMem(i) => self.push(ldx(op::W, A, 10, mem_off(i))),
            Op::LdxMem(i) => self.push(ldx(op::W, X, 10, mem_off(i))),
            Op::St(i) => self.push(stx(op::W, 10, mem_off(i), A)),
            Op::Stx(i) => self.push(stx(op::W, 10, mem_off(i), X)),
            Op::Alu(alu, src) => {
                let code = match alu {
                    AluOp::Add => op::ADD,
                    AluOp::Sub => op::SUB,
                    AluOp::Mul => op::MUL,
                    AluOp::Div => op::DIV,
                    AluOp::Mod => op::MOD,
                    AluOp::Or => op::OR,
                    AluOp::And => op::AND,
                    AluOp::Xor => op::XOR,
                    AluOp::Lsh => op::LSH,
                    AluOp::Rsh => op::RSH,
                };
                match src {
                    Src::K(k) => self.push(alu32_imm(code, A, k as i32)),
                    Src::X => match alu {
                        AluOp::Div | AluOp::Mod => {
                            self.jump(jmp_imm(op::JMP32, op::JEQ, X, 0, 0), Target::Reject);
                            self.push(alu32_reg(code, A, X));
                        }
                        // A shift by 32 or more gives 0 (eBPF would use the
                        // low 5 bits).
                        AluOp::Lsh | AluOp::Rsh => {
                            self.push(jmp_imm(op::JMP32, op::JLT, X, 32, 2));
                            self.push(alu32_imm(op::MOV, A, 0));
                            self.push(ja(1));
                            self.push(alu32_reg(code, A, X));
                        }
                        _ => self.push(alu32_reg(code, A, X)),
                    },
                }
            }
            Op::Neg => self.push(alu32_imm(op::NEG, A, 0)),
            Op::Tax => self.push(alu32_reg(op::MOV, X, A)),
            Op::Txa => self.push(alu32_reg(op::MOV, A, X)),
            Op::Ja(t) => self.goto(resolve(ops, usize::from(t)), next),
            Op::Jmp { cond, src, jt, jf } => {
                let (t, f) = (resolve(ops, usize::from(jt)), resolve(ops, usize::from(jf)));
                let (code, inverse) = match cond {
                    Cond::Eq => (op::JEQ, Some(op::JNE)),
                    Cond::Gt => (op::JGT, Some(op::JLE)),
                    Cond::Ge => (op::JGE, Some(op::JLT)),
                    Cond::Set => (op::JSET, None),
                };
                self.branch(code, inverse, src, t, f, next);
            }
            Op::RetK(k) => self.goto(
                if k == 0 {
                    Target::Reject
                } else {
                    Target::Accept
                },
                next,
            ),
            Op::RetA => self.branch(
                op::JNE,
                Some(op::JEQ),
                Src::K(0),
                Target::Accept,
                Target::Reject,
                next,
            ),
        }
    }

    /// Goes to `t` unless it is the next instruction anyway.
    fn goto(&mut self, t: Target, next: Target) {
        if t != next {
            self.jump(ja(0), t);
        }
    }

    /// `if A <code> src goto t else goto f`, falling through where one of
    /// them is `next`.
    fn branch(
        &mut self,
        code: u8,
        inverse: Option<u8>,
        src: Src,
        t: Target,
        f: Target,
        next: Target,
    ) {
        let test = |c: u8| match src {
            Src::K(k) => jmp_imm(op::JMP32, c, A, k as i32, 0),
            Src::X => jmp_reg(op::JMP32, c, A, X, 0),
        };
        if t == f {
            self.goto(t, next);
        } else if f == next {
            self.jump(test(code), t);
        } else if let (true, Some(inv)) = (t == next, inverse) {
            self.jump(test(inv), f);
        } else {
            self.jump(test(code), t);
            self.goto(f, next);
        }
    }

    /// `dst = P[k:size]`, rejecting past the frame's end.
    fn load_abs(&mut self, dst: u8, size: Size, k: u64) {
        if !fits(k, size) {
            self.jump(ja(0), Target::Reject);
            return;
        }
        let end = k + u64::from(size.bytes());
        if let Ok(off) = i16::try_from(k) {
            self.push(mov64_reg(1, DATA));
            self.push(alu64_imm(op::ADD, 1, end as i32));
            self.jump(jmp_reg(op::JMP, op::JGT, 1, DATA_END, 0), Target::Reject);
            self.push(ldx(width(size), dst, DATA, off));
        } else {
            self.push(mov64_reg(2, DATA));
            self.push(alu64_imm(op::ADD, 2, k as i32));
            self.checked_load(dst, size);
        }
        self.swap(dst, size);
    }

    /// `A = P[X + k:size]`, rejecting past the frame's end.
    fn load_ind(&mut self, size: Size, k: u64) {
        if !fits(k, size) {
            self.jump(ja(0), Target::Reject);
            return;
        }
        let limit = MAX_PACKET_OFF - u64::from(size.bytes());
        self.push(mov64_reg(2, X));
        self.push(alu64_imm(op::ADD, 2, k as i32));
        // Bounds the offset for the verifier; beyond it no frame reaches.
        self.jump(
            jmp_imm(op::JMP, op::JGT, 2, limit as i32, 0),
            Target::Reject,
        );
        self.push(alu64_reg(op::ADD, 2, DATA));
        self.checked_load(A, size);
        self.swap(A, size);
    }

    /// `dst = *(size *)r2` if `r2 + size <= data_end`, else reject.
    fn checked_load(&mut self, dst: u8, size: Size) {
        self.push(mov64_reg(1, 2));
        self.push(alu64_imm(op::ADD, 1, size.bytes() as i32));
        self.jump(jmp_reg(op::JMP, op::JGT, 1, DATA_END, 0), Target::Reject);
        self.push(ldx(width(size), dst, 2, 0));
    }

    fn swap(&mut self, dst: u8, size: Size) {
        match size {
            Size::B => {}
            Size::H => self.push(to_be(dst, 16)),
            Size::W => self.push(to_be(dst, 32)),
        }
    }
}

/// The stack offset of `M[i]`.
fn mem_off(i: u8) -> i16 {
    -STACK_BYTES + 4 * i16::from(i)
}

fn width(size: Size) -> u8 {
    match size {
        Size::B => op::B,
        Size::H => op::H,
        Size::W => op::W,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::classic::program;

    const ACCEPT: u64 = 0xaaaa;
    const REJECT: u64 = 0xbbbb;

    fn jump_dest(out: &[u64], at: usize) -> usize {
        let off = (out[at] >> 16) as u16 as i16;
        (at as isize + 1 + off as isize) as usize
    }

    #[test]
    fn jumps_to_returns_go_straight_to_the_exits() {
        // ldh [12]; jeq #0x800 jt 0 jf 1; ret #65535; ret #0  (`ip`)
        let out = translate(
            &program(&[
                (0x28, 0, 0, 12),
                (0x15, 0, 1, 0x800),
                (0x06, 0, 0, 65535),
                (0x06, 0, 0, 0),
            ]),
            &[ACCEPT],
            &[REJECT],
        )
        .unwrap();
        let accept = out.iter().position(|i| *i == ACCEPT).unwrap();
        let reject = out.iter().position(|i| *i == REJECT).unwrap();
        // Prologue (5), the load (4) and its swap, then `jeq #0x800 →
        // accept` and `ja reject`: neither return is emitted.
        let jeq = out
            .iter()
            .position(|i| *i & 0xff == u64::from(op::JMP32 | op::JEQ))
            .unwrap();
        assert_eq!(jeq, 10);
        assert_eq!(jump_dest(&out, jeq), accept);
        assert_eq!(out[jeq + 1] & 0xff, u64::from(op::JMP | op::JA));
        assert_eq!(jump_dest(&out, jeq + 1), reject);
        assert_eq!(out.len(), jeq + 2 + 2);
    }

    #[test]
    fn unreachable_code_and_exits_are_left_out() {
        // ret #0: no accept exit at all; ja +1 skips an instruction.
        let out = translate(&program(&[(0x06, 0, 0, 0)]), &[ACCEPT], &[REJECT]).unwrap();
        assert!(!out.contains(&ACCEPT) && out.contains(&REJECT));
        let out = translate(
            &program(&[(0x05, 0, 0, 1), (0x00, 0, 0, 0x1234_5678), (0x06, 0, 0, 1)]),
            &[ACCEPT],
            &[REJECT],
        )
        .unwrap();
        assert!(
            !out.iter().any(|i| (*i >> 32) as u32 == 0x1234_5678),
            "the skipped ld #k is not emitted"
        );
        assert!(!out.contains(&REJECT));
        // A load no frame can satisfy ends the path: what follows it is
        // not emitted.
        let out = translate(
            &program(&[
                (0x20, 0, 0, 0xfffe),
                (0x00, 0, 0, 0x1234_5678),
                (0x06, 0, 0, 1),
            ]),
            &[ACCEPT],
            &[REJECT],
        )
        .unwrap();
        assert!(!out.contains(&ACCEPT) && out.contains(&REJECT));
    }
}
