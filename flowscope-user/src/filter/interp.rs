//! Running a validated classic program on one frame, as libpcap's
//! `bpf_filter` does: registers and scratch memory on the stack, nothing
//! allocated, no bounds panic possible (every index was checked when the
//! program was validated, every packet access is checked here).

use super::classic::{AluOp, Cond, MEM_WORDS, Op, Program, Size, Src};

impl Program {
    /// The program's return value on `frame` (the captured bytes) whose
    /// length on the wire is `wire_len`: 0 rejects it. A load past the
    /// captured bytes, or a division by a zero `x`, returns 0.
    pub fn run(&self, frame: &[u8], wire_len: u32) -> u32 {
        let ops = self.ops();
        let (mut a, mut x) = (0u32, 0u32);
        let mut mem = [0u32; MEM_WORDS];
        let mut pc = 0usize;
        loop {
            // Validation guarantees pc stays inside the program; `get`
            // keeps that a fact of this function too.
            let Some(op) = ops.get(pc) else { return 0 };
            pc += 1;
            match *op {
                Op::LdAbs(size, k) => match load(frame, u64::from(k), size) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Op::LdInd(size, k) => match load(frame, u64::from(x) + u64::from(k), size) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Op::LdLen => a = wire_len,
                Op::LdImm(k) => a = k,
                Op::LdMem(i) => a = mem[usize::from(i) % MEM_WORDS],
                Op::LdxImm(k) => x = k,
                Op::LdxMem(i) => x = mem[usize::from(i) % MEM_WORDS],
                Op::LdxLen => x = wire_len,
                Op::LdxMsh(k) => match load(frame, u64::from(k), Size::B) {
                    Some(v) => x = (v & 0xf) << 2,
                    None => return 0,
                },
                Op::St(i) => mem[usize::from(i) % MEM_WORDS] = a,
                Op::Stx(i) => mem[usize::from(i) % MEM_WORDS] = x,
                Op::Alu(op, src) => {
                    let s = match src {
                        Src::K(k) => k,
                        Src::X => x,
                    };
                    a = match op {
                        AluOp::Add => a.wrapping_add(s),
                        AluOp::Sub => a.wrapping_sub(s),
                        AluOp::Mul => a.wrapping_mul(s),
                        AluOp::Div => match a.checked_div(s) {
                            Some(v) => v,
                            None => return 0,
                        },
                        AluOp::Mod => match a.checked_rem(s) {
                            Some(v) => v,
                            None => return 0,
                        },
                        AluOp::Or => a | s,
                        AluOp::And => a & s,
                        AluOp::Xor => a ^ s,
                        // By 32 or more (only x can be): 0, as in libpcap.
                        AluOp::Lsh => a.checked_shl(s).unwrap_or(0),
                        AluOp::Rsh => a.checked_shr(s).unwrap_or(0),
                    };
                }
                Op::Neg => a = a.wrapping_neg(),
                Op::Ja(t) => pc = usize::from(t),
                Op::Jmp { cond, src, jt, jf } => {
                    let s = match src {
                        Src::K(k) => k,
                        Src::X => x,
                    };
                    let holds = match cond {
                        Cond::Eq => a == s,
                        Cond::Gt => a > s,
                        Cond::Ge => a >= s,
                        Cond::Set => a & s != 0,
                    };
                    pc = usize::from(if holds { jt } else { jf });
                }
                Op::RetK(k) => return k,
                Op::RetA => return a,
                Op::Tax => x = a,
                Op::Txa => a = x,
            }
        }
    }
}

