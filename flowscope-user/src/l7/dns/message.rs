//! One DNS message (RFC 1035 §4.1) to one record, walked in place: names
//! (compression pointers followed, RFC 1035 §4.1.4) and rdata are written
//! straight into the record's [`Texts`], so a message allocates nothing once
//! records' storage circulates.
//!
//! Rdata is written for A, AAAA (address), CNAME, NS, PTR (name), MX
//! (`preference exchange`) and TXT (character strings concatenated, when
//! they are UTF-8); other types, and records with empty rdata, keep their
//! type and TTL and omit `rdata`. Names are written as presentation text:
//! labels joined by dots, each label's bytes read as UTF-8 (invalid
//! sequences as U+FFFD) with `.` and `\` escaped by a backslash.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{DnsKind, DnsRecord, QUESTION};
use crate::l7::session::{Texts, push_lossy};

/// Smallest wire size of a question (root name, type, class).
const MIN_QUESTION_BYTES: usize = 5;
/// Smallest wire size of a resource record (root name, type, class, TTL, rdlength).
const MIN_RR_BYTES: usize = 11;
const HEADER_BYTES: usize = 12;
/// Longest name on the wire, its final root label aside (RFC 1035 §2.3.4).
const MAX_NAME_BYTES: usize = 254;
/// Compression pointers followed in one name before it is malformed (a
/// name of at most 127 labels needs fewer; more is a loop).
const MAX_POINTERS: usize = 128;

/// The message is not valid DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed;

/// What a well-formed message holds, for probing a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shape {
    /// It has a question.
    pub question: bool,
    /// It has answers.
    pub answers: bool,
}

fn u16_at(msg: &[u8], at: usize) -> Result<u16, Malformed> {
    match msg.get(at..).and_then(|b| b.first_chunk::<2>()) {
        Some(b) => Ok(u16::from_be_bytes(*b)),
        None => Err(Malformed),
    }
}

fn u32_at(msg: &[u8], at: usize) -> Result<u32, Malformed> {
    match msg.get(at..).and_then(|b| b.first_chunk::<4>()) {
        Some(b) => Ok(u32::from_be_bytes(*b)),
        None => Err(Malformed),
    }
}

/// Appends one label's presentation text.
fn push_label(out: &mut String, label: &[u8]) {
    let mut rest = label;
    while let Some(at) = rest.iter().position(|&b| b == b'.' || b == b'\\') {
        push_lossy(out, &rest[..at]);
        out.push('\\');
        out.push(char::from(rest[at]));
        rest = &rest[at + 1..];
    }
    push_lossy(out, rest);
}

/// Walks the name at `at`, writing its text into `out` when given; where
/// the message goes on after it.
fn name(msg: &[u8], at: usize, mut out: Option<&mut String>) -> Result<usize, Malformed> {
    let (mut pos, mut end, mut bytes, mut pointers) = (at, None, 0, 0);
    loop {
        let len = *msg.get(pos).ok_or(Malformed)?;
        match len {
            0 => return Ok(end.unwrap_or(pos + 1)),
            0xc0.. => {
                let target = usize::from(u16_at(msg, pos)? & 0x3fff);
                end.get_or_insert(pos + 2);
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err(Malformed);
                }
                pos = target;
            }
            // Label types 01 and 10 (RFC 1035 §4.1.4, RFC 6891 §5).
            0x40.. => return Err(Malformed),
            // A label of at most 63 bytes (RFC 1035 §2.3.4).
            _ => {
                let len = usize::from(len);
                bytes += 1 + len;
                if bytes > MAX_NAME_BYTES {
                    return Err(Malformed);
                }
                let label = msg.get(pos + 1..pos + 1 + len).ok_or(Malformed)?;
                if let Some(out) = out.as_deref_mut() {
                    if bytes > 1 + len {
                        out.push('.');
                    }
                    push_label(out, label);
                }
                pos += 1 + len;
            }
        }
    }
}

