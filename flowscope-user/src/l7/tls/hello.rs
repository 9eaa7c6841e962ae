//! ClientHello and ServerHello contents needed for the record and the
//! fingerprints, read with `tls-parser`. Extensions are walked in wire order
//! (type and length), and the few whose contents matter are decoded with
//! `tls-parser`'s extension parsers.

use tls_parser::{
    TlsExtension, parse_tls_extension, parse_tls_handshake_client_hello,
    parse_tls_handshake_server_hello,
};

use crate::session::{Texts, push_lossy};

/// TLS extension numbers read here.
mod ext {
    pub const SERVER_NAME: u16 = 0;
    pub const SUPPORTED_GROUPS: u16 = 10;
    pub const EC_POINT_FORMATS: u16 = 11;
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    pub const ALPN: u16 = 16;
    pub const SUPPORTED_VERSIONS: u16 = 43;
    pub const KEY_SHARE: u16 = 51;
    pub const QUIC_TRANSPORT_PARAMETERS: u16 = 57;
    /// The drafts' codepoint of `quic_transport_parameters`.
    pub const QUIC_TRANSPORT_PARAMETERS_DRAFT: u16 = 0xffa5;
}

/// GREASE values (RFC 8701): `0x?A?A` with equal bytes.
pub(in crate::l7) fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// What a ClientHello offers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(in crate::l7) struct ClientHello {
    /// Legacy `client_version`.
    pub version: u16,
    pub ciphers: Vec<u16>,
    /// Legacy session ID (empty when none).
    pub session_id: Vec<u8>,
    /// Extension types in wire order.
    pub extensions: Vec<u16>,
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    pub signature_algorithms: Vec<u16>,
    pub supported_versions: Vec<u16>,
    /// The server name and the ALPN protocols ([`sni`](Self::sni),
    /// [`alpn`](Self::alpn)), in one buffer kept from hello to hello.
    names: Texts,
    /// Body of the `quic_transport_parameters` extension (either codepoint),
    /// empty when absent.
    pub transport_parameters: Vec<u8>,
}

/// Fields of [`ClientHello::names`]: the server name, then where the
/// ALPN protocols lie among the appended fields (first index, count).
const SNI: usize = 0;
const ALPN_AT: usize = 1;

impl ClientHello {
    /// Empties it, keeping the room of its lists.
    pub(in crate::l7) fn clear(&mut self) {
        let Self {
            version,
            ciphers,
            session_id,
            extensions,
            groups,
            point_formats,
            signature_algorithms,
            supported_versions,
            names,
            transport_parameters,
        } = self;
        *version = 0;
        for list in [
            ciphers,
            extensions,
            groups,
            signature_algorithms,
            supported_versions,
        ] {
            list.clear();
        }
        for bytes in [session_id, point_formats, transport_parameters] {
            bytes.clear();
        }
        names.reset(0);
    }

    /// The first name of the `server_name` extension.
    pub(in crate::l7) fn sni(&self) -> Option<&str> {
        self.names.get(SNI)
    }

    /// The protocols of the ALPN extension, in its order.
    pub(in crate::l7) fn alpn(&self) -> impl Iterator<Item = &str> + '_ {
        self.names.list(ALPN_AT)
    }
}

/// What a ServerHello selects.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct ServerHello {
    /// Legacy `server_version`.
    pub version: u16,
    pub cipher: u16,
    /// Legacy session ID echo (empty when none).
    pub session_id: Vec<u8>,
    pub extensions: Vec<u16>,
    /// `supported_versions` selection (TLS 1.3).
    pub selected_version: Option<u16>,
    /// The protocol its ALPN extension chose ([`alpn`](Self::alpn)), if
    /// `has_alpn`.
    alpn: String,
    has_alpn: bool,
    /// The group of the server's `key_share` (TLS 1.3).
    pub key_share_group: Option<u16>,
}

impl ServerHello {
    /// Empties it, keeping the room of its lists.
    pub(super) fn clear(&mut self) {
        let Self {
            version,
            cipher,
            session_id,
            extensions,
            selected_version,
            alpn,
            has_alpn,
            key_share_group,
        } = self;
        (*version, *cipher, *has_alpn) = (0, 0, false);
        (*selected_version, *key_share_group) = (None, None);
        session_id.clear();
        extensions.clear();
        alpn.clear();
    }

