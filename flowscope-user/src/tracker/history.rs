//! Zeek-style connection history, kept as a fixed array of letters.
//!
//! Implemented letters (Zeek's meaning; upper case when the initiator sent
//! the packet, lower case for the responder):
//!
//! | letter | packet |
//! |---|---|
//! | `S` | SYN without ACK |
//! | `H` | SYN with ACK |
//! | `A` | pure ACK: ACK set, no SYN/FIN/RST, no payload |
//! | `D` | payload, no SYN/FIN/RST (TCP); any packet (UDP) |
//! | `F` | FIN (alone among SYN/FIN/RST) |
//! | `R` | RST (alone among SYN/FIN/RST) |
//! | `I` | FIN and RST together |
//! | `Q` | SYN with FIN or RST |
//! | `^` | the initiator was flipped: the first packet seen was a SYN-ACK |
//!
//! As in Zeek, each letter is recorded once per side, except that `S`/`H`,
//! `F` and `R` are recorded again when the packet's sequence number differs
//! from the side's previous one of that kind (for `F`, sequence plus payload
//! length), so a retransmission adds nothing and a new attempt does. `S` and
//! `H` share one "seen" bit per side, as in Zeek. Not implemented: `C` (bad
//! checksum), `G` (content gap), `T` (retransmission), `W` (zero window) and
//! `X` — they need checksum and reassembly state. Zeek keeps the whole string;
//! we keep the first [`History::CAPACITY`] letters and drop the rest.

/// One history letter kind (before choosing its case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryLetter {
    /// `S`: SYN without ACK.
    Syn,
    /// `H`: SYN-ACK.
    SynAck,
    /// `A`: pure ACK.
    Ack,
    /// `D`: payload.
    Data,
    /// `F`: FIN.
    Fin,
    /// `R`: RST.
    Rst,
    /// `I`: FIN and RST together.
    FinRst,
    /// `Q`: SYN with FIN or RST.
    MultiFlag,
}

impl HistoryLetter {
    const fn upper(self) -> u8 {
        match self {
            Self::Syn => b'S',
            Self::SynAck => b'H',
            Self::Ack => b'A',
            Self::Data => b'D',
            Self::Fin => b'F',
            Self::Rst => b'R',
            Self::FinRst => b'I',
            Self::MultiFlag => b'Q',
        }
    }

    /// The per-side "seen" bit; SYN and SYN-ACK share one, as in Zeek.
    const fn bit(self) -> u8 {
        match self {
            Self::Syn | Self::SynAck => 1,
            Self::Ack => 2,
            Self::Data => 4,
            Self::Fin => 8,
            Self::Rst => 16,
            Self::FinRst => 32,
            Self::MultiFlag => 64,
        }
    }
}

/// The history of one flow: letters in the order they happened.
///
/// `repr(C)` with the per-side "seen" bits first: most packets read only
/// those (see [`FlowRecord`](super::FlowRecord)'s layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct History {
    seen: [u8; 2],
    len: u8,
    letters: [u8; History::CAPACITY],
}

impl History {
    /// Letters kept; later ones are dropped.
    pub const CAPACITY: usize = 16;

    /// Records `letter` for `side` (0 initiator, 1 responder) unless that side
    /// already has it. Returns true if it was new.
    #[inline]
    pub fn record_once(&mut self, side: usize, letter: HistoryLetter) -> bool {
        let seen = &mut self.seen[side & 1];
        if *seen & letter.bit() != 0 {
            return false;
        }
        *seen |= letter.bit();
        self.push(side, letter);
        true
    }

    /// Appends `letter` for `side` even if it was seen before.
    pub fn push(&mut self, side: usize, letter: HistoryLetter) {
        let c = if side == 0 {
            letter.upper()
        } else {
            letter.upper().to_ascii_lowercase()
        };
        self.push_byte(c);
    }

    /// Appends `^`: the initiator was chosen against the first packet's direction.
    pub fn push_flip(&mut self) {
        self.push_byte(b'^');
    }

    fn push_byte(&mut self, c: u8) {
        if let Some(slot) = self.letters.get_mut(usize::from(self.len)) {
            *slot = c;
            self.len += 1;
        }
    }

    /// The letters as a string (`""` when nothing was recorded).
    pub fn as_str(&self) -> &str {
        let bytes = self
            .letters
            .get(..usize::from(self.len))
            .unwrap_or_default();
        // Only ASCII letters and '^' are ever stored.
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_side_and_case() {
        let mut h = History::default();
        assert!(h.record_once(0, HistoryLetter::Syn));
        assert!(h.record_once(1, HistoryLetter::SynAck));
        assert!(h.record_once(0, HistoryLetter::Ack));
        assert!(!h.record_once(0, HistoryLetter::Ack));
        assert!(h.record_once(0, HistoryLetter::Data));
        assert!(h.record_once(1, HistoryLetter::Data));
        // SYN and SYN-ACK share the seen bit.
        assert!(!h.record_once(1, HistoryLetter::Syn));
        assert_eq!(h.as_str(), "ShADd");
    }

    #[test]
    fn keeps_first_letters_only() {
        let mut h = History::default();
        h.push_flip();
        for _ in 0..40 {
            h.push(1, HistoryLetter::Rst);
        }
        assert_eq!(h.as_str().len(), History::CAPACITY);
        assert!(h.as_str().starts_with("^rr"));
    }
}
