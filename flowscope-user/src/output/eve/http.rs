//! The EVE `http` object, written field by field (HTTP records are the
//! most frequent L7 lines): the fields [`HttpRecord`]'s `Serialize` writes
//! too, escaped by [`json::string`] (a test checks the two agree).

use super::json;
use crate::l7::HttpRecord;
use crate::l7::http::EveValue;

/// Appends `{"hostname":…,…,"length":n}` ([`HttpRecord::eve_fields`]).
pub(super) fn object(out: &mut Vec<u8>, r: &HttpRecord) {
    // Every field is written with a leading comma: the first one's becomes
    // the opening brace.
    let start = out.len();
    for (name, value) in r.eve_fields() {
        match value {
            Some(EveValue::Text(t)) => json::string_field(out, name, t),
            Some(EveValue::Count(n)) => json::uint_field(out, name, n),
            None => {}
        }
    }
    out[start] = b'{';
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l7::HttpField;

    #[test]
    fn the_object_is_what_serde_writes() {
        use HttpField::*;
        let fields = [
            Hostname,
            Url,
            Method,
            Protocol,
            UserAgent,
            Refer,
            Xff,
            ContentType,
            StatusMsg,
            ResponseProtocol,
            Redirect,
        ];
        let values = [
            "h.example:8080",
            "/a?b=\"c\"\\d\u{1}\té",
            "GET",
            "",
            "[2001:db8::1]:81",
        ];
        // Each field unset or set to each value, with and without the
        // numbers, the fields shifted against the values at every step;
        // byte for byte (field order and escaping).
        for n in 0..=(fields.len() * values.len()) {
            let mut r = HttpRecord::default();
            for (i, f) in fields.iter().enumerate() {
                if (i + n) % (values.len() + 1) != 0 {
                    r.set(*f, values[(i + n) % values.len()]);
                }
            }
            r.http_port = (n % 2 == 0).then_some(8080);
            r.status = (n % 3 != 0).then_some(404);
            r.length = n as u64 * 1_000_003;
            let mut out = Vec::new();
            object(&mut out, &r);
            assert_eq!(out, serde_json::to_vec(&r).unwrap(), "record {n}");
        }
    }
}
