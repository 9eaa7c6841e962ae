//! What a metric family is, and the sink that families are written to.
//!
//! Every source of figures (the tracker's counters, the XDP anomaly totals,
//! the live runtime) writes its families to a [`MetricSink`] in one fixed
//! order, each family's series together: the Prometheus text renderer
//! ([`Exposition`](super::Exposition)) and the `metrics` facade
//! ([`MetricsPublisher`](super::MetricsPublisher)) read the same vocabulary.

use super::Log2Histogram;

/// Label pairs of one series, in a fixed order.
pub type Labels<'a> = &'a [(&'static str, &'a str)];

/// The type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A running total.
    Counter,
    /// A current level.
    Gauge,
    /// A distribution kept in a [`Log2Histogram`] of integers; exported
    /// values are the recorded ones divided by `per_unit` (`1_000_000_000`
    /// for nanoseconds exported as seconds, 1 for counts and bytes).
    Histogram {
        /// Recorded units per exported unit.
        per_unit: u64,
    },
}

/// A metric family: its name, one line of help, and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The metric name (`flowscope_…`).
    pub name: &'static str,
    /// One line saying what it counts.
    pub help: &'static str,
    /// Its type.
    pub kind: MetricKind,
}

impl Family {
    /// A counter.
    pub const fn counter(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            kind: MetricKind::Counter,
        }
    }

    /// A gauge.
    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            kind: MetricKind::Gauge,
        }
    }

    /// A histogram of values recorded in `per_unit` parts of the exported unit.
    pub const fn histogram(name: &'static str, help: &'static str, per_unit: u64) -> Self {
        Self {
            name,
            help,
            kind: MetricKind::Histogram { per_unit },
        }
    }
}

/// Receives series, family by family (all series of a family in a row).
pub trait MetricSink {
    /// One counter series: its total.
    fn counter(&mut self, family: &Family, labels: Labels<'_>, value: u64);

    /// One gauge series: its current value.
    fn gauge(&mut self, family: &Family, labels: Labels<'_>, value: u64);

    /// One histogram series. No sample exceeds `max` (a ring's size, or
    /// `u64::MAX` when nothing bounds it): buckets above it are always empty.
    fn histogram(&mut self, family: &Family, labels: Labels<'_>, h: &Log2Histogram, max: u64);
}
