//! The live runtime's metric families: the tracker's and the pipeline's
//! (merged shards; IP fragments and the L7 parsers, see
//! [`PipelineCounters::visit`](crate::pipeline::PipelineCounters::visit)),
//! the XDP program's counters and anomaly totals, the AF_XDP sockets
//! (drops, batches, ring levels per worker), the record ring, the flow
//! tables and the datapath. Written from a [`LiveSnapshot`] by the control
//! thread, once per interval and at exit: absolute values, never from a
//! worker, never per packet.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `flowscope_xdp_packets_total`, `flowscope_xdp_bytes_total` | counter | `class` |
//! | `flowscope_xsk_rx_packets_total` | counter | — |
//! | `flowscope_xsk_drops_total` | counter | `reason` |
//! | `flowscope_xsk_batch_frames` | histogram | — |
//! | `flowscope_xsk_ring_size`, `flowscope_xsk_ring_entries` | gauge | `ring`, `worker` |
//! | `flowscope_xsk_ring_batch_entries` | histogram | `ring`, `worker` |
//! | `flowscope_records_sent_total`, `flowscope_records_dropped_total` | counter | — |
//! | `flowscope_flow_table_capacity`, `flowscope_flow_table_occupancy` | gauge | — |
//! | `flowscope_flow_table_evictions_total` | counter | — |
//! | `flowscope_frames_with_xdp_metadata_total` | counter | — |
//! | `flowscope_datapath_info` | gauge | `xdp_mode`, `metadata`, `attach`, `zero_copy` |
//! | `flowscope_output_records_total` | counter | `output` (kind and index: `eve0`, `zeek1`, `ipfix2`), `result` (`written`, `dropped`, `failed`) |

use flowscope_common::Counter;

use super::LiveSnapshot;
use crate::capture::DatapathInfo;
use crate::obs::{Exposition, Family, MetricSink};

/// XDP drop reasons of `flowscope_xsk_drops_total{reason}`.
pub const XSK_DROP_REASONS: [&str; 4] = [
    "rx_dropped",
    "rx_ring_full",
    "fill_ring_empty",
    "invalid_descs",
];

const XDP_PACKETS: Family = Family::counter(
    "flowscope_xdp_packets_total",
    "Frames the XDP program counted, per class.",
);
const XDP_BYTES: Family = Family::counter(
    "flowscope_xdp_bytes_total",
    "Frame bytes the XDP program counted, per class.",
);
const XSK_RX_PACKETS: Family = Family::counter(
    "flowscope_xsk_rx_packets_total",
    "Frames the workers received from their AF_XDP sockets.",
);
const XSK_DROPS: Family = Family::counter(
    "flowscope_xsk_drops_total",
    "Frames or descriptors the kernel dropped for the AF_XDP sockets, per reason (XDP_STATISTICS).",
);
const XSK_BATCH_FRAMES: Family = Family::histogram(
    "flowscope_xsk_batch_frames",
    "Frames per receive batch, all workers.",
    1,
);
const XSK_RING_SIZE: Family = Family::gauge(
    "flowscope_xsk_ring_size",
    "Entries a worker's ring holds at most, per ring (rx, fill) and worker.",
);
const XSK_RING_ENTRIES: Family = Family::gauge(
    "flowscope_xsk_ring_entries",
    "Entries in a worker's ring at its last batch, per ring (rx, fill) and worker.",
);
const XSK_RING_BATCH_ENTRIES: Family = Family::histogram(
    "flowscope_xsk_ring_batch_entries",
    "Entries in a worker's ring, sampled once per receive batch, per ring (rx, fill) and worker.",
    1,
);
const RECORDS_SENT: Family = Family::counter(
    "flowscope_records_sent_total",
    "Records the workers handed to the writer.",
);
const RECORDS_DROPPED: Family = Family::counter(
    "flowscope_records_dropped_total",
    "Records dropped because the ring to the writer was full.",
);
const FLOW_TABLE_CAPACITY: Family = Family::gauge(
    "flowscope_flow_table_capacity",
    "Flows the workers' flow tables hold at most, summed.",
);
const FLOW_TABLE_OCCUPANCY: Family = Family::gauge(
    "flowscope_flow_table_occupancy",
    "Flows in the workers' flow tables now.",
);
const FLOW_TABLE_EVICTIONS: Family = Family::counter(
    "flowscope_flow_table_evictions_total",
    "Flows evicted from a full flow table.",
);
const FRAMES_WITH_META: Family = Family::counter(
    "flowscope_frames_with_xdp_metadata_total",
    "Frames that carried valid XDP metadata.",
);
const DATAPATH_INFO: Family = Family::gauge(
    "flowscope_datapath_info",
    "What the datapath obtained from the kernel, in its labels (the value is 1).",
);

