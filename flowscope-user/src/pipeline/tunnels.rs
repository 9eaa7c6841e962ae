//! The carriers of the flows taken out of tunnels: what a flow record needs
//! to name its tunnel (Zeek's `tunnel_parents`, EVE's `tunnel`) when it
//! ends, possibly after the carrier's own record ended.
//!
//! An entry lives while its carrier's record or a record of a flow inside
//! it does, so there are never more entries than live flows. Entries are
//! made and dropped when flows start and end, never per packet.

use std::collections::HashMap;

use crate::extract::FiveTupleKey;
use crate::extractor::{Encap, L4Proto, Orientation, Tunnelled};
use crate::tracker::{EndReason, FlowRecord, InTunnel};

/// The tunnel a flow was taken out of, as the flow's records name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carrier {
    /// The carrier's flow ID.
    pub flow_id: u64,
    /// The carrier's key.
    pub key: FiveTupleKey,
    /// Orientation, relative to the key, of the carrier's initiator.
    pub initiator: Orientation,
    /// The carrier's transport protocol.
    pub l4: L4Proto,
    /// The tunnel, and how deep inside it the flow was.
    pub tunnel: Tunnelled,
}

struct Entry {
    key: FiveTupleKey,
    initiator: Orientation,
    l4: L4Proto,
    encap: Encap,
    /// Live records of flows inside.
    inner: u32,
    /// The carrier's own record is live.
    live: bool,
}

/// Carriers by flow ID.
#[derive(Default)]
pub(super) struct Tunnels {
    carriers: HashMap<u64, Entry, ahash::RandomState>,
}

impl Tunnels {
    /// A record started: a record of a flow inside a tunnel, or the
    /// continuation of a carrier's record.
    pub(super) fn started(&mut self, flow: &FlowRecord<FiveTupleKey>) {
        if let Some(InTunnel { parent, .. }) = flow.tunnel
            && let Some(e) = self.carriers.get_mut(&parent)
        {
            e.inner += 1;
        }
        self.carrier_found(flow);
    }

    /// `flow` carries a tunnel (its record's first tunnelled packet came).
    pub(super) fn carrier_found(&mut self, flow: &FlowRecord<FiveTupleKey>) {
        let Some(encap) = flow.carries else {
            return;
        };
        let e = self.carriers.entry(flow.flow_id).or_insert(Entry {
            key: flow.key,
            initiator: flow.initiator,
            l4: flow.l4,
            encap,
            inner: 0,
            live: true,
        });
        e.live = true;
    }

    /// A record ended: the carrier it names (a flow inside a tunnel); the
    /// entries nothing live refers to any more are dropped.
    pub(super) fn ended(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
    ) -> Option<Carrier> {
        let last = reason != EndReason::ActiveTimeout;
        if flow.carries.is_some()
            && let Some(e) = self.carriers.get_mut(&flow.flow_id)
        {
            e.live &= !last;
            self.drop_unused(flow.flow_id);
        }
        let InTunnel { parent, tunnel } = flow.tunnel?;
        let e = self.carriers.get_mut(&parent)?;
        if last {
            e.inner = e.inner.saturating_sub(1);
        }
        let carrier = Carrier {
            flow_id: parent,
            key: e.key,
            initiator: e.initiator,
            l4: e.l4,
            tunnel: Tunnelled {
                encap: e.encap,
                ..tunnel
            },
        };
        self.drop_unused(parent);
        Some(carrier)
    }

