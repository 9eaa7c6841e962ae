//! [`TextPool`]: text buffers of written records, kept for the next ones.
//!
//! A worker's parsers build each L7 record on a [`Texts`] taken from here
//! ([`RecordSink::spare_text`](super::RecordSink::spare_text)), and each
//! written record's buffer comes back. Bounded by bytes, not by count: with
//! many concurrent flows, records wait for their answers by the hundred
//! thousand, their number swings as the flows move in step, and a pool of
//! a few hundred buffers would free and allocate one per record through
//! every swing.

use super::Texts;

/// Largest buffer worth keeping ([`Texts::footprint`]): a record with an
/// unusually long field does not pin its storage.
pub const SPARE_TEXT_BYTES: usize = 4096;

/// What one pool keeps at most, in [`Texts::footprint`] bytes: the swing
/// of 1 000 000 concurrent HTTP/TLS flows (pipebench's real sessions)
/// peaks near 40 MiB.
pub const POOL_BYTES: usize = 64 << 20;

/// Spare text buffers, at most [`POOL_BYTES`] of them.
#[derive(Default)]
pub struct TextPool {
    spares: Vec<Texts>,
    bytes: usize,
}

/// Counts, not contents.
impl std::fmt::Debug for TextPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextPool")
            .field("len", &self.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl TextPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// A spare buffer, or a new unallocated one when none is left.
    pub fn take(&mut self) -> Texts {
        match self.spares.pop() {
            Some(t) => {
                self.bytes -= t.footprint();
                t
            }
            None => Texts::default(),
        }
    }

    /// Keeps `text` for a later [`take`](Self::take) if it is
    /// [worth it](Self::worth_keeping) and fits; drops it otherwise.
    pub fn keep(&mut self, text: Texts) {
        let bytes = text.footprint();
        if Self::worth_keeping(&text) && self.bytes + bytes <= POOL_BYTES {
            self.bytes += bytes;
            self.spares.push(text);
        }
    }

    /// True for a buffer that holds memory, at most [`SPARE_TEXT_BYTES`].
    pub fn worth_keeping(text: &Texts) -> bool {
        (1..=SPARE_TEXT_BYTES).contains(&text.footprint())
    }

    /// Buffers kept.
    pub fn len(&self) -> usize {
        self.spares.len()
    }

    /// True when none is kept.
    pub fn is_empty(&self) -> bool {
        self.spares.is_empty()
    }

    /// Bytes kept ([`Texts::footprint`] of each).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer holding `bytes` of text capacity.
    fn text(bytes: usize) -> Texts {
        let mut t = Texts::default();
        t.reset(0);
        t.set_with(0, |b| {
            b.reserve_exact(bytes);
            Ok::<_, ()>(())
        })
        .unwrap();
        t
    }

    #[test]
    fn keeps_up_to_its_byte_budget_and_gives_back_the_last_kept() {
        let mut pool = TextPool::new();
        let one = text(1000);
        let size = one.footprint();
        let fit = POOL_BYTES / size;
        pool.keep(one);
        for _ in 1..fit {
            pool.keep(text(1000));
        }
        assert_eq!(pool.len(), fit);
        assert_eq!(pool.bytes(), fit * size);
        pool.keep(text(1000));
        assert_eq!(pool.len(), fit, "a buffer past the budget is dropped");
        let t = pool.take();
        assert_eq!(t.footprint(), size);
        assert_eq!(pool.bytes(), (fit - 1) * size);
    }

    #[test]
    fn drops_empty_and_large_buffers() {
        let mut pool = TextPool::new();
        pool.keep(Texts::default());
        pool.keep(text(SPARE_TEXT_BYTES + 1));
        assert!(pool.is_empty());
        assert_eq!(pool.bytes(), 0);
        assert_eq!(
            pool.take().footprint(),
            0,
            "an empty pool hands out a new buffer"
        );
    }
}
