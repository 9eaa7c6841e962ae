//! Datagram protocols recognised by port and content but not parsed: the
//! flow gets its `app_proto` (named as Suricata and nDPI name them) and no
//! records: a [`RecogniseFactory`] each, whose parser is [`Recognised`],
//! which stops at once. (mDNS and LLMNR, which carry DNS messages, are
//! recognised the same way; their factories are in [`crate::l7::dns`].)
//!
//! - DHCP (ports 67, 68): a BOOTP header (op 1 or 2, hardware address at
//!   most 16 bytes) and the DHCP magic cookie at offset 236 (RFC 2131 §3);
//!   certain on any port.
//! - NTP (port 123): a 48-byte header or longer with version 1 to 4 and a
//!   mode other than 0 (RFC 5905 §7.3); too weak to be certain, so chosen
//!   on its port only.
//! - SSDP (port 1900): an HTTP-over-UDP `M-SEARCH * ` or `NOTIFY * ` request
//!   line, certain on any port; a `HTTP/1.1 ` response only on the port.

use super::{DatagramParser, DatagramParserFactory, ParseStatus, Probe, RecordSink, Side};
use crate::view::Timestamp;

/// The parser of a recognised protocol: it has nothing to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recognised;

impl<R> DatagramParser<R> for Recognised {
    fn on_datagram(
        &mut self,
        _side: Side,
        _payload: &[u8],
        _ts: Timestamp,
        _sink: &mut dyn RecordSink<R>,
    ) -> ParseStatus {
        ParseStatus::Done
    }
}

/// Recognises one datagram protocol by its ports and a probe of its
/// payloads; the flows it takes get its name and a [`Recognised`] parser.
#[derive(Debug, Clone, Copy)]
pub struct RecogniseFactory {
    name: &'static str,
    ports: &'static [u16],
    probe: fn(&[u8]) -> Probe,
}

impl RecogniseFactory {
    /// A factory for the protocol `name` on `ports`, judged by `probe`.
    pub const fn new(name: &'static str, ports: &'static [u16], probe: fn(&[u8]) -> Probe) -> Self {
        Self { name, ports, probe }
    }

    /// DHCP (`dhcp`).
    pub const DHCP: Self = Self::new("dhcp", &[67, 68], probe_dhcp);
    /// NTP (`ntp`).
    pub const NTP: Self = Self::new("ntp", &[123], probe_ntp);
    /// SSDP (`ssdp`, nDPI's name; Suricata has no SSDP parser).
    pub const SSDP: Self = Self::new("ssdp", &[1900], probe_ssdp);
}

impl<R> DatagramParserFactory<R> for RecogniseFactory {
    fn name(&self) -> &'static str {
        self.name
    }

    fn is_well_known_port(&self, port: u16) -> bool {
        self.ports.contains(&port)
    }

    fn probe(&self, _side: Side, payload: &[u8]) -> Probe {
        (self.probe)(payload)
    }

    fn new_parser(&mut self) -> Box<dyn DatagramParser<R>> {
        Box::new(Recognised)
    }
}

/// Offset of the DHCP magic cookie: after the fixed BOOTP fields.
const DHCP_COOKIE_AT: usize = 236;
const DHCP_COOKIE: [u8; 4] = [99, 130, 83, 99];

fn probe_dhcp(payload: &[u8]) -> Probe {
    let cookie = payload.get(DHCP_COOKIE_AT..DHCP_COOKIE_AT + 4);
    match payload {
        [1 | 2, _, hlen, ..] if *hlen <= 16 && cookie == Some(&DHCP_COOKIE[..]) => Probe::Certain,
        _ => Probe::NotForUs,
    }
}

/// Length of the NTP header without extensions.
const NTP_HEADER: usize = 48;

fn probe_ntp(payload: &[u8]) -> Probe {
    let (version, mode) = match payload.first() {
        Some(b) => ((b >> 3) & 7, b & 7),
        None => return Probe::NotForUs,
    };
    if payload.len() >= NTP_HEADER && (1..=4).contains(&version) && mode != 0 {
        Probe::Unsure
    } else {
        Probe::NotForUs
    }
}

