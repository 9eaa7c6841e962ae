//! HTTP/1.x in the session layer: [`SessionParser`] for [`HttpParser`] and
//! the factory that recognises HTTP by port and first bytes.

use super::head::{self, Start};
use super::{HttpConfig, HttpParser, HttpRecord};
use crate::l7::session::{ParseStatus, Probe, SessionParser, SessionParserFactory, Side};

/// Methods that make a probe certain (others only look like a request).
const KNOWN_METHODS: [&[u8]; 9] = [
    b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"TRACE", b"PATCH",
];

impl HttpParser {
    fn status(&self) -> ParseStatus {
        let c = self.counters();
        if self.is_done() {
            if c.requests == 0 && c.responses == 0 {
                ParseStatus::Error
            } else {
                ParseStatus::Done
            }
        } else {
            ParseStatus::Continue
        }
    }
}

impl_stream_session_parser!(HttpParser, HttpRecord, http, reusable, prefetch, clocked);

/// Builds [`HttpParser`]s; well-known ports 80, 8000, 8080 and 3128.
#[derive(Debug, Default, Clone)]
pub struct HttpFactory {
    /// Limits given to each parser.
    pub config: HttpConfig,
}

impl<R: From<HttpRecord> + 'static> SessionParserFactory<R> for HttpFactory {
    fn name(&self) -> &'static str {
        "http"
    }

    fn is_well_known_port(&self, port: u16) -> bool {
        matches!(port, 80 | 8000 | 8080 | 3128)
    }

    fn probe(&self, side: Side, data: &[u8]) -> Probe {
        match head::looks_like_start(data, side == Side::Initiator) {
            Start::Yes if side == Side::Responder => Probe::Certain,
            Start::Yes => {
                let method = data
                    .split(|&b| matches!(b, b' ' | b'\r' | b'\n'))
                    .next()
                    .unwrap_or_default();
                if KNOWN_METHODS.contains(&method) {
                    Probe::Certain
                } else {
                    Probe::Unsure
                }
            }
            Start::Maybe => Probe::Unsure,
            Start::No => Probe::NotForUs,
        }
    }

    fn new_parser(&mut self) -> Box<dyn SessionParser<R>> {
        Box::new(HttpParser::new(self.config))
    }
}
