//! [`FlowIdCache`]: each flow's Community ID and [digest](FlowHeader::digest)
//! (EVE's `flow_id`), computed once per flow by the writer stage for every
//! EVE record of the flow.
//!
//! A flow whose only record is its flow record gets its IDs computed for
//! that record and never stored. A flow with L7 or anomaly records first
//! keeps its IDs here from the first of them until its final flow record
//! (an interim record keeps them too); the writer sees each flow's records
//! in order, so an entry lives only while its flow has records to come.

use std::collections::HashMap;

use super::record::{FlowHeader, Record};
use crate::community_id::{CommunityId, CommunityIdValue};
use crate::tracker::EndReason;

/// What every EVE record of one flow carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowIds {
    /// Its Community ID.
    pub community: CommunityIdValue,
    /// Its [`FlowHeader::digest`].
    pub digest: [u8; 32],
}

impl FlowIds {
    /// Computes the IDs of `h`'s flow.
    pub fn of(h: &FlowHeader) -> Self {
        Self {
            community: CommunityId::default().for_key(&h.key, h.initiator),
            digest: h.digest(),
        }
    }
}

/// Flow IDs by the tracker's flow ID. See the [module docs](self).
#[derive(Debug)]
pub(super) struct FlowIdCache(HashMap<u64, FlowIds, ahash::RandomState>);

/// Flows with records to come the cache holds without growing: as flows
/// come and go, a map that only just holds them grows once more when the
/// places removed entries leave run out; from this size on it reuses them.
pub(super) const FLOWS_WITHOUT_GROWING: usize = 1024;

impl Default for FlowIdCache {
    fn default() -> Self {
        Self(HashMap::with_capacity_and_hasher(
            FLOWS_WITHOUT_GROWING,
            ahash::RandomState::default(),
        ))
    }
}

impl FlowIdCache {
    /// The IDs of `record`'s flow (`None` for records of no flow).
    pub(super) fn of(&mut self, record: &Record) -> Option<FlowIds> {
        match record {
            Record::Flow(f) => {
                let h = FlowHeader::of(&f.flow);
                Some(if f.reason == EndReason::ActiveTimeout {
                    self.kept(&h)
                } else {
                    match self.0.remove(&h.flow_id) {
                        Some(v) => v,
                        None => FlowIds::of(&h),
                    }
                })
            }
            Record::L7 { header, .. } | Record::Anomaly { header, .. } => Some(self.kept(header)),
            Record::TunnelFound { .. } | Record::Interval(_) => None,
        }
    }

    /// The IDs of a flow with records to come, kept until its flow record.
    fn kept(&mut self, h: &FlowHeader) -> FlowIds {
        *self.0.entry(h.flow_id).or_insert_with(|| FlowIds::of(h))
    }
}