    /// The protocol its ALPN extension chose.
    pub(super) fn alpn(&self) -> Option<&str> {
        self.has_alpn.then_some(self.alpn.as_str())
    }
}

/// Each extension as `(type, whole extension bytes)`, in wire order.
fn walk_extensions(mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let (ty, len) = match bytes {
            [a, b, c, d, ..] => (
                u16::from_be_bytes([*a, *b]),
                usize::from(u16::from_be_bytes([*c, *d])),
            ),
            _ => return None,
        };
        let whole = bytes.get(..4 + len)?;
        bytes = &bytes[whole.len()..];
        Some((ty, whole))
    })
}

/// Parses a ClientHello body (after the 4-byte handshake header): over TCP
/// from the record layer, over QUIC from the reassembled CRYPTO stream.
/// Written into `out`, whose lists keep their room (a parser keeps one
/// for its flows); false, `out` cleared, when the body does not parse.
pub(in crate::l7) fn parse_client_hello(body: &[u8], out: &mut ClientHello) -> bool {
    out.clear();
    let Ok((_, ch)) = parse_tls_handshake_client_hello(body) else {
        return false;
    };
    out.names.reset(ALPN_AT + 1);
    out.version = ch.version.0;
    out.ciphers.extend(ch.ciphers.iter().map(|c| c.0));
    out.session_id
        .extend_from_slice(ch.session_id.unwrap_or_default());
    for (ty, whole) in walk_extensions(ch.ext.unwrap_or_default()) {
        out.extensions.push(ty);
        if matches!(
            ty,
            ext::QUIC_TRANSPORT_PARAMETERS | ext::QUIC_TRANSPORT_PARAMETERS_DRAFT
        ) {
            out.transport_parameters.clear();
            out.transport_parameters
                .extend_from_slice(whole.get(4..).unwrap_or_default());
            continue;
        }
        if !matches!(
            ty,
            ext::SERVER_NAME
                | ext::SUPPORTED_GROUPS
                | ext::EC_POINT_FORMATS
                | ext::SIGNATURE_ALGORITHMS
                | ext::ALPN
                | ext::SUPPORTED_VERSIONS
        ) {
            continue;
        }
        match parse_tls_extension(whole).map(|(_, e)| e) {
            Ok(TlsExtension::SNI(names)) => match names.first() {
                Some((_, name)) => out.names.set_lossy(SNI, name),
                None => out.names.unset(SNI),
            },
            Ok(TlsExtension::EllipticCurves(groups)) => {
                out.groups.clear();
                out.groups.extend(groups.iter().map(|g| g.0));
            }
            Ok(TlsExtension::EcPointFormats(formats)) => {
                out.point_formats.clear();
                out.point_formats.extend_from_slice(formats);
            }
            Ok(TlsExtension::SignatureAlgorithms(algs)) => {
                out.signature_algorithms.clear();
                out.signature_algorithms.extend_from_slice(&algs);
            }
            Ok(TlsExtension::ALPN(protos)) => out.names.set_list(ALPN_AT, protos, push_lossy),
            Ok(TlsExtension::SupportedVersions(versions)) => {
                out.supported_versions.clear();
                out.supported_versions.extend(versions.iter().map(|v| v.0));
            }
            _ => {}
        }
    }
    true
}

/// Parses a ServerHello body (after the 4-byte handshake header) into
/// `out`, whose lists keep their room (a parser keeps one for its flows);
/// false, `out` cleared, when the body does not parse.
pub(super) fn parse_server_hello(body: &[u8], out: &mut ServerHello) -> bool {
    out.clear();
    let Ok((_, sh)) = parse_tls_handshake_server_hello(body) else {
        return false;
    };
    out.version = sh.version.0;
    out.cipher = sh.cipher.0;
    out.session_id
        .extend_from_slice(sh.session_id.unwrap_or_default());
    for (ty, whole) in walk_extensions(sh.ext.unwrap_or_default()) {
        out.extensions.push(ty);
        if ty == ext::SUPPORTED_VERSIONS {
            // The server's form holds one version, no list length.
            out.selected_version = whole.get(4..6).map(|v| u16::from_be_bytes([v[0], v[1]]));
        } else if ty == ext::KEY_SHARE {
            // The server's entry: its group first.
            out.key_share_group = whole.get(4..6).map(|v| u16::from_be_bytes([v[0], v[1]]));
        } else if ty == ext::ALPN
            && let Ok((_, TlsExtension::ALPN(protos))) = parse_tls_extension(whole)
        {
            out.alpn.clear();
            out.has_alpn = match protos.first() {
                Some(p) => {
                    push_lossy(&mut out.alpn, p);
                    true
                }
                None => false,
            };
        }
    }
    true
}