/// Walks the rdata of type `rtype` at `at..at + len`, writing its text
/// into `out` when given; whether it is written as text.
fn rdata(
    msg: &[u8],
    at: usize,
    rtype: u16,
    len: usize,
    out: Option<&mut String>,
) -> Result<bool, Malformed> {
    let data = msg.get(at..at + len).ok_or(Malformed)?;
    match (rtype, data) {
        (_, []) => Ok(false),
        (1, &[a, b, c, d]) => {
            if let Some(out) = out {
                let _ = write!(out, "{}", Ipv4Addr::new(a, b, c, d));
            }
            Ok(true)
        }
        (28, _) if len == 16 => {
            if let (Some(out), Ok(a)) = (out, <[u8; 16]>::try_from(data)) {
                let _ = write!(out, "{}", Ipv6Addr::from(a));
            }
            Ok(true)
        }
        (1 | 28, _) => Err(Malformed),
        (2 | 5 | 12, _) => name(msg, at, out).map(|_| true),
        (15, _) => {
            let preference = u16_at(data, 0)?;
            match out {
                Some(out) => {
                    let _ = write!(out, "{preference} ");
                    name(msg, at + 2, Some(out))?;
                }
                None => {
                    name(msg, at + 2, None)?;
                }
            }
            Ok(true)
        }
        (16, _) => {
            // Character strings, each led by its length: text when all
            // are UTF-8.
            let mut utf8 = true;
            let mut rest = data;
            while let [n, tail @ ..] = rest {
                let (s, after) = tail.split_at_checked(usize::from(*n)).ok_or(Malformed)?;
                utf8 &= std::str::from_utf8(s).is_ok();
                rest = after;
            }
            if let (true, Some(out)) = (utf8, out) {
                let mut rest = data;
                while let [n, tail @ ..] = rest {
                    let (s, after) = tail.split_at(usize::from(*n));
                    push_lossy(out, s);
                    rest = after;
                }
            }
            Ok(utf8)
        }
        _ => Ok(false),
    }
}

/// Walks one message, writing its record into `record` when given.
fn walk(msg: &[u8], mut record: Option<&mut DnsRecord>) -> Result<Shape, Malformed> {
    let count = |at: usize| u16_at(msg, at).map_or(0, usize::from);
    let (questions, answers) = (count(4), count(6));
    let records = answers + count(8) + count(10);
    if msg.len() < HEADER_BYTES
        || questions * MIN_QUESTION_BYTES + records * MIN_RR_BYTES > msg.len() - HEADER_BYTES
    {
        return Err(Malformed);
    }
    let flags = u16_at(msg, 2)?;
    if let Some(r) = record.as_deref_mut() {
        r.id = u16_at(msg, 0)?;
        r.header_flags = flags;
        r.kind = if flags & 0x8000 != 0 {
            DnsKind::Answer
        } else {
            DnsKind::Query
        };
    }
    let mut at = HEADER_BYTES;
    for i in 0..questions {
        at = match record.as_deref_mut().filter(|_| i == 0) {
            Some(r) => {
                let mut end = at;
                r.texts.set_with(QUESTION, |out| {
                    end = name(msg, at, Some(out))?;
                    Ok(())
                })?;
                // The mDNS unicast-response bit is not part of the class.
                let (qtype, qclass) = (u16_at(msg, end)?, u16_at(msg, end + 2)?);
                r.qclass_qtype = Some((qclass & 0x7fff, qtype));
                end
            }
            None => name(msg, at, None)?,
        } + 4;
        if at > msg.len() {
            return Err(Malformed);
        }
    }
    for i in 0..records {
        let mut text = record.as_deref_mut().filter(|_| i < answers);
        at = match text.as_deref_mut() {
            Some(r) => {
                let mut end = at;
                r.texts.push_with(|out| {
                    end = name(msg, at, Some(out))?;
                    Ok(())
                })?;
                end
            }
            None => name(msg, at, None)?,
        };
        let (rtype, ttl) = (u16_at(msg, at)?, u32_at(msg, at + 4)?);
        let len = usize::from(u16_at(msg, at + 8)?);
        at += 10;
        match text {
            Some(r) => {
                let t = &mut r.texts;
                let slot = t.len();
                t.push_unset();
                // Rdata without text leaves its field unset.
                let mut result = Ok(());
                let _ = t.set_with(slot, |out| match rdata(msg, at, rtype, len, Some(out)) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(()),
                    Err(e) => {
                        result = Err(e);
                        Err(())
                    }
                });
                result?;
                t.push_numbers(u32::from(rtype), ttl);
            }
            None if i < answers => {
                rdata(msg, at, rtype, len, None)?;
            }
            None => {}
        }
        at += len;
        if at > msg.len() {
            return Err(Malformed);
        }
    }
    Ok(Shape {
        question: questions > 0,
        answers: answers > 0,
    })
}

