//! [`Log2Histogram`]: power-of-two buckets with the exact sum, the one
//! histogram kind every counter shard keeps (flow sizes and durations,
//! socket batches, ring levels).

/// A histogram with one bucket per power of two: bucket 0 holds 0, bucket
/// `i` holds values in `[2^(i-1), 2^i)`; with the exact sum of the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Log2Histogram {
    /// Sample count per bucket.
    pub buckets: [u64; 65],
    sum: u128,
}

impl Default for Log2Histogram {
    fn default() -> Self {
        Self {
            buckets: [0; 65],
            sum: 0,
        }
    }
}

impl Log2Histogram {
    /// Counts one sample.
    pub fn record(&mut self, value: u64) {
        self.buckets[Self::bucket_of(value)] += 1;
        self.sum += u128::from(value);
    }

    /// The bucket that holds `value`.
    pub const fn bucket_of(value: u64) -> usize {
        (u64::BITS - value.leading_zeros()) as usize
    }

    /// Lower bound of bucket `i`.
    pub const fn lower_bound(i: usize) -> u64 {
        if i == 0 { 0 } else { 1u64 << (i - 1) }
    }

    /// The largest value bucket `i` holds (`2^i - 1`).
    pub const fn upper_bound(i: usize) -> u64 {
        if i >= 64 { u64::MAX } else { (1u64 << i) - 1 }
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Sum of the samples (exact: a `u128` cannot overflow from `u64` samples
    /// in any run).
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// Adds `other`'s samples.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
        self.sum += other.sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_buckets() {
        let mut h = Log2Histogram::default();
        for v in [0, 1, 2, 3, 4, 1023, 1024, u64::MAX] {
            h.record(v);
        }
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[2], 2);
        assert_eq!(h.buckets[3], 1);
        assert_eq!(h.buckets[10], 1);
        assert_eq!(h.buckets[11], 1);
        assert_eq!(h.buckets[64], 1);
        assert_eq!(Log2Histogram::lower_bound(11), 1024);
        assert_eq!(h.count(), 8);
        assert_eq!(h.sum(), 1 + 2 + 3 + 4 + 1023 + 1024 + u128::from(u64::MAX));
        // Every value lies within its bucket's bounds.
        for v in [0, 1, 2, 3, 1023, 1024, u64::MAX] {
            let i = Log2Histogram::bucket_of(v);
            assert!((Log2Histogram::lower_bound(i)..=Log2Histogram::upper_bound(i)).contains(&v));
        }
    }
}
