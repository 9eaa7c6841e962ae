//! Open-addressing index from a key's hash to a slot number.
//!
//! Linear probing over a power-of-two array at most half full, with
//! backward-shift deletion (no tombstones, so probe lengths stay short under
//! churn). Each entry is 8 bytes: 32 bits of the hash, the slot number and
//! one bit of the caller's (the tracker keeps which way the flow's initiator
//! sends there, so it can prefetch the right side before reading the slot).
//! The array is allocated once; nothing here allocates afterwards.

const EMPTY: u32 = u32::MAX;

/// The caller's bit, above every slot number (slots stay below 2^31).
const TAG: u32 = 1 << 31;

/// Entries [`Index::touch`] looks at: a probe run rarely exceeds this at
/// the index's load of at most one half.
const TOUCH_PROBES: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u32,
    slot: u32,
}

/// The index. Keys live in the caller's slots; `eq` closures compare them.
#[derive(Debug)]
pub(crate) struct Index {
    entries: Box<[Entry]>,
    mask: usize,
}

impl Index {
    /// An index for up to `capacity` slots.
    pub(crate) fn new(capacity: usize) -> Self {
        let size = (capacity.max(1) * 2).next_power_of_two();
        let mut entries = super::hugepage::vec_with_capacity(size);
        entries.resize(
            size,
            Entry {
                hash: 0,
                slot: EMPTY,
            },
        );
        Self {
            entries: entries.into_boxed_slice(),
            mask: size - 1,
        }
    }

    fn home(&self, hash: u32) -> usize {
        hash as usize & self.mask
    }

    /// Prefetches the entry a lookup of `hash` starts at.
    #[inline(always)]
    pub(crate) fn prefetch(&self, hash: u32) {
        super::prefetch::prefetch(
            self.entries.as_ptr().wrapping_add(self.home(hash)),
            std::mem::size_of::<Entry>(),
        );
    }

    /// Reads the first entries a lookup of `hash` visits (at most
    /// [`TOUCH_PROBES`]), so that a batch can issue these loads back to back
    /// and overlap their cache misses. Returns the first slot stored under
    /// `hash` there, if any, and its bit.
    #[inline(always)]
    pub(crate) fn touch(&self, hash: u32) -> Option<(u32, bool)> {
        let mut i = self.home(hash);
        for _ in 0..TOUCH_PROBES {
            let e = self.entries.get(i)?;
            if e.slot == EMPTY {
                return None;
            }
            if e.hash == hash {
                return Some((e.slot & !TAG, e.slot & TAG != 0));
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// The slot whose hash is `hash` and for which `eq` holds.
    #[inline(always)]
    pub(crate) fn find(&self, hash: u32, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut i = self.home(hash);
        loop {
            let e = self.entries.get(i)?;
            if e.slot == EMPTY {
                return None;
            }
            if e.hash == hash && eq(e.slot & !TAG) {
                return Some(e.slot & !TAG);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Adds `slot` (below 2^31) under `hash` with bit `tag`. The caller
    /// keeps at most `capacity` entries, so a free entry always exists.
    pub(crate) fn insert(&mut self, hash: u32, slot: u32, tag: bool) {
        let slot = slot | if tag { TAG } else { 0 };
        let mut i = self.home(hash);
        while let Some(e) = self.entries.get_mut(i) {
            if e.slot == EMPTY {
                *e = Entry { hash, slot };
                return;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Sets the bit of `slot`'s entry (stored under `hash`).
    pub(crate) fn retag(&mut self, hash: u32, slot: u32, tag: bool) {
        let mut i = self.home(hash);
        while let Some(e) = self.entries.get_mut(i) {
            if e.slot == EMPTY {
                return;
            }
            if e.slot & !TAG == slot {
                e.slot = slot | if tag { TAG } else { 0 };
                return;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Removes the entry of `slot` (stored under `hash`), shifting later
    /// entries of the probe run back so lookups never cross a hole.
    pub(crate) fn remove(&mut self, hash: u32, slot: u32) {
        let mut i = self.home(hash);
        loop {
            match self.entries.get(i) {
                Some(e) if e.slot != EMPTY && e.slot & !TAG == slot => break,
                Some(e) if e.slot != EMPTY => i = (i + 1) & self.mask,
                _ => return,
            }
        }
        let mut hole = i;
        let mut j = (i + 1) & self.mask;
        while let Some(&e) = self.entries.get(j) {
            if e.slot == EMPTY {
                break;
            }
            // Move e into the hole if its home is not in (hole, j].
            let dist_home_j = j.wrapping_sub(self.home(e.hash)) & self.mask;
            let dist_hole_j = j.wrapping_sub(hole) & self.mask;
            if dist_home_j >= dist_hole_j {
                if let Some(h) = self.entries.get_mut(hole) {
                    *h = e;
                }
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        if let Some(h) = self.entries.get_mut(hole) {
            h.slot = EMPTY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_remove_with_collisions() {
        let mut ix = Index::new(8); // 16 entries
        // Hashes 3, 19, 35 share home 3; 4 sits in their run.
        for (h, s) in [(3u32, 0u32), (19, 1), (4, 2), (35, 3), (15, 4), (31, 5)] {
            ix.insert(h, s, s % 2 == 1);
        }
        for (h, s) in [(3u32, 0u32), (19, 1), (4, 2), (35, 3), (15, 4), (31, 5)] {
            assert_eq!(ix.find(h, |x| x == s), Some(s), "hash {h}");
        }
        ix.remove(19, 1);
        assert_eq!(ix.find(19, |x| x == 1), None);
        for (h, s) in [(3u32, 0u32), (4, 2), (35, 3), (15, 4), (31, 5)] {
            assert_eq!(ix.find(h, |x| x == s), Some(s), "hash {h} after remove");
        }
        // 31's home is 15 and it wrapped to 0.
        ix.remove(15, 4);
        assert_eq!(ix.find(31, |x| x == 5), Some(5));
        ix.remove(3, 0);
        ix.remove(4, 2);
        assert_eq!(ix.find(35, |x| x == 3), Some(3));
        assert_eq!(ix.touch(35), Some((3, true)));
        ix.retag(35, 3, false);
        assert_eq!(ix.touch(35), Some((3, false)));
        assert_eq!(ix.find(35, |x| x == 3), Some(3));
    }
}
