//! The first bytes of a flow, kept inline while the driver probes them.

/// Capacity of the probe window: enough for every probe we ship (an HTTP
/// method and a space, a TLS record and handshake header, a DNS length
/// prefix and header) with room to spare.
pub const PROBE_WINDOW_BYTES: usize = 64;

/// The first [`PROBE_WINDOW_BYTES`] bytes one side sent, inline (no heap).
#[derive(Debug, Clone)]
pub(crate) struct ProbeWindow {
    bytes: [u8; PROBE_WINDOW_BYTES],
    len: usize,
}

impl ProbeWindow {
    pub(crate) const fn new() -> Self {
        Self {
            bytes: [0; PROBE_WINDOW_BYTES],
            len: 0,
        }
    }

    /// Appends as much of `data` as fits; returns how many bytes were taken.
    pub(crate) fn append(&mut self, data: &[u8]) -> usize {
        let free = &mut self.bytes[self.len..];
        let n = free.len().min(data.len());
        free[..n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    /// The bytes collected so far.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// True once no more bytes fit.
    pub(crate) fn is_full(&self) -> bool {
        self.len == PROBE_WINDOW_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_stops_at_capacity() {
        let mut w = ProbeWindow::new();
        assert_eq!(w.append(b"GE"), 2);
        assert_eq!(w.as_slice(), b"GE");
        let big = [7u8; 100];
        assert_eq!(w.append(&big), PROBE_WINDOW_BYTES - 2);
        assert!(w.is_full());
        assert_eq!(w.append(b"x"), 0);
        assert_eq!(&w.as_slice()[..2], b"GE");
        assert_eq!(w.as_slice().len(), PROBE_WINDOW_BYTES);
    }
}
