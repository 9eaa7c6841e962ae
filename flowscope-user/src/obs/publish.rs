//! Feeding metric families into the `metrics` facade, for embedders whose
//! own recorder exports them.

use super::sink::{Family, Labels, MetricSink};
use super::{Log2Histogram, TrackerCounters};

/// A [`MetricSink`] that feeds the `metrics` facade (feature `metrics`;
/// without it, it feeds nothing).
///
/// Each family is described once (its help text). Counters and gauges are
/// published as absolute values; histograms as the samples added since the
/// previous publication of the same series, one observation per sample at
/// its bucket's lower bound (the facade takes observations, not buckets:
/// counts are exact, values within a factor of two; for the exact buckets
/// and sums serve an [`Exposition`](super::Exposition)). Use one publisher
/// from one thread, on scrape or on a timer.
#[derive(Debug, Default)]
pub struct MetricsPublisher {
    #[cfg(feature = "metrics")]
    described: std::collections::HashSet<&'static str>,
    #[cfg(feature = "metrics")]
    last: std::collections::HashMap<String, Log2Histogram>,
}

impl MetricsPublisher {
    /// A publisher that has published nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes the tracker families of `c` (usually the merge of every
    /// worker's shard).
    pub fn publish(&mut self, c: &TrackerCounters) {
        c.visit(self);
    }
}

#[cfg(not(feature = "metrics"))]
impl MetricSink for MetricsPublisher {
    fn counter(&mut self, _: &Family, _: Labels<'_>, _: u64) {}
    fn gauge(&mut self, _: &Family, _: Labels<'_>, _: u64) {}
    fn histogram(&mut self, _: &Family, _: Labels<'_>, _: &Log2Histogram, _: u64) {}
}

#[cfg(feature = "metrics")]
impl MetricsPublisher {
    /// The facade's labels of a series, describing its family on first use.
    fn labels(&mut self, family: &Family, labels: Labels<'_>) -> Vec<metrics::Label> {
        use super::sink::MetricKind;
        if self.described.insert(family.name) {
            match family.kind {
                MetricKind::Counter => metrics::describe_counter!(family.name, family.help),
                MetricKind::Gauge => metrics::describe_gauge!(family.name, family.help),
                MetricKind::Histogram { .. } => {
                    metrics::describe_histogram!(family.name, family.help)
                }
            }
        }
        labels
            .iter()
            .map(|(k, v)| metrics::Label::new(*k, (*v).to_owned()))
            .collect()
    }
}

#[cfg(feature = "metrics")]
impl MetricSink for MetricsPublisher {
    fn counter(&mut self, family: &Family, labels: Labels<'_>, value: u64) {
        let labels = self.labels(family, labels);
        metrics::counter!(family.name, labels).absolute(value);
    }

    fn gauge(&mut self, family: &Family, labels: Labels<'_>, value: u64) {
        let labels = self.labels(family, labels);
        metrics::gauge!(family.name, labels).set(value as f64);
    }

    fn histogram(&mut self, family: &Family, labels: Labels<'_>, h: &Log2Histogram, _max: u64) {
        use super::sink::MetricKind;
        let per_unit = match family.kind {
            MetricKind::Histogram { per_unit } => per_unit.max(1) as f64,
            _ => 1.0,
        };
        let key = format!("{}{labels:?}", family.name);
        let labels = self.labels(family, labels);
        let before = self.last.insert(key, *h).unwrap_or_default();
        let out = metrics::histogram!(family.name, labels);
        for (i, (n, b)) in h.buckets.iter().zip(before.buckets.iter()).enumerate() {
            let delta = n.saturating_sub(*b);
            if delta > 0 {
                let value = Log2Histogram::lower_bound(i) as f64 / per_unit;
                out.record_many(value, usize::try_from(delta).unwrap_or(usize::MAX));
            }
        }
    }
}
