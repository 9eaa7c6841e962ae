//! DNS over UDP and TCP: correlation, bounds, framing in every split, gaps.

use super::message::tests::{query, response};
use super::*;
use crate::l7::L7Record;

const C: Side = Side::Initiator;
const S: Side = Side::Responder;

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut f = (msg.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    f
}

#[test]
fn datagrams_correlate_by_id_with_a_bounded_table() {
    let mut p = DnsParser::new(DnsConfig { max_pending: 2 });
    let mut out = Vec::new();
    for id in [1, 2, 3] {
        p.datagram(&query(id, "www.example.com", 1), &mut out);
    }
    p.datagram(&response(3), &mut out);
    p.datagram(&response(1), &mut out);
    p.datagram(b"\x00\x01garbage", &mut out);
    p.end();
    let c = *p.counters();
    assert_eq!((c.queries, c.answers, c.matched), (3, 2, 1));
    assert_eq!(
        (c.pending_evicted, c.unmatched_answers, c.unanswered),
        (1, 1, 1)
    );
    assert_eq!(c.malformed, 1);
    assert_eq!(out.len(), 5);
    let json = serde_json::to_value(L7Record::Dns(out[3].clone())).unwrap();
    assert_eq!(json["dns"]["type"], "answer");
    assert_eq!(json["dns"]["id"], 3);
    assert_eq!(json["dns"]["rrname"], "www.example.com");
    assert_eq!(json["dns"]["rrtype"], "A");
    assert_eq!(json["dns"]["rcode"], "NOERROR");
    assert_eq!(
        json["dns"]["answers"][1],
        serde_json::json!({"rrname": "www.example.com", "rrtype": "A", "ttl": 60, "rdata": "93.184.216.34"})
    );
    let q = serde_json::to_value(L7Record::Dns(out[0].clone())).unwrap();
    assert_eq!(
        q,
        serde_json::json!({"dns": {"version": 2, "type": "query", "id": 1, "opcode": 0,
            "rrname": "www.example.com", "rrtype": "A"}})
    );
    // Suricata's v2 answer header: flags 0x8180 in hex, QR, RD and RA set.
    let a = &json["dns"];
    assert_eq!(
        (&a["version"], &a["flags"], &a["opcode"]),
        (
            &serde_json::json!(2),
            &serde_json::json!("8180"),
            &serde_json::json!(0)
        )
    );
    assert_eq!(
        (&a["qr"], &a["rd"], &a["ra"]),
        (&true.into(), &true.into(), &true.into())
    );
    assert!(a.get("aa").is_none() && a.get("tc").is_none() && a.get("z").is_none());
}

fn run_tcp(steps: &[(Side, &[u8])]) -> Vec<DnsRecord> {
    let mut p = DnsParser::default();
    let mut out = Vec::new();
    for (side, bytes) in steps {
        p.feed(*side, bytes, &mut out);
    }
    out
}

#[test]
fn tcp_framing_at_every_split() {
    let mut client = framed(&query(9, "www.example.com", 1));
    client.extend(framed(&query(10, "www.example.com", 28)));
    let server = framed(&response(9));
    let steps: [(Side, &[u8]); 2] = [(C, &client), (S, &server)];
    let whole = crate::l7::splits::assert_split_invariant(&steps, run_tcp);
    assert_eq!(whole.len(), 3);
    assert_eq!(whole[2].answers().len(), 8);
}

#[test]
fn tcp_gap_inside_a_message_skips_it() {
    let first = framed(&query(1, "a.example.com", 1));
    let second = framed(&query(2, "b.example.com", 1));
    let mut p = DnsParser::default();
    let mut out = Vec::new();
    p.feed(C, &first[..5], &mut out);
    p.gap(C, 6);
    p.feed(C, &first[11..], &mut out);
    p.feed(C, &second, &mut out);
    assert_eq!(p.counters().messages_lost, 1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id, 2);
    // A gap at a frame boundary loses the framing.
    p.gap(C, 3);
    assert_eq!(p.counters().gaps_lost, 1);
    p.feed(C, &second, &mut out);
    assert_eq!(out.len(), 1);
}

/// An mDNS announcement: a response with no question and one PTR answer.
fn announcement() -> Vec<u8> {
    use super::message::tests::labels;
    let mut m = vec![0, 0, 0x84, 0x00, 0, 0, 0, 1, 0, 0, 0, 0];
    m.extend(labels("_ssh._tcp.local"));
    m.extend_from_slice(&[0, 12, 0, 1, 0, 0, 0x11, 0x94]);
    let target = labels("host._ssh._tcp.local");
    m.extend_from_slice(&(target.len() as u16).to_be_bytes());
    m.extend(target);
    m
}

#[test]
fn mdns_and_llmnr_win_on_their_ports_and_dns_keeps_the_rest() {
    use crate::l7::session::{
        DatagramDriver, DatagramSession, DriverConfig, FlowPorts, SessionState,
    };
    let mut d: DatagramDriver<L7Record> = DatagramDriver::new(DriverConfig::default());
    d.register(Box::new(DnsFactory::default())).unwrap();
    d.register(Box::new(MDNS)).unwrap();
    d.register(Box::new(LLMNR)).unwrap();
    let q = query(7, "printer.local", 1);
    let cases: [(u16, u16, &[u8], &str); 6] = [
        (40000, 53, &q, "dns"),
        (40000, 5300, &q, "dns"),
        (5353, 5353, &q, "mdns"),
        (5353, 5353, &announcement(), "mdns"),
        (40000, 5355, &q, "llmnr"),
        (5353, 53, &q, "dns"),
    ];
    for (initiator, responder, payload, want) in cases {
        let ports = FlowPorts {
            initiator,
            responder,
        };
        let mut s = DatagramSession::new();
        let mut out = Vec::new();
        d.on_datagram(&mut s, ports, C, payload, crate::Timestamp(1), &mut out);
        let got = match d.state(&s) {
            SessionState::Parsing(p) | SessionState::Stopped(_, Some(p)) => p,
            other => panic!("{ports:?}: {other:?}"),
        };
        assert_eq!(got, want, "{ports:?}");
        // Only DNS proper is parsed into records.
        assert_eq!(out.len(), usize::from(want == "dns"), "{ports:?}");
    }
    // An announcement is no DNS question: on a port nobody claims, no parser.
    let mut s = DatagramSession::new();
    let ports = FlowPorts {
        initiator: 40000,
        responder: 5300,
    };
    d.on_datagram(
        &mut s,
        ports,
        C,
        &announcement(),
        crate::Timestamp(1),
        &mut Vec::new(),
    );
    assert_eq!(d.state(&s), SessionState::Probing);
}

#[test]
fn a_reset_parser_is_a_new_one() {
    let mut p = DnsParser::new(DnsConfig { max_pending: 2 });
    let mut out = Vec::new();
    p.datagram(&query(1, "www.example.com", 1), &mut out);
    p.feed(C, &framed(&query(2, "www.example.com", 1))[..5], &mut out);
    p.gap(S, 1000);
    p.reset();
    assert_eq!(*p.counters(), DnsCounters::default());
    assert!(!p.is_stopped());
    // The query sent before the reset is not pending any more, and the
    // half message is gone.
    p.datagram(&response(1), &mut out);
    p.feed(C, &framed(&query(3, "www.example.com", 1)), &mut out);
    let c = *p.counters();
    assert_eq!((c.answers, c.unmatched_answers, c.queries), (1, 1, 1));
    assert_eq!(out.last().map(|r| r.id), Some(3));
}
