//! Targets `l7_http`, `l7_tls`, `l7_dns`, `l7_quic` and `l7_ssh`: the L7 parsers
//! through their factories and the session traits, fed a flow decoded from
//! the input.
//!
//! Input: a first byte whose low bit picks the flow's server port (the
//! protocol's well-known port, or 40000 so that only the content probe can
//! find the parser), then operations: data of one side (a length byte and
//! the bytes), a gap of one side, or the end of one side's stream.
//!
//! Each target runs the flow twice over: straight into a parser built by
//! the protocol's factory (kept to the trait's contract: nothing after
//! `Done`/`Error`, nothing on a side after its end, `flush_counters` before
//! the drop), and through the [`SessionDriver`] with every stream factory
//! registered, which probes and picks. `l7_dns` also replays each data
//! operation as a UDP datagram, straight and through the [`DatagramDriver`]
//! with every datagram factory registered (DNS, QUIC and the protocols
//! only recognised). `l7_quic` only has datagrams, up to 64 KiB each: after
//! the port byte, each is a side byte (bit 0), a big-endian 2-byte length
//! and the payload. Every record emitted must serialise to JSON.

use flowscope::Timestamp;
use flowscope::l7::dns::{LLMNR, MDNS};
use flowscope::l7::{
    DnsFactory, DnsTcpFactory, HttpFactory, L7Counters, L7Record, QuicFactory, SshFactory,
    TlsFactory,
};
use flowscope::session::{
    DatagramDriver, DatagramParserFactory, DatagramSession, DriverConfig, FlowPorts, ParseStatus,
    RecogniseFactory, SessionDriver, SessionParserFactory, Side, StreamSession,
};

use super::input::Input;

/// Operation: bytes of a side (bit 0: side; a length byte follows).
pub const OP_DATA: u8 = 0;
/// Operation: a gap of a side (bit 0: side; a length byte follows).
pub const OP_GAP: u8 = 2;
/// Operation: the end of a side's stream (bit 0: side).
pub const OP_END: u8 = 4;
/// First byte: the flow uses the protocol's well-known port.
pub const WELL_KNOWN_PORT: u8 = 1;

/// Parser budget of the drivers: small, so running out is exercised.
const BUDGET_BYTES: u64 = 16 * 1024;

/// One decoded operation.
#[derive(Debug, Clone, Copy)]
enum Op<'a> {
    Data(Side, &'a [u8]),
    Gap(Side, u64),
    End(Side),
}

/// The flow of an input: ports and operations.
fn decode(data: &[u8], port: u16) -> (FlowPorts, Vec<Op<'_>>) {
    let mut input = Input::new(data);
    let responder = if input.u8() & WELL_KNOWN_PORT != 0 {
        port
    } else {
        40000
    };
    let mut ops = Vec::new();
    while !input.is_empty() {
        let op = input.u8();
        let side = if op & 1 == 0 {
            Side::Initiator
        } else {
            Side::Responder
        };
        ops.push(match (op % 6) & !1 {
            OP_DATA => {
                let len = usize::from(input.u8());
                Op::Data(side, input.bytes(len))
            }
            OP_GAP => Op::Gap(side, 1 + u64::from(input.u8())),
            _ => Op::End(side),
        });
    }
    let ports = FlowPorts {
        initiator: 51000,
        responder,
    };
    (ports, ops)
}

/// Target `l7_http`.
pub fn http(data: &[u8]) {
    stream(data, 80, &mut HttpFactory::default());
}

/// Target `l7_tls`.
pub fn tls(data: &[u8]) {
    stream(data, 443, &mut TlsFactory::default());
}

/// Target `l7_ssh`.
pub fn ssh(data: &[u8]) {
    stream(data, 22, &mut SshFactory::default());
}

/// Target `l7_dns`: DNS over TCP, and each data operation as a datagram.
pub fn dns(data: &[u8]) {
    stream(data, 53, &mut DnsTcpFactory::default());
    let (ports, ops) = decode(data, 53);
    let payloads: Vec<(Side, &[u8])> = ops
        .iter()
        .filter_map(|op| match *op {
            Op::Data(side, payload) => Some((side, payload)),
            _ => None,
        })
        .collect();
    datagrams(ports, &payloads, &mut DnsFactory::default());
}

/// Target `l7_quic`: datagrams (see the module docs).
pub fn quic(data: &[u8]) {
    let mut input = Input::new(data);
    let responder = if input.u8() & WELL_KNOWN_PORT != 0 {
        443
    } else {
        40000
    };
    let mut payloads = Vec::new();
    while !input.is_empty() {
        let side = if input.u8() & 1 == 0 {
            Side::Initiator
        } else {
            Side::Responder
        };
        let len = usize::from(input.u16());
        payloads.push((side, input.bytes(len)));
    }
    let ports = FlowPorts {
        initiator: 51000,
        responder,
    };
    datagrams(ports, &payloads, &mut QuicFactory::default());
}

/// Encodes one datagram for the `l7_quic` seed generator.
pub fn encode_datagram(out: &mut Vec<u8>, side: Side, payload: &[u8]) {
    out.push(side.index() as u8);
    let len = payload.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&payload[..len]);
}

