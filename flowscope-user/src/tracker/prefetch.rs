//! Software prefetch: tells the CPU that memory will be read soon, so that
//! [`FlowTracker::track_batch`](super::FlowTracker::track_batch) can overlap
//! the cache misses of a batch's frames, table entries and slots.
//!
//! The one `unsafe` block outside the capture module: the x86-64 prefetch
//! intrinsic takes a raw pointer. Other targets get a no-op.

/// Cache line size assumed for prefetching.
const LINE: usize = 64;

/// Hints that the `len` bytes from `p` will be read soon. `p` need not be
/// valid: a prefetch never faults and changes nothing observable.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let base = p.cast::<i8>();
        for off in (0..len.max(1)).step_by(LINE) {
            // SAFETY: PREFETCHT0 is a hint: it does not fault on any address,
            // does not dereference it architecturally and has no effect other
            // than on the cache; `wrapping_add` keeps the pointer arithmetic
            // defined even if it leaves the allocation.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}
