//! A bounded per-side buffer holding one incomplete unit (a header block, a
//! length prefix, a handshake message) between two feeds.
//!
//! Parsing is borrowed: a consumer `step` runs directly on the caller's bytes
//! and only the tail it cannot consume yet is copied here. While the buffer is
//! not empty, it is topped up from the input (never beyond the limit) and the
//! consumer runs on it until it empties, then again on the input itself.

/// The incomplete unit grew past the limit; the buffer has been cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

/// Bounded carry-over buffer.
#[derive(Debug)]
pub(crate) struct Carry {
    buf: Vec<u8>,
    limit: usize,
}

impl Carry {
    /// An empty buffer that holds at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
        }
    }

    /// Drops the buffered bytes.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    /// The buffered bytes.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// True when no bytes are buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Runs `step` over the buffered bytes followed by `input`.
    ///
    /// `step(bytes)` returns how many leading bytes it consumed; 0 means it
    /// needs more bytes than `bytes` holds. Whatever is left when `step`
    /// needs more is kept for the next call.
    ///
    /// # Errors
    /// [`Overflow`] when the unit being accumulated reaches the limit; the
    /// buffer and the rest of `input` are then dropped.
    pub(crate) fn drive(
        &mut self,
        mut input: &[u8],
        mut step: impl FnMut(&[u8]) -> usize,
    ) -> Result<(), Overflow> {
        while !self.buf.is_empty() {
            let room = self.limit.saturating_sub(self.buf.len());
            let (head, rest) = input.split_at(room.min(input.len()));
            self.buf.extend_from_slice(head);
            input = rest;
            let used = step(&self.buf).min(self.buf.len());
            if used == 0 {
                if self.buf.len() >= self.limit {
                    self.buf.clear();
                    return Err(Overflow);
                }
                return Ok(());
            }
            self.buf.drain(..used);
        }
        loop {
            let used = step(input).min(input.len());
            if used == 0 {
                break;
            }
            input = input.get(used..).unwrap_or_default();
            if input.is_empty() {
                return Ok(());
            }
        }
        if input.len() >= self.limit {
            return Err(Overflow);
        }
        self.buf.extend_from_slice(input);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consumes newline-terminated lines, recording them.
    fn lines(out: &mut Vec<Vec<u8>>) -> impl FnMut(&[u8]) -> usize + '_ {
        |b: &[u8]| match b.iter().position(|&c| c == b'\n') {
            Some(i) => {
                out.push(b[..i].to_vec());
                i + 1
            }
            None => 0,
        }
    }

    #[test]
    fn every_split_gives_the_same_units() {
        let text = b"alpha\nbe\n\ngamma-delta\n";
        for cut in 0..=text.len() {
            let mut got = Vec::new();
            let mut carry = Carry::new(64);
            carry.drive(&text[..cut], lines(&mut got)).unwrap();
            carry.drive(&text[cut..], lines(&mut got)).unwrap();
            assert_eq!(
                got,
                vec![
                    b"alpha".to_vec(),
                    b"be".to_vec(),
                    vec![],
                    b"gamma-delta".to_vec()
                ],
                "cut at {cut}"
            );
            assert!(carry.is_empty());
        }
        let mut got = Vec::new();
        let mut carry = Carry::new(64);
        for b in text.chunks(1) {
            carry.drive(b, lines(&mut got)).unwrap();
        }
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn a_unit_longer_than_the_limit_overflows() {
        let mut got = Vec::new();
        let mut carry = Carry::new(8);
        assert_eq!(carry.drive(b"0123456789", lines(&mut got)), Err(Overflow));
        let mut carry = Carry::new(8);
        carry.drive(b"0123", lines(&mut got)).unwrap();
        assert_eq!(carry.drive(b"45678", lines(&mut got)), Err(Overflow));
        assert!(carry.is_empty());
        carry.drive(b"ok\n", lines(&mut got)).unwrap();
        assert_eq!(got, vec![b"ok".to_vec()]);
    }
}
