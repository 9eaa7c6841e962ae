//! SSH in the session layer: [`SessionParser`] for [`SshParser`] and the
//! factory that recognises an identification line by port and first bytes.

use super::{SshConfig, SshParser, SshRecord};
use crate::l7::session::{ParseStatus, Probe, SessionParser, SessionParserFactory, Side};

impl SshParser {
    fn status(&self) -> ParseStatus {
        if self.is_not_ssh() {
            ParseStatus::Error
        } else if self.is_done() {
            ParseStatus::Done
        } else {
            ParseStatus::Continue
        }
    }
}

impl_stream_session_parser!(SshParser, SshRecord, ssh);

/// Builds [`SshParser`]s; well-known port 22.
#[derive(Debug, Default, Clone)]
pub struct SshFactory {
    /// Limits given to each parser.
    pub config: SshConfig,
}

impl<R: From<SshRecord> + 'static> SessionParserFactory<R> for SshFactory {
    fn name(&self) -> &'static str {
        "ssh"
    }

    fn is_well_known_port(&self, port: u16) -> bool {
        port == 22
    }

    /// `SSH-` and a digit, from either side (the server usually speaks
    /// first, the client does not wait for it).
    fn probe(&self, _side: Side, data: &[u8]) -> Probe {
        const MAGIC: &[u8] = b"SSH-";
        match data.strip_prefix(MAGIC) {
            Some([d, ..]) if d.is_ascii_digit() => Probe::Certain,
            Some([_, ..]) => Probe::NotForUs,
            Some([]) => Probe::Unsure,
            None if MAGIC.starts_with(data) => Probe::Unsure,
            None => Probe::NotForUs,
        }
    }

    fn new_parser(&mut self) -> Box<dyn SessionParser<R>> {
        Box::new(SshParser::new(self.config))
    }
}
