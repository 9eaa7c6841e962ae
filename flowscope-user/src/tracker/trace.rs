//! `tracing` events on the `flowscope.flow` and `flowscope.anomaly`
//! targets; empty functions without the `tracing` feature.

use super::{AnomalyKind, EndReason, FlowRecord};

/// A flow record started (target `flowscope.flow`, debug).
#[inline]
pub(crate) fn trace_flow_started<K>(flow: &FlowRecord<K>) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "flowscope.flow", flow_id = flow.flow_id, l4 = flow.l4.label(), "flow started");
    #[cfg(not(feature = "tracing"))]
    let _ = flow;
}

/// A flow record ended (target `flowscope.flow`, debug).
#[inline]
pub(crate) fn trace_flow_ended<K>(flow: &FlowRecord<K>, reason: EndReason) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "flowscope.flow",
        flow_id = flow.flow_id,
        l4 = flow.l4.label(),
        reason = reason.label(),
        packets = flow.packets(),
        bytes = flow.bytes(),
        history = flow.history.as_str(),
        "flow ended"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (flow, reason);
}

/// An anomaly (target `flowscope.anomaly`, warn).
#[inline]
pub(crate) fn trace_anomaly(flow_id: Option<u64>, kind: AnomalyKind) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "flowscope.anomaly", flow_id, kind = kind.label(), "anomaly");
    #[cfg(not(feature = "tracing"))]
    let _ = (flow_id, kind);
}
