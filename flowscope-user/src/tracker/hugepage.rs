//! Transparent huge pages for the tracker's big arrays (slots, index, timer
//! links): with millions of flows every packet lands on a different 4 KiB
//! page, and a 2 MiB page saves the TLB miss that would come with each cache
//! miss.
//!
//! The advice is given before the memory is first touched (the kernel then
//! backs it with huge pages as it faults in, when THP is `madvise` or
//! `always`). It is a hint: failure, or a kernel without THP, changes
//! nothing but speed.

/// Allocations smaller than one huge page are left alone.
const HUGE_PAGE: usize = 2 << 20;

/// An empty vector with room for `capacity` elements, its storage advised
/// to use huge pages. Allocate with this, then fill: the pages fault in
/// after the advice.
pub(crate) fn vec_with_capacity<T>(capacity: usize) -> Vec<T> {
    let v = Vec::<T>::with_capacity(capacity);
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes >= HUGE_PAGE {
        advise(v.as_ptr().cast::<u8>(), bytes);
    }
    v
}

/// `madvise(MADV_HUGEPAGE)` on the whole pages inside `[p, p + len)`.
#[cfg(target_os = "linux")]
fn advise(p: *const u8, len: usize) {
    const PAGE: usize = 4096;
    let start = (p as usize).next_multiple_of(PAGE);
    let end = (p as usize).saturating_add(len) & !(PAGE - 1);
    if end <= start {
        return;
    }
    // SAFETY: the range lies inside one live allocation (`p`, `len` are a
    // vector's buffer and capacity) rounded inwards to page bounds, so no
    // other object's pages are affected; MADV_HUGEPAGE changes neither the
    // contents nor the validity of any mapping, only how the kernel backs it.
    // The result is ignored: the advice is optional.
    let _ = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise(_: *const u8, _: usize) {}
