//! The memory budget all of a worker's TCP reassemblers share, and its pool
//! of reusable buffers.
//!
//! One budget per worker, owned by whoever owns the flow table and passed
//! by `&mut` to each reassembler call: no atomics, no locks. Every byte of
//! out-of-order storage (buffers in use, run tables, and spare buffers kept
//! for reuse) is charged here, so [`ReassemblyBudget::used_bytes`] never
//! exceeds [`ReassemblyBudget::cap_bytes`]. The one exception is a single
//! scratch table per budget, as large as the largest run table plus two.

use super::buffer::Run;

/// Most spare buffers kept for reuse; more are freed.
const MAX_SPARE_BUFFERS: usize = 64;

/// Shared out-of-order memory budget and buffer pool.
#[derive(Debug)]
pub struct ReassemblyBudget {
    cap_bytes: u64,
    used_bytes: u64,
    high_watermark_bytes: u64,
    refusals: u64,
    spare: Vec<Vec<u8>>,
    /// Scratch for one insertion's run pieces, shared by all sides (only
    /// one insertion runs at a time); at most one side's run table plus two.
    pub(crate) plan: Vec<(Run, bool)>,
}

impl ReassemblyBudget {
    /// A budget of `cap_bytes` for all reassemblers together.
    pub fn new(cap_bytes: u64) -> Self {
        Self {
            cap_bytes,
            used_bytes: 0,
            high_watermark_bytes: 0,
            refusals: 0,
            spare: Vec::new(),
            plan: Vec::new(),
        }
    }

    /// The cap.
    pub fn cap_bytes(&self) -> u64 {
        self.cap_bytes
    }

    /// Bytes charged now (buffers in use, run tables, spare buffers).
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// Highest [`used_bytes`](Self::used_bytes) ever reached.
    pub fn high_watermark_bytes(&self) -> u64 {
        self.high_watermark_bytes
    }

    /// Requests refused because the cap would have been exceeded.
    pub fn refusals(&self) -> u64 {
        self.refusals
    }

    /// Charges `bytes` if they fit under the cap, freeing spare buffers
    /// first if needed. False (and counted) if they do not fit.
    pub(crate) fn try_charge(&mut self, bytes: u64) -> bool {
        while self.used_bytes.saturating_add(bytes) > self.cap_bytes {
            let Some(buf) = self.spare.pop() else {
                self.refusals += 1;
                return false;
            };
            self.used_bytes -= buf.capacity() as u64;
        }
        self.used_bytes += bytes;
        self.high_watermark_bytes = self.high_watermark_bytes.max(self.used_bytes);
        true
    }

    /// Returns `bytes` previously charged.
    pub(crate) fn release(&mut self, bytes: u64) {
        self.used_bytes = self.used_bytes.saturating_sub(bytes);
    }

    /// A zeroed buffer of exactly `len` bytes, charged to the budget, from
    /// the pool when one of that size is spare. `None` if it does not fit.
    pub(crate) fn take_buffer(&mut self, len: usize) -> Option<Vec<u8>> {
        if let Some(i) = self.spare.iter().position(|b| b.capacity() == len) {
            // A spare buffer is already charged: it only changes hands.
            let mut buf = self.spare.swap_remove(i);
            buf.resize(len, 0);
            return Some(buf);
        }
        if !self.try_charge(len as u64) {
            return None;
        }
        let buf = vec![0; len];
        // `with_capacity` may round up; charge what was really allocated.
        let extra = (buf.capacity() - len) as u64;
        self.used_bytes += extra;
        self.high_watermark_bytes = self.high_watermark_bytes.max(self.used_bytes);
        Some(buf)
    }

    /// Gives a buffer back: kept for reuse (still charged) or freed.
    pub(crate) fn return_buffer(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < MAX_SPARE_BUFFERS {
            buf.clear();
            self.spare.push(buf);
        } else {
            self.release(buf.capacity() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_never_exceed_cap_and_spares_are_reused_then_freed() {
        let mut b = ReassemblyBudget::new(10_000);
        let buf = b.take_buffer(4096).unwrap();
        assert!(b.used_bytes() >= 4096);
        assert!(b.take_buffer(8192).is_none());
        assert_eq!(b.refusals(), 1);
        b.return_buffer(buf);
        let used = b.used_bytes();
        // Same size: reused, no new charge.
        let buf = b.take_buffer(4096).unwrap();
        assert_eq!(b.used_bytes(), used);
        b.return_buffer(buf);
        // A larger request frees the spare to make room.
        let big = b.take_buffer(8192).unwrap();
        assert!(b.used_bytes() <= b.cap_bytes());
        assert_eq!(big.len(), 8192);
    }
}
