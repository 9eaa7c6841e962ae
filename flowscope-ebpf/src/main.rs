//! The flowscope XDP program.
//!
//! Parses every frame (rules in `flowscope_common::frame`), counts it per CPU,
//! writes an `XdpMeta` in front of it and redirects it to the AF_XDP socket of
//! its RX queue chosen by the symmetric steering hash — or, in count-only
//! mode, passes it to the stack. Built only for `bpfel-unknown-none`; on the
//! host this crate is an empty binary so workspace-wide cargo commands work.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod parse;
#[cfg(target_arch = "bpf")]
mod program;

#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects any program with a reachable panic path, so
    // a loaded program never gets here.
    unsafe { core::hint::unreachable_unchecked() }
}
