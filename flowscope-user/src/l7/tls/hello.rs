//! ClientHello and ServerHello contents needed for the record and the
//! fingerprints. The ServerHello's fixed part is read with `tls-parser`;
//! the ClientHello, read for every TLS and QUIC flow, by `tls-parser`'s
//! rules but into the lists of the parser's own [`ClientHello`]
//! (`tls-parser` returns new vectors, about ten allocations per hello).
//! Extensions are walked in wire order (type and length), and the few
//! whose contents matter are decoded here, by the same rules.

use tls_parser::parse_tls_handshake_server_hello;

use crate::l7::prefixed::prefixed;
use crate::l7::session::{Texts, push_lossy};

/// TLS extension numbers read here (and by the QUIC record).
pub(in crate::l7) mod ext {
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

/// Extension type `ty` as Suricata writes it for QUIC (its JA3 and its
/// extension list): every GREASE type as 64250, tls-parser's one `Grease`
/// type.
pub(in crate::l7) fn suricata_quic_type(ty: u16) -> u16 {
    if is_grease(ty) { 0xfafa } else { ty }
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
    /// The ciphers without GREASE, sorted (JA4's second part).
    pub sorted_ciphers: Vec<u16>,
    /// The extension types without GREASE, the server name and ALPN,
    /// sorted (JA4's third part).
    pub sorted_extensions: Vec<u16>,
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
            sorted_ciphers,
            sorted_extensions,
        } = self;
        *version = 0;
        for list in [
            ciphers,
            extensions,
            groups,
            signature_algorithms,
            supported_versions,
            sorted_ciphers,
            sorted_extensions,
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

/// A big-endian `u16` at the start of `b`, and the bytes after it.
fn be_u16(b: &[u8]) -> Option<(u16, &[u8])> {
    let (v, rest) = b.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*v), rest))
}

/// The big-endian `u16`s of `b` (a last odd byte left out).
fn u16s(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]))
}

/// `b`'s `u16`s into `list`, when `b` holds whole ones.
fn set_u16s(list: &mut Vec<u16>, b: &[u8]) -> Option<()> {
    b.len().is_multiple_of(2).then(|| {
        list.clear();
        list.extend(u16s(b));
    })
}

/// The first name of a `server_name` extension's list; `Some(None)` for an
/// empty list (or one whose first entry is cut).
fn first_server_name(data: &[u8]) -> Option<Option<&[u8]>> {
    if data.is_empty() {
        return Some(None);
    }
    let (list, _) = prefixed::<2>(data)?;
    Some(
        list.split_first()
            .and_then(|(_type, entry)| prefixed::<2>(entry))
            .map(|(name, _)| name),
    )
}

/// The protocol names of an ALPN extension, up to the first cut one.
fn alpn_names(data: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    let (mut list, _) = prefixed::<2>(data)?;
    Some(std::iter::from_fn(move || {
        let (name, rest) = prefixed::<1>(list)?;
        list = rest;
        Some(name)
    }))
}

/// Reads the contents of extension `ty` into `out`; `None` (and `out`
/// unchanged) when they do not parse, as `tls-parser` rejects them.
fn read_extension(out: &mut ClientHello, ty: u16, data: &[u8]) -> Option<()> {
    match ty {
        ext::SERVER_NAME => match first_server_name(data)? {
            Some(name) => out.names.set_lossy(SNI, name),
            None => out.names.unset(SNI),
        },
        ext::SUPPORTED_GROUPS => set_u16s(&mut out.groups, prefixed::<2>(data)?.0)?,
        ext::EC_POINT_FORMATS => {
            let (formats, _) = prefixed::<1>(data)?;
            out.point_formats.clear();
            out.point_formats.extend_from_slice(formats);
        }
        ext::SIGNATURE_ALGORITHMS => {
            let (algs, _) = prefixed::<2>(data)?;
            out.signature_algorithms.clear();
            out.signature_algorithms.extend(u16s(algs));
        }
        ext::ALPN => out.names.set_list(ALPN_AT, alpn_names(data)?, push_lossy),
        ext::SUPPORTED_VERSIONS if data.len() == 2 => {
            set_u16s(&mut out.supported_versions, data)?;
        }
        // A one-byte list length (not checked, as tls-parser does not).
        ext::SUPPORTED_VERSIONS => set_u16s(&mut out.supported_versions, data.get(1..)?)?,
        _ => {}
    }
    Some(())
}

/// Parses a ClientHello body (after the 4-byte handshake header): over TCP
/// from the record layer, over QUIC from the reassembled CRYPTO stream.
/// Written into `out`, whose lists keep their room (a parser keeps one
/// for its flows); false, `out` cleared, when the body does not parse.
/// The rules are `tls-parser`'s: a session ID of at most 32 bytes, whole
/// cipher suites, the extension block optional (absent when cut).
pub(in crate::l7) fn parse_client_hello(body: &[u8], out: &mut ClientHello) -> bool {
    out.clear();
    if read_client_hello(body, out).is_none() {
        return false;
    }
    let ClientHello {
        ciphers,
        extensions,
        sorted_ciphers,
        sorted_extensions,
        ..
    } = out;
    sorted_ciphers.extend(ciphers.iter().copied().filter(|&c| !is_grease(c)));
    sorted_ciphers.sort_unstable();
    sorted_extensions.extend(
        extensions
            .iter()
            .copied()
            .filter(|&e| !is_grease(e) && e != ext::SERVER_NAME && e != ext::ALPN),
    );
    sorted_extensions.sort_unstable();
    true
}

