//! Feeding merged counters into the `metrics` facade.

use crate::obs::TrackerCounters;

/// Publishes [`TrackerCounters`] (usually the merge of every worker's shard).
///
/// Counters and the gauge are published as absolute values; histograms as
/// the samples added since the previous call, so the publisher remembers what
/// it published last. Call it from one thread, on scrape or on a timer.
#[derive(Debug, Default)]
pub struct MetricsPublisher {
    #[cfg_attr(
        not(feature = "metrics"),
        expect(dead_code, reason = "read only with metrics")
    )]
    last: TrackerCounters,
}

impl MetricsPublisher {
    /// A publisher that has published nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes `c`. Does nothing without the `metrics` feature.
    #[cfg(not(feature = "metrics"))]
    pub fn publish(&mut self, _c: &TrackerCounters) {}

    /// Publishes `c`. Does nothing without the `metrics` feature.
    #[cfg(feature = "metrics")]
    pub fn publish(&mut self, c: &TrackerCounters) {
        use crate::extractor::Unmatched;
        use crate::obs::*;
        use crate::tracker::{AnomalyKind, EndReason, FlowSide};

        for (i, l4) in TrackerCounters::L4_LABELS.iter().enumerate() {
            metrics::counter!(METRIC_FLOWS_CREATED, "l4" => *l4).absolute(c.flows_created[i]);
        }
        for r in EndReason::ALL {
            metrics::counter!(METRIC_FLOWS_ENDED, "reason" => r.label()).absolute(c.ended(r));
        }
        metrics::gauge!(METRIC_FLOWS_ACTIVE).set(c.flows_active as f64);
        for (i, r) in Unmatched::ALL.iter().enumerate() {
            metrics::counter!(METRIC_PACKETS_UNMATCHED, "reason" => r.label())
                .absolute(c.packets_unmatched[i]);
        }
        for k in AnomalyKind::ALL {
            metrics::counter!(METRIC_ANOMALIES, "kind" => k.label()).absolute(c.anomaly(k));
        }
        for side in FlowSide::ALL {
            let (s, l) = (side.index(), side.label());
            metrics::counter!(METRIC_BYTES, "side" => l).absolute(c.bytes[s]);
            metrics::counter!(METRIC_REASSEMBLY_DROPPED_OOO, "side" => l)
                .absolute(c.reassembly_dropped_ooo[s]);
            metrics::counter!(METRIC_REASSEMBLY_BYTES_DROPPED_OVERSIZE, "side" => l)
                .absolute(c.reassembly_bytes_dropped_oversize[s]);
            let h = metrics::histogram!(METRIC_REASSEMBLER_HIGH_WATERMARK, "side" => l);
            publish_delta(
                &h,
                &c.reassembler_high_watermark_bytes[s],
                &self.last.reassembler_high_watermark_bytes[s],
                1.0,
            );
        }
        let h = metrics::histogram!(METRIC_FLOW_DURATION_SECONDS);
        publish_delta(&h, &c.flow_duration_us, &self.last.flow_duration_us, 1e-6);
        let h = metrics::histogram!(METRIC_FLOW_PACKETS);
        publish_delta(&h, &c.flow_packets, &self.last.flow_packets, 1.0);
        let h = metrics::histogram!(METRIC_FLOW_BYTES);
        publish_delta(&h, &c.flow_bytes, &self.last.flow_bytes, 1.0);
        self.last = c.clone();
    }
}

/// Records the samples `now` has beyond `before`, at each bucket's lower bound times `scale`.
#[cfg(feature = "metrics")]
fn publish_delta(
    h: &metrics::Histogram,
    now: &crate::obs::Log2Histogram,
    before: &crate::obs::Log2Histogram,
    scale: f64,
) {
    for (i, (n, b)) in now.buckets.iter().zip(before.buckets.iter()).enumerate() {
        let delta = n.saturating_sub(*b);
        if delta > 0 {
            let value = crate::obs::Log2Histogram::lower_bound(i) as f64 * scale;
            h.record_many(value, usize::try_from(delta).unwrap_or(usize::MAX));
        }
    }
}
