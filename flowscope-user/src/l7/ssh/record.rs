//! [`SshRecord`]: the start of one SSH connection, its text in one
//! [`Texts`] buffer that circulates between a worker and the writer stage
//! as the other records' do. Each side's identification line and KEXINIT
//! name-lists are kept as sent; the fields EVE and Zeek write are read out
//! of them, the negotiated algorithms when asked for (Zeek's ssh.log only).

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::l7::fingerprint::Md5Text;
use crate::l7::session::{Side, Texts, push_lossy};

/// Text fields of one side, by index from the side's first field.
mod field {
    pub const PROTO: usize = 0;
    pub const SOFTWARE: usize = 1;
    pub const BANNER: usize = 2;
    pub const HASSH: usize = 3;
    pub const HASSH_STRING: usize = 4;
    /// The KEXINIT's first eight name-lists, in [`super::List`] order.
    pub const LISTS: usize = 5;
    /// Fields of one side; the server's follow the client's.
    pub const SIDE: usize = LISTS + 8;
    /// Fields of a record.
    pub const COUNT: usize = 2 * SIDE;
}

/// The KEXINIT name-lists kept, in the order they are sent (RFC 4253
/// §7.1; the two language lists are left out).
#[derive(Debug, Clone, Copy)]
enum List {
    Kex,
    HostKey,
    EncryptionToServer,
    EncryptionToClient,
    MacToServer,
    MacToClient,
    CompressionToServer,
    CompressionToClient,
}

/// Zeek's value for algorithms the two sides share none of.
const NEGOTIATION_FAILED: &str = "Algorithm negotiation failed";

/// One side of the connection, in Suricata EVE `ssh.client` /
/// `ssh.server` names, borrowed from its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SshEndpoint<'a> {
    /// Protocol version of the identification line (`2.0`, `1.99`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto_version: Option<&'a str>,
    /// Software version: the identification line after the protocol
    /// version, up to the first space (comments left out, as Suricata).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<&'a str>,
    /// HASSH (client) or HASSH-server of the side's KEXINIT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hassh: Option<Md5Text<'a>>,
    /// The whole identification line, comments included, without its line
    /// end (Zeek's ssh.log `client` / `server`).
    #[serde(skip)]
    pub banner: Option<&'a str>,
}

/// The algorithms both KEXINITs agree on: the first of the client's list
/// the server also offers (RFC 4253 §7.1), as Zeek's ssh.log names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshAlgorithms<'a> {
    /// Key exchange.
    pub kex: &'a str,
    /// Server host key.
    pub host_key: &'a str,
    /// Encryption; `To server: A, to client: B` when the directions differ.
    pub cipher: Cow<'a, str>,
    /// MAC, written like `cipher`.
    pub mac: Cow<'a, str>,
    /// Compression, written like `cipher`.
    pub compression: Cow<'a, str>,
}

/// The start of one SSH connection, in Suricata EVE `ssh` names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshRecord {
    texts: Texts,
}

impl SshRecord {
    /// The initiator, when anything of it is known.
    pub fn client(&self) -> Option<SshEndpoint<'_>> {
        self.endpoint(Side::Initiator)
    }

    /// The responder, likewise.
    pub fn server(&self) -> Option<SshEndpoint<'_>> {
        self.endpoint(Side::Responder)
    }

    /// Negotiated algorithms, when both KEXINITs were read (not in EVE;
    /// Zeek's ssh.log).
    pub fn algorithms(&self) -> Option<SshAlgorithms<'_>> {
        let common = |list| {
            let [c, s] = [Side::Initiator, Side::Responder].map(|side| self.list(side, list));
            Some(first_common(c?, s?))
        };
        let both = |to_server, to_client| -> Option<Cow<'_, str>> {
            let (a, b) = (common(to_server)?, common(to_client)?);
            Some(if a == b {
                Cow::Borrowed(a)
            } else {
                Cow::Owned(format!("To server: {a}, to client: {b}"))
            })
        };
        Some(SshAlgorithms {
            kex: common(List::Kex)?,
            host_key: common(List::HostKey)?,
            cipher: both(List::EncryptionToServer, List::EncryptionToClient)?,
            mac: both(List::MacToServer, List::MacToClient)?,
            compression: both(List::CompressionToServer, List::CompressionToClient)?,
        })
    }

    /// Its text storage (to prefetch before it is written).
    pub(crate) fn texts(&self) -> &Texts {
        &self.texts
    }

    /// The text buffer, for the next record to reuse.
    pub fn into_buffer(self) -> Texts {
        self.texts
    }

    fn at(side: Side, f: usize) -> usize {
        side.index() * field::SIDE + f
    }

    fn get(&self, side: Side, f: usize) -> Option<&str> {
        self.texts.get(Self::at(side, f))
    }

    fn list(&self, side: Side, list: List) -> Option<&str> {
        self.get(side, field::LISTS + list as usize)
    }

    fn endpoint(&self, side: Side) -> Option<SshEndpoint<'_>> {
        let e = SshEndpoint {
            proto_version: self.get(side, field::PROTO),
            software_version: self.get(side, field::SOFTWARE),
            hassh: Md5Text::get(
                &self.texts,
                Self::at(side, field::HASSH),
                Self::at(side, field::HASSH_STRING),
            ),
            banner: self.get(side, field::BANNER),
        };
        (e != SshEndpoint::default()).then_some(e)
    }
}

