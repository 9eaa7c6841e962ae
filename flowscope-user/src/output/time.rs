//! RFC 3339 timestamps in UTC with microseconds, without a date crate.

use std::io::Write;

use crate::view::Timestamp;

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

/// Writes `ts` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds truncated).
pub fn write_rfc3339_micros(out: &mut Vec<u8>, ts: Timestamp) {
    let secs = ts.sec();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, mo, d) = civil_from_days(days);
    let micros = ts.subsec_nanos() / 1000;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(ts: Timestamp) -> String {
        let mut v = Vec::new();
        write_rfc3339_micros(&mut v, ts);
        String::from_utf8(v).unwrap_or_default()
    }

    #[test]
    fn known_instants() {
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
    }
}