#[cfg(test)]
pub(in crate::l7) mod tests {
    use super::*;

    /// A ClientHello body with GREASE, SNI, groups, point formats, sigalgs,
    /// ALPN and supported_versions.
    pub(crate) fn client_hello_body() -> Vec<u8> {
        let mut exts = Vec::new();
        let mut push = |ty: u16, data: &[u8]| {
            exts.extend_from_slice(&ty.to_be_bytes());
            exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
            exts.extend_from_slice(data);
        };
        push(0x0a0a, b"");
        push(0, b"\x00\x0e\x00\x00\x0bexample.com");
        push(23, b"");
        push(10, b"\x00\x06\x1a\x1a\x00\x1d\x00\x17");
        push(11, b"\x01\x00");
        push(13, b"\x00\x04\x04\x03\x08\x04");
        push(16, b"\x00\x0c\x02h2\x08http/1.1");
        push(43, b"\x06\x2a\x2a\x03\x04\x03\x03");
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(b"\x00\x08\x5a\x5a\x13\x01\xc0\x2b\x00\x2f");
        body.extend_from_slice(b"\x01\x00");
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        body
    }

    pub(crate) fn server_hello_body() -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[9; 32]);
        body.push(0);
        body.extend_from_slice(b"\xc0\x2b\x00");
        let exts = b"\xff\x01\x00\x01\x00\x00\x10\x00\x05\x00\x03\x02h2\x00\x0b\x00\x02\x01\x00";
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(exts);
        body
    }

    /// `body` parsed into a new [`ClientHello`].
    pub(crate) fn parsed(body: &[u8]) -> Option<ClientHello> {
        let mut ch = ClientHello::default();
        parse_client_hello(body, &mut ch).then_some(ch)
    }

    #[test]
    fn client_hello_contents() {
        let ch = parsed(&client_hello_body()).unwrap();
        assert_eq!(ch.version, 0x0303);
        assert_eq!(ch.ciphers, vec![0x5a5a, 0x1301, 0xc02b, 0x002f]);
        assert_eq!(ch.extensions, vec![0x0a0a, 0, 23, 10, 11, 13, 16, 43]);
        assert_eq!(ch.groups, vec![0x1a1a, 0x1d, 0x17]);
        assert_eq!(ch.point_formats, vec![0]);
        assert_eq!(ch.signature_algorithms, vec![0x0403, 0x0804]);
        assert_eq!(ch.supported_versions, vec![0x2a2a, 0x0304, 0x0303]);
        assert_eq!(ch.sni(), Some("example.com"));
        assert_eq!(ch.alpn().collect::<Vec<_>>(), ["h2", "http/1.1"]);
        assert!(parsed(&client_hello_body()[..40]).is_none());
        // Parsed again into the same one: the first's contents are gone.
        let mut reused = ch.clone();
        let mut body = client_hello_body();
        assert!(parse_client_hello(&body, &mut reused));
        assert_eq!(reused, ch);
        body.truncate(40);
        assert!(!parse_client_hello(&body, &mut reused));
        assert_eq!(reused, ClientHello::default());
    }

    #[test]
    fn server_hello_contents() {
        let mut sh = ServerHello::default();
        assert!(parse_server_hello(&server_hello_body(), &mut sh));
        assert_eq!(sh.version, 0x0303);
        assert_eq!(sh.cipher, 0xc02b);
        assert_eq!(sh.extensions, vec![0xff01, 16, 11]);
        assert_eq!(sh.alpn(), Some("h2"));
        assert_eq!(sh.selected_version, None);
        // Parsed again into the same one: the same; a bad body clears it.
        let mut reused = sh.clone();
        assert!(parse_server_hello(&server_hello_body(), &mut reused));
        assert_eq!(reused, sh);
        assert!(!parse_server_hello(&server_hello_body()[..20], &mut reused));
        assert_eq!(reused, ServerHello::default());
        assert!(is_grease(0xdada) && !is_grease(0x0a1a));
    }
}