/// Building a record, for the parser.
impl SshRecord {
    /// An empty record written into `texts`.
    pub(crate) fn on(mut texts: Texts) -> Self {
        texts.reset(field::COUNT);
        Self { texts }
    }

    /// True until [`on`](Self::on) gave it storage.
    pub(super) fn is_unstarted(&self) -> bool {
        self.texts.is_empty()
    }

    /// True when neither side told anything.
    pub(super) fn is_empty(&self) -> bool {
        self.client().is_none() && self.server().is_none()
    }

    /// Sets `side`'s fields from its identification line (without its
    /// line end); `rest` follows the line's `SSH-`.
    pub(crate) fn set_banner(&mut self, side: Side, line: &[u8], rest: &[u8]) {
        let (proto, software) = match rest.iter().position(|&c| c == b'-') {
            Some(dash) => (&rest[..dash], Some(&rest[dash + 1..])),
            None => (rest, None),
        };
        let software = software
            .map(|s| s.split(|&c| c == b' ').next().unwrap_or_default())
            .filter(|s| !s.is_empty());
        let t = &mut self.texts;
        t.set_lossy(Self::at(side, field::PROTO), proto);
        match software {
            Some(s) => t.set_lossy(Self::at(side, field::SOFTWARE), s),
            None => t.unset(Self::at(side, field::SOFTWARE)),
        }
        t.set_lossy(Self::at(side, field::BANNER), line);
    }

    /// Keeps `side`'s KEXINIT name-lists (the first eight, as sent) and
    /// sets its HASSH: the MD5 of `kex;encryption;mac;compression` of the
    /// client's client-to-server lists, or of the server's server-to-client
    /// ones (<https://github.com/salesforce/hassh>).
    pub(crate) fn set_kexinit(&mut self, side: Side, lists: &[&[u8]; 8]) {
        for (i, list) in lists.iter().enumerate() {
            self.texts.set_lossy(Self::at(side, field::LISTS + i), list);
        }
        let d = side.index();
        let hashed = [
            List::Kex as usize,
            List::EncryptionToServer as usize + d,
            List::MacToServer as usize + d,
            List::CompressionToServer as usize + d,
        ];
        Md5Text::set(
            &mut self.texts,
            Self::at(side, field::HASSH),
            Self::at(side, field::HASSH_STRING),
            |buf| {
                for (n, i) in hashed.into_iter().enumerate() {
                    if n > 0 {
                        buf.push(';');
                    }
                    push_lossy(buf, lists[i]);
                }
            },
        );
    }
}

/// The first of the client's algorithms the server also offers, or Zeek's
/// `Algorithm negotiation failed`.
fn first_common<'a>(client: &'a str, server: &str) -> &'a str {
    client
        .split(',')
        .find(|a| server.split(',').any(|b| a == &b))
        .unwrap_or(NEGOTIATION_FAILED)
}

/// The EVE `ssh` object: `client` and `server`, when known.
impl Serialize for SshRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(c) = self.client() {
            m.serialize_entry("client", &c)?;
        }
        if let Some(e) = self.server() {
            m.serialize_entry("server", &e)?;
        }
        m.end()
    }
}
