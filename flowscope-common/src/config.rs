//! Load-time configuration of the XDP program: read-only globals the loader
//! sets before the verifier runs (so it removes the code of the options not
//! taken, and no map lookup reads them per frame).

/// Redirect frames to the AF_XDP sockets in `XSKMAP`.
pub const MODE_REDIRECT: u32 = 0;
/// Count every frame, then pass it to the kernel stack untouched.
pub const MODE_COUNT_ONLY: u32 = 1;

/// Name of the read-only global holding [`XdpConfig::mode`].
pub const MODE_GLOBAL: &str = "MODE";
/// Name of the read-only global holding [`XdpConfig::sockets_per_queue`].
pub const SOCKETS_PER_QUEUE_GLOBAL: &str = "SOCKETS_PER_QUEUE";
/// Name of the read-only global holding [`XdpConfig::hash_seed`].
pub const HASH_SEED_GLOBAL: &str = "HASH_SEED";
/// Name of the per-CPU array holding one [`crate::counters::CpuBlock`].
pub const COUNTERS_MAP: &str = "COUNTERS";
/// Name of the per-CPU array of the two [`crate::anomaly::Sketch`]es.
pub const SKETCHES_MAP: &str = "SKETCHES";
/// Name of the per-CPU array holding one [`crate::anomaly::PairFilter`].
pub const PAIR_FILTER_MAP: &str = "PAIR_FILTER";
/// Name of the read-only global that switches the metadata block on (1) or
/// off (0). The loader sets it before the verifier runs, so with 0 the
/// `bpf_xdp_adjust_meta` call is dead code the verifier never checks, and
/// the program loads on kernels that refuse the helper.
pub const XDP_META_GLOBAL: &str = "XDP_META";
/// Name of the read-only global that switches the filter on (1) or off
/// (0). With 0 the verifier removes the tail call: no filter, no cost.
pub const FILTER_ON_GLOBAL: &str = "FILTER_ON";
/// Name of the XDP program the filter program tail-calls for the frames
/// it accepts (slot [`JUMP_ACCEPTED`]).
pub const ACCEPTED_PROGRAM_NAME: &str = "flowscope_accepted";
/// Name of the program array of the filter's tail calls: the main program
/// jumps to [`JUMP_FILTER`], the filter on accepting a frame to
/// [`JUMP_ACCEPTED`].
pub const FILTER_JUMP_MAP: &str = "FILTER_JUMP";
/// Slot of the filter program (translated from `--filter` at start-up).
pub const JUMP_FILTER: u32 = 0;
/// Slot of the program that delivers the frames the filter accepted.
pub const JUMP_ACCEPTED: u32 = 1;
/// Slots of [`FILTER_JUMP_MAP`].
pub const JUMP_SLOTS: u32 = 2;
/// Name of the XSKMAP the program redirects into.
pub const XSKS_MAP: &str = "XSKS";
/// Name of the XDP program in the object file.
pub const PROGRAM_NAME: &str = "flowscope";
/// Capacity of `XSKS`: queues × sockets per queue must fit.
pub const MAX_XSK_SLOTS: u32 = 1024;

/// Configuration the loader writes into the program's read-only globals.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpConfig {
    /// [`MODE_REDIRECT`] or [`MODE_COUNT_ONLY`].
    pub mode: u32,
    /// Sockets per RX queue (S); 0 is treated as 1.
    pub sockets_per_queue: u32,
    /// Seed of the flow and steering hashes.
    pub hash_seed: u32,
    /// Reserved, 0.
    pub _reserved: u32,
}

const _: () = assert!(core::mem::size_of::<XdpConfig>() == 16);
