//! The client's Initial CRYPTO stream, reassembled from frames that arrive
//! in any order, overlap or repeat (RFC 9000 §19.6), in a buffer bounded
//! by a byte limit and a count of disjoint ranges.

/// Most disjoint byte ranges held while holes remain.
const MAX_RANGES: usize = 16;

/// Why a frame's bytes were not (all) kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dropped {
    /// Bytes past the buffer's limit.
    PastLimit,
    /// One hole too many.
    TooManyRanges,
}

/// The stream's bytes from offset 0, with the ranges received so far.
#[derive(Debug)]
pub(super) struct CryptoStream {
    buf: Vec<u8>,
    /// Received `[start, end)` ranges, sorted, disjoint and not adjacent.
    ranges: [(usize, usize); MAX_RANGES],
    count: usize,
    limit: usize,
}

impl CryptoStream {
    /// An empty stream that keeps the first `limit` bytes.
    pub(super) fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            ranges: [(0, 0); MAX_RANGES],
            count: 0,
            limit,
        }
    }

    /// Forgets everything (the client starts its handshake over).
    pub(super) fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
    }

    /// The stream's first bytes, up to the first hole.
    pub(super) fn prefix(&self) -> &[u8] {
        match self.ranges[..self.count] {
            [(0, end), ..] => &self.buf[..end],
            _ => &[],
        }
    }

    /// Stores `data` found at `offset`. Bytes already held are overwritten
    /// (a retransmission carries the same bytes).
    ///
    /// # Errors
    /// [`Dropped`] when some or all of `data` was not kept.
    pub(super) fn insert(&mut self, offset: u64, data: &[u8]) -> Result<(), Dropped> {
        let Ok(start) = usize::try_from(offset) else {
            return Err(Dropped::PastLimit);
        };
        let end = start.saturating_add(data.len()).min(self.limit);
        if start >= end {
            return if data.is_empty() {
                Ok(())
            } else {
                Err(Dropped::PastLimit)
            };
        }
        // The new range absorbs every range it overlaps or touches.
        let ranges = &self.ranges[..self.count];
        let first = ranges.partition_point(|&(_, e)| e < start);
        let last = ranges.partition_point(|&(s, _)| s <= end);
        let merged = ranges[first..last]
            .iter()
            .fold((start, end), |(s, e), &(rs, re)| (s.min(rs), e.max(re)));
        let new_count = self.count - (last - first) + 1;
        if new_count > MAX_RANGES {
            return Err(Dropped::TooManyRanges);
        }
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        self.buf[start..end].copy_from_slice(&data[..end - start]);
        self.ranges.copy_within(last..self.count, first + 1);
        self.ranges[first] = merged;
        self.count = new_count;
        if end - start < data.len() {
            Err(Dropped::PastLimit)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

    /// Feeds TEXT in `pieces` (offset, len) and returns the prefix.
    fn feed(limit: usize, pieces: &[(usize, usize)]) -> (Vec<u8>, Vec<Result<(), Dropped>>) {
        let mut s = CryptoStream::new(limit);
        let results = pieces
            .iter()
            .map(|&(at, len)| s.insert(at as u64, &TEXT[at..at + len]))
            .collect();
        (s.prefix().to_vec(), results)
    }

    #[test]
    fn any_order_overlap_and_repeats_give_the_stream() {
        let orders: [&[(usize, usize)]; 5] = [
            &[(0, 36)],
            &[(20, 16), (0, 10), (10, 10)],
            &[(30, 6), (5, 10), (5, 10), (0, 6), (14, 20)],
            &[(35, 1), (34, 1), (33, 1), (0, 33)],
            &[(1, 1), (3, 1), (5, 1), (7, 30 - 7), (0, 36)],
        ];
        for pieces in orders {
            let (prefix, results) = feed(64, pieces);
            assert_eq!(prefix, TEXT, "{pieces:?}");
            assert!(results.iter().all(Result::is_ok), "{pieces:?}");
        }
        // A hole stops the prefix.
        assert_eq!(feed(64, &[(0, 4), (5, 10)]).0, b"0123");
        assert_eq!(feed(64, &[(1, 4)]).0, b"");
    }

    #[test]
    fn bytes_past_the_limit_are_dropped() {
        let (prefix, results) = feed(10, &[(0, 6), (6, 8), (12, 3)]);
        assert_eq!(prefix, &TEXT[..10]);
        assert_eq!(
            results,
            vec![Ok(()), Err(Dropped::PastLimit), Err(Dropped::PastLimit)]
        );
    }

    #[test]
    fn too_many_holes_are_refused_and_filling_them_recovers() {
        let mut s = CryptoStream::new(1024);
        for i in 0..MAX_RANGES {
            assert_eq!(s.insert(1 + 2 * i as u64, b"x"), Ok(()));
        }
        assert_eq!(s.insert(100, b"y"), Err(Dropped::TooManyRanges));
        assert_eq!(s.prefix(), b"");
        // Filling the holes merges everything into one range.
        assert_eq!(s.insert(0, &[b'x'; 40]), Ok(()));
        assert_eq!(s.prefix(), &[b'x'; 40][..]);
        s.clear();
        assert_eq!(s.prefix(), b"");
    }
}
