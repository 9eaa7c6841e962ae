//! The XDP program's anomaly totals as metric families.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `flowscope_xdp_anomalies_total` | counter | `kind` (every kind label) |
//! | `flowscope_xdp_indicator_total` | counter | `indicator` (`syn`, `syn_ack`, `rst`, `icmp_unreachable`) |
//!
//! Written as absolute values from the summed per-CPU block, on scrape or
//! on a timer — never per packet. Every label value is present from the
//! first publication (zeros included), so the label set is static.

use flowscope_common::anomaly::{Anomaly, AnomalyBlock};

use crate::obs::{Family, MetricSink};

/// `flowscope_xdp_anomalies_total{kind}`.
pub const METRIC_XDP_ANOMALIES: &str = "flowscope_xdp_anomalies_total";
/// `flowscope_xdp_indicator_total{indicator}`.
pub const METRIC_XDP_INDICATORS: &str = "flowscope_xdp_indicator_total";

const XDP_ANOMALIES: Family = Family::counter(
    METRIC_XDP_ANOMALIES,
    "Anomalous frames the XDP program counted, per kind.",
);
const XDP_INDICATORS: Family = Family::counter(
    METRIC_XDP_INDICATORS,
    "Flood and scan indicator frames the XDP program counted (SYN, SYN-ACK, RST, ICMP unreachable).",
);

/// Writes `totals` (the anomaly block summed over CPUs since the
/// program was loaded) to `sink`: the anomaly kinds, then the indicators.
pub fn publish_xdp_totals(totals: &AnomalyBlock, sink: &mut impl MetricSink) {
    for &k in Anomaly::ALL.iter().filter(|k| !k.is_indicator()) {
        sink.counter(&XDP_ANOMALIES, &[("kind", k.label())], totals.get(k));
    }
    for &k in Anomaly::ALL.iter().filter(|k| k.is_indicator()) {
        sink.counter(&XDP_INDICATORS, &[("indicator", k.label())], totals.get(k));
    }
}
