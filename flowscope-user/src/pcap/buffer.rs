//! The bytes a reader parses records from, and the [`Chunk`]s it hands
//! packets out of.
//!
//! A stream (a pipe, standard input, a file that cannot be mapped) is read
//! into a buffer with large reads; records are borrowed from it, never
//! copied out. While the reader holds the only handle to its buffer, a
//! refill compacts it in place. Once a [`Chunk`] handle has been given out
//! (offline workers hold the chunks their frames live in), the buffer is
//! no longer written: a refill moves the unconsumed tail into another
//! buffer (a retired one that every holder has let go of, or a new one)
//! and the old one lives on until its last handle drops. A mapped file is
//! one chunk holding everything; it is never refilled.

use std::io::{self, Read};
use std::sync::Arc;

/// Size of a stream buffer; enough for many records per `read` call.
const BUFFER_BYTES: usize = 1 << 20;
/// How far ahead of the record being parsed the reader prefetches: a few
/// records of ordinary frames, so each line arrives before it is needed.
pub(super) const PREFETCH_AHEAD: usize = 16384;
/// Retired buffers kept for reuse.
const RETIRED_KEPT: usize = 8;

#[derive(Debug, Clone)]
enum Shared {
    Buf(Arc<Vec<u8>>),
    #[cfg(target_os = "linux")]
    Mapped(Arc<super::mapped::MappedFile>),
}

/// A shared handle to the bytes some packets live in: a read buffer or a
/// whole mapped file. Cloning it is one reference count.
#[derive(Debug, Clone)]
pub struct Chunk(Shared);

impl Chunk {
    /// The bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match &self.0 {
            Shared::Buf(b) => b,
            #[cfg(target_os = "linux")]
            Shared::Mapped(m) => m.bytes(),
        }
    }

    /// True for a whole mapped file: every packet of the file lies in this
    /// one chunk, so holding it costs no memory beyond the mapping.
    #[inline]
    pub fn is_whole_file(&self) -> bool {
        match &self.0 {
            Shared::Buf(_) => false,
            #[cfg(target_os = "linux")]
            Shared::Mapped(_) => true,
        }
    }

    /// True when both handles name the same bytes.
    #[inline]
    pub fn same(&self, other: &Chunk) -> bool {
        match (&self.0, &other.0) {
            (Shared::Buf(a), Shared::Buf(b)) => Arc::ptr_eq(a, b),
            #[cfg(target_os = "linux")]
            (Shared::Mapped(a), Shared::Mapped(b)) => Arc::ptr_eq(a, b),
            #[cfg(target_os = "linux")]
            _ => false,
        }
    }
}

/// Bytes read and not consumed yet: `chunk[start..end]`.
#[derive(Debug)]
pub(super) struct StreamBuf<R> {
    /// `None` once everything is in `chunk` (a mapped file).
    reader: Option<R>,
    chunk: Chunk,
    start: usize,
    end: usize,
    /// File offset of `chunk[start]`.
    offset: u64,
    /// Buffers given up while shared, for reuse once nobody holds them.
    retired: Vec<Arc<Vec<u8>>>,
    /// Return interrupted reads (EINTR) instead of retrying them.
    pub(super) interruptible: bool,
    /// Index in `chunk` up to which [`prefetch_ahead`](Self::prefetch_ahead)
    /// went.
    prefetched: usize,
}

impl<R: Read> StreamBuf<R> {
    pub(super) fn new(reader: R) -> Self {
        Self {
            reader: Some(reader),
            chunk: Chunk(Shared::Buf(Arc::new(vec![0; BUFFER_BYTES]))),
            start: 0,
            end: 0,
            offset: 0,
            retired: Vec::new(),
            interruptible: false,
            prefetched: 0,
        }
    }

    /// All of a mapped file.
    #[cfg(target_os = "linux")]
    pub(super) fn mapped(map: super::mapped::MappedFile) -> Self {
        let end = map.bytes().len();
        Self {
            reader: None,
            chunk: Chunk(Shared::Mapped(Arc::new(map))),
            start: 0,
            end,
            offset: 0,
            retired: Vec::new(),
            interruptible: false,
            prefetched: 0,
        }
    }

    /// File offset of the first unconsumed byte.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// The chunk the available bytes are in.
    pub(super) fn chunk(&self) -> &Chunk {
        &self.chunk
    }

    /// Hints that the bytes up to [`PREFETCH_AHEAD`] past the first
    /// unconsumed one will be read soon, each cache line once: records are
    /// parsed one after the other (a pcapng block's trailer is read at its
    /// end), and a mapped file's next page is not in any cache yet. Called
    /// once per record, by both formats.
    #[inline]
    pub(super) fn prefetch_ahead(&mut self) {
        const LINE: usize = 64;
        let bytes = self.chunk.bytes();
        let to = (self.start + PREFETCH_AHEAD).min(self.end);
        let mut at = self.prefetched.max(self.start);
        while at < to {
            if let Some(b) = bytes.get(at..) {
                crate::tracker::prefetch(b.as_ptr(), LINE);
            }
            at += LINE;
        }
        self.prefetched = at;
    }

