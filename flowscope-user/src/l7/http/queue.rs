//! [`Requests`]: the requests of one connection waiting for their
//! responses, oldest first, the oldest kept in the parser itself.
//!
//! A client that does not pipeline has one request waiting at a time: kept
//! inline, it is read with the parser's own cache lines (which the pipeline
//! prefetches) and its text buffers can be prefetched before its response
//! arrives ([`Requests::prefetch`]), instead of a queue buffer elsewhere in
//! memory standing between them.

use std::collections::VecDeque;

use super::HttpRecord;

/// Requests waiting for their responses, oldest first.
#[derive(Debug, Default)]
pub(super) struct Requests {
    /// The oldest; `None` only when `later` is empty too.
    first: Option<HttpRecord>,
    later: VecDeque<HttpRecord>,
}

impl Requests {
    /// How many wait.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.later.len()
    }

    /// Queues the newest.
    pub fn push_back(&mut self, rec: HttpRecord) {
        if self.first.is_none() {
            self.first = Some(rec);
        } else {
            self.later.push_back(rec);
        }
    }

    /// Takes the oldest.
    pub fn pop_front(&mut self) -> Option<HttpRecord> {
        let oldest = self.first.take();
        self.first = self.later.pop_front();
        oldest
    }

    /// The oldest.
    pub fn front(&self) -> Option<&HttpRecord> {
        self.first.as_ref()
    }

    /// The oldest, to change.
    pub fn front_mut(&mut self) -> Option<&mut HttpRecord> {
        self.first.as_mut()
    }

    /// The newest.
    pub fn back_mut(&mut self) -> Option<&mut HttpRecord> {
        self.later.back_mut().or(self.first.as_mut())
    }

    /// Takes them all, oldest first.
    pub fn drain(&mut self) -> impl Iterator<Item = HttpRecord> + '_ {
        self.first.take().into_iter().chain(self.later.drain(..))
    }

    /// Drops them all.
    pub fn clear(&mut self) {
        self.first = None;
        self.later.clear();
    }

    /// Prefetches the text of the oldest, which the next response reads.
    #[inline(always)]
    pub fn prefetch(&self) {
        if let Some(rec) = &self.first {
            rec.text.prefetch();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(depth: u32) -> HttpRecord {
        HttpRecord {
            trans_depth: depth,
            ..HttpRecord::default()
        }
    }

    /// The same answers as a `VecDeque` for every sequence of pushes,
    /// pops, `back_mut` and drains of up to eight steps.
    #[test]
    fn behaves_as_a_deque() {
        for ops in 0u32..(1 << 16) {
            let (mut ours, mut model) = (Requests::default(), VecDeque::new());
            let mut next = 0;
            for step in 0..8 {
                match (ops >> (2 * step)) & 3 {
                    0 | 1 => {
                        next += 1;
                        ours.push_back(rec(next));
                        model.push_back(rec(next));
                    }
                    2 => assert_eq!(ours.pop_front(), model.pop_front()),
                    _ => {
                        if let (Some(a), Some(b)) = (ours.back_mut(), model.back_mut()) {
                            a.length += 1;
                            b.length += 1;
                        }
                    }
                }
                assert_eq!(ours.len(), model.len());
                assert_eq!(
                    ours.back_mut().map(|r| r.trans_depth),
                    model.back().map(|r| r.trans_depth)
                );
            }
            assert!(ours.drain().eq(model.drain(..)), "ops {ops:#x}");
            assert_eq!(ours.len(), 0);
        }
    }
}
