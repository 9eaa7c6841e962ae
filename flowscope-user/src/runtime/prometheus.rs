//! The Prometheus endpoint: `metrics-exporter-prometheus` serving `/metrics`
//! over HTTP, fed by the control thread from merged shards (absolute values,
//! once per interval and at exit — never from a worker, never per packet).

use std::net::SocketAddr;

use flowscope_common::Counter;
use metrics_exporter_prometheus::PrometheusBuilder;

use super::LiveSnapshot;
use crate::capture::DatapathInfo;
use crate::obs::{Log2Histogram, MetricsPublisher};

/// Starts the HTTP listener and installs the global recorder.
///
/// # Errors
///
/// The address cannot be bound or a recorder is already installed.
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| {
            anyhow::anyhow!("--metrics-listen {addr}: {e}; choose another address or `off`")
        })
}

/// XDP drop reasons of `flowscope_xsk_drops_total{reason}`.
pub const XSK_DROP_REASONS: [&str; 4] = [
    "rx_dropped",
    "rx_ring_full",
    "fill_ring_empty",
    "invalid_descs",
];

/// Publishes `flowscope_datapath_info{xdp_mode, metadata, attach,
/// zero_copy} 1`: what the datapath obtained from the kernel, as one
/// info-style series with static labels.
pub fn publish_datapath(d: &DatapathInfo) {
    metrics::gauge!(
        "flowscope_datapath_info",
        "xdp_mode" => d.xdp_mode.label(),
        "metadata" => d.metadata.label(),
        "attach" => d.attach.label(),
        "zero_copy" => d.zero_copy_label(),
    )
    .set(1.0);
}

/// Publishes one snapshot: the tracker vocabulary of the merged shards, and
/// the capture's own figures, ring levels per worker among them
/// (`flowscope_xsk_ring_{size,entries}` gauges, the last sample, and
/// `flowscope_xsk_ring_samples_total{ring,worker,entries_le}`, one sample
/// per batch in log2 buckets).
pub fn publish(snap: &LiveSnapshot, tracker: &mut MetricsPublisher) {
    tracker.publish(&snap.total.tracker);
    crate::anomaly::publish_xdp_totals(&snap.anomalies);
    for c in Counter::ALL {
        let v = snap.xdp.get(*c);
        metrics::counter!("flowscope_xdp_packets_total", "class" => c.label()).absolute(v.packets);
        metrics::counter!("flowscope_xdp_bytes_total", "class" => c.label()).absolute(v.bytes);
    }
    let mut drops = [0u64; 4];
    for w in &snap.sockets {
        let s = &w.socket;
        for (d, v) in drops.iter_mut().zip([
            s.rx_dropped,
            s.rx_ring_full,
            s.fill_ring_empty,
            s.invalid_descs,
        ]) {
            *d += v;
        }
    }
    for (reason, v) in XSK_DROP_REASONS.iter().zip(drops) {
        metrics::counter!("flowscope_xsk_drops_total", "reason" => *reason).absolute(v);
    }
    metrics::counter!("flowscope_xsk_rx_packets_total")
        .absolute(snap.sockets.iter().map(|w| w.socket.rx_packets).sum());
    metrics::counter!("flowscope_records_sent_total").absolute(snap.total.records_sent);
    metrics::counter!("flowscope_records_dropped_total").absolute(snap.total.records_dropped);
    metrics::gauge!("flowscope_flow_table_capacity").set(snap.total.flow_capacity as f64);
    metrics::gauge!("flowscope_flow_table_occupancy").set(snap.total.flows_active as f64);
    metrics::counter!("flowscope_flow_table_evictions_total")
        .absolute(snap.total.tracker.ended(crate::tracker::EndReason::Evicted));
    metrics::counter!("flowscope_frames_with_xdp_metadata_total")
        .absolute(snap.total.frames_with_meta);
    for (le, n) in log2_buckets(&snap.total.batch_sizes) {
        metrics::counter!("flowscope_xsk_batches_total", "size_le" => le).absolute(n);
    }
    for w in &snap.sockets {
        let worker = w.id.index.to_string();
        let rings = &w.socket.rings;
        for (ring, level) in [("rx", &rings.rx), ("fill", &rings.fill)] {
            let labels = [("ring", ring.to_owned()), ("worker", worker.clone())];
            metrics::gauge!("flowscope_xsk_ring_size", &labels).set(f64::from(level.size));
            metrics::gauge!("flowscope_xsk_ring_entries", &labels).set(f64::from(level.last));
            for (le, n) in log2_buckets(&level.entries) {
                metrics::counter!(
                    "flowscope_xsk_ring_samples_total",
                    "ring" => ring,
                    "worker" => worker.clone(),
                    "entries_le" => le
                )
                .absolute(n);
            }
        }
    }
}

/// The non-empty buckets of `h`, each labelled with the largest value it
/// holds (the label value of `size_le` and `entries_le`).
fn log2_buckets(h: &Log2Histogram) -> impl Iterator<Item = (String, u64)> + '_ {
    h.buckets
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| {
            let le = if i + 1 < h.buckets.len() {
                Log2Histogram::lower_bound(i + 1) - 1
            } else {
                u64::MAX
            };
            (le.to_string(), *n)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_labels_are_the_largest_value_each_bucket_holds() {
        let mut h = Log2Histogram::default();
        for v in [0, 1, 5, 7, 8, u64::MAX] {
            h.record(v);
        }
        let got: Vec<(String, u64)> = log2_buckets(&h).collect();
        let want = [("0", 1), ("1", 1), ("7", 2), ("15", 1)]
            .map(|(le, n)| (le.to_owned(), n))
            .into_iter()
            .chain([(u64::MAX.to_string(), 1)])
            .collect::<Vec<_>>();
        assert_eq!(got, want);
    }
}
