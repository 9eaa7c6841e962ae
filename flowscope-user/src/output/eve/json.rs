//! The JSON pieces EVE lines are made of, written straight into the line
//! buffer: integers with `itoa`, floats as `serde_json` writes them,
//! addresses and timestamps digit by digit; strings are escaped in one pass,
//! eight bytes at a time, as `serde_json` escapes them. No `core::fmt`
//! anywhere on this path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::view::Timestamp;

/// Appends `n` in decimal.
#[inline]
pub(crate) fn uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `x` as `serde_json` writes it (the shortest round-tripping
/// decimal, `null` when not finite).
pub(crate) fn float(out: &mut Vec<u8>, x: f64) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &x);
}

/// `,"name":` (the name needs no escaping).
#[inline(always)]
pub(crate) fn key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// `,"name":n`.
#[inline(always)]
pub(crate) fn uint_field(out: &mut Vec<u8>, name: &str, n: u64) {
    key(out, name);
    uint(out, n);
}

/// `,"name":"value"` for a value that needs no escaping (labels, digits).
#[inline(always)]
pub(crate) fn label_field(out: &mut Vec<u8>, name: &str, value: &str) {
    key(out, name);
    out.push(b'"');
    out.extend_from_slice(value.as_bytes());
    out.push(b'"');
}

/// `,"name":"value"`, the value escaped (see [`string`]).
#[inline(always)]
pub(crate) fn string_field(out: &mut Vec<u8>, name: &str, value: &str) {
    key(out, name);
    string(out, value);
}

/// Every byte of the word is `b`.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// The high bit of each control byte (below 0x20) of a little-endian word,
/// exact up to the first one (bits above it may be set by the borrow):
/// its lowest set bit is the first control byte's. Bytes of 0x80 and
/// above never match.
#[inline]
pub(crate) fn control_bytes(w: u64) -> u64 {
    w.wrapping_sub(splat(0x20)) & !w & splat(0x80)
}

/// The high bit of each byte of `w` equal to `b`, exact up to the first
/// one (as [`control_bytes`]).
#[inline]
pub(crate) fn bytes_equal(w: u64, b: u8) -> u64 {
    let x = w ^ splat(b);
    x.wrapping_sub(splat(1)) & !x & splat(0x80)
}

/// The bytes JSON must escape: control characters, `"` and `\\` (as
/// [`control_bytes`]).
#[inline]
fn needs_escape(w: u64) -> u64 {
    control_bytes(w) | bytes_equal(w, b'"') | bytes_equal(w, b'\\')
}

/// Appends `value` as a JSON string, escaped exactly as `serde_json`
/// escapes it (`\"`, `\\`, `\b \f \n \r \t`, other control characters as
/// `\u00xx`), scanning eight bytes at a time and copying runs that need
/// nothing.
pub(crate) fn string(out: &mut Vec<u8>, value: &str) {
    out.reserve(value.len() + 2);
    out.push(b'"');
    string_body(out, value);
    out.push(b'"');
}

/// [`string`] without the quotes.
pub(crate) fn string_body(out: &mut Vec<u8>, value: &str) {
    replace_bytes(out, value.as_bytes(), needs_escape, |b| {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            _ if b < 0x20 => return Some(hex_escape(b"\\u00", b)),
            _ => return None,
        };
        Some(Replacement::new(&[b'\\', short]))
    });
}

/// What a byte is written as: at most six bytes.
pub(crate) struct Replacement {
    bytes: [u8; 6],
    len: usize,
}

impl Replacement {
    /// The bytes to write.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn new(text: &[u8]) -> Self {
        let mut bytes = [0; 6];
        bytes[..text.len()].copy_from_slice(text);
        Self {
            bytes,
            len: text.len(),
        }
    }
}

/// `prefix` then byte `b` in two hexadecimal digits (`\u00` for JSON,
/// `\x` for Zeek; a prefix of at most four bytes).
pub(crate) fn hex_escape(prefix: &[u8], b: u8) -> Replacement {
    let mut r = Replacement::new(prefix);
    r.bytes[r.len] = HEX[usize::from(b >> 4)];
    r.bytes[r.len + 1] = HEX[usize::from(b & 0xf)];
    r.len += 2;
    r
}

