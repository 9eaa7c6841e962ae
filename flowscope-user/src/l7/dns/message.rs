//! One DNS message (RFC 1035 §4) to one record, read with `simple-dns`.
//!
//! Rdata is written for A, AAAA (address), CNAME, NS, PTR (name), MX
//! (`preference exchange`) and TXT (character strings concatenated); other
//! types keep their type (name or `TYPE<n>`) and TTL and omit `rdata`.

use std::net::{Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{Packet, PacketFlag, RCODE};

use super::{DNS_EVE_VERSION, DnsAnswer, DnsKind, DnsRecord};

/// Smallest wire size of a question (root name, type, class).
const MIN_QUESTION_BYTES: usize = 5;
/// Smallest wire size of a resource record (root name, type, class, TTL, rdlength).
const MIN_RR_BYTES: usize = 11;
const HEADER_BYTES: usize = 12;

/// The message is not valid DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed;

/// Type name as Suricata prints it, `TYPE<n>` for the rest.
fn type_name(t: u16) -> String {
    let name = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        255 => "ANY",
        _ => return format!("TYPE{t}"),
    };
    name.to_owned()
}

fn rcode_name(r: RCODE) -> String {
    match r {
        RCODE::NoError => "NOERROR",
        RCODE::FormatError => "FORMERR",
        RCODE::ServerFailure => "SERVFAIL",
        RCODE::NameError => "NXDOMAIN",
        RCODE::NotImplemented => "NOTIMP",
        RCODE::Refused => "REFUSED",
        RCODE::YXDOMAIN => "YXDOMAIN",
        RCODE::YXRRSET => "YXRRSET",
        RCODE::NXRRSET => "NXRRSET",
        RCODE::NOTAUTH => "NOTAUTH",
        RCODE::NOTZONE => "NOTZONE",
        RCODE::BADVERS => "BADVERS",
        _ => "RESERVED",
    }
    .to_owned()
}

fn rdata_text(rdata: RData<'_>) -> Option<String> {
    match rdata {
        RData::A(a) => Some(Ipv4Addr::from(a.address).to_string()),
        RData::AAAA(a) => Some(Ipv6Addr::from(a.address).to_string()),
        RData::CNAME(n) => Some(n.0.to_string()),
        RData::NS(n) => Some(n.0.to_string()),
        RData::PTR(n) => Some(n.0.to_string()),
        RData::MX(mx) => Some(format!("{} {}", mx.preference, mx.exchange)),
        RData::TXT(txt) => String::try_from(txt).ok(),
        _ => None,
    }
}

/// Counts in the header cannot fit in the message: reject before
/// `simple-dns` reserves room for them.
fn counts_fit(msg: &[u8]) -> bool {
    let count = |at: usize| {
        msg.get(at..at + 2)
            .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let need = count(4) * MIN_QUESTION_BYTES + (count(6) + count(8) + count(10)) * MIN_RR_BYTES;
    msg.len() >= HEADER_BYTES && need <= msg.len() - HEADER_BYTES
}

/// Parses one DNS message into its record.
pub(super) fn parse(msg: &[u8]) -> Result<DnsRecord, Malformed> {
    if !counts_fit(msg) {
        return Err(Malformed);
    }
    let packet = Packet::parse(msg).map_err(|_| Malformed)?;
    let response = packet.has_flags(PacketFlag::RESPONSE);
    let question = packet.questions.first();
    let flags = msg
        .get(2..)
        .and_then(|b| b.first_chunk::<2>())
        .map_or(0, |b| u16::from_be_bytes(*b));
    let answer_flag = |bit: u16| response && flags & bit != 0;
    let mut record = DnsRecord {
        version: DNS_EVE_VERSION,
        kind: if response {
            DnsKind::Answer
        } else {
            DnsKind::Query
        },
        id: packet.id(),
        flags: response.then(|| format!("{flags:x}")),
        qr: answer_flag(0x8000),
        aa: answer_flag(0x0400),
        tc: answer_flag(0x0200),
        rd: answer_flag(0x0100),
        ra: answer_flag(0x0080),
        z: flags & 0x0040 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        rrname: question.map(|q| q.qname.to_string()),
        rrtype: question.map(|q| type_name(q.qtype.into())),
        rcode: response.then(|| rcode_name(packet.rcode())),
        header_flags: u16::from_be_bytes([msg[2], msg[3]]),
        qclass_qtype: question.map(|q| (q.qclass.into(), q.qtype.into())),
        answers: Vec::new(),
    };
    record.answers = packet
        .answers
        .into_iter()
        .map(|rr| DnsAnswer {
            rrname: rr.name.to_string(),
            rrtype: type_name(rr.rdata.type_code().into()),
            ttl: rr.ttl,
            rdata: rdata_text(rr.rdata),
        })
        .collect();
    Ok(record)
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

    #[test]
    fn query_and_answer_records() {
        let q = parse(&query(0x1234, "www.example.com", 28)).unwrap();
        assert_eq!(q.kind, DnsKind::Query);
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.rrname.as_deref(), Some("www.example.com"));
        assert_eq!(q.rrtype.as_deref(), Some("AAAA"));
        assert_eq!(q.rcode, None);
        let a = parse(&response(7)).unwrap();
        assert_eq!(a.kind, DnsKind::Answer);
        assert_eq!(a.rcode.as_deref(), Some("NOERROR"));
        let got: Vec<(&str, &str, u32, Option<&str>)> = a
            .answers
            .iter()
            .map(|x| {
                (
                    x.rrname.as_str(),
                    x.rrtype.as_str(),
                    x.ttl,
                    x.rdata.as_deref(),
                )
            })
            .collect();
        let n = "www.example.com";
        assert_eq!(
            got,
            vec![
                (n, "CNAME", 300, Some("edge.example.net")),
                (n, "A", 60, Some("93.184.216.34")),
                (n, "AAAA", 60, Some("2606:2800::1")),
                (n, "MX", 3600, Some("10 mail.example.com")),
                (n, "TXT", 5, Some("hello world")),
                (n, "PTR", 7, Some("host.example.org")),
                (n, "NS", 86400, Some("ns1.example.com")),
                (n, "TYPE99", 1, None),
            ]
        );
    }

    #[test]
    fn malformed_messages_are_errors() {
        let q = query(1, "a.example", 1);
        for cut in 0..q.len() {
            assert_eq!(parse(&q[..cut]), Err(Malformed), "cut {cut}");
        }
        let mut huge = q.clone();
        huge[6..12].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(parse(&huge), Err(Malformed));
        let mut nx = response(2);
        nx[3] = 0x83;
        assert_eq!(parse(&nx).unwrap().rcode.as_deref(), Some("NXDOMAIN"));
    }
}