    fn drop_unused(&mut self, id: u64) {
        if self
            .carriers
            .get(&id)
            .is_some_and(|e| !e.live && e.inner == 0)
        {
            self.carriers.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::extract::test_frames::{eth, ipv4, ipv6, udp};
    use crate::extract::{AutoDetectEncap, FiveTuple, IPPROTO_GRE};
    use crate::l7::L7Record;
    use crate::pipeline::{FlowSummary, Pipeline, PipelineConfig, PipelineSink};
    use crate::view::{LinkType, PacketView, Timestamp};
    use flowscope_common::frame::{ETH_P_IPV4, ETH_P_IPV6};

    #[derive(Default)]
    struct Ended(
        Vec<(FlowRecord<FiveTupleKey>, EndReason, Option<Carrier>)>,
        usize,
    );

    impl PipelineSink<FiveTupleKey> for Ended {
        fn event(&mut self, event: &crate::tracker::FlowEvent<'_, FiveTupleKey>) {
            if matches!(event, crate::tracker::FlowEvent::Tunnel { .. }) {
                self.1 += 1;
            }
        }

        fn l7(&mut self, _: &FlowRecord<FiveTupleKey>, _: Timestamp, _: L7Record) {}

        fn flow_ended(
            &mut self,
            flow: &FlowRecord<FiveTupleKey>,
            reason: EndReason,
            _: Option<&FlowSummary>,
            carrier: Option<&Carrier>,
        ) {
            self.0.push((*flow, reason, carrier.copied()));
        }
    }

    /// IPv6 UDP inside GRE inside IPv4 (192.0.2.1 → 198.51.100.9).
    fn gre_frame() -> Vec<u8> {
        let mut gre = vec![0, 0];
        gre.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
        gre.extend_from_slice(&ipv6(17, &udp()));
        let mut f = eth(&[], ETH_P_IPV4);
        f.extend_from_slice(&ipv4(IPPROTO_GRE, &[], 0, &gre));
        f
    }

    /// A packet counts once in the tracker's totals and in two flows; the
    /// flow inside names its carrier when it ends after the carrier did,
    /// and nothing is remembered after.
    #[test]
    fn the_flow_inside_names_a_carrier_that_ended_first() {
        let mut config = PipelineConfig::default();
        config.tracker.idle_timeout_other = Duration::from_secs(30);
        config.tracker.idle_timeout_udp = Duration::from_secs(60);
        let mut p = Pipeline::new(AutoDetectEncap::new(FiveTuple::bidirectional()), config);
        let mut sink = Ended::default();
        let frame = gre_frame();
        for s in [1, 2] {
            let view = PacketView {
                frame: &frame,
                timestamp: Timestamp(s * 1_000_000_000),
                link: LinkType::Ethernet,
                orig_len: frame.len() as u32,
                hint: None,
            };
            p.process(view, &mut sink);
        }
        assert_eq!(sink.1, 1, "one tunnel found");
        let t = p.tracker().counters();
        assert_eq!((t.packets, t.packets_matched), (2, 2));
        assert_eq!(p.tracker().len(), 2, "the carrier and the flow inside");
        p.advance(Timestamp(40_000_000_000), &mut sink);
        let [(carrier, reason, None)] = sink.0.as_slice() else {
            panic!("the carrier ends first: {:?}", sink.0)
        };
        let carrier = *carrier;
        assert_eq!(*reason, EndReason::IdleTimeout);
        assert_eq!((carrier.carries, carrier.tunnel), (Some(Encap::Gre), None));
        assert_eq!(
            (carrier.l4, carrier.packets()),
            (L4Proto::Other(IPPROTO_GRE), 2)
        );
        assert_eq!(p.core.tunnels.carriers.len(), 1, "kept for the flow inside");
        p.advance(Timestamp(100_000_000_000), &mut sink);
        let (inner, _, named) = sink.0[1];
        assert_eq!((inner.l4, inner.packets()), (L4Proto::Udp, 2));
        let named = named.expect("the carrier named");
        assert_eq!(named.flow_id, carrier.flow_id);
        assert_eq!(named.key, carrier.key);
        assert_eq!(
            named.tunnel,
            Tunnelled {
                encap: Encap::Gre,
                depth: 1
            }
        );
        assert_eq!(p.core.tunnels.carriers.len(), 0, "nothing remembered");
    }
}
