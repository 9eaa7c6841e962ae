//! [`Texts`]: the text fields of one record, back to back in one buffer.
//!
//! A record built on a [spare buffer](crate::session::RecordSink::spare_text)
//! costs no allocation once the buffers circulate: the writer stage hands
//! each record's buffer back to its worker after writing it.

use std::fmt;

/// Where one field lies in the buffer; `start == ABSENT` when unset.
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

const ABSENT: u32 = u32::MAX;

/// `N` optional text fields in one `String`. Setting a field again appends
/// its new value (the old bytes stay until [`into_buffer`](Self::into_buffer)).
#[derive(Clone)]
pub struct Texts<const N: usize> {
    buf: String,
    spans: [Span; N],
}

/// What a new buffer reserves: a typical record's fields fit without
/// growing it.
const FIRST_CAPACITY: usize = 256;

impl<const N: usize> Default for Texts<N> {
    fn default() -> Self {
        Self {
            buf: String::new(),
            spans: [Span {
                start: ABSENT,
                end: 0,
            }; N],
        }
    }
}

impl<const N: usize> Texts<N> {
    /// No field set, writing into `buf` (cleared; its capacity is kept, or
    /// reserved at once if it has none).
    pub fn on(mut buf: String) -> Self {
        buf.clear();
        if buf.capacity() == 0 {
            buf.reserve(FIRST_CAPACITY);
        }
        Self {
            buf,
            ..Self::default()
        }
    }

    /// Field `i`, if set.
    pub fn get(&self, i: usize) -> Option<&str> {
        let s = self.spans.get(i)?;
        if s.start == ABSENT {
            return None;
        }
        self.buf.get(s.start as usize..s.end as usize)
    }

    /// Sets field `i` to `value`.
    pub fn set(&mut self, i: usize, value: &str) {
        self.set_with(i, |buf| buf.push_str(value));
    }

    /// Sets field `i` to `value` read as UTF-8, each invalid sequence
    /// replaced by U+FFFD (as [`String::from_utf8_lossy`]).
    pub fn set_lossy(&mut self, i: usize, value: &[u8]) {
        self.set_with(i, |buf| {
            if let Ok(text) = std::str::from_utf8(value) {
                buf.push_str(text);
                return;
            }
            for chunk in value.utf8_chunks() {
                buf.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    buf.push(char::REPLACEMENT_CHARACTER);
                }
            }
        });
    }

    /// Unsets field `i`.
    pub fn unset(&mut self, i: usize) {
        if let Some(s) = self.spans.get_mut(i) {
            s.start = ABSENT;
        }
    }

    /// The buffer, for another record.
    pub fn into_buffer(self) -> String {
        self.buf
    }

    fn set_with(&mut self, i: usize, write: impl FnOnce(&mut String)) {
        // Fields are small (bounded by the parser's own limits), so a
        // buffer never reaches 4 GiB; one that would keeps the field unset.
        let start = self.buf.len();
        write(&mut self.buf);
        let span = match (u32::try_from(start), u32::try_from(self.buf.len())) {
            (Ok(start), Ok(end)) if start != ABSENT => Span { start, end },
            _ => {
                self.buf.truncate(start);
                Span {
                    start: ABSENT,
                    end: 0,
                }
            }
        };
        if let Some(s) = self.spans.get_mut(i) {
            *s = span;
        }
    }

    fn fields(&self) -> impl Iterator<Item = Option<&str>> {
        (0..N).map(|i| self.get(i))
    }
}

/// Equal when every field is, whatever the buffer's layout.
impl<const N: usize> PartialEq for Texts<N> {
    fn eq(&self, other: &Self) -> bool {
        self.fields().eq(other.fields())
    }
}

impl<const N: usize> Eq for Texts<N> {}

impl<const N: usize> fmt::Debug for Texts<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.fields()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_independent_and_equal_by_value() {
        let mut a = Texts::<3>::default();
        a.set(2, "two");
        a.set_lossy(0, b"z\xffe");
        a.set(1, "");
        assert_eq!(a.get(0), Some("z\u{fffd}e"));
        assert_eq!(a.get(1), Some(""));
        assert_eq!(a.get(2), Some("two"));
        assert_eq!(a.get(3), None);
        a.set(2, "deux");
        a.unset(1);
        let mut b = Texts::<3>::on(String::from("left over"));
        b.set_lossy(0, b"z\xffe");
        b.set(2, "deux");
        assert_eq!(a, b);
        assert_eq!(
            format!("{b:?}"),
            "[Some(\"z\u{fffd}e\"), None, Some(\"deux\")]"
        );
        b.unset(0);
        assert_ne!(a, b);
    }

    #[test]
    fn a_reused_buffer_keeps_its_capacity() {
        let mut a = Texts::<2>::on(String::with_capacity(64));
        let ptr = a.buf.as_ptr();
        a.set(0, "GET");
        a.set(1, "/index.html");
        let again = Texts::<2>::on(a.into_buffer());
        assert_eq!(again.get(0), None);
        assert_eq!(again.buf.as_ptr(), ptr);
        assert!(again.buf.capacity() >= 64);
    }
}
