//! The session driver: parser choice by port and content, replay of the
//! probed bytes, gaps, ends and the per-flow budget.

use flowscope::Timestamp;
use flowscope::session::{
    DatagramDriver, DatagramParser, DatagramParserFactory, DriverConfig, FlowPorts, ParseStatus,
    Probe, RecordSink, SessionDriver, SessionParser, SessionParserFactory, SessionState, Side,
    StopReason, StreamSession,
};

/// Everything a parser was told, as its records.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Data(&'static str, Side, Vec<u8>),
    Gap(&'static str, Side, u64),
    End(&'static str, Side),
}

struct Echo {
    name: &'static str,
    /// Return Done once this many bytes were fed.
    done_after: Option<usize>,
    fed: usize,
}

impl SessionParser<Ev> for Echo {
    fn on_data(
        &mut self,
        side: Side,
        data: &[u8],
        _: Timestamp,
        sink: &mut dyn RecordSink<Ev>,
    ) -> ParseStatus {
        sink.emit(Ev::Data(self.name, side, data.to_vec()));
        self.fed += data.len();
        match self.done_after {
            Some(n) if self.fed >= n => ParseStatus::Done,
            _ => ParseStatus::Continue,
        }
    }
    fn on_gap(
        &mut self,
        side: Side,
        len: u64,
        _: Timestamp,
        sink: &mut dyn RecordSink<Ev>,
    ) -> ParseStatus {
        sink.emit(Ev::Gap(self.name, side, len));
        ParseStatus::Continue
    }
    fn on_end(&mut self, side: Side, _: Timestamp, sink: &mut dyn RecordSink<Ev>) {
        sink.emit(Ev::End(self.name, side));
    }
}

/// Recognises bytes that start with `magic` (Unsure on a prefix of it).
struct Magic {
    name: &'static str,
    magic: &'static [u8],
    port: u16,
    done_after: Option<usize>,
}

impl Magic {
    fn verdict(&self, data: &[u8]) -> Probe {
        let n = data.len().min(self.magic.len());
        if data[..n] != self.magic[..n] {
            Probe::NotForUs
        } else if n == self.magic.len() {
            Probe::Certain
        } else {
            Probe::Unsure
        }
    }
}

impl SessionParserFactory<Ev> for Magic {
    fn name(&self) -> &'static str {
        self.name
    }
    fn is_well_known_port(&self, port: u16) -> bool {
        port == self.port
    }
    fn probe(&self, _: Side, data: &[u8]) -> Probe {
        self.verdict(data)
    }
    fn new_parser(&mut self) -> Box<dyn SessionParser<Ev>> {
        Box::new(Echo {
            name: self.name,
            done_after: self.done_after,
            fed: 0,
        })
    }
}

fn driver(config: DriverConfig) -> SessionDriver<Ev> {
    let mut d = SessionDriver::new(config);
    d.register(Box::new(Magic {
        name: "http",
        magic: b"GET ",
        port: 80,
        done_after: None,
    }))
    .unwrap();
    d.register(Box::new(Magic {
        name: "tls",
        magic: &[0x16, 0x03],
        port: 443,
        done_after: Some(10),
    }))
    .unwrap();
    d
}

const T: Timestamp = Timestamp(0);

fn ports(client: u16, server: u16) -> FlowPorts {
    FlowPorts {
        initiator: client,
        responder: server,
    }
}

