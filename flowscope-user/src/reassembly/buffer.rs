//! One side's out-of-order storage: a byte ring indexed by stream offset and
//! a sorted table of the runs of bytes it holds, each run remembering where
//! the segment that wrote it started (for the overlap policies).
//!
//! Every buffered byte lies in `[next, next + ring.len())`, where `next` is
//! the next stream offset to deliver, so offset `o` lives at `o % ring.len()`.

use super::budget::ReassemblyBudget;
use super::{OverlapPolicy, ReassemblyConfig};

/// Smallest ring allocated.
const MIN_RING_BYTES: u64 = 4096;

/// Bytes charged per run table slot.
const RUN_BYTES: u64 = std::mem::size_of::<Run>() as u64;

/// Run table slots reserved at the first out-of-order segment.
const MIN_RUNS: usize = 8;

/// A stretch `[start, end)` of stream offsets held in the ring, written by
/// a segment that started at stream offset `origin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) origin: u64,
}

/// What inserting a segment found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Overlap {
    /// Some of the segment's bytes were already held.
    pub(crate) seen: bool,
    /// Some of them differed from what was held.
    pub(crate) inconsistent: bool,
}

/// Why a segment could not be buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoRoom {
    /// The side's own cap.
    Side,
    /// The shared budget.
    Global,
}

/// Out-of-order storage of one side.
#[derive(Debug, Default)]
pub(crate) struct OooBuffer {
    ring: Vec<u8>,
    runs: Vec<Run>,
    /// Run table slots charged to the budget.
    runs_charged: usize,
    /// Payload bytes held (sum of run lengths).
    held: u64,
}

impl OooBuffer {
    /// Payload bytes held.
    pub(crate) fn held_bytes(&self) -> u64 {
        self.held
    }