/// [`parse_client_hello`]'s reading: everything that can fail is checked
/// before `out` is written.
fn read_client_hello(body: &[u8], out: &mut ClientHello) -> Option<()> {
    let (version, rest) = be_u16(body)?;
    let (session_id, rest) = prefixed::<1>(rest.get(32..)?)?;
    if session_id.len() > 32 {
        return None;
    }
    let (ciphers, rest) = prefixed::<2>(rest)?;
    if !ciphers.len().is_multiple_of(2) {
        return None;
    }
    let (_compression, rest) = prefixed::<1>(rest)?;
    out.names.reset(ALPN_AT + 1);
    out.version = version;
    out.ciphers.extend(u16s(ciphers));
    out.session_id.extend_from_slice(session_id);
    let block = prefixed::<2>(rest).map_or(&[][..], |(block, _)| block);
    for (ty, whole) in walk_extensions(block) {
        out.extensions.push(ty);
        let data = &whole[4..];
        if matches!(
            ty,
            ext::QUIC_TRANSPORT_PARAMETERS | ext::QUIC_TRANSPORT_PARAMETERS_DRAFT
        ) {
            out.transport_parameters.clear();
            out.transport_parameters.extend_from_slice(data);
        } else {
            // Contents that do not parse are left out, the hello kept.
            let _ = read_extension(out, ty, data);
        }
    }
    Some(())
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
            out.selected_version = be_u16(&whole[4..]).map(|(v, _)| v);
        } else if ty == ext::KEY_SHARE {
            // The server's entry: its group first.
            out.key_share_group = be_u16(&whole[4..]).map(|(g, _)| g);
        } else if ty == ext::ALPN
            && let Some(mut protos) = alpn_names(&whole[4..])
        {
            out.alpn.clear();
            out.has_alpn = match protos.next() {
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

    /// The hello as tls-parser reads it (what `parse_client_hello` did
    /// with it before reading the hello itself): the oracle of
    /// [`the_hello_is_read_by_tls_parsers_rules`].
    fn by_tls_parser(body: &[u8]) -> Option<ClientHello> {
        use tls_parser::{TlsExtension, parse_tls_extension, parse_tls_handshake_client_hello};
        let (_, ch) = parse_tls_handshake_client_hello(body).ok()?;
        let mut out = ClientHello::default();
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
                out.transport_parameters.extend_from_slice(&whole[4..]);
                continue;
            }
            if !matches!(ty, 0 | 10 | 11 | 13 | 16 | 43) {
                continue;
            }
            match parse_tls_extension(whole).map(|(_, e)| e) {
                Ok(TlsExtension::SNI(names)) => match names.first() {
                    Some((_, name)) => out.names.set_lossy(SNI, name),
                    None => out.names.unset(SNI),
                },
                Ok(TlsExtension::EllipticCurves(groups)) => {
                    out.groups = groups.iter().map(|g| g.0).collect();
                }
                Ok(TlsExtension::EcPointFormats(formats)) => out.point_formats = formats.to_vec(),
                Ok(TlsExtension::SignatureAlgorithms(algs)) => out.signature_algorithms = algs,
                Ok(TlsExtension::ALPN(protos)) => out.names.set_list(ALPN_AT, protos, push_lossy),
                Ok(TlsExtension::SupportedVersions(versions)) => {
                    out.supported_versions = versions.iter().map(|v| v.0).collect();
                }
                _ => {}
            }
        }
        Some(out)
    }

    /// Ours without JA4's sorted lists (not tls-parser's).
    fn read_lists(body: &[u8]) -> Option<ClientHello> {
        parsed(body).map(|mut ch| {
            ch.sorted_ciphers.clear();
            ch.sorted_extensions.clear();
            ch
        })
    }

    #[test]
    fn the_hello_is_read_by_tls_parsers_rules() {
        let whole = client_hello_body();
        // Each extension's contents cut or changed, the lengths around them
        // too: every one-byte change of every byte, and every truncation.
        let mut bodies = vec![whole.clone()];
        for at in 0..whole.len() {
            bodies.push(whole[..at].to_vec());
            for v in [0x00, 0x01, 0x02, 0x03, 0x20, 0x21, 0xff] {
                let mut b = whole.clone();
                b[at] = v;
                bodies.push(b);
            }
            let mut b = whole.clone();
            b[at] = b[at].wrapping_add(1);
            bodies.push(b);
        }
        // A server-form supported_versions, odd and empty lists, a second
        // server_name whose list is empty.
        for ext in [
            &b"\x00\x2b\x00\x02\x03\x04"[..],
            b"\x00\x2b\x00\x03\x02\x03\x04",
            b"\x00\x2b\x00\x00",
            b"\x00\x0a\x00\x03\x00\x01\x17",
            b"\x00\x00\x00\x00",
            b"\x00\x00\x00\x02\x00\x00",
        ] {
            let mut b = whole.clone();
            let at = 2 + 32 + 1 + 10 + 2;
            let len = u16::from_be_bytes([b[at], b[at + 1]]) + ext.len() as u16;
            b[at..at + 2].copy_from_slice(&len.to_be_bytes());
            b.extend_from_slice(ext);
            bodies.push(b);
        }
        let mut read = 0;
        for body in &bodies {
            let want = by_tls_parser(body);
            read += usize::from(want.is_some());
            assert_eq!(read_lists(body), want, "{body:02x?}");
        }
        assert!(read > bodies.len() / 2, "{read} of {} read", bodies.len());
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
