//! The pipeline's metric families beyond the tracker's: TCP reassembly's
//! gaps and shared budget, IP fragment reassembly and the L7 session
//! layer, written from [`PipelineCounters`] (every worker's, merged) to a
//! [`MetricSink`] on scrape; the table is on [`PipelineCounters::visit`].

use super::PipelineCounters;
use crate::l7::L7Counters;
use crate::l7::session::SessionCounters;
use crate::obs::{Family, MetricSink};
use crate::reassembly::SideCounters;
use crate::reassembly::ipfrag::FragDrop;
use crate::tracker::FlowSide;

const REASSEMBLY_GAPS: Family = Family::counter(
    "flowscope_reassembly_gaps_total",
    "Holes in TCP streams given to the parsers as gaps (bytes the capture never saw), per side, counted when the flow ends.",
);
const REASSEMBLY_GAP_BYTES: Family = Family::counter(
    "flowscope_reassembly_gap_bytes_total",
    "Bytes those holes stood for, per side.",
);
const REASSEMBLY_BUDGET_REFUSALS: Family = Family::counter(
    "flowscope_reassembly_budget_refusals_total",
    "Out-of-order segments refused because the workers' shared reassembly budget was spent.",
);
const REASSEMBLY_BUDGET_USED: Family = Family::gauge(
    "flowscope_reassembly_budget_used_bytes",
    "Bytes of the shared reassembly budget held now.",
);
const IP_FRAGMENTS: Family = Family::counter(
    "flowscope_ip_fragments_total",
    "IP fragments given to the fragment reassembler.",
);
const IP_FRAGMENT_DUPLICATES: Family = Family::counter(
    "flowscope_ip_fragment_duplicates_total",
    "IP fragments that repeated one already held.",
);
const IP_DATAGRAMS_REASSEMBLED: Family = Family::counter(
    "flowscope_ip_datagrams_reassembled_total",
    "IP datagrams reassembled from fragments and given to the parsers.",
);
const IP_DATAGRAMS_DROPPED: Family = Family::counter(
    "flowscope_ip_datagrams_dropped_total",
    "Fragmented IP datagrams given up, with their fragments, per reason.",
);
const L7_FLOWS: Family = Family::counter(
    "flowscope_l7_flows_total",
    "Flows each parser was chosen for, per transport.",
);
const L7_FLOWS_UNDETECTED: Family = Family::counter(
    "flowscope_l7_flows_undetected_total",
    "Flows with payload that no parser recognised, per transport.",
);
const L7_PARSE_ERRORS: Family = Family::counter(
    "flowscope_l7_parse_errors_total",
    "Flows whose parser stopped on data it could not parse.",
);
const L7_BUDGET_EXHAUSTED: Family = Family::counter(
    "flowscope_l7_budget_exhausted_total",
    "Flows whose parser stopped because the workers' parsing budget ran out.",
);
const L7_BYTES: Family = Family::counter(
    "flowscope_l7_bytes_total",
    "Payload bytes fed to each parser.",
);
const L7_BYTES_MISSED_WHILE_PROBING: Family = Family::counter(
    "flowscope_l7_bytes_missed_while_probing_total",
    "Bytes of one side not fed to the parser chosen later from the other side (given to it as a gap).",
);
const L7_PARSER_EVENTS: Family = Family::counter(
    "flowscope_l7_parser_events_total",
    "What the parsers counted (messages parsed, errors, drops), per parser and event.",
);

