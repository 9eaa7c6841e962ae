//! [`CommunityIds`]: each flow's Community ID, computed once per flow by
//! the writer stage for every EVE record of the flow.
//!
//! A flow whose only record is its flow record gets its ID computed for
//! that record and never stored. A flow with L7 or anomaly records first
//! keeps its ID here from the first of them until its final flow record
//! (an interim record keeps it too); the writer sees each flow's records in
//! order, so an entry lives only while its flow has records to come.

use std::collections::HashMap;

use super::record::{FlowHeader, Record};
use crate::community_id::{CommunityId, CommunityIdValue};
use crate::extract::FiveTupleKey;
use crate::extractor::Orientation;
use crate::tracker::EndReason;

/// Community IDs by flow ID. See the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct CommunityIds(HashMap<u64, CommunityIdValue, ahash::RandomState>);

fn compute(key: &FiveTupleKey, initiator: Orientation) -> CommunityIdValue {
    CommunityId::default().for_key(key, initiator)
}

impl CommunityIds {
    /// The ID of `record`'s flow (`None` for records of no flow).
    pub(super) fn of(&mut self, record: &Record) -> Option<CommunityIdValue> {
        match record {
            Record::Flow(f) => {
                let (flow, id) = (&f.flow, f.flow.flow_id);
                Some(if f.reason == EndReason::ActiveTimeout {
                    *self
                        .0
                        .entry(id)
                        .or_insert_with(|| compute(&flow.key, flow.initiator))
                } else {
                    match self.0.remove(&id) {
                        Some(v) => v,
                        None => compute(&flow.key, flow.initiator),
                    }
                })
            }
            Record::L7 { header, .. } | Record::Anomaly { header, .. } => Some(self.kept(header)),
            Record::TunnelFound { .. } | Record::Interval(_) => None,
        }
    }

    /// The ID of a flow with records to come, kept until its flow record.
    fn kept(&mut self, h: &FlowHeader) -> CommunityIdValue {
        *self
            .0
            .entry(h.flow_id)
            .or_insert_with(|| compute(&h.key, h.initiator))
    }
}
