//! [`TlsRecord`]: the handshake of one flow, its text fields in one
//! [`Texts`] buffer that circulates between a worker and the writer stage
//! as HTTP and DNS records' do, so a record costs no allocation once
//! buffers circulate.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::l7::fingerprint::Md5Text;
use crate::l7::session::Texts;

/// Text fields, by index.
mod field {
    pub const SNI: usize = 0;
    pub const VERSION: usize = 1;
    pub const JA3_HASH: usize = 2;
    pub const JA3_STRING: usize = 3;
    pub const JA3S_HASH: usize = 4;
    pub const JA3S_STRING: usize = 5;
    pub const JA4: usize = 6;
    pub const SUBJECT: usize = 7;
    pub const ISSUER: usize = 8;
    pub const SERIAL: usize = 9;
    pub const FINGERPRINT: usize = 10;
    pub const NOT_BEFORE: usize = 11;
    pub const NOT_AFTER: usize = 12;
    pub const SERVER_ALPN: usize = 13;
    /// Where the client's ALPN list lies among the appended fields: first
    /// index and count.
    pub const ALPN_AT: usize = 14;
    /// Where the chain's fingerprints lie, likewise.
    pub const CHAIN_AT: usize = 15;
    /// Fixed fields; the lists are appended after them.
    pub const COUNT: usize = 16;
}

/// Which fingerprint of a pair of fields: JA3 or JA3S.
#[derive(Debug, Clone, Copy)]
pub(super) enum Md5Pair {
    Ja3,
    Ja3s,
}

impl Md5Pair {
    const fn fields(self) -> (usize, usize) {
        match self {
            Self::Ja3 => (field::JA3_HASH, field::JA3_STRING),
            Self::Ja3s => (field::JA3S_HASH, field::JA3S_STRING),
        }
    }
}

/// A list field (client ALPNs, the chain's fingerprints).
#[derive(Debug, Clone, Copy)]
enum List {
    Alpn,
    Chain,
}

impl List {
    const fn field(self) -> usize {
        match self {
            Self::Alpn => field::ALPN_AT,
            Self::Chain => field::CHAIN_AT,
        }
    }
}

/// The handshake of one flow, in Suricata EVE `tls` names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsRecord {
    texts: Texts,
    /// The server resumed the client's session (TLS 1.2 and before: it
    /// echoed the client's non-empty session ID), as Suricata marks it;
    /// absent otherwise.
    pub session_resumed: Option<bool>,
    /// Cipher suite the ServerHello chose (Zeek's `cipher`; not in EVE).
    pub cipher: Option<u16>,
    /// The key exchange's group: the server's TLS 1.3 `key_share`, or the
    /// named curve of an ECDHE ServerKeyExchange (Zeek's `curve`; not in
    /// EVE).
    pub curve: Option<u16>,
}

impl TlsRecord {
    /// Server name from the ClientHello.
    pub fn sni(&self) -> Option<&str> {
        self.texts.get(field::SNI)
    }

    /// Negotiated version (`TLS 1.2`, `TLS 1.3`), or the client's when no
    /// ServerHello was seen.
    pub fn version(&self) -> Option<&str> {
        self.texts.get(field::VERSION)
    }

    /// Client fingerprint.
    pub fn ja3(&self) -> Option<Md5Text<'_>> {
        self.md5(Md5Pair::Ja3)
    }

    /// Server fingerprint.
    pub fn ja3s(&self) -> Option<Md5Text<'_>> {
        self.md5(Md5Pair::Ja3s)
    }

    /// JA4 client fingerprint.
    pub fn ja4(&self) -> Option<&str> {
        self.texts.get(field::JA4)
    }

    /// Protocols the client offered (ALPN), in its order (Suricata's
    /// `client_alpns`).
    pub fn alpn(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.list(List::Alpn)
    }

    /// Subject DN of the server's first certificate.
    pub fn subject(&self) -> Option<&str> {
        self.texts.get(field::SUBJECT)
    }

    /// Issuer DN of that certificate.
    pub fn issuerdn(&self) -> Option<&str> {
        self.texts.get(field::ISSUER)
    }

    /// Its serial number (`0A:1B:…`, as Suricata writes it).
    pub fn serial(&self) -> Option<&str> {
        self.texts.get(field::SERIAL)
    }

    /// SHA-1 of it (`0a:1b:…`, as Suricata writes it).
    pub fn fingerprint(&self) -> Option<&str> {
        self.texts.get(field::FINGERPRINT)
    }

    /// Start of its validity, `YYYY-MM-DDTHH:MM:SS` UTC.
    pub fn notbefore(&self) -> Option<&str> {
        self.texts.get(field::NOT_BEFORE)
    }

    /// End of its validity.
    pub fn notafter(&self) -> Option<&str> {
        self.texts.get(field::NOT_AFTER)
    }

    /// Protocol the ServerHello's ALPN chose (Zeek's `next_protocol`;
    /// EVE's `server_alpns`, a list of it, as Suricata writes it).
    pub fn server_alpn(&self) -> Option<&str> {
        self.texts.get(field::SERVER_ALPN)
    }

    /// SHA-256 of each certificate of the server's chain, in hex, in its
    /// order (Zeek's `cert_chain_fps`; not in EVE).
    pub fn cert_chain_fps(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.list(List::Chain)
    }

    /// Its text storage (to prefetch before it is written).
    pub(crate) fn texts(&self) -> &Texts {
        &self.texts
    }

    /// The text buffer, for the next record to reuse.
    pub fn into_buffer(self) -> Texts {
        self.texts
    }

    fn md5(&self, pair: Md5Pair) -> Option<Md5Text<'_>> {
        let (hash, string) = pair.fields();
        Md5Text::get(&self.texts, hash, string)
    }

    fn list(&self, list: List) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.texts.list(list.field())
    }
}