/// Appends `bytes`, each byte `replace` gives a replacement for written as
/// that, the runs between copied whole. `special` marks, in a word of
/// eight bytes read little-endian, the bytes that may need replacing
/// (exact up to its lowest set bit, as [`control_bytes`]): the scan goes
/// from one marked byte straight to the next, eight bytes at a time, the
/// last few read as one short word. The one scanning loop of EVE strings
/// and Zeek's escaped fields.
#[inline]
pub(crate) fn replace_bytes(
    out: &mut Vec<u8>,
    bytes: &[u8],
    special: impl Fn(u64) -> u64,
    replace: impl Fn(u8) -> Option<Replacement>,
) {
    let (mut run, mut i) = (0, 0);
    while let Some(rest) = bytes.get(i..).filter(|r| !r.is_empty()) {
        let marked = match rest.first_chunk::<8>() {
            Some(word) => special(u64::from_le_bytes(*word)),
            None => {
                // Fewer than eight: the bytes past the end are masked off.
                let mut word = [0; 8];
                word[..rest.len()].copy_from_slice(rest);
                special(u64::from_le_bytes(word)) & ((1 << (8 * rest.len())) - 1)
            }
        };
        if marked == 0 {
            i += 8;
            continue;
        }
        i += marked.trailing_zeros() as usize / 8;
        if let Some(r) = bytes.get(i).and_then(|&b| replace(b)) {
            out.extend_from_slice(&bytes[run..i]);
            out.extend_from_slice(r.as_bytes());
            run = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[run..]);
}

/// Lowercase hexadecimal digits.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes the two decimal digits of `n` (< 100) at `b[at..at + 2]`.
#[inline]
fn two(b: &mut [u8], at: usize, n: u64) {
    b[at] = b'0' + (n / 10 % 10) as u8;
    b[at + 1] = b'0' + (n % 10) as u8;
}

/// Civil date (year, month, day) of a day count since 1970-01-01, by the
/// proleptic Gregorian calendar (era arithmetic over 400-year cycles).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends `ts` as RFC 3339 in UTC with microseconds (truncated):
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, without quotes.
pub fn write_rfc3339_micros(out: &mut Vec<u8>, ts: Timestamp) {
    let secs = ts.sec();
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let micros = u64::from(ts.subsec_nanos() / 1000);
    // Filled in a fixed line and appended at once.
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    for (at, n) in [
        (5, u64::from(mo)),
        (8, u64::from(d)),
        (11, rem / 3600),
        (14, rem / 60 % 60),
        (17, rem % 60),
        (20, micros / 10_000),
        (22, micros / 100 % 100),
        (24, micros % 100),
    ] {
        two(&mut b, at, n);
    }
    // Nanoseconds since 1970 in a u64 reach the year 2554: four digits.
    let year = y.unsigned_abs();
    two(&mut b, 0, year / 100);
    two(&mut b, 2, year % 100);
    out.extend_from_slice(&b);
}

/// Appends `ts` as Suricata writes EVE times: [`write_rfc3339_micros`]
/// with the offset `+0000` for `Z` (`YYYY-MM-DDTHH:MM:SS.ffffff+0000`, the
/// form Suricata's schema requires), without quotes.
pub(crate) fn eve_time(out: &mut Vec<u8>, ts: Timestamp) {
    write_rfc3339_micros(out, ts);
    out.pop();
    out.extend_from_slice(b"+0000");
}

/// `,"name":"<EVE time>"`.
pub(crate) fn time_field(out: &mut Vec<u8>, name: &str, ts: Timestamp) {
    key(out, name);
    out.push(b'"');
    eve_time(out, ts);
    out.push(b'"');
}

/// Appends an address as its `Display` form (RFC 5952 for IPv6), without
/// quotes.
pub(crate) fn ip(out: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => ipv4(out, a),
        IpAddr::V6(a) => ipv6(out, a),
    }
}

/// Dotted decimal, filled in a fixed line (at most 15 bytes) and appended
/// at once: a formatter and a capacity check per octet were a tenth of an
/// EVE header.
fn ipv4(out: &mut Vec<u8>, a: Ipv4Addr) {
    let mut b = [0u8; 15];
    let mut n = 0;
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            b[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            b[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            b[n] = b'0' + o / 10 % 10;
            n += 1;
        }
        b[n] = b'0' + o % 10;
        n += 1;
    }
    out.extend_from_slice(&b[..n]);
}

fn hex_group(out: &mut Vec<u8>, g: u16) {
    let mut started = false;
    for shift in [12, 8, 4, 0] {
        let nibble = (g >> shift) & 0xf;
        if nibble != 0 || started || shift == 0 {
            out.push(HEX[usize::from(nibble)]);
            started = true;
        }
    }
}

fn groups(out: &mut Vec<u8>, segments: &[u16]) {
    for (i, &g) in segments.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        hex_group(out, g);
    }
}

