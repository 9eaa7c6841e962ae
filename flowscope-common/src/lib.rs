//! Types that cross the kernel/userspace boundary of flowscope.
//!
//! Everything here is `#![no_std]` and `#[repr(C)]` with explicit padding, so
//! the XDP program (`flowscope-ebpf`) and userspace (`flowscope-user`) agree on
//! every byte. Sizes are checked at compile time. The `user` feature adds
//! `aya::Pod` impls so the types can be read from and written to BPF maps.
//!
//! The rules that decide what a frame *means* (which layer failed, which class
//! it is counted in, what its flow hash is) are written down in [`frame`] and
//! implemented twice: in the XDP program (bounded, verifier-friendly) and in the
//! userspace parser; a differential test proves both agree.
#![no_std]
#![deny(missing_docs)]

pub mod anomaly;
pub mod config;
pub mod counters;
pub mod frag;
pub mod frame;
pub mod hash;
pub mod meta;

pub use config::XdpConfig;
pub use counters::{ClassCounter, Counter, CounterBlock, KindBlock};
pub use meta::XdpMeta;
