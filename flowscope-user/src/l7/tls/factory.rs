//! TLS in the session layer: [`SessionParser`] for [`TlsParser`] and the
//! factory that recognises a TLS handshake record by port and first bytes.

use super::{TlsConfig, TlsParser, TlsRecord};
use crate::l7::session::{ParseStatus, Probe, SessionParser, SessionParserFactory, Side};

impl TlsParser {
    fn status(&self) -> ParseStatus {
        if self.is_not_tls() {
            ParseStatus::Error
        } else if self.is_done() {
            ParseStatus::Done
        } else {
            ParseStatus::Continue
        }
    }
}

impl_stream_session_parser!(TlsParser, TlsRecord, tls, reusable);

/// Builds [`TlsParser`]s; well-known ports 443, 8443, 465, 636, 853, 993, 995.
#[derive(Debug, Default, Clone)]
pub struct TlsFactory {
    /// Limits given to each parser.
    pub config: TlsConfig,
}

impl<R: From<TlsRecord> + 'static> SessionParserFactory<R> for TlsFactory {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn is_well_known_port(&self, port: u16) -> bool {
        matches!(port, 443 | 8443 | 465 | 636 | 853 | 993 | 995)
    }

    /// A handshake record header: type 22, version 3.0–3.4.
    fn probe(&self, _side: Side, data: &[u8]) -> Probe {
        match data {
            [22, 3, minor, ..] if *minor <= 4 => Probe::Certain,
            [22, 3] | [22] | [] => Probe::Unsure,
            _ => Probe::NotForUs,
        }
    }

    fn new_parser(&mut self) -> Box<dyn SessionParser<R>> {
        Box::new(TlsParser::new(self.config))
    }
}