#[test]
fn http_on_8080_found_by_content_with_split_first_bytes() {
    let mut d = driver(DriverConfig::default());
    let mut s = StreamSession::new();
    let mut out = Vec::new();
    let p = ports(40000, 8080);
    d.on_data(&mut s, p, Side::Initiator, b"GE", T, &mut out);
    assert_eq!(d.state(&s), SessionState::Probing);
    assert!(out.is_empty());
    d.on_data(&mut s, p, Side::Initiator, b"T / HTTP/1.1\r\n", T, &mut out);
    assert_eq!(d.state(&s), SessionState::Parsing("http"));
    d.on_data(&mut s, p, Side::Responder, b"HTTP/1.1 200", T, &mut out);
    d.on_gap(&mut s, p, Side::Responder, 5, T, &mut out);
    d.finish(&mut s, p, T, &mut out);
    let mut initiator = Vec::new();
    for ev in &out {
        if let Ev::Data("http", Side::Initiator, b) = ev {
            initiator.extend_from_slice(b);
        }
    }
    // The probed bytes are replayed: the parser sees the whole request.
    assert_eq!(initiator, b"GET / HTTP/1.1\r\n");
    assert!(out.contains(&Ev::Data("http", Side::Responder, b"HTTP/1.1 200".to_vec())));
    assert!(out.contains(&Ev::Gap("http", Side::Responder, 5)));
    assert_eq!(out.iter().filter(|e| matches!(e, Ev::End(..))).count(), 2);
    assert_eq!(
        d.state(&s),
        SessionState::Stopped(StopReason::Ended, Some("http"))
    );
    assert_eq!(d.counters().flows_detected, vec![1, 0]);
    assert_eq!(d.counters().bytes_parsed, vec![28, 0]);
}