/// Building a record, for the parser.
impl TlsRecord {
    /// Empties it for a new flow: its buffer kept if it has one (the last
    /// flow's, when that flow emitted none), else `spare`'s.
    pub(super) fn start(&mut self, spare: impl FnOnce() -> Texts) {
        if self.texts.footprint() == 0 {
            self.texts = spare();
        }
        self.texts.reset(field::COUNT);
        (self.session_resumed, self.cipher, self.curve) = (None, None, None);
    }

    /// True once [`start`](Self::start)ed and not yet emptied.
    pub(super) fn is_started(&self) -> bool {
        !self.texts.is_empty()
    }

    /// Forgets everything, keeping the buffer's memory for the next flow
    /// (which [`start`](Self::start)s it again).
    pub(super) fn clear(&mut self) {
        self.texts.reset(0);
        (self.session_resumed, self.cipher, self.curve) = (None, None, None);
    }

    pub(super) fn set_sni(&mut self, sni: Option<&str>) {
        set_or_unset(&mut self.texts, field::SNI, sni);
    }

    pub(super) fn set_server_alpn(&mut self, alpn: Option<&str>) {
        set_or_unset(&mut self.texts, field::SERVER_ALPN, alpn);
    }

    /// Sets the version field to what `write` appends.
    pub(super) fn set_version(&mut self, write: impl FnOnce(&mut String)) {
        self.texts.write(field::VERSION, write);
    }

    /// Sets the JA4 field to what `write` appends.
    pub(super) fn set_ja4(&mut self, write: impl FnOnce(&mut String)) {
        self.texts.write(field::JA4, write);
    }

    /// Sets a fingerprint's string to what `write` appends, and its hash
    /// to the string's MD5 in hex.
    pub(super) fn set_md5(&mut self, pair: Md5Pair, write: impl FnOnce(&mut String)) {
        let (hash, string) = pair.fields();
        Md5Text::set(&mut self.texts, hash, string, write);
    }

    /// Sets the certificate fields: `write` appends each, in the order of
    /// [`CertField`], given the field to write.
    pub(super) fn set_cert(&mut self, mut write: impl FnMut(CertField, &mut String)) {
        for (f, index) in [
            (CertField::Subject, field::SUBJECT),
            (CertField::Issuer, field::ISSUER),
            (CertField::Serial, field::SERIAL),
            (CertField::Fingerprint, field::FINGERPRINT),
            (CertField::NotBefore, field::NOT_BEFORE),
            (CertField::NotAfter, field::NOT_AFTER),
        ] {
            self.texts.write(index, |buf| write(f, buf));
        }
    }

    /// Appends the client's ALPN list.
    pub(super) fn set_alpn<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) {
        self.texts
            .set_list(List::Alpn.field(), items, |buf, item| buf.push_str(item));
    }

    /// Appends the chain's fingerprints: `write` appends the one of each
    /// certificate.
    pub(super) fn set_chain<T>(
        &mut self,
        certs: impl IntoIterator<Item = T>,
        write: impl FnMut(&mut String, T),
    ) {
        self.texts.set_list(List::Chain.field(), certs, write);
    }
}

/// A field of the server certificate, in the order
/// [`TlsRecord::set_cert`] asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CertField {
    Subject,
    Issuer,
    Serial,
    Fingerprint,
    NotBefore,
    NotAfter,
}

/// Sets field `i` of `texts` to `value`, or unsets it.
fn set_or_unset(texts: &mut Texts, i: usize, value: Option<&str>) {
    match value {
        Some(v) => texts.set(i, v),
        None => texts.unset(i),
    }
}

/// A list field of a record, serialised as a JSON array.
struct Items<'a>(&'a TlsRecord, List);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.list(self.1))
    }
}

/// The EVE `tls` object: Suricata's names, absent fields left out.
impl Serialize for TlsRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let text = |m: &mut S::SerializeMap, key: &str, v: Option<&str>| match v {
            Some(v) => m.serialize_entry(key, v),
            None => Ok(()),
        };
        text(&mut m, "sni", self.sni())?;
        text(&mut m, "version", self.version())?;
        if let Some(f) = self.ja3() {
            m.serialize_entry("ja3", &f)?;
        }
        if let Some(f) = self.ja3s() {
            m.serialize_entry("ja3s", &f)?;
        }
        text(&mut m, "ja4", self.ja4())?;
        if self.alpn().len() > 0 {
            m.serialize_entry("client_alpns", &Items(self, List::Alpn))?;
        }
        text(&mut m, "subject", self.subject())?;
        text(&mut m, "issuerdn", self.issuerdn())?;
        text(&mut m, "serial", self.serial())?;
        text(&mut m, "fingerprint", self.fingerprint())?;
        if let Some(resumed) = self.session_resumed {
            m.serialize_entry("session_resumed", &resumed)?;
        }
        text(&mut m, "notbefore", self.notbefore())?;
        text(&mut m, "notafter", self.notafter())?;
        if let Some(alpn) = self.server_alpn() {
            m.serialize_entry("server_alpns", &[alpn])?;
        }
        m.end()
    }
}
