//! Target `filter`: the classic BPF validator and interpreter behind
//! `--filter`, against libpcap's own `bpf_validate` and `bpf_filter`.
//!
//! Input: a count byte, that many 8-byte instructions (`code` u16, `jt`,
//! `jf`, `k` u32, big-endian), a wire-length slack byte, then the frame.
//! Checked: every program flowscope accepts, libpcap accepts too, and on
//! the frame both return the same value.

use flowscope::filter::{Insn, Program};

use super::input::Input;

/// `struct bpf_insn` as libpcap takes it.
#[repr(C)]
struct BpfInsn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[link(name = "pcap")]
unsafe extern "C" {
    fn bpf_validate(f: *const BpfInsn, len: i32) -> i32;
    fn bpf_filter(pc: *const BpfInsn, p: *const u8, wirelen: u32, buflen: u32) -> u32;
}

/// Encodes instructions in the target's input language (the seed generator).
pub fn encode(insns: &[Insn], slack: u8, frame: &[u8]) -> Vec<u8> {
    let mut out = vec![insns.len().min(255) as u8];
    for i in insns.iter().take(255) {
        out.extend_from_slice(&i.code.to_be_bytes());
        out.extend_from_slice(&[i.jt, i.jf]);
        out.extend_from_slice(&i.k.to_be_bytes());
    }
    out.push(slack);
    out.extend_from_slice(frame);
    out
}

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let n = input.u8();
    let insns: Vec<Insn> = (0..n)
        .map(|_| Insn {
            code: input.u16(),
            jt: input.u8(),
            jf: input.u8(),
            k: input.u32(),
        })
        .collect();
    let slack = u32::from(input.u8());
    let frame = input.bytes(usize::MAX);
    let Ok(program) = Program::validate(&insns) else {
        return;
    };
    let raw: Vec<BpfInsn> = insns
        .iter()
        .map(|i| BpfInsn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let len = i32::try_from(raw.len()).expect("at most 255 instructions");
    // SAFETY: `raw` holds `len` instructions; libpcap only reads them.
    let valid = unsafe { bpf_validate(raw.as_ptr(), len) };
    assert_ne!(valid, 0, "libpcap refuses a program flowscope accepts");
    let wire = u32::try_from(frame.len()).expect("short input") + slack;
    let buf = u32::try_from(frame.len()).expect("short input");
    // SAFETY: libpcap validated the program; it reads at most `buf` bytes
    // of `frame`.
    let theirs = unsafe { bpf_filter(raw.as_ptr(), frame.as_ptr(), wire, buf) };
    assert_eq!(
        program.run(frame, wire),
        theirs,
        "flowscope and libpcap disagree"
    );
}
