//! [`IcmpFirst`]: the type and code of each ICMP flow's first packet, by
//! flow ID. An ICMP flow's Community ID needs them and its key does not hold
//! them; the worker notes them when the first packet arrives and hands them
//! on with the flow's record. At most one entry per ICMP flow in the
//! worker's table.

use std::collections::HashMap;

use crate::extract::FiveTupleKey;
use crate::extractor::L4Proto;
use crate::tracker::{EndReason, FlowEvent, FlowRecord};

/// ICMP type and code by flow ID. See the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct IcmpFirst(HashMap<u64, (u8, u8), ahash::RandomState>);

impl IcmpFirst {
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
                self.0.entry(flow.flow_id).or_insert((t, c));
            }
        }
    }

    /// The first packet's type and code of a flow whose record ended for
    /// `reason`; forgotten unless the flow lives on (active timeout).
    pub(super) fn take(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
    ) -> Option<(u8, u8)> {
        if !matches!(flow.l4, L4Proto::Icmp | L4Proto::IcmpV6) {
            return None;
        }
        if reason == EndReason::ActiveTimeout {
            self.0.get(&flow.flow_id).copied()
        } else {
            self.0.remove(&flow.flow_id)
        }
    }
}
