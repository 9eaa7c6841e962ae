//! The `flowscope_*` metric vocabulary.
//!
//! Counting is split from publishing. Each tracker (one per worker) counts
//! into its own plain [`TrackerCounters`] — no atomics, no facade call per
//! packet. The owner of the metrics merges the shards with
//! [`TrackerCounters::merge`] on scrape and writes the sum to a
//! [`MetricSink`] with [`TrackerCounters::visit`]: an [`Exposition`] renders
//! the Prometheus text format (what the live runtime serves on `/metrics`),
//! a [`MetricsPublisher`] feeds the `metrics` facade (feature `metrics`).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `flowscope_flows_created_total` | counter | `l4` |
//! | `flowscope_flows_ended_total` | counter | `reason` |
//! | `flowscope_flows_active` | gauge | — |
//! | `flowscope_packets_unmatched_total` | counter | `reason` |
//! | `flowscope_anomalies_total` | counter | `kind` |
//! | `flowscope_bytes_total` | counter | `side` |
//! | `flowscope_reassembly_dropped_ooo_total` | counter | `side` |
//! | `flowscope_reassembly_bytes_dropped_oversize_total` | counter | `side` |
//! | `flowscope_reassembly_bypassed_bytes_total` | counter | `side` |
//! | `flowscope_reassembler_high_watermark_bytes` | histogram | `side` |
//! | `flowscope_flow_duration_seconds` | histogram | — |
//! | `flowscope_flow_packets` | histogram | — |
//! | `flowscope_flow_bytes` | histogram | — |
//!
//! Every label value is a `&'static str` from a fixed set (never a key),
//! and every value of the set is written, zeros included. Histograms are
//! kept as power-of-two buckets ([`Log2Histogram`], with the exact sum) and
//! exported as they are (see [`Exposition`]); durations are recorded in
//! nanoseconds and exported in seconds.
//!
//! The tracker's `tracing` events (feature `tracing`) go to the targets
//! `flowscope.flow` (flow start and end, debug level) and
//! `flowscope.anomaly` (warn).

mod exposition;
mod publish;
mod sink;
mod vocabulary;

pub use exposition::{CONTENT_TYPE, Exposition};
pub use publish::MetricsPublisher;
pub use sink::{Family, Labels, MetricKind, MetricSink};

pub use crate::histogram::Log2Histogram;
pub use crate::tracker::TrackerCounters;

/// `flowscope_flows_created_total{l4}`.
pub const METRIC_FLOWS_CREATED: &str = "flowscope_flows_created_total";
/// `flowscope_flows_ended_total{reason}`.
pub const METRIC_FLOWS_ENDED: &str = "flowscope_flows_ended_total";
/// `flowscope_flows_active`.
pub const METRIC_FLOWS_ACTIVE: &str = "flowscope_flows_active";
/// `flowscope_packets_unmatched_total{reason}`.
pub const METRIC_PACKETS_UNMATCHED: &str = "flowscope_packets_unmatched_total";
/// `flowscope_bytes_total{side}`.
pub const METRIC_BYTES: &str = "flowscope_bytes_total";
/// `flowscope_flow_duration_seconds`.
pub const METRIC_FLOW_DURATION_SECONDS: &str = "flowscope_flow_duration_seconds";
/// `flowscope_flow_packets`.
pub const METRIC_FLOW_PACKETS: &str = "flowscope_flow_packets";
/// `flowscope_flow_bytes`.
pub const METRIC_FLOW_BYTES: &str = "flowscope_flow_bytes";
/// `flowscope_anomalies_total{kind}`.
pub const METRIC_ANOMALIES: &str = "flowscope_anomalies_total";
/// `flowscope_reassembly_dropped_ooo_total{side}`.
pub const METRIC_REASSEMBLY_DROPPED_OOO: &str = "flowscope_reassembly_dropped_ooo_total";
/// `flowscope_reassembly_bytes_dropped_oversize_total{side}`.
pub const METRIC_REASSEMBLY_BYTES_DROPPED_OVERSIZE: &str =
    "flowscope_reassembly_bytes_dropped_oversize_total";
/// `flowscope_reassembly_bypassed_bytes_total{side}`.
pub const METRIC_REASSEMBLY_BYPASSED_BYTES: &str = "flowscope_reassembly_bypassed_bytes_total";
/// `flowscope_reassembler_high_watermark_bytes{side}`.
pub const METRIC_REASSEMBLER_HIGH_WATERMARK: &str = "flowscope_reassembler_high_watermark_bytes";
