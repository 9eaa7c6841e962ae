//! [`FlowLabel`]: any key plus the IPv6 flow label (RFC 6437).

use super::parse;
use crate::extractor::{Extracted, FlowExtractor, Unmatched};
use crate::view::PacketView;

/// Adds the IPv6 flow label of the outermost IP header to `extractor`'s key
/// (IPv4: 0). Each endpoint chooses its own label, so the two directions of
/// a conversation usually get different keys even with a bidirectional inner
/// extractor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowLabel<E> {
    /// The wrapped extractor.
    pub extractor: E,
}

impl<E> FlowLabel<E> {
    /// Wraps `extractor`.
    pub fn new(extractor: E) -> Self {
        Self { extractor }
    }
}

/// Key of [`FlowLabel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowLabelKey<K> {
    /// The wrapped extractor's key.
    pub inner: K,
    /// The 20-bit flow label, 0 for IPv4.
    pub label: u32,
}

impl<E: FlowExtractor> FlowExtractor for FlowLabel<E> {
    type Key = FlowLabelKey<E::Key>;

    fn extract(&self, view: PacketView<'_>) -> Result<Extracted<Self::Key>, Unmatched> {
        let e = self.extractor.extract(view)?;
        let link = parse::link(view.frame, view.link)?;
        let label =
            parse::ip(view.frame, link.l3_offset, link.ethertype).map_or(0, |ip| ip.flow_label);
        Ok(Extracted {
            key: FlowLabelKey {
                inner: e.key,
                label,
            },
            orientation: e.orientation,
            l4: e.l4,
            tcp: e.tcp,
            vlan: e.vlan,
            payload_offset: e.payload_offset,
            payload_len: e.payload_len,
            ip_len: e.ip_len,
            fragment: e.fragment,
            tunnel: e.tunnel,
        })
    }
}
