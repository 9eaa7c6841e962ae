//! The KEXINIT message (RFC 4253 §7.1): the algorithm name-lists a side
//! offers, its HASSH, and what two sides' lists agree on.

use super::SshAlgorithms;
use crate::l7::fingerprint::Md5Fingerprint;
use crate::session::Side;

/// The name-lists of one KEXINIT, each as sent (comma-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Kexinit {
    kex: String,
    host_key: String,
    /// Encryption, client to server then server to client.
    encryption: [String; 2],
    /// MAC, likewise.
    mac: [String; 2],
    /// Compression, likewise.
    compression: [String; 2],
}

/// Reads one `name-list` (RFC 4251 §5) at the start of `b`.
fn name_list<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, rest) = b.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    let list = rest.get(..len)?;
    *b = &rest[len..];
    Some(list)
}

impl Kexinit {
    /// Parses a KEXINIT payload after its message number: the 16-byte
    /// cookie, ten name-lists, the `first_kex_packet_follows` boolean and a
    /// reserved `uint32`.
    pub(super) fn parse(payload: &[u8]) -> Option<Self> {
        let mut b = payload.get(16..)?;
        let mut lists: [&[u8]; 10] = [&[]; 10];
        for list in &mut lists {
            *list = name_list(&mut b)?;
        }
        if b.len() < 5 {
            return None;
        }
        let text = |i: usize| String::from_utf8_lossy(lists[i]).into_owned();
        Some(Self {
            kex: text(0),
            host_key: text(1),
            encryption: [text(2), text(3)],
            mac: [text(4), text(5)],
            compression: [text(6), text(7)],
        })
    }

    /// HASSH when sent by the client (its client-to-server lists),
    /// HASSH-server when sent by the server (its server-to-client lists).
    pub(super) fn hassh(&self, side: Side) -> Md5Fingerprint {
        let d = side.index();
        Md5Fingerprint::of(format!(
            "{};{};{};{}",
            self.kex, self.encryption[d], self.mac[d], self.compression[d]
        ))
    }
}

/// The first of the client's algorithms the server also offers, or Zeek's
/// `Algorithm negotiation failed`.
fn first_common(client: &str, server: &str) -> String {
    client
        .split(',')
        .find(|a| server.split(',').any(|b| a == &b))
        .unwrap_or("Algorithm negotiation failed")
        .to_owned()
}

/// [`first_common`] per direction, written once when both agree.
fn both_directions(client: &[String; 2], server: &[String; 2]) -> String {
    let to_server = first_common(&client[0], &server[0]);
    let to_client = first_common(&client[1], &server[1]);
    if to_server == to_client {
        to_server
    } else {
        format!("To server: {to_server}, to client: {to_client}")
    }
}

/// What the client's and the server's KEXINITs agree on.
pub(super) fn negotiate(client: &Kexinit, server: &Kexinit) -> SshAlgorithms {
    SshAlgorithms {
        kex: first_common(&client.kex, &server.kex),
        host_key: first_common(&client.host_key, &server.host_key),
        cipher: both_directions(&client.encryption, &server.encryption),
        mac: both_directions(&client.mac, &server.mac),
        compression: both_directions(&client.compression, &server.compression),
    }
}
