//! L7: the [`session`] layer that drives parsers over each flow's streams
//! and datagrams, and its parsers for HTTP/1.x, TLS, DNS, QUIC and SSH.
//!
//! Each parser is an incremental core fed by the session layer with in-order
//! bytes per [`Side`](session::Side), explicit gaps and end of stream (or, for DNS and
//! QUIC over UDP, whole datagrams). They emit records shaped like Suricata EVE's `http`,
//! `tls`, `dns`, `quic` and `ssh` objects ([`L7Record`] serialises as `{"http": {…}}` etc.),
//! keep their memory bounded, and count every drop in per-protocol counters.

#[macro_use]
mod stream_parser;
#[macro_use]
pub(crate) mod counter_sum;
mod carry;
pub mod dns;
mod fingerprint;
pub mod http;
mod prefixed;
pub mod quic;
pub mod session;
#[cfg(test)]
mod splits;
pub mod ssh;
pub mod tls;

use serde::Serialize;

pub use self::dns::{
    DnsAnswer, DnsConfig, DnsCounters, DnsFactory, DnsKind, DnsParser, DnsRecord, DnsTcpFactory,
    RrType,
};
pub use self::fingerprint::Md5Text;
pub use self::http::{HttpConfig, HttpCounters, HttpFactory, HttpField, HttpParser, HttpRecord};
pub use self::quic::{
    QuicConfig, QuicCounters, QuicExtension, QuicFactory, QuicParser, QuicRecord, QuicValues,
};
pub use self::ssh::{
    SshAlgorithms, SshConfig, SshCounters, SshEndpoint, SshFactory, SshParser, SshRecord,
};
pub use self::tls::{TlsConfig, TlsCounters, TlsFactory, TlsParser, TlsRecord};
use crate::l7::session::{RecordSink, Texts};

/// One L7 record, serialised as its EVE object keyed by protocol name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum L7Record {
    /// An HTTP request/response exchange.
    Http(HttpRecord),
    /// A TLS handshake summary.
    Tls(TlsRecord),
    /// A DNS query or answer.
    Dns(DnsRecord),
    /// A QUIC client hello summary.
    Quic(QuicRecord),
    /// An SSH connection's identification lines and KEXINITs.
    Ssh(SshRecord),
}

impl From<HttpRecord> for L7Record {
    fn from(r: HttpRecord) -> Self {
        Self::Http(r)
    }
}

impl From<TlsRecord> for L7Record {
    fn from(r: TlsRecord) -> Self {
        Self::Tls(r)
    }
}

impl From<DnsRecord> for L7Record {
    fn from(r: DnsRecord) -> Self {
        Self::Dns(r)
    }
}

impl From<QuicRecord> for L7Record {
    fn from(r: QuicRecord) -> Self {
        Self::Quic(r)
    }
}

impl From<SshRecord> for L7Record {
    fn from(r: SshRecord) -> Self {
        Self::Ssh(r)
    }
}

impl L7Record {
    /// Its text storage (see [`into_buffer`](Self::into_buffer)).
    pub(crate) fn texts(&self) -> &Texts {
        match self {
            Self::Http(r) => r.texts(),
            Self::Dns(r) => r.texts(),
            Self::Tls(r) => r.texts(),
            Self::Ssh(r) => r.texts(),
            Self::Quic(r) => r.texts(),
        }
    }

    /// The storage the record's text fields were written into, for another
    /// record (see [`RecordSink::spare_text`]).
    pub fn into_buffer(self) -> Texts {
        match self {
            Self::Http(r) => r.into_buffer(),
            Self::Dns(r) => r.into_buffer(),
            Self::Tls(r) => r.into_buffer(),
            Self::Ssh(r) => r.into_buffer(),
            Self::Quic(r) => r.into_buffer(),
        }
    }
}

/// What the L7 parsers counted, all protocols; add them up per worker.
///
/// Parsers hand their counters over through
/// [`SessionParser::flush_counters`](crate::l7::session::SessionParser::flush_counters)
/// when the session driver drops them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct L7Counters {
    /// HTTP parsers.
    pub http: HttpCounters,
    /// TLS parsers.
    pub tls: TlsCounters,
    /// DNS parsers (UDP and TCP).
    pub dns: DnsCounters,
    /// QUIC parsers.
    pub quic: QuicCounters,
    /// SSH parsers.
    pub ssh: SshCounters,
}

impl L7Counters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Self) {
        self.http.add(&other.http);
        self.tls.add(&other.tls);
        self.dns.add(&other.dns);
        self.quic.add(&other.quic);
        self.ssh.add(&other.ssh);
    }
}

/// Adapts a sink of `R` to a parser that emits a protocol record `T: Into<R>`.
pub(crate) struct Convert<'a, R>(pub(crate) &'a mut dyn RecordSink<R>);

impl<T: Into<R>, R> RecordSink<T> for Convert<'_, R> {
    fn emit(&mut self, record: T) {
        self.0.emit(record.into());
    }

    fn spare_text(&mut self) -> Texts {
        self.0.spare_text()
    }
}
