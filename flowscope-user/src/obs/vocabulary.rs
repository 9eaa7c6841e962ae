//! The tracker's metric families (names in [`super`]) and how
//! [`TrackerCounters`] maps onto them.

use super::sink::{Family, MetricSink};
use super::*;
use crate::extractor::Unmatched;
use crate::tracker::{AnomalyKind, EndReason, FlowSide};

const FLOWS_CREATED: Family = Family::counter(
    METRIC_FLOWS_CREATED,
    "Flow records created, per transport protocol.",
);
const FLOWS_ENDED: Family = Family::counter(METRIC_FLOWS_ENDED, "Flow records ended, per reason.");
const FLOWS_ACTIVE: Family = Family::gauge(METRIC_FLOWS_ACTIVE, "Flows in the flow tables now.");
const PACKETS_UNMATCHED: Family = Family::counter(
    METRIC_PACKETS_UNMATCHED,
    "Packets counted in no flow, per reason.",
);
const ANOMALIES: Family = Family::counter(
    METRIC_ANOMALIES,
    "Anomalies the flow tracker and reassembly met, per kind.",
);
const BYTES: Family = Family::counter(
    METRIC_BYTES,
    "Frame bytes counted in flows, per side (initiator or responder).",
);
const REASSEMBLY_DROPPED_OOO: Family = Family::counter(
    METRIC_REASSEMBLY_DROPPED_OOO,
    "Out-of-order TCP segments the reassembler dropped, per side.",
);
const REASSEMBLY_BYTES_DROPPED_OVERSIZE: Family = Family::counter(
    METRIC_REASSEMBLY_BYTES_DROPPED_OVERSIZE,
    "Bytes the reassembler dropped beyond its buffer cap, per side.",
);
const REASSEMBLY_BYPASSED_BYTES: Family = Family::counter(
    METRIC_REASSEMBLY_BYPASSED_BYTES,
    "TCP payload bytes neither reassembled nor parsed (past the stream depth, or after the flow's parser stopped), per side.",
);
const REASSEMBLER_HIGH_WATERMARK: Family = Family::histogram(
    METRIC_REASSEMBLER_HIGH_WATERMARK,
    "Peak out-of-order bytes the reassembler held for one flow, per ended flow and side.",
    1,
);
const FLOW_DURATION_SECONDS: Family = Family::histogram(
    METRIC_FLOW_DURATION_SECONDS,
    "Duration of each ended flow record.",
    1_000_000_000,
);
const FLOW_PACKETS: Family =
    Family::histogram(METRIC_FLOW_PACKETS, "Packets of each ended flow record.", 1);
const FLOW_BYTES: Family = Family::histogram(
    METRIC_FLOW_BYTES,
    "Frame bytes of each ended flow record.",
    1,
);

impl TrackerCounters {
    /// Writes every tracker family to `sink`, in a fixed order, every label
    /// value included (zeros too), so the series never change.
    pub fn visit(&self, sink: &mut impl MetricSink) {
        for (l4, v) in Self::L4_LABELS.iter().zip(self.flows_created) {
            sink.counter(&FLOWS_CREATED, &[("l4", l4)], v);
        }
        for r in EndReason::ALL {
            sink.counter(&FLOWS_ENDED, &[("reason", r.label())], self.ended(r));
        }
        sink.gauge(&FLOWS_ACTIVE, &[], self.flows_active);
        for (r, v) in Unmatched::ALL.iter().zip(self.packets_unmatched) {
            sink.counter(&PACKETS_UNMATCHED, &[("reason", r.label())], v);
        }
        for k in AnomalyKind::ALL {
            sink.counter(&ANOMALIES, &[("kind", k.label())], self.anomaly(k));
        }
        let per_side = [
            (&BYTES, &self.bytes),
            (&REASSEMBLY_DROPPED_OOO, &self.reassembly_dropped_ooo),
            (
                &REASSEMBLY_BYTES_DROPPED_OVERSIZE,
                &self.reassembly_bytes_dropped_oversize,
            ),
            (&REASSEMBLY_BYPASSED_BYTES, &self.reassembly_bypassed_bytes),
        ];
        for (family, values) in per_side {
            for side in FlowSide::ALL {
                sink.counter(family, &[("side", side.label())], values[side.index()]);
            }
        }
        for side in FlowSide::ALL {
            let h = &self.reassembler_high_watermark_bytes[side.index()];
            sink.histogram(
                &REASSEMBLER_HIGH_WATERMARK,
                &[("side", side.label())],
                h,
                u64::MAX,
            );
        }
        sink.histogram(
            &FLOW_DURATION_SECONDS,
            &[],
            &self.flow_duration_ns,
            u64::MAX,
        );
        sink.histogram(&FLOW_PACKETS, &[], &self.flow_packets, u64::MAX);
        sink.histogram(&FLOW_BYTES, &[], &self.flow_bytes, u64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::Exposition;

    fn series(c: &TrackerCounters) -> Vec<String> {
        let mut e = Exposition::new();
        c.visit(&mut e);
        let text = e.into_text();
        let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!((families, helps), (13, 13), "{text}");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
            .collect()
    }

    #[test]
    fn the_series_are_the_same_whatever_was_counted() {
        let mut busy = TrackerCounters::default();
        busy.flows_created[1] = 4;
        busy.flows_ended[EndReason::Evicted.index()] = 2;
        busy.flow_duration_ns.record(1 << 40);
        busy.flow_bytes.record(u64::MAX);
        busy.reassembler_high_watermark_bytes[1].record(3);
        let idle = series(&TrackerCounters::default());
        assert_eq!(series(&busy), idle);
        let mut unique = idle.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), idle.len());
    }
}