    /// Where the first unconsumed byte lies in [`chunk`](Self::chunk).
    #[inline]
    pub(super) fn position(&self) -> usize {
        self.start
    }

    /// The unconsumed bytes.
    #[inline]
    pub(super) fn available(&self) -> &[u8] {
        self.chunk
            .bytes()
            .get(self.start..self.end)
            .unwrap_or_default()
    }

    /// Reads until at least `n` bytes are available or the stream ends;
    /// returns how many are available. `n` must be bounded by the caller.
    ///
    /// # Errors
    ///
    /// A read error; an interrupted read (EINTR) only when
    /// `interruptible` (the call can then be repeated), otherwise it is
    /// retried.
    #[inline]
    pub(super) fn fill_to(&mut self, n: usize) -> io::Result<usize> {
        if self.end - self.start >= n {
            return Ok(self.end - self.start);
        }
        self.refill(n)
    }

    #[cold]
    fn refill(&mut self, n: usize) -> io::Result<usize> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(self.end - self.start);
        };
        let Shared::Buf(current) = &mut self.chunk.0 else {
            return Ok(self.end - self.start);
        };
        if Arc::get_mut(current).is_none() {
            // Packets in it are out there: continue in another buffer.
            let size = BUFFER_BYTES.max(n);
            let mut next = match self.retired.iter().position(|b| Arc::strong_count(b) == 1) {
                Some(i) => self.retired.swap_remove(i),
                None => Arc::new(Vec::new()),
            };
            if Arc::get_mut(&mut next).is_none() {
                next = Arc::new(Vec::new());
            }
            let held = self.end - self.start;
            if let (Some(buf), Some(tail)) =
                (Arc::get_mut(&mut next), current.get(self.start..self.end))
            {
                buf.clear();
                buf.resize(size, 0);
                buf[..held].copy_from_slice(tail);
            }
            let old = std::mem::replace(current, next);
            if self.retired.len() < RETIRED_KEPT {
                self.retired.push(old);
            }
            (self.start, self.end, self.prefetched) = (0, held, 0);
        }
        let Some(buf) = Arc::get_mut(current) else {
            return Ok(self.end - self.start);
        };
        if self.start + n > buf.len() {
            buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            (self.start, self.prefetched) = (0, 0);
            if n > buf.len() {
                let len = n.max(buf.len() * 2);
                buf.resize(len, 0);
            }
        }
        while self.end - self.start < n {
            let Some(dst) = buf.get_mut(self.end..) else {
                break;
            };
            match reader.read(dst) {
                Ok(0) => break,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted && !self.interruptible => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    /// Consumes `n` available bytes and returns where `range` of them
    /// (relative to the first) lies in [`chunk`](Self::chunk).
    #[inline]
    pub(super) fn take(
        &mut self,
        n: usize,
        range: std::ops::Range<usize>,
    ) -> std::ops::Range<usize> {
        let base = self.start;
        self.consume(n);
        base + range.start..base + range.end
    }

    /// Marks `n` available bytes as consumed.
    #[inline]
    pub(super) fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader returning at most 3 bytes per call, to exercise refills.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
            let k = dst.len().min(3).min(self.0.len());
            let (head, tail) = self.0.split_at(k);
            dst[..k].copy_from_slice(head);
            self.0 = tail;
            Ok(k)
        }
    }

    #[test]
    fn refills_compacts_and_grows() {
        let data: Vec<u8> = (0..=255u8).cycle().take(BUFFER_BYTES * 3).collect();
        let mut b = StreamBuf::new(Trickle(&data));
        assert!(b.fill_to(10).unwrap() >= 10);
        b.consume(7);
        assert_eq!(b.offset(), 7);
        let n = BUFFER_BYTES + 5;
        assert!(b.fill_to(n).unwrap() >= n);
        assert_eq!(&b.available()[..n], &data[7..7 + n]);
        b.consume(n);
        let rest = data.len() - 7 - n;
        assert_eq!(
            b.fill_to(rest + 100).unwrap(),
            rest,
            "stops at the end of the stream"
        );
        assert_eq!(b.available(), &data[7 + n..]);
    }

    /// Bytes handed out in a chunk stay as they were while the reader goes
    /// on; the buffer comes back for reuse once the handle is dropped.
    #[test]
    fn a_held_chunk_is_never_written_again() {
        let data: Vec<u8> = (0..=255u8).cycle().take(BUFFER_BYTES * 4).collect();
        let mut b = StreamBuf::new(&data[..]);
        b.fill_to(100).unwrap();
        let held = b.chunk().clone();
        let at = b.take(100, 0..100);
        let before = held.bytes()[at.clone()].to_vec();
        for _ in 0..3 {
            let k = b.fill_to(BUFFER_BYTES).unwrap();
            b.consume(k);
        }
        assert_eq!(&held.bytes()[at], &before[..], "held bytes unchanged");
        assert!(
            !held.same(b.chunk()),
            "the reader moved on to another buffer"
        );
        drop(held);
        let k = b.fill_to(BUFFER_BYTES).unwrap();
        assert_eq!(b.available()[..k], data[data.len() - k..]);
    }
}
