//! [`Texts`]: the text fields of one record, back to back in one buffer.
//!
//! A record built on a [spare one](super::RecordSink::spare_text) costs no
//! allocation once they circulate: the writer stage hands each record's
//! `Texts` back to its worker after writing it.

use std::convert::Infallible;
use std::fmt;

/// One field: where its text lies in the buffer, or two numbers.
#[derive(Clone, Copy)]
enum Slot {
    Unset,
    Text { start: u32, end: u32 },
    Numbers(u32, u32),
}

/// What a new buffer reserves: a typical record's fields fit without
/// growing it.
const FIRST_CAPACITY: usize = 256;

/// The fields of one record: a fixed number addressed by index (a record's
/// named fields), then any number appended (a list, such as DNS answers).
/// Text goes into one `String`; setting a field again appends its new value
/// (the old bytes stay until [`reset`](Self::reset)).
#[derive(Default)]
pub struct Texts {
    buf: String,
    slots: Vec<Slot>,
}

/// `clone_from` reuses the target's memory.
impl Clone for Texts {
    fn clone(&self) -> Self {
        Self {
            buf: self.buf.clone(),
            slots: self.slots.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.buf.clone_from(&source.buf);
        self.slots.clone_from(&source.slots);
    }
}

impl Texts {
    /// Empties it into `fields` unset fields, keeping its memory (reserved
    /// at once if it has none).
    pub fn reset(&mut self, fields: usize) {
        self.buf.clear();
        self.slots.clear();
        if self.buf.capacity() == 0 {
            self.buf.reserve(FIRST_CAPACITY);
        }
        self.slots.resize(fields, Slot::Unset);
    }

    /// Prefetches its fields and the start of its text, which live apart
    /// from it.
    #[inline(always)]
    pub fn prefetch(&self) {
        crate::tracker::prefetch(self.slots.as_ptr(), size_of_val(self.slots.as_slice()));
        crate::tracker::prefetch(self.buf.as_ptr(), FIRST_CAPACITY.min(self.buf.len()));
    }

    /// Bytes of memory it holds, text and fields.
    pub fn footprint(&self) -> usize {
        self.buf.capacity() + self.slots.capacity() * size_of::<Slot>()
    }

    /// How many fields it has.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when it has no field.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Field `i`, if it is set to text.
    pub fn get(&self, i: usize) -> Option<&str> {
        match self.slots.get(i)? {
            Slot::Text { start, end } => self.buf.get(*start as usize..*end as usize),
            Slot::Unset | Slot::Numbers(..) => None,
        }
    }

    /// Field `i`, if it holds numbers ([`push_numbers`](Self::push_numbers)).
    pub fn numbers(&self, i: usize) -> Option<(u32, u32)> {
        match self.slots.get(i)? {
            Slot::Numbers(a, b) => Some((*a, *b)),
            Slot::Unset | Slot::Text { .. } => None,
        }
    }

    /// Sets field `i` to `value`.
    pub fn set(&mut self, i: usize, value: &str) {
        self.write(i, |buf| buf.push_str(value));
    }

    /// Sets field `i` to `value` read as UTF-8, each invalid sequence
    /// replaced by U+FFFD (as [`String::from_utf8_lossy`]).
    pub fn set_lossy(&mut self, i: usize, value: &[u8]) {
        self.write(i, |buf| push_lossy(buf, value));
    }

    /// Sets field `i` to the text `write` appends to the buffer.
    pub fn write(&mut self, i: usize, write: impl FnOnce(&mut String)) {
        let _ = self.set_with(i, |buf| {
            write(buf);
            Ok::<_, Infallible>(())
        });
    }

    /// Sets field `i` to the text `write` appends to the buffer; when
    /// `write` fails, the field keeps its value.
    ///
    /// # Errors
    ///
    /// `write`'s error.
    pub fn set_with<E>(
        &mut self,
        i: usize,
        write: impl FnOnce(&mut String) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.buf.len();
        write(&mut self.buf).inspect_err(|_| self.buf.truncate(start))?;
        // Fields are small (bounded by the parsers' own limits), so a
        // buffer never reaches 4 GiB; text that would is dropped and its
        // field unset.
        let slot = match (u32::try_from(start), u32::try_from(self.buf.len())) {
            (Ok(start), Ok(end)) => Slot::Text { start, end },
            _ => {
                self.buf.truncate(start);
                Slot::Unset
            }
        };
        if let Some(s) = self.slots.get_mut(i) {
            *s = slot;
        }
        Ok(())
    }

