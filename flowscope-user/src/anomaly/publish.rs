//! The XDP program's anomaly totals on the `metrics` facade.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `flowscope_xdp_anomalies_total` | counter | `kind` (every kind label) |
//! | `flowscope_xdp_indicator_total` | counter | `indicator` (`syn`, `syn_ack`, `rst`, `icmp_unreachable`) |
//!
//! Published as absolute values from the summed per-CPU block, on scrape or
//! on a timer — never per packet. Every label value is present from the
//! first publication (zeros included), so the label set is static.

use flowscope_common::anomaly::AnomalyBlock;

/// `flowscope_xdp_anomalies_total{kind}`.
pub const METRIC_XDP_ANOMALIES: &str = "flowscope_xdp_anomalies_total";
/// `flowscope_xdp_indicator_total{indicator}`.
pub const METRIC_XDP_INDICATORS: &str = "flowscope_xdp_indicator_total";

/// Publishes `totals` (the anomaly block summed over CPUs since the
/// program was loaded). Does nothing without the `metrics` feature.
#[cfg(feature = "metrics")]
pub fn publish_xdp_totals(totals: &AnomalyBlock) {
    use flowscope_common::anomaly::Anomaly;
    for &k in Anomaly::ALL {
        let c = if k.is_indicator() {
            metrics::counter!(METRIC_XDP_INDICATORS, "indicator" => k.label())
        } else {
            metrics::counter!(METRIC_XDP_ANOMALIES, "kind" => k.label())
        };
        c.absolute(totals.get(k));
    }
}

/// Publishes `totals` (the anomaly block summed over CPUs since the
/// program was loaded). Does nothing without the `metrics` feature.
#[cfg(not(feature = "metrics"))]
pub fn publish_xdp_totals(_totals: &AnomalyBlock) {}
