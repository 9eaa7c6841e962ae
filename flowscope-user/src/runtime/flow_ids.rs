//! [`FlowIds`]: each flow's Community ID, computed once per flow by the
//! worker that owns the flow, for every record of the flow.
//!
//! A flow whose only record is its flow record gets its ID computed when
//! that record ends and is never stored. A flow that has L7 or anomaly
//! records first keeps its ID here from the first of them until its final
//! flow record (an interim record keeps it too). ICMP flows need the type
//! and code of their first packet, which the key does not hold; those are
//! noted when the first packet arrives. At most one entry of each kind per
//! flow in the worker's table.

use std::collections::HashMap;

use crate::community_id::{CommunityId, CommunityIdValue};
use crate::extract::FiveTupleKey;
use crate::extractor::L4Proto;
use crate::tracker::{EndReason, FlowEvent, FlowRecord};

/// Community IDs by flow ID. See the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct FlowIds {
    ids: HashMap<u64, CommunityIdValue, ahash::RandomState>,
    icmp_first: HashMap<u64, (u8, u8), ahash::RandomState>,
}

impl FlowIds {
    /// Notes the type and code of an ICMP flow's first packet.
    #[inline]
    pub(super) fn observe(&mut self, event: &FlowEvent<'_, FiveTupleKey>) {
        if let FlowEvent::Packet {
            flow,
            extracted,
            view,
            ..
        } = event
            && matches!(flow.l4, L4Proto::Icmp | L4Proto::IcmpV6)
            && flow.packets() == 1
        {
            let at = extracted.payload_offset as usize;
            if let Some(&[t, c]) = view.frame.get(at..).and_then(|b| b.first_chunk::<2>()) {
                self.icmp_first.entry(flow.flow_id).or_insert((t, c));
            }
        }
    }

    fn compute(&self, flow: &FlowRecord<FiveTupleKey>) -> CommunityIdValue {
        let icmp = self.icmp_first.get(&flow.flow_id).copied();
        CommunityId::default().for_key(&flow.key, flow.initiator, icmp)
    }

    /// The ID for a record of `flow` that is not its flow record.
    pub(super) fn get(&mut self, flow: &FlowRecord<FiveTupleKey>) -> CommunityIdValue {
        if let Some(id) = self.ids.get(&flow.flow_id) {
            return *id;
        }
        let id = self.compute(flow);
        self.ids.insert(flow.flow_id, id);
        id
    }

    /// The ID for `flow`'s record that ended for `reason`; forgotten unless
    /// the flow goes on (active timeout).
    pub(super) fn ended(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
    ) -> CommunityIdValue {
        if reason == EndReason::ActiveTimeout {
            return self.get(flow);
        }
        let id = match self.ids.remove(&flow.flow_id) {
            Some(id) => id,
            None => self.compute(flow),
        };
        self.icmp_first.remove(&flow.flow_id);
        id
    }
}