fn probe_ssdp(payload: &[u8]) -> Probe {
    if payload.starts_with(b"M-SEARCH * ") || payload.starts_with(b"NOTIFY * ") {
        Probe::Certain
    } else if payload.starts_with(b"HTTP/1.1 ") {
        Probe::Unsure
    } else {
        Probe::NotForUs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(f: RecogniseFactory, payload: &[u8]) -> Probe {
        DatagramParserFactory::<()>::probe(&f, Side::Initiator, payload)
    }

    const DHCP: RecogniseFactory = RecogniseFactory::DHCP;
    const NTP: RecogniseFactory = RecogniseFactory::NTP;
    const SSDP: RecogniseFactory = RecogniseFactory::SSDP;

    /// A DHCPDISCOVER as RFC 2131 lays it out: op, htype, hlen, hops, xid,
    /// secs, flags, four addresses, chaddr, sname, file, cookie, options.
    fn dhcp_discover() -> Vec<u8> {
        let mut p = vec![1, 1, 6, 0, 0x39, 0x03, 0xf3, 0x26, 0, 0, 0, 0];
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(&[0x00, 0x05, 0x3c, 0x04, 0x8d, 0x59]);
        p.extend_from_slice(&[0; 10 + 64 + 128]);
        p.extend_from_slice(&DHCP_COOKIE);
        p.extend_from_slice(&[53, 1, 1, 255]);
        p
    }

    #[test]
    fn dhcp_needs_the_bootp_header_and_the_cookie() {
        let discover = dhcp_discover();
        assert_eq!(discover[DHCP_COOKIE_AT..][..4], DHCP_COOKIE);
        assert_eq!(probe(DHCP, &discover), Probe::Certain);
        let mut bad_op = discover.clone();
        bad_op[0] = 3;
        assert_eq!(probe(DHCP, &bad_op), Probe::NotForUs);
        let mut bad_cookie = discover.clone();
        bad_cookie[DHCP_COOKIE_AT] = 0;
        assert_eq!(probe(DHCP, &bad_cookie), Probe::NotForUs);
        assert_eq!(
            probe(DHCP, &discover[..DHCP_COOKIE_AT + 3]),
            Probe::NotForUs
        );
    }

    #[test]
    fn ntp_is_only_plausible() {
        // LI 0, version 4, mode 3 (client), then zeros.
        let mut client = [0u8; NTP_HEADER];
        client[0] = 0x23;
        assert_eq!(probe(NTP, &client), Probe::Unsure);
        assert_eq!(probe(NTP, &client[..47]), Probe::NotForUs);
        client[0] = 0x20; // mode 0: reserved
        assert_eq!(probe(NTP, &client), Probe::NotForUs);
        client[0] = 0x2b; // version 5
        assert_eq!(probe(NTP, &client), Probe::NotForUs);
    }

    #[test]
    fn ssdp_requests_are_certain_responses_need_the_port() {
        let search = b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n";
        assert_eq!(probe(SSDP, search), Probe::Certain);
        assert_eq!(probe(SSDP, b"NOTIFY * HTTP/1.1\r\n\r\n"), Probe::Certain);
        assert_eq!(probe(SSDP, b"HTTP/1.1 200 OK\r\n\r\n"), Probe::Unsure);
        assert_eq!(probe(SSDP, b"GET / HTTP/1.1\r\n\r\n"), Probe::NotForUs);
    }

    #[test]
    fn the_parser_stops_at_once() {
        let mut out: Vec<()> = Vec::new();
        let mut p = DatagramParserFactory::<()>::new_parser(&mut SSDP.clone());
        assert_eq!(
            p.on_datagram(Side::Initiator, b"x", Timestamp(1), &mut out),
            ParseStatus::Done
        );
        assert!(out.is_empty());
    }
}