    /// Unsets field `i`.
    pub fn unset(&mut self, i: usize) {
        if let Some(s) = self.slots.get_mut(i) {
            *s = Slot::Unset;
        }
    }

    /// Appends a field set to the text `write` appends to the buffer; when
    /// `write` fails, nothing is appended.
    ///
    /// # Errors
    ///
    /// `write`'s error.
    pub fn push_with<E>(
        &mut self,
        write: impl FnOnce(&mut String) -> Result<(), E>,
    ) -> Result<(), E> {
        self.slots.push(Slot::Unset);
        let result = self.set_with(self.slots.len() - 1, write);
        if result.is_err() {
            self.slots.pop();
        }
        result
    }

    /// Appends a field per item, the text `write` appends for it, and
    /// sets field `i` to where they lie: a list, read back with
    /// [`list`](Self::list). Setting it again appends a new list.
    pub fn set_list<T>(
        &mut self,
        i: usize,
        items: impl IntoIterator<Item = T>,
        mut write: impl FnMut(&mut String, T),
    ) {
        let start = self.slots.len();
        for item in items {
            self.slots.push(Slot::Unset);
            self.write(self.slots.len() - 1, |buf| write(buf, item));
        }
        let count = self.slots.len() - start;
        self.set_span(i, start, count);
    }

    /// The items of the list in field `i` ([`set_list`](Self::set_list)),
    /// in order; none if it holds none.
    pub fn list(&self, i: usize) -> impl ExactSizeIterator<Item = &str> + '_ {
        let (start, count) = self.numbers(i).unwrap_or((0, 0));
        (start..start + count).map(|at| self.get(at as usize).unwrap_or_default())
    }

    /// Appends an unset field.
    pub fn push_unset(&mut self) {
        self.slots.push(Slot::Unset);
    }

    /// Appends a field holding two numbers instead of text.
    pub fn push_numbers(&mut self, a: u32, b: u32) {
        self.slots.push(Slot::Numbers(a, b));
    }

    /// Sets field `i` to where a run of appended fields lies, its first
    /// index and count, read back by [`numbers`](Self::numbers). Fields
    /// are few (bounded by the parsers' own limits), far below 2³²: a run
    /// that would not fit leaves the field as it was.
    pub fn set_span(&mut self, i: usize, start: usize, count: usize) {
        if let (Ok(start), Ok(count), Some(s)) = (
            u32::try_from(start),
            u32::try_from(count),
            self.slots.get_mut(i),
        ) {
            *s = Slot::Numbers(start, count);
        }
    }

    fn fields(&self) -> impl Iterator<Item = Field<'_>> {
        (0..self.len()).map(|i| match self.numbers(i) {
            Some((a, b)) => Field::Numbers(a, b),
            None => Field::Text(self.get(i)),
        })
    }
}

/// Appends `value` read as UTF-8, each invalid sequence replaced by U+FFFD.
pub(crate) fn push_lossy(buf: &mut String, value: &[u8]) {
    // Header values are ASCII almost always: one word-wide check.
    if value.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        buf.push_str(unsafe { std::str::from_utf8_unchecked(value) });
        return;
    }
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
}

/// A field by value, to compare and show.
#[derive(Debug, PartialEq, Eq)]
enum Field<'a> {
    Text(Option<&'a str>),
    Numbers(u32, u32),
}

/// Equal when every field is, whatever the buffer's layout.
impl PartialEq for Texts {
    fn eq(&self, other: &Self) -> bool {
        self.fields().eq(other.fields())
    }
}

impl Eq for Texts {}