/// The standard library's form: IPv4-mapped addresses as `::ffff:a.b.c.d`;
/// otherwise the first longest run of two or more zero groups as `::`.
fn ipv6(out: &mut Vec<u8>, a: Ipv6Addr) {
    if let Some(v4) = a.to_ipv4_mapped() {
        out.extend_from_slice(b"::ffff:");
        return ipv4(out, v4);
    }
    let s = a.segments();
    let (mut best, mut best_len, mut cur, mut cur_len) = (0, 0, 0, 0);
    for (i, &g) in s.iter().enumerate() {
        if g == 0 {
            if cur_len == 0 {
                cur = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                (best, best_len) = (cur, cur_len);
            }
        } else {
            cur_len = 0;
        }
    }
    if best_len > 1 {
        groups(out, &s[..best]);
        out.extend_from_slice(b"::");
        groups(out, &s[best + best_len..]);
    } else {
        groups(out, &s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn known_instants() {
        let fmt = |ts| text(|o| write_rfc3339_micros(o, ts));
        assert_eq!(fmt(Timestamp(0)), "1970-01-01T00:00:00.000000Z");
        // Values checked with `date -u -d @SECONDS`; 2000 is a leap year.
        assert_eq!(
            fmt(Timestamp::new(951_782_400, 0)),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(
            fmt(Timestamp::new(951_868_800, 0)),
            "2000-03-01T00:00:00.000000Z"
        );
        // 2017-07-06T13:15:35 = 1499346935.
        assert_eq!(
            fmt(Timestamp::new(1_499_346_935, 123_456_789)),
            "2017-07-06T13:15:35.123456Z"
        );
        assert_eq!(
            fmt(Timestamp::new(4_102_444_799, 999_999_999)),
            "2099-12-31T23:59:59.999999Z"
        );
        // The last instant a Timestamp holds (`date -u -d @18446744073`).
        assert_eq!(fmt(Timestamp(u64::MAX)), "2554-07-21T23:34:33.709551Z");
    }

    /// Whatever the clock says, the same text as `format!` with padding.
    #[test]
    fn timestamps_match_padded_formatting() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ts = Timestamp(x);
            let secs = ts.sec();
            let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
            let rem = secs % 86_400;
            let want = format!(
                "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
                rem / 3600,
                rem / 60 % 60,
                rem % 60,
                ts.subsec_nanos() / 1000
            );
            assert_eq!(text(|o| write_rfc3339_micros(o, ts)), want);
        }
    }

    #[test]
    fn every_ascii_byte_at_every_place_of_a_word_escapes_as_serde_json() {
        for b in 0..=0x7fu8 {
            for at in 0..17 {
                let mut v = vec![b'a'; 17];
                v[at] = b;
                v.extend_from_slice("é€𝄞".as_bytes());
                let s = String::from_utf8(v).unwrap();
                assert_eq!(text(|o| string(o, &s)), serde_json::to_string(&s).unwrap());
            }
        }
    }

    #[test]
    fn every_octet_in_every_place_matches_display() {
        for o in 0..=255u8 {
            for at in 0..4 {
                let mut octets = [1, 20, 255, 0];
                octets[at] = o;
                let a = Ipv4Addr::from(octets);
                assert_eq!(text(|out| ip(out, IpAddr::V4(a))), a.to_string());
            }
        }
    }

    proptest! {
        #[test]
        fn addresses_match_display(words in proptest::array::uniform8(
            prop_oneof![Just(0u16), Just(0xffff), Just(1), any::<u16>()]), v4 in any::<u32>()) {
            let a = Ipv6Addr::from(words);
            prop_assert_eq!(text(|o| ip(o, IpAddr::V6(a))), a.to_string());
            let m = Ipv4Addr::from(v4).to_ipv6_mapped();
            prop_assert_eq!(text(|o| ip(o, IpAddr::V6(m))), m.to_string());
            let b = Ipv4Addr::from(v4);
            prop_assert_eq!(text(|o| ip(o, IpAddr::V4(b))), b.to_string());
        }

        #[test]
        fn strings_match_serde_json(
            s in "[ -~]{0,40}|(\\PC|[\u{0}-\u{1f}\"\\\\\u{7f}]){0,40}|.{0,70}",
        ) {
            prop_assert_eq!(text(|o| string(o, &s)), serde_json::to_string(&s).unwrap());
        }

        #[test]
        fn numbers_match_serde_json(n in any::<u64>(), x in any::<f64>()) {
            prop_assert_eq!(text(|o| uint(o, n)), n.to_string());
            prop_assert_eq!(text(|o| float(o, x)), serde_json::to_string(&x).unwrap());
        }
    }
}