impl PipelineCounters {
    /// Writes these families to `sink`, in this order, every label value
    /// of each (zeros included):
    ///
    /// | metric | type | labels |
    /// |---|---|---|
    /// | `flowscope_reassembly_gaps_total`, `flowscope_reassembly_gap_bytes_total` | counter | `side` |
    /// | `flowscope_reassembly_budget_refusals_total` | counter | — |
    /// | `flowscope_reassembly_budget_used_bytes` | gauge | — |
    /// | `flowscope_ip_fragments_total` | counter | — |
    /// | `flowscope_ip_fragment_duplicates_total` | counter | — |
    /// | `flowscope_ip_datagrams_reassembled_total` | counter | — |
    /// | `flowscope_ip_datagrams_dropped_total` | counter | `reason` |
    /// | `flowscope_l7_flows_total` | counter | `transport`, `parser` |
    /// | `flowscope_l7_flows_undetected_total` | counter | `transport` |
    /// | `flowscope_l7_parse_errors_total` | counter | `transport`, `parser` |
    /// | `flowscope_l7_budget_exhausted_total` | counter | `transport`, `parser` |
    /// | `flowscope_l7_bytes_total` | counter | `transport`, `parser` |
    /// | `flowscope_l7_bytes_missed_while_probing_total` | counter | `transport` |
    /// | `flowscope_l7_parser_events_total` | counter | `parser`, `event` |
    ///
    /// Gaps are Suricata's `tcp.reassembly_gap`. `transport` is `tcp` (the
    /// stream parsers) or `udp` (the datagram parsers); `parser` is a
    /// registered parser's name. The parser events are the fields of
    /// [`L7Counters`] (requests parsed, header errors, requests pushed out
    /// of a full queue, …), TCP and UDP added up. Like Suricata's
    /// `app_layer.flow.*` and `app_layer.error.*` counters, they say how
    /// much traffic each parser saw and what it could not read.
    pub fn visit(&self, sink: &mut impl MetricSink) {
        let r = &self.reassembly;
        for (family, of) in [
            (&REASSEMBLY_GAPS, (|s| s.gaps) as fn(&SideCounters) -> u64),
            (&REASSEMBLY_GAP_BYTES, |s| s.gap_bytes),
        ] {
            for side in FlowSide::ALL {
                let n = of(&r.sides[side.index()]);
                sink.counter(family, &[("side", side.label())], n);
            }
        }
        sink.counter(&REASSEMBLY_BUDGET_REFUSALS, &[], r.budget_refusals);
        sink.gauge(&REASSEMBLY_BUDGET_USED, &[], r.budget_used_bytes);
        let f = &self.fragments;
        sink.counter(&IP_FRAGMENTS, &[], f.fragments);
        sink.counter(&IP_FRAGMENT_DUPLICATES, &[], f.duplicates);
        sink.counter(&IP_DATAGRAMS_REASSEMBLED, &[], f.completed);
        for r in FragDrop::ALL {
            sink.counter(
                &IP_DATAGRAMS_DROPPED,
                &[("reason", r.label())],
                f.dropped(r),
            );
        }
        let drivers = [("tcp", &self.streams), ("udp", &self.datagrams)];
        per_parser(sink, &L7_FLOWS, drivers, |c| &c.flows_detected);
        for (transport, c) in drivers {
            sink.counter(
                &L7_FLOWS_UNDETECTED,
                &[("transport", transport)],
                c.flows_undetected,
            );
        }
        per_parser(sink, &L7_PARSE_ERRORS, drivers, |c| &c.parse_errors);
        per_parser(sink, &L7_BUDGET_EXHAUSTED, drivers, |c| &c.budget_exhausted);
        per_parser(sink, &L7_BYTES, drivers, |c| &c.bytes_parsed);
        for (transport, c) in drivers {
            let labels = [("transport", transport)];
            sink.counter(
                &L7_BYTES_MISSED_WHILE_PROBING,
                &labels,
                c.bytes_missed_while_probing,
            );
        }
        if let Ok(serde_json::Value::Object(parsers)) = serde_json::to_value(self.parsers()) {
            for (parser, events) in &parsers {
                for (event, n) in events.as_object().into_iter().flatten() {
                    let labels = [("parser", parser.as_str()), ("event", event.as_str())];
                    sink.counter(&L7_PARSER_EVENTS, &labels, n.as_u64().unwrap_or(0));
                }
            }
        }
    }

    /// What the parsers counted, TCP and UDP added up.
    pub fn parsers(&self) -> L7Counters {
        let mut sum = self.streams.parsers;
        sum.add(&self.datagrams.parsers);
        sum
    }
}

/// One series of `family` per driver and registered parser.
fn per_parser(
    sink: &mut impl MetricSink,
    family: &Family,
    drivers: [(&'static str, &SessionCounters); 2],
    of: fn(&SessionCounters) -> &[u64],
) {
    for (transport, c) in drivers {
        for (parser, n) in c.by_name(of(c)) {
            sink.counter(family, &[("transport", transport), ("parser", parser)], n);
        }
    }
}