/// Parses one DNS message into a record written into `texts`.
pub(super) fn parse(msg: &[u8], texts: Texts) -> Result<DnsRecord, Malformed> {
    let mut record = DnsRecord::on(texts);
    walk(msg, Some(&mut record))?;
    Ok(record)
}

/// Checks one DNS message without writing a record.
pub(super) fn shape(msg: &[u8]) -> Result<Shape, Malformed> {
    walk(msg, None)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Encodes `name` as DNS labels.
    pub(crate) fn labels(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for l in name.split('.').filter(|l| !l.is_empty()) {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
        }
        out.push(0);
        out
    }

    /// A query for `name`/`qtype` with id `id`.
    pub(crate) fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend(labels(name));
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    /// A response to `query(id, "www.example.com", 1)` with rcode 0 and
    /// CNAME, A, AAAA, MX, TXT, PTR, NS and an SOA-typed answer.
    pub(crate) fn response(id: u16) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 8, 0, 0, 0, 0]);
        m.extend(labels("www.example.com"));
        m.extend_from_slice(&[0, 1, 0, 1]);
        let mut rr = |ty: u16, ttl: u32, rdata: &[u8]| {
            m.extend_from_slice(&[0xc0, 12]); // pointer to the question name
            m.extend_from_slice(&ty.to_be_bytes());
            m.extend_from_slice(&[0, 1]);
            m.extend_from_slice(&ttl.to_be_bytes());
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(rdata);
        };
        rr(5, 300, &labels("edge.example.net"));
        rr(1, 60, &[93, 184, 216, 34]);
        rr(
            28,
            60,
            &[0x26, 0x06, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        );
        let mut mx = vec![0, 10];
        mx.extend(labels("mail.example.com"));
        rr(15, 3600, &mx);
        rr(16, 5, b"\x05hello\x06 world");
        rr(12, 7, &labels("host.example.org"));
        rr(2, 86400, &labels("ns1.example.com"));
        rr(99, 1, b"\x01\x02");
        m
    }

    fn parse_new(msg: &[u8]) -> Result<DnsRecord, Malformed> {
        parse(msg, Texts::default())
    }

    fn answers(r: &DnsRecord) -> Vec<(String, String, u32, Option<String>)> {
        r.answers()
            .map(|x| {
                (
                    x.rrname.to_owned(),
                    x.rrtype.to_string(),
                    x.ttl,
                    x.rdata.map(str::to_owned),
                )
            })
            .collect()
    }

    #[test]
    fn query_and_answer_records() {
        let q = parse_new(&query(0x1234, "www.example.com", 28)).unwrap();
        assert_eq!(q.kind, DnsKind::Query);
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.rrname(), Some("www.example.com"));
        assert_eq!(q.rrtype().map(|t| t.to_string()).as_deref(), Some("AAAA"));
        assert_eq!(q.qclass_qtype, Some((1, 28)));
        assert_eq!(q.rcode(), None);
        assert_eq!(q.answers().len(), 0);
        let a = parse_new(&response(7)).unwrap();
        assert_eq!(a.kind, DnsKind::Answer);
        assert_eq!(a.rcode(), Some("NOERROR"));
        let n = "www.example.com";
        let want: Vec<(&str, &str, u32, Option<&str>)> = vec![
            (n, "CNAME", 300, Some("edge.example.net")),
            (n, "A", 60, Some("93.184.216.34")),
            (n, "AAAA", 60, Some("2606:2800::1")),
            (n, "MX", 3600, Some("10 mail.example.com")),
            (n, "TXT", 5, Some("hello world")),
            (n, "PTR", 7, Some("host.example.org")),
            (n, "NS", 86400, Some("ns1.example.com")),
            (n, "TYPE99", 1, None),
        ];
        let want: Vec<_> = want
            .into_iter()
            .map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c, d.map(str::to_owned)))
            .collect();
        assert_eq!(answers(&a), want);
        assert_eq!(
            shape(&response(7)),
            Ok(Shape {
                question: true,
                answers: true
            })
        );
    }

    #[test]
    fn a_reused_record_holds_only_the_new_message() {
        let a = parse_new(&response(7)).unwrap();
        let q = parse(&query(9, "b.example", 1), a.into_buffer()).unwrap();
        assert_eq!(q, parse_new(&query(9, "b.example", 1)).unwrap());
        assert_eq!((q.rrname(), q.answers().len()), (Some("b.example"), 0));
    }

    #[test]
    fn names_are_presentation_text() {
        // Labels with a dot, a backslash and a byte that is not UTF-8; the
        // answer's name points into the question's (a suffix).
        let mut m = query(3, "", 1);
        m.truncate(12);
        m[7] = 1; // one answer
        m.extend_from_slice(b"\x03a.b\x03c\\d\x02\xffz\x07example\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0xc0, 20, 0, 5, 0, 1, 0, 0, 0, 9, 0, 2, 0xc0, 12]);
        let r = parse_new(&m).unwrap();
        assert_eq!(r.rrname(), Some("a\\.b.c\\\\d.\u{fffd}z.example"));
        assert_eq!(
            answers(&r),
            vec![(
                "\u{fffd}z.example".to_owned(),
                "CNAME".to_owned(),
                9,
                Some("a\\.b.c\\\\d.\u{fffd}z.example".to_owned())
            )]
        );
        // The root name is the empty text.
        assert_eq!(parse_new(&query(4, "", 1)).unwrap().rrname(), Some(""));
    }

    #[test]
    fn what_suricata_accepts_parses() {
        // The Z bit, an unknown class and type, and empty or odd rdata of
        // a type written as text all parse (Suricata logs them).
        let mut m = response(5);
        m[3] |= 0x40;
        let q_end = 12 + labels("www.example.com").len();
        m[q_end..q_end + 4].copy_from_slice(&[0x12, 0x34, 0x80, 0x09]);
        let r = parse_new(&m).unwrap();
        assert_eq!(r.qclass_qtype, Some((9, 0x1234)));
        assert_eq!(r.rrtype().unwrap().to_string(), "TYPE4660");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            (&json["z"], &json["rrtype"]),
            (&true.into(), &"TYPE4660".into())
        );
        let mut txt = query(6, "t.example", 16);
        txt[3] = 0x80;
        txt[2] = 0x80;
        txt[7] = 2;
        txt.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 1, 0, 3, 2, 0xc3, 0x28]);
        txt.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0]);
        let r = parse_new(&txt).unwrap();
        assert_eq!(
            answers(&r)
                .iter()
                .map(|a| (a.1.as_str(), a.3.as_deref()))
                .collect::<Vec<_>>(),
            vec![("TXT", None), ("A", None)]
        );
    }

    #[test]
    fn malformed_messages_are_errors() {
        let q = query(1, "a.example", 1);
        for cut in 0..q.len() {
            assert_eq!(parse_new(&q[..cut]), Err(Malformed), "cut {cut}");
            assert_eq!(shape(&q[..cut]), Err(Malformed), "cut {cut}");
        }
        let mut huge = q.clone();
        huge[6..12].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(parse_new(&huge), Err(Malformed));
        // A pointer to itself, a label over 63 bytes, a name over 255
        // bytes, a reserved label type, rdata past the end, an A record of
        // three bytes.
        let mut looped = q.clone();
        looped.truncate(12);
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let mut long_label = q.clone();
        long_label.truncate(12);
        long_label.push(64);
        long_label.extend_from_slice(&[b'a'; 64]);
        long_label.extend_from_slice(&[0, 0, 1, 0, 1]);
        let long_name = query(1, &["abcdefghijklmnopqrstuvwxyz"; 10].join("."), 1);
        let mut reserved = q.clone();
        reserved[12] = 0x41;
        let mut past = response(2);
        past.truncate(past.len() - 1);
        let mut short_a = query(2, "a.example", 1);
        short_a[2] = 0x81;
        short_a[7] = 1;
        short_a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 3, 1, 2, 3]);
        for (what, m) in [
            ("loop", looped),
            ("label", long_label),
            ("name", long_name),
            ("reserved", reserved),
            ("past", past),
            ("short A", short_a),
        ] {
            assert_eq!(parse_new(&m), Err(Malformed), "{what}");
            assert_eq!(shape(&m), Err(Malformed), "{what}");
        }
        let mut nx = response(2);
        nx[3] = 0x83;
        assert_eq!(parse_new(&nx).unwrap().rcode(), Some("NXDOMAIN"));
    }
}
