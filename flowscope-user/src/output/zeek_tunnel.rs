//! Zeek `tunnel.log` records (with `--decap`), in the format of the
//! conn.log writer, joined to conn.log by `uid`:
//! - `Tunnel::DISCOVER` when a flow is first seen carrying a tunnel, with
//!   the carrier's `uid` and endpoints (ports 0 for GRE and IP-in-IP, whose
//!   carrier has none); every flow taken out of it names that `uid` in its
//!   conn.log `tunnel_parents`.
//! - `Tunnel::CLOSE` when the record of a carrier over UDP ends, as Zeek
//!   logs it when the carrier's connection is removed.
//! - `Tunnel::EXPIRE` when a GRE or IP-in-IP carrier ends idle, as Zeek
//!   expires a tunnel no new connection used for a while (ours: the
//!   carrier's idle timeout, where Zeek's is `Tunnel::expiration_interval`,
//!   an hour); nothing when the run ends, as Zeek writes nothing then.
//!
//! `tunnel_type` is Zeek's: `Tunnel::IP`, `GRE`, `VXLAN`, `GENEVE`,
//! `GTPv1`, `TEREDO`.

use std::io::{self, Write};

use super::record::FlowHeader;
use super::zeek::Value;
use crate::extractor::Encap;
use crate::tracker::EndReason;
use crate::view::Timestamp;

/// `#fields` after `ts`, `uid` and `id` of Zeek's tunnel.log.
const FIELDS: [&str; 2] = ["tunnel_type", "action"];

/// `#types` of those fields.
const TYPES: [&str; 2] = ["enum", "enum"];

super::zeek::log_kind!(Tunnel, "tunnel", ZeekTunnelWriter);

/// What happened to a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelAction {
    /// First seen.
    Discover,
    /// Its carrier's connection ended.
    Close,
    /// Unused for its timeout.
    Expire,
}

impl TunnelAction {
    /// What the end of a carrier's record (for `reason`) is to its tunnel:
    /// `None` for an interim record, or a GRE/IP-in-IP carrier ended other
    /// than idle.
    pub fn of_end(encap: Encap, reason: EndReason) -> Option<Self> {
        match reason {
            EndReason::ActiveTimeout => None,
            _ if encap.over_udp() => Some(Self::Close),
            EndReason::IdleTimeout => Some(Self::Expire),
            _ => None,
        }
    }

    fn zeek(self) -> &'static str {
        match self {
            Self::Discover => "Tunnel::DISCOVER",
            Self::Close => "Tunnel::CLOSE",
            Self::Expire => "Tunnel::EXPIRE",
        }
    }
}

/// Zeek's `Tunnel::Type` of `encap`.
fn tunnel_type(encap: Encap) -> &'static str {
    match encap {
        Encap::IpInIp => "Tunnel::IP",
        Encap::Gre => "Tunnel::GRE",
        Encap::Vxlan => "Tunnel::VXLAN",
        Encap::Geneve => "Tunnel::GENEVE",
        Encap::GtpU => "Tunnel::GTPv1",
        Encap::Teredo => "Tunnel::TEREDO",
        Encap::Vlan | Encap::Mpls => "Tunnel::NONE",
    }
}

impl<W: Write> ZeekTunnelWriter<W> {
    /// Writes what happened at `ts` to the tunnel `encap` that `carrier`'s
    /// flow carries.
    ///
    /// # Errors
    ///
    /// The underlying writer's I/O error.
    pub fn write_tunnel(
        &mut self,
        carrier: &FlowHeader,
        encap: Encap,
        ts: Timestamp,
        action: TunnelAction,
    ) -> io::Result<()> {
        let rest: [Value<'_>; FIELDS.len()] =
            [Value::Str(tunnel_type(encap)), Value::Str(action.zeek())];
        self.write_conn(ts, carrier, &rest)
    }
}
