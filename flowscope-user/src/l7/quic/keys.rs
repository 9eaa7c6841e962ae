//! Client Initial packet protection (RFC 9001 §5): keys derived from the
//! client's first Destination Connection ID with HKDF-SHA256, header
//! protection removed with AES-128-ECB, the payload opened with
//! AES-128-GCM. All cryptography comes from RustCrypto (`hkdf`, `sha2`,
//! `aes`, `aes-gcm`); this module only lays out the inputs.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes_gcm::{AeadInOut, Aes128Gcm};
use hkdf::Hkdf;
use sha2::Sha256;

use super::version::Protected;

/// Longest connection ID of the versions read here (RFC 9000 §17.2).
pub(super) const MAX_CID_BYTES: usize = 20;
/// AES-GCM tag length.
const TAG_BYTES: usize = 16;
/// Header protection sample length (RFC 9001 §5.4.2).
const SAMPLE_BYTES: usize = 16;

/// A connection ID kept in place: at most [`MAX_CID_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ConnectionId {
    bytes: [u8; MAX_CID_BYTES],
    len: u8,
}

impl ConnectionId {
    /// `cid`, cut to [`MAX_CID_BYTES`].
    pub(super) fn new(cid: &[u8]) -> Self {
        let cid = &cid[..cid.len().min(MAX_CID_BYTES)];
        let mut bytes = [0; MAX_CID_BYTES];
        bytes[..cid.len()].copy_from_slice(cid);
        Self {
            bytes,
            len: cid.len() as u8,
        }
    }

    /// Its bytes.
    pub(super) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// `HKDF-Expand-Label(secret, label, "", out.len())` (RFC 8446 §7.1).
fn expand_label(secret: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) {
    let len = (out.len() as u16).to_be_bytes();
    let label_len = [(b"tls13 ".len() + label.len()) as u8];
    // Outputs here are at most 32 bytes, far below HKDF-SHA256's limit.
    let _ = secret.expand_multi_info(&[&len, &label_len, b"tls13 ", label, &[0]], out);
}

/// The client's Initial keys for one version and connection ID.
pub(super) struct InitialKeys {
    version: u32,
    dcid: ConnectionId,
    packet: Aes128Gcm,
    iv: [u8; 12],
    header: Aes128,
}

impl std::fmt::Debug for InitialKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialKeys")
            .field("version", &self.version)
            .field("dcid", &self.dcid())
            .finish_non_exhaustive()
    }
}

/// The raw key material of [`InitialKeys::derive`], for the RFC test vectors.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Material {
    pub secret: [u8; 32],
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

/// The client Initial secret and the key, IV and header protection key
/// expanded from it.
pub(super) fn material(version: &Protected, dcid: &[u8]) -> Material {
    let initial = Hkdf::<Sha256>::new(Some(version.salt), dcid);
    let mut m = Material {
        secret: [0; 32],
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&initial, b"client in", &mut m.secret);
    // A 32-byte secret is a valid SHA-256 PRK.
    let Ok(client) = Hkdf::<Sha256>::from_prk(&m.secret) else {
        return m;
    };
    let (key, iv, hp): (&[u8], &[u8], &[u8]) = if version.v2_labels {
        (b"quicv2 key", b"quicv2 iv", b"quicv2 hp")
    } else {
        (b"quic key", b"quic iv", b"quic hp")
    };
    expand_label(&client, key, &mut m.key);
    expand_label(&client, iv, &mut m.iv);
    expand_label(&client, hp, &mut m.hp);
    m
}

/// Why a packet could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpenError {
    /// Too short for a packet number, a sample and a tag.
    Truncated,
    /// The AEAD tag did not verify (wrong keys, or a damaged packet).
    Authentication,
}

impl InitialKeys {
    /// Keys for `version` from the Destination Connection ID `dcid`
    /// (at most [`MAX_CID_BYTES`]; longer IDs are cut, and will not open).
    pub(super) fn derive(version: &Protected, dcid: &[u8]) -> Self {
        let dcid = ConnectionId::new(dcid);
        let m = material(version, dcid.as_slice());
        Self {
            version: version.number,
            dcid,
            packet: Aes128Gcm::new(&m.key.into()),
            iv: m.iv,
            header: Aes128::new(&m.hp.into()),
        }
    }

    /// The version these keys are for.
    pub(super) fn version(&self) -> u32 {
        self.version
    }

    /// The connection ID these keys come from.
    pub(super) fn dcid(&self) -> &[u8] {
        self.dcid.as_slice()
    }

    /// Removes header and payload protection from the long-header packet
    /// `packet`, whose packet number starts at `pn_offset` and which ends
    /// (Length field) at `packet.len()`. The unprotected header and the
    /// plaintext are written to `buf` (resized; nothing else allocates);
    /// returns where the plaintext sits in `buf`.
    ///
    /// The packet number is taken as sent: with no packet acknowledged yet
    /// (RFC 9000 §A.3), the truncated number is the full one.
    ///
    /// # Errors
    /// [`OpenError`] when the packet is too short or does not authenticate.
    pub(super) fn open(
        &self,
        packet: &[u8],
        pn_offset: usize,
        buf: &mut Vec<u8>,
    ) -> Result<std::ops::Range<usize>, OpenError> {
        // RFC 9001 §5.4.2: the sample starts 4 bytes after the packet
        // number's start, whatever the packet number's length.
        let sample = packet
            .get(pn_offset + 4..pn_offset + 4 + SAMPLE_BYTES)
            .ok_or(OpenError::Truncated)?;
        let mut mask = aes::Block::default();
        mask.copy_from_slice(sample);
        self.header.encrypt_block(&mut mask);
        let first = packet[0] ^ (mask[0] & 0x0f);
        let pn_len = usize::from(first & 0x03) + 1;
        let header_len = pn_offset + pn_len;
        if packet.len() < header_len + TAG_BYTES {
            return Err(OpenError::Truncated);
        }
        buf.clear();
        buf.extend_from_slice(packet);
        buf[0] = first;
        let mut number = 0u64;
        for (b, m) in buf[pn_offset..header_len].iter_mut().zip(&mask[1..]) {
            *b ^= m;
            number = number << 8 | u64::from(*b);
        }
        let mut nonce = self.iv;
        for (n, p) in nonce[4..].iter_mut().zip(number.to_be_bytes()) {
            *n ^= p;
        }
        let (header, rest) = buf.split_at_mut(header_len);
        let (payload, tag) = rest.split_at_mut(rest.len() - TAG_BYTES);
        let tag = aes_gcm::Tag::try_from(&*tag).map_err(|_| OpenError::Truncated)?;
        self.packet
            .decrypt_inout_detached(&nonce.into(), header, payload.into(), &tag)
            .map_err(|_| OpenError::Authentication)?;
        Ok(header_len..packet.len() - TAG_BYTES)
    }
}
