//! A refillable read buffer: records are borrowed from it, never copied out.

use std::io::{self, ErrorKind, Read};

/// Initial buffer size; enough for many records per `read` call.
const INITIAL_BYTES: usize = 256 * 1024;

/// Bytes read from a stream and not consumed yet, `buf[start..end]`.
#[derive(Debug)]
pub(super) struct StreamBuf<R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
}

impl<R: Read> StreamBuf<R> {
    pub(super) fn new(reader: R) -> Self {
        Self {
            reader,
            buf: vec![0; INITIAL_BYTES],
            start: 0,
            end: 0,
            offset: 0,
        }
    }

    /// File offset of the first unconsumed byte.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// The unconsumed bytes.
    pub(super) fn available(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Reads until at least `n` bytes are available or the stream ends;
    /// returns how many are available. `n` must be bounded by the caller.
    pub(super) fn fill_to(&mut self, n: usize) -> io::Result<usize> {
        if self.end - self.start >= n {
            return Ok(self.end - self.start);
        }
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if n > self.buf.len() {
                self.buf.resize(n.max(self.buf.len() * 2), 0);
            }
        }
        while self.end - self.start < n {
            let Some(dst) = self.buf.get_mut(self.end..) else {
                break;
            };
            match self.reader.read(dst) {
                Ok(0) => break,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    /// Consumes `n` available bytes and returns `range` of them (relative to
    /// the first), valid until the next refill.
    pub(super) fn take(&mut self, n: usize, range: std::ops::Range<usize>) -> &[u8] {
        let base = self.start;
        self.consume(n);
        self.buf
            .get(base + range.start..base + range.end)
            .unwrap_or_default()
    }

    /// Marks `n` available bytes as consumed.
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
        let data: Vec<u8> = (0..=255u8).cycle().take(INITIAL_BYTES * 3).collect();
        let mut b = StreamBuf::new(Trickle(&data));
        assert!(b.fill_to(10).unwrap() >= 10);
        b.consume(7);
        assert_eq!(b.offset(), 7);
        let n = INITIAL_BYTES + 5;
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
}