impl fmt::Debug for Texts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.fields()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_independent_and_equal_by_value() {
        let mut a = Texts::default();
        a.reset(3);
        a.set(2, "two");
        a.set_lossy(0, b"z\xffe");
        a.set(1, "");
        assert_eq!(a.get(0), Some("z\u{fffd}e"));
        assert_eq!(a.get(1), Some(""));
        assert_eq!(a.get(2), Some("two"));
        assert_eq!(a.get(3), None);
        a.set(2, "deux");
        a.unset(1);
        let mut b = Texts {
            buf: String::from("left over"),
            slots: Vec::new(),
        };
        b.reset(3);
        b.set_lossy(0, b"z\xffe");
        b.set(2, "deux");
        assert_eq!(a, b);
        assert_eq!(
            format!("{b:?}"),
            "[Text(Some(\"z\u{fffd}e\")), Text(None), Text(Some(\"deux\"))]"
        );
        b.unset(0);
        assert_ne!(a, b);
    }

    #[test]
    fn lossy_text_is_std_lossy_text() {
        let cases: [&[u8]; 8] = [
            b"",
            b"ascii only, longer than one word",
            b"caf\xc3\xa9",
            b"z\xffe",
            b"\xe2\x82",
            b"seventeen bytes!\x80",
            b"\xf0\x9f\x98\x80 then \xc3",
            b"\x7f\x00",
        ];
        for value in cases {
            let mut buf = String::from("x");
            push_lossy(&mut buf, value);
            assert_eq!(
                buf,
                format!("x{}", String::from_utf8_lossy(value)),
                "{value:?}"
            );
        }
    }

    #[test]
    fn lists_are_read_back_and_replaced() {
        let mut t = Texts::default();
        t.reset(3);
        assert_eq!(t.list(1).len(), 0);
        t.set_list(1, [&b"h2"[..], b"\xffx"], push_lossy);
        t.set(0, "after");
        t.set_list(2, ["a", "b", "c"], |buf, s| buf.push_str(s));
        assert_eq!(t.list(1).collect::<Vec<_>>(), ["h2", "\u{fffd}x"]);
        assert_eq!(t.list(2).len(), 3);
        t.set_list(1, ["h3"], |buf, s| buf.push_str(s));
        assert_eq!(t.list(1).collect::<Vec<_>>(), ["h3"]);
        assert_eq!(t.list(2).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(t.get(0), Some("after"));
        // Not a list: none.
        assert_eq!(t.list(0).len(), 0);
    }

    #[test]
    fn appended_fields_follow_the_fixed_ones() {
        let mut t = Texts::default();
        t.reset(1);
        t.push_with(|b| {
            b.push_str("a.example");
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(
            t.push_with(|b| {
                b.push_str("half written");
                Err(())
            }),
            Err(())
        );
        t.push_unset();
        t.push_numbers(28, 300);
        t.set(0, "q");
        assert_eq!(t.len(), 4);
        assert_eq!(
            (t.get(0), t.get(1), t.get(2), t.numbers(3)),
            (Some("q"), Some("a.example"), None, Some((28, 300)))
        );
        assert_eq!((t.get(3), t.numbers(1)), (None, None));
        let mut u = t.clone();
        u.slots.pop();
        u.push_numbers(28, 301);
        assert_ne!(t, u);
    }

    #[test]
    fn spans_are_set_in_place() {
        let mut t = Texts::default();
        t.reset(2);
        t.set(0, "text");
        t.set_span(0, 2, 1);
        t.set_span(1, 16, 0);
        // Past the fields, or a run past 2³²: nothing.
        t.set_span(2, 7, 7);
        t.set_span(0, usize::MAX, 1);
        t.set_span(1, 3, usize::MAX);
        assert_eq!(t.len(), 2);
        assert_eq!((t.numbers(0), t.get(0)), (Some((2, 1)), None));
        assert_eq!(t.numbers(1), Some((16, 0)));
        t.set(1, "again text");
        assert_eq!((t.numbers(1), t.get(1)), (None, Some("again text")));
    }

    #[test]
    fn a_reused_one_keeps_its_memory() {
        let mut a = Texts::default();
        a.reset(2);
        let ptr = a.buf.as_ptr();
        let slots = a.slots.as_ptr();
        a.set(0, "GET");
        a.set(1, "/index.html");
        let before = a.footprint();
        a.reset(2);
        assert_eq!(a.get(0), None);
        assert_eq!((a.buf.as_ptr(), a.slots.as_ptr()), (ptr, slots));
        assert_eq!(a.footprint(), before);
    }
}