const OUTPUT_RECORDS: Family = Family::counter(
    "flowscope_output_records_total",
    "Records each output took, by result: written (bytes accepted by the kernel, or sent to the collector), dropped (never tried: the output had failed or its queue was full) or failed (the write or send failed).",
);

/// Ring sizes are `u32`: no ring level or batch exceeds this.
const RING_MAX: u64 = u32::MAX as u64;

/// Writes every family of `snap` and `datapath` to `sink`, in a fixed order
/// and with a fixed set of series (every label value, every worker).
pub fn visit(snap: &LiveSnapshot, datapath: &DatapathInfo, sink: &mut impl MetricSink) {
    snap.total.tracker.visit(sink);
    if let Some(pipeline) = &snap.total.pipeline {
        pipeline.visit(sink);
    }
    crate::anomaly::publish_xdp_totals(&snap.anomalies, sink);
    for c in Counter::ALL {
        sink.counter(
            &XDP_PACKETS,
            &[("class", c.label())],
            snap.xdp.get(*c).packets,
        );
    }
    for c in Counter::ALL {
        sink.counter(&XDP_BYTES, &[("class", c.label())], snap.xdp.get(*c).bytes);
    }
    let sockets = || snap.sockets.iter().map(|w| &w.socket);
    sink.counter(&XSK_RX_PACKETS, &[], sockets().map(|s| s.rx_packets).sum());
    let mut drops = [0u64; 4];
    for s in sockets() {
        let each = [
            s.rx_dropped,
            s.rx_ring_full,
            s.fill_ring_empty,
            s.invalid_descs,
        ];
        for (d, v) in drops.iter_mut().zip(each) {
            *d += v;
        }
    }
    for (reason, v) in XSK_DROP_REASONS.iter().zip(drops) {
        sink.counter(&XSK_DROPS, &[("reason", reason)], v);
    }
    sink.histogram(&XSK_BATCH_FRAMES, &[], &snap.total.batch_sizes, RING_MAX);
    let rings = || {
        snap.sockets.iter().flat_map(|w| {
            let worker = w.id.index.to_string();
            let r = &w.socket.rings;
            [("rx", r.rx), ("fill", r.fill)].map(|(ring, level)| (ring, worker.clone(), level))
        })
    };
    for (ring, worker, level) in rings() {
        let labels = [("ring", ring), ("worker", worker.as_str())];
        sink.gauge(&XSK_RING_SIZE, &labels, u64::from(level.size));
    }
    for (ring, worker, level) in rings() {
        let labels = [("ring", ring), ("worker", worker.as_str())];
        sink.gauge(&XSK_RING_ENTRIES, &labels, u64::from(level.last));
    }
    for (ring, worker, level) in rings() {
        let labels = [("ring", ring), ("worker", worker.as_str())];
        sink.histogram(&XSK_RING_BATCH_ENTRIES, &labels, &level.entries, RING_MAX);
    }
    let t = &snap.total;
    sink.counter(&RECORDS_SENT, &[], t.records_sent);
    sink.counter(&RECORDS_DROPPED, &[], t.records_dropped);
    sink.gauge(&FLOW_TABLE_CAPACITY, &[], t.flow_capacity);
    sink.gauge(&FLOW_TABLE_OCCUPANCY, &[], t.flows_active);
    let evicted = t.tracker.ended(crate::tracker::EndReason::Evicted);
    sink.counter(&FLOW_TABLE_EVICTIONS, &[], evicted);
    sink.counter(&FRAMES_WITH_META, &[], t.frames_with_meta);
    let labels = [
        ("xdp_mode", datapath.xdp_mode.label()),
        ("metadata", datapath.metadata.label()),
        ("attach", datapath.attach.label()),
        ("zero_copy", datapath.zero_copy_label()),
    ];
    sink.gauge(&DATAPATH_INFO, &labels, 1);
    for o in &snap.outputs {
        for (result, v) in [
            ("written", o.written),
            ("dropped", o.dropped),
            ("failed", o.failed),
        ] {
            let labels = [("output", o.name.as_str()), ("result", result)];
            sink.counter(&OUTPUT_RECORDS, &labels, v);
        }
    }
}

/// The Prometheus text of [`visit`].
pub fn render(snap: &LiveSnapshot, datapath: &DatapathInfo) -> String {
    let mut text = Exposition::new();
    visit(snap, datapath, &mut text);
    text.into_text()
}
