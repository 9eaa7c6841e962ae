//! Fingerprints that are the MD5 of a string (JA3, JA3S, HASSH,
//! HASSH-server), and the lowercase hex the fingerprints are written in.

use std::fmt::Write;

use md5::{Digest, Md5};
use serde::Serialize;

/// A fingerprint string and its MD5, as Suricata's EVE writes them
/// (`{"hash": …, "string": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Md5Fingerprint {
    /// Lowercase hex MD5 of `string`.
    pub hash: String,
    /// The fingerprint string.
    pub string: String,
}

impl Md5Fingerprint {
    /// The fingerprint of `string`.
    pub(crate) fn of(string: String) -> Self {
        Self {
            hash: hex(&Md5::digest(string.as_bytes())),
            string,
        }
    }
}

/// `bytes` as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
