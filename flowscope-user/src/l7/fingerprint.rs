//! Fingerprints that are the MD5 of a string (JA3, JA3S, HASSH,
//! HASSH-server, CYU), kept in a record's [`Texts`], and the lowercase hex
//! and decimal the fingerprints are written in (a table and `itoa`, not
//! `core::fmt`: a TLS flow writes hundreds of numbers).

use md5::{Digest, Md5};
use serde::Serialize;

use crate::l7::session::Texts;

/// A fingerprint string and its MD5, borrowed from a record's
/// [`Texts`]; serialises as EVE's `{"hash": …, "string": …}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Md5Text<'a> {
    /// Lowercase hex MD5 of `string`.
    pub hash: &'a str,
    /// The fingerprint string.
    pub string: &'a str,
}

impl<'a> Md5Text<'a> {
    /// Fields `hash` and `string` of `texts`, when both are set.
    pub(crate) fn get(texts: &'a Texts, hash: usize, string: usize) -> Option<Self> {
        Some(Self {
            hash: texts.get(hash)?,
            string: texts.get(string)?,
        })
    }

    /// Sets field `string` of `texts` to what `write` appends, and field
    /// `hash` to that string's MD5 in hex.
    pub(crate) fn set(
        texts: &mut Texts,
        hash: usize,
        string: usize,
        write: impl FnOnce(&mut String),
    ) {
        texts.write(string, write);
        let digest = Md5::digest(texts.get(string).unwrap_or_default());
        texts.write(hash, |buf| push_hex(buf, &digest));
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lowercase hex.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// `v` as four lowercase hex digits.
pub(crate) fn hex_u16(v: u16) -> [u8; 4] {
    let [a, b] = v.to_be_bytes();
    let d = |n: u8| HEX[usize::from(n)];
    [d(a >> 4), d(a & 0xf), d(b >> 4), d(b & 0xf)]
}

/// Appends `v` in decimal.
pub(crate) fn push_dec(out: &mut String, v: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_core_fmt_writes_them() {
        for v in (0..=u16::MAX).step_by(7).chain([u16::MAX]) {
            let mut d = String::new();
            push_dec(&mut d, v);
            assert_eq!(hex_u16(v), format!("{v:04x}").as_bytes());
            assert_eq!(d, v.to_string());
        }
        let bytes: Vec<u8> = (0..=255).collect();
        let want: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut hex = String::new();
        push_hex(&mut hex, &bytes);
        assert_eq!(hex, want);
    }
}