/// `size` big-endian bytes of `frame` at `at`, `None` past its end.
#[inline]
fn load(frame: &[u8], at: u64, size: Size) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    let b = frame.get(at..at.checked_add(size.bytes() as usize)?)?;
    Some(match *b {
        [b0] => u32::from(b0),
        [b0, b1] => u32::from(u16::from_be_bytes([b0, b1])),
        [b0, b1, b2, b3] => u32::from_be_bytes([b0, b1, b2, b3]),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::classic::program as prog;

    #[test]
    fn loads_are_big_endian_and_end_the_filter_past_the_captured_bytes() {
        let frame = [0x12, 0x34, 0x56, 0x78, 0x9a];
        // ld [1]; ret a
        let ld_w = prog(&[(0x20, 0, 0, 1), (0x16, 0, 0, 0)]);
        assert_eq!(ld_w.run(&frame, 5), 0x3456_789a);
        assert_eq!(ld_w.run(&frame[..4], 1000), 0, "one byte short");
        // ldh [3]; ret a
        assert_eq!(
            prog(&[(0x28, 0, 0, 3), (0x16, 0, 0, 0)]).run(&frame, 5),
            0x789a
        );
        // ldb [u32::MAX - 1]: no overflow, just rejected.
        assert_eq!(
            prog(&[(0x30, 0, 0, 0xffff_effe), (0x16, 0, 0, 0)]).run(&frame, 5),
            0
        );
        // ldx #0xffffffff; ldb [x + 2]: x + k does not wrap around to 1.
        assert_eq!(
            prog(&[(0x01, 0, 0, u32::MAX), (0x50, 0, 0, 2), (0x16, 0, 0, 0)]).run(&frame, 5),
            0
        );
        // ldx #2; ldh [x + 2]
        assert_eq!(
            prog(&[(0x01, 0, 0, 2), (0x48, 0, 0, 2), (0x16, 0, 0, 0)]).run(&frame, 5),
            0,
            "P[4..6] is one byte short"
        );
        assert_eq!(
            prog(&[(0x01, 0, 0, 1), (0x48, 0, 0, 2), (0x16, 0, 0, 0)]).run(&frame, 5),
            0x789a
        );
        // ldxb 4*([0]&0xf); txa; ret a
        assert_eq!(
            prog(&[(0xb1, 0, 0, 0), (0x87, 0, 0, 0), (0x16, 0, 0, 0)]).run(&frame, 5),
            4 * 2
        );
        // ld len / ldx len give the length on the wire, not the captured one.
        assert_eq!(
            prog(&[(0x80, 0, 0, 0), (0x16, 0, 0, 0)]).run(&frame, 1500),
            1500
        );
        assert_eq!(
            prog(&[(0x81, 0, 0, 0), (0x87, 0, 0, 0), (0x16, 0, 0, 0)]).run(&frame, 60),
            60
        );
    }

    #[test]
    fn arithmetic_is_unsigned_32_bit_and_division_by_zero_x_rejects() {
        // ld #k; ldx #x; <op> x; ret a
        let alu_x = |k: u32, code: u16, x: u32| {
            prog(&[
                (0x00, 0, 0, k),
                (0x01, 0, 0, x),
                (code, 0, 0, 0),
                (0x16, 0, 0, 0),
            ])
            .run(&[], 0)
        };
        assert_eq!(alu_x(u32::MAX, 0x0c, 2), 1, "add wraps");
        assert_eq!(alu_x(1, 0x1c, 2), u32::MAX, "sub wraps");
        assert_eq!(alu_x(0x8000_0000, 0x2c, 2), 0, "mul wraps");
        assert_eq!(alu_x(7, 0x3c, 2), 3);
        assert_eq!(alu_x(7, 0x3c, 0), 0, "division by zero x rejects");
        assert_eq!(alu_x(7, 0x9c, 4), 3);
        assert_eq!(alu_x(7, 0x9c, 0), 0, "remainder by zero x rejects");
        assert_eq!(alu_x(1, 0x6c, 31), 0x8000_0000);
        assert_eq!(alu_x(1, 0x6c, 32), 0, "a shift by 32 or more gives 0");
        assert_eq!(alu_x(u32::MAX, 0x7c, 33), 0);
        assert_eq!(alu_x(0x8000_0000, 0x7c, 31), 1);
        assert_eq!(alu_x(0b1100, 0x5c, 0b1010), 0b1000);
        assert_eq!(alu_x(0b1100, 0x4c, 0b1010), 0b1110);
        assert_eq!(alu_x(0b1100, 0xac, 0b1010), 0b0110);
        // ld #1; neg; ret a
        assert_eq!(
            prog(&[(0x00, 0, 0, 1), (0x84, 0, 0, 0), (0x16, 0, 0, 0)]).run(&[], 0),
            u32::MAX
        );
        // Scratch memory round-trips (a load before a store is refused).
        assert_eq!(
            prog(&[
                (0x00, 0, 0, 9),
                (0x02, 0, 0, 15),
                (0x00, 0, 0, 1),
                (0x61, 0, 0, 15),
                (0x87, 0, 0, 0),
                (0x16, 0, 0, 0)
            ])
            .run(&[], 0),
            9
        );
    }

    #[test]
    fn jumps_compare_unsigned() {
        // ld #a; jgt #0x7fffffff jt 0 jf 1; ret #1; ret #2
        let gt = |a: u32| {
            prog(&[
                (0x00, 0, 0, a),
                (0x25, 0, 1, 0x7fff_ffff),
                (0x06, 0, 0, 1),
                (0x06, 0, 0, 2),
            ])
            .run(&[], 0)
        };
        assert_eq!(gt(0x8000_0000), 1);
        assert_eq!(gt(5), 2);
        // ld #6; jset #2 jt 1 jf 0; ret #1; ja +0; ret #7
        let p = prog(&[
            (0x00, 0, 0, 6),
            (0x45, 1, 0, 2),
            (0x06, 0, 0, 1),
            (0x05, 0, 0, 0),
            (0x06, 0, 0, 7),
        ]);
        assert_eq!(p.run(&[], 0), 7);
    }
}