#[test]
fn tls_on_8443_found_and_done_stops_feeding() {
    let mut d = driver(DriverConfig::default());
    let mut s = StreamSession::new();
    let mut out = Vec::new();
    let p = ports(50000, 8443);
    d.on_data(
        &mut s,
        p,
        Side::Initiator,
        &[0x16, 0x03, 0x01, 0, 5, 1, 2, 3, 4, 5, 6, 7],
        T,
        &mut out,
    );
    assert_eq!(
        d.state(&s),
        SessionState::Stopped(StopReason::Done, Some("tls"))
    );
    d.on_data(&mut s, p, Side::Responder, b"more", T, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(d.counters().flows_detected, vec![0, 1]);
}

#[test]
fn unknown_protocol_is_given_up_and_counted() {
    let mut d = driver(DriverConfig::default());
    let mut s = StreamSession::new();
    let mut out = Vec::new();
    d.on_data(
        &mut s,
        ports(1, 2),
        Side::Initiator,
        b"SSH-2.0-OpenSSH",
        T,
        &mut out,
    );
    // The other side may still speak a known protocol.
    assert_eq!(d.state(&s), SessionState::Probing);
    d.on_data(
        &mut s,
        ports(1, 2),
        Side::Responder,
        b"SSH-2.0-OpenSSH",
        T,
        &mut out,
    );
    assert_eq!(
        d.state(&s),
        SessionState::Stopped(StopReason::NoParser, None)
    );
    assert_eq!(d.counters().flows_undetected, 1);
    assert!(out.is_empty());
}

#[test]
fn unsure_falls_back_to_the_port_at_the_end_of_the_stream() {
    let mut d = driver(DriverConfig::default());
    let p = ports(40000, 80);
    // "GE" then FIN: Unsure, but port 80 is HTTP's.
    let mut s = StreamSession::new();
    let mut out = Vec::new();
    d.on_data(&mut s, p, Side::Initiator, b"GE", T, &mut out);
    d.on_end(&mut s, p, Side::Initiator, T, &mut out);
    assert_eq!(
        out,
        vec![
            Ev::Data("http", Side::Initiator, b"GE".to_vec()),
            Ev::End("http", Side::Initiator)
        ]
    );
    // The same on a port no parser claims: nothing chosen.
    let mut s = StreamSession::new();
    let mut out = Vec::new();
    d.on_data(
        &mut s,
        ports(40000, 81),
        Side::Initiator,
        b"GE",
        T,
        &mut out,
    );
    d.finish(&mut s, ports(40000, 81), T, &mut out);
    assert!(out.is_empty());
    assert_eq!(
        d.state(&s),
        SessionState::Stopped(StopReason::NoParser, None)
    );
}

#[test]
fn a_reply_while_probing_decides_at_once_and_loses_nothing() {
    let mut d = driver(DriverConfig::default());
    let mut s = StreamSession::new();
    let mut out = Vec::new();
    let p = ports(40000, 80);
    d.on_data(&mut s, p, Side::Initiator, b"G", T, &mut out);
    d.on_data(&mut s, p, Side::Responder, b"abc", T, &mut out);
    d.on_data(&mut s, p, Side::Initiator, b"ET /", T, &mut out);
    // "G" alone leaves HTTP unsure; the server's reply makes the driver
    // decide by port at once (a request without its response would lose
    // the exchange), so the probed byte is replayed and both sides parsed.
    assert_eq!(
        out,
        vec![
            Ev::Data("http", Side::Initiator, b"G".to_vec()),
            Ev::Data("http", Side::Responder, b"abc".to_vec()),
            Ev::Data("http", Side::Initiator, b"ET /".to_vec()),
        ]
    );
    assert_eq!(d.counters().bytes_missed_while_probing, 0);
}

#[test]
fn budget_stops_parsing_at_the_exact_byte() {
    let mut d = driver(DriverConfig { budget_bytes: 10 });
    let mut s = StreamSession::new();
    let mut out = Vec::new();
    let p = ports(40000, 80);
    d.on_data(&mut s, p, Side::Initiator, b"GET /abcdefgh", T, &mut out);
    d.on_data(&mut s, p, Side::Responder, b"ignored", T, &mut out);
    assert_eq!(
        out,
        vec![
            Ev::Data("http", Side::Initiator, b"GET /abcde".to_vec()),
            Ev::End("http", Side::Initiator),
            Ev::End("http", Side::Responder),
        ]
    );
    assert_eq!(
        d.state(&s),
        SessionState::Stopped(StopReason::BudgetExhausted, Some("http"))
    );
    assert_eq!(d.counters().budget_exhausted, vec![1, 0]);
    assert_eq!(s.fed_bytes(), 10);
}

struct Dns;

impl DatagramParser<Ev> for Dns {
    fn on_datagram(
        &mut self,
        side: Side,
        payload: &[u8],
        _: Timestamp,
        sink: &mut dyn RecordSink<Ev>,
    ) -> ParseStatus {
        sink.emit(Ev::Data("dns", side, payload.to_vec()));
        ParseStatus::Continue
    }
}

struct DnsFactory;

impl DatagramParserFactory<Ev> for DnsFactory {
    fn name(&self) -> &'static str {
        "dns"
    }
    fn is_well_known_port(&self, port: u16) -> bool {
        port == 53
    }
    fn probe(&self, _: Side, payload: &[u8]) -> Probe {
        if payload.len() >= 12 {
            Probe::Unsure
        } else {
            Probe::NotForUs
        }
    }
    fn new_parser(&mut self) -> Box<dyn DatagramParser<Ev>> {
        Box::new(Dns)
    }
}

#[test]
fn datagram_driver_uses_the_port_for_unsure_and_gives_up_after_probes() {
    let mut d = DatagramDriver::new(DriverConfig::default());
    d.register(Box::new(DnsFactory)).unwrap();
    let mut out = Vec::new();
    let mut s = flowscope::session::DatagramSession::new();
    d.on_datagram(
        &mut s,
        ports(5353, 53),
        Side::Initiator,
        &[0; 12],
        T,
        &mut out,
    );
    assert_eq!(d.state(&s), SessionState::Parsing("dns"));
    assert_eq!(out, vec![Ev::Data("dns", Side::Initiator, vec![0; 12])]);
    // Off port: Unsure four times, then given up; nothing parsed.
    let mut s = flowscope::session::DatagramSession::new();
    for _ in 0..4 {
        d.on_datagram(
            &mut s,
            ports(1000, 2000),
            Side::Initiator,
            &[0; 12],
            T,
            &mut out,
        );
    }
    assert_eq!(
        d.state(&s),
        SessionState::Stopped(StopReason::NoParser, None)
    );
    assert_eq!(out.len(), 1);
    assert_eq!(d.counters().flows_undetected, 1);
}