    /// Bytes charged to the budget for this side.
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.ring.capacity() as u64 + self.runs_charged as u64 * RUN_BYTES
    }

    /// Start of the first run held.
    pub(crate) fn first_start(&self) -> Option<u64> {
        self.runs.first().map(|r| r.start)
    }

    /// End of the first run held.
    pub(crate) fn first_end(&self) -> Option<u64> {
        self.runs.first().map(|r| r.end)
    }

    /// Buffers `data`, which starts at stream offset `start > next` and came
    /// from a segment that started at `origin`, applying the overlap policy
    /// where it overlaps held bytes, within the side's cap. Nothing changes when it returns `Err`.
    pub(crate) fn insert(
        &mut self,
        budget: &mut ReassemblyBudget,
        config: &ReassemblyConfig,
        next: u64,
        start: u64,
        data: &[u8],
        origin: u64,
    ) -> Result<Overlap, NoRoom> {
        let (max_side_bytes, policy) = (config.max_side_bytes, config.overlap);
        let end = start + data.len() as u64;
        self.ensure_ring(budget, max_side_bytes, end - next)?;
        let mut plan = std::mem::take(&mut budget.plan);
        let (i, j, overlap) = self.plan(start, data, origin, policy, &mut plan);
        let new_len = self.runs.len() - (j - i) + plan.len();
        if let Err(e) = self.ensure_runs(budget, max_side_bytes, new_len) {
            budget.plan = plan;
            return Err(e);
        }
        for (run, fresh) in &plan {
            if *fresh {
                let from = (run.start - start) as usize;
                let to = (run.end - start) as usize;
                self.write(run.start, data.get(from..to).unwrap_or_default());
            }
        }
        let old: u64 = self.runs[i..j].iter().map(|r| r.end - r.start).sum();
        let new: u64 = plan.iter().map(|(r, _)| r.end - r.start).sum();
        self.held = self.held + new - old;
        self.runs.splice(i..j, plan.iter().map(|(r, _)| *r));
        self.merge_around(i.saturating_sub(1), i + plan.len(), policy);
        budget.plan = plan;
        Ok(overlap)
    }

    /// Delivers in-order bytes `data`, which start at `*next` and came from a
    /// segment that started at `origin`: held bytes they overlap are
    /// resolved by `policy`, and held bytes that become contiguous follow.
    pub(crate) fn deliver_in_order(
        &mut self,
        next: &mut u64,
        data: &[u8],
        origin: u64,
        policy: OverlapPolicy,
        out: &mut impl FnMut(&[u8]),
    ) -> Overlap {
        let start = *next;
        let end = start + data.len() as u64;
        let mut overlap = Overlap::default();
        let mut consumed = 0;
        while *next < end {
            let from = (*next - start) as usize;
            match self.runs.get_mut(consumed) {
                Some(run) if run.start <= *next => {
                    let upto = run.end.min(end);
                    let new_bytes = data.get(from..(upto - start) as usize).unwrap_or_default();
                    overlap.seen = true;
                    overlap.inconsistent |= !Self::ring_equals(&self.ring, *next, new_bytes);
                    if policy.new_wins(run.origin, origin) {
                        out(new_bytes);
                    } else {
                        Self::read(&self.ring, *next, upto, out);
                    }
                    self.held -= upto - *next;
                    *next = upto;
                    run.start = upto;
                    if run.start == run.end {
                        consumed += 1;
                    }
                }
                first => {
                    let upto = first.map_or(end, |r| r.start.min(end));
                    out(data.get(from..(upto - start) as usize).unwrap_or_default());
                    *next = upto;
                }
            }
        }
        self.runs.drain(..consumed);
        self.drain_contiguous(next, out);
        overlap
    }

    /// Delivers the held runs that start at `*next`, one after another.
    pub(crate) fn drain_contiguous(&mut self, next: &mut u64, out: &mut impl FnMut(&[u8])) {
        let mut k = 0;
        while let Some(run) = self.runs.get(k)
            && run.start == *next
        {
            Self::read(&self.ring, run.start, run.end, out);
            self.held -= run.end - run.start;
            *next = run.end;
            k += 1;
        }
        self.runs.drain(..k);
    }

    /// Drops everything held; returns how many payload bytes that was.
    pub(crate) fn clear(&mut self) -> u64 {
        self.runs.clear();
        std::mem::take(&mut self.held)
    }

    /// Gives the storage back to the budget once nothing is held.
    pub(crate) fn release_if_empty(&mut self, budget: &mut ReassemblyBudget) {
        if !self.runs.is_empty() {
            return;
        }
        if self.ring.capacity() > 0 {
            budget.return_buffer(std::mem::take(&mut self.ring));
        }
        if self.runs_charged > 0 {
            budget.release(self.runs_charged as u64 * RUN_BYTES);
            self.runs_charged = 0;
            self.runs = Vec::new();
        }
    }

    /// Makes the ring at least `span` bytes long, within both caps.
    fn ensure_ring(
        &mut self,
        budget: &mut ReassemblyBudget,
        max_side_bytes: u64,
        span: u64,
    ) -> Result<(), NoRoom> {
        if span <= self.ring.len() as u64 {
            return Ok(());
        }
        let room = max_side_bytes.saturating_sub(self.runs_charged as u64 * RUN_BYTES);
        let size = span.next_power_of_two().max(MIN_RING_BYTES).min(room);
        if size < span {
            return Err(NoRoom::Side);
        }
        // The old ring is still charged while the new one is taken.
        let mut ring = budget.take_buffer(size as usize).ok_or(NoRoom::Global)?;
        for run in &self.runs {
            let mut at = run.start;
            Self::read(&self.ring, run.start, run.end, &mut |bytes: &[u8]| {
                Self::write_into(&mut ring, at, bytes);
                at += bytes.len() as u64;
            });
        }
        let old = std::mem::replace(&mut self.ring, ring);
        if old.capacity() > 0 {
            budget.return_buffer(old);
        }
        Ok(())
    }

    /// Makes room for `len` runs, within both caps.
    fn ensure_runs(
        &mut self,
        budget: &mut ReassemblyBudget,
        max_side_bytes: u64,
        len: usize,
    ) -> Result<(), NoRoom> {
        if len <= self.runs_charged {
            return Ok(());
        }
        let want = len.max(self.runs_charged * 2).max(MIN_RUNS);
        let extra = (want - self.runs_charged) as u64 * RUN_BYTES;
        if self.memory_bytes() + extra > max_side_bytes {
            return Err(NoRoom::Side);
        }
        if !budget.try_charge(extra) {
            return Err(NoRoom::Global);
        }
        // The run table never holds more than `want` runs (checked above on
        // every growth), so its charge is `want` slots.
        self.runs.reserve_exact(want - self.runs.len());
        self.runs_charged = want;
        Ok(())
    }

    /// Computes into `plan` the runs replacing `runs[i..j]` (the held runs
    /// `[start, end)` touches), each marked fresh if written from `data`.
    fn plan(
        &self,
        start: u64,
        data: &[u8],
        origin: u64,
        policy: OverlapPolicy,
        plan: &mut Vec<(Run, bool)>,
    ) -> (usize, usize, Overlap) {
        let end = start + data.len() as u64;
        let i = self.runs.partition_point(|r| r.end <= start);
        let j = i + self.runs[i..].partition_point(|r| r.start < end);
        let mut overlap = Overlap::default();
        let mut pos = start;
        plan.clear();
        for run in &self.runs[i..j] {
            if pos < run.start {
                plan.push((
                    Run {
                        start: pos,
                        end: run.start,
                        origin,
                    },
                    true,
                ));
            }
            let ov_start = run.start.max(start);
            let ov_end = run.end.min(end);
            let new_bytes = data
                .get((ov_start - start) as usize..(ov_end - start) as usize)
                .unwrap_or_default();
            overlap.seen = true;
            overlap.inconsistent |= !Self::ring_equals(&self.ring, ov_start, new_bytes);
            if policy.new_wins(run.origin, origin) {
                if run.start < ov_start {
                    plan.push((
                        Run {
                            end: ov_start,
                            ..*run
                        },
                        false,
                    ));
                }
                plan.push((
                    Run {
                        start: ov_start,
                        end: ov_end,
                        origin,
                    },
                    true,
                ));
                if ov_end < run.end {
                    plan.push((
                        Run {
                            start: ov_end,
                            ..*run
                        },
                        false,
                    ));
                }
            } else {
                plan.push((*run, false));
            }
            pos = run.end;
        }
        if pos < end {
            plan.push((
                Run {
                    start: pos,
                    end,
                    origin,
                },
                true,
            ));
        }
        (i, j, overlap)
    }

    /// Merges each run `k` in `from..last` with run `k + 1` where they touch
    /// and the policy allows (`last` shrinks as runs merge).
    fn merge_around(&mut self, from: usize, mut last: usize, policy: OverlapPolicy) {
        let mut k = from;
        while k < last && k + 1 < self.runs.len() {
            let (a, b) = (self.runs[k], self.runs[k + 1]);
            if a.end == b.start && (policy.ignores_origin() || a.origin == b.origin) {
                self.runs[k].end = b.end;
                self.runs.remove(k + 1);
                last -= 1;
            } else {
                k += 1;
            }
        }
    }

    /// True if the ring holds exactly `bytes` from offset `at`.
    fn ring_equals(ring: &[u8], at: u64, bytes: &[u8]) -> bool {
        let mut pos = 0;
        let mut equal = true;
        Self::read(ring, at, at + bytes.len() as u64, &mut |held: &[u8]| {
            equal &= bytes.get(pos..pos + held.len()) == Some(held);
            pos += held.len();
        });
        equal
    }

    /// Passes the ring's bytes `[start, end)` to `out`, in one or two slices.
    fn read(ring: &[u8], start: u64, end: u64, out: &mut impl FnMut(&[u8])) {
        let n = ring.len() as u64;
        if n == 0 || end <= start {
            return;
        }
        let a = (start % n) as usize;
        let len = (end - start).min(n) as usize;
        let first = len.min(ring.len() - a);
        out(&ring[a..a + first]);
        if first < len {
            out(&ring[..len - first]);
        }
    }

    fn write(&mut self, at: u64, bytes: &[u8]) {
        Self::write_into(&mut self.ring, at, bytes);
    }

    fn write_into(ring: &mut [u8], at: u64, bytes: &[u8]) {
        let n = ring.len() as u64;
        if n == 0 {
            return;
        }
        let a = (at % n) as usize;
        let len = bytes.len().min(ring.len());
        let first = len.min(ring.len() - a);
        ring[a..a + first].copy_from_slice(&bytes[..first]);
        ring[..len - first].copy_from_slice(&bytes[first..len]);
    }
}