/// Runs `payloads` as datagrams into `factory`'s parser and through the
/// datagram driver.
fn datagrams<F: DatagramParserFactory<L7Record>>(
    ports: FlowPorts,
    payloads: &[(Side, &[u8])],
    factory: &mut F,
) {
    let ts = Timestamp(1);
    let mut records: Vec<L7Record> = Vec::new();
    let mut parser = factory.new_parser();
    let mut counters = L7Counters::default();
    let mut status = ParseStatus::Continue;
    for &(side, payload) in payloads {
        if status == ParseStatus::Continue {
            let _ = factory.probe(side, payload);
            status = parser.on_datagram(side, payload, ts, &mut records);
        }
    }
    if status == ParseStatus::Continue {
        parser.on_end(ts, &mut records);
    }
    parser.flush_counters(&mut counters);
    check_records(&records);

    records.clear();
    let mut driver = DatagramDriver::new(DriverConfig {
        budget_bytes: BUDGET_BYTES,
    });
    let _ = driver.register(Box::new(DnsFactory::default()));
    let _ = driver.register(Box::new(QuicFactory::default()));
    let _ = driver.register(Box::new(MDNS));
    let _ = driver.register(Box::new(LLMNR));
    let _ = driver.register(Box::new(RecogniseFactory::DHCP));
    let _ = driver.register(Box::new(RecogniseFactory::NTP));
    let _ = driver.register(Box::new(RecogniseFactory::SSDP));
    let mut session = DatagramSession::new();
    for &(side, payload) in payloads {
        driver.on_datagram(&mut session, ports, side, payload, ts, &mut records);
    }
    driver.finish(&mut session, ts, &mut records);
    check_records(&records);
}

/// Runs the flow of `data` into `factory`'s parser and through the driver.
fn stream<F: SessionParserFactory<L7Record>>(data: &[u8], port: u16, factory: &mut F) {
    let (ports, ops) = decode(data, port);
    let ts = Timestamp(1);
    let mut records: Vec<L7Record> = Vec::new();

    // Straight into the parser, keeping to the trait's contract.
    let mut parser = factory.new_parser();
    let mut counters = L7Counters::default();
    let mut ended = [false; 2];
    for op in &ops {
        let status = match *op {
            Op::Data(side, bytes) if !ended[side.index()] => {
                let _ = factory.probe(side, bytes);
                parser.on_data(side, bytes, ts, &mut records)
            }
            Op::Gap(side, len) if !ended[side.index()] => {
                parser.on_gap(side, len, ts, &mut records)
            }
            Op::End(side) if !ended[side.index()] => {
                ended[side.index()] = true;
                parser.on_end(side, ts, &mut records);
                ParseStatus::Continue
            }
            _ => ParseStatus::Continue,
        };
        if status != ParseStatus::Continue {
            ended = [true; 2];
            break;
        }
    }
    for side in Side::BOTH {
        if !ended[side.index()] {
            parser.on_end(side, ts, &mut records);
        }
    }
    parser.flush_counters(&mut counters);
    check_records(&records);

    // Through the driver, which probes and picks among all stream parsers.
    records.clear();
    let mut driver = SessionDriver::new(DriverConfig {
        budget_bytes: BUDGET_BYTES,
    });
    let _ = driver.register(Box::new(HttpFactory::default()));
    let _ = driver.register(Box::new(TlsFactory::default()));
    let _ = driver.register(Box::new(DnsTcpFactory::default()));
    let _ = driver.register(Box::new(SshFactory::default()));
    let mut session = StreamSession::new();
    let mut fed = 0u64;
    for op in &ops {
        match *op {
            Op::Data(side, bytes) => {
                fed += bytes.len() as u64;
                driver.on_data(&mut session, ports, side, bytes, ts, &mut records);
            }
            Op::Gap(side, len) => driver.on_gap(&mut session, ports, side, len, ts, &mut records),
            Op::End(side) => driver.on_end(&mut session, ports, side, ts, &mut records),
        }
        assert!(session.fed_bytes() <= fed, "fed more bytes than given");
    }
    driver.finish(&mut session, ports, ts, &mut records);
    check_records(&records);
}

fn check_records(records: &[L7Record]) {
    let quic = records
        .iter()
        .filter(|r| matches!(r, L7Record::Quic(_)))
        .count();
    assert!(quic <= 1, "{quic} quic records for one flow");
    for r in records {
        if let Err(e) = serde_json::to_string(r) {
            panic!("record {r:?} does not serialise: {e}");
        }
    }
}

/// Encodes one side's bytes as data operations for the seed generator.
pub fn encode_data(out: &mut Vec<u8>, side: Side, bytes: &[u8]) {
    for chunk in bytes.chunks(255) {
        out.push(OP_DATA | side.index() as u8);
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
}

/// Encodes a gap of `len` (1 to 256) bytes of one side.
pub fn encode_gap(out: &mut Vec<u8>, side: Side, len: u16) {
    out.push(OP_GAP | side.index() as u8);
    out.push(len.clamp(1, 256).wrapping_sub(1) as u8);
}

/// Encodes the end of one side's stream.
pub fn encode_end(out: &mut Vec<u8>, side: Side) {
    out.push(OP_END | side.index() as u8);
}
