//! Issue: line-rate anomaly counting — how an interval is exposed: the
//! interval computed from two readings and a sketch snapshot, its EVE record
//! (byte for byte), its one-line text form, and the `metrics` counters.

use std::net::IpAddr;
use std::time::Duration;

use flowscope::Timestamp;
use flowscope::anomaly::{AnomalyInterval, Offender};
use flowscope_common::anomaly::{
    Anomaly as A, AnomalyBlock, SKETCH_DEPTH, SKETCH_KEY_SEED, Sketch, TopEntry, sketch_column,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn block(entries: &[(A, u64)]) -> AnomalyBlock {
    let mut b = AnomalyBlock::default();
    for (a, n) in entries {
        b.counts[*a as usize] = *n;
    }
    b
}

/// 2024-05-01T12:00:10Z.
const END: Timestamp = Timestamp::new(1_714_564_810, 0);

fn scan_interval() -> AnomalyInterval {
    AnomalyInterval {
        end: END,
        length: Duration::from_secs(10),
        counts: block(&[
            (A::TtlLow, 4),
            (A::TcpXmas, 30),
            (A::Syn, 12_000),
            (A::SynAck, 3_000),
            (A::Rst, 9_000),
        ]),
        top_syn_targets: vec![
            Offender {
                addr: ip("198.51.100.9"),
                estimate: 5_400,
            },
            Offender {
                addr: ip("2001:db8::1"),
                estimate: 12,
            },
        ],
        top_port_scanners: vec![Offender {
            addr: ip("203.0.113.7"),
            estimate: 40,
        }],
    }
}

fn eve(i: &AnomalyInterval) -> String {
    // Intervals have a shape of flowscope's own: written with the extras only.
    let record = flowscope::output::Record::Interval(Box::new(i.clone()));
    let mut plain = flowscope::output::EveEncoder::new();
    assert!(plain.encode(&record, None).unwrap().is_empty());
    let mut encoder = flowscope::output::EveEncoder::with_options(flowscope::output::EveOptions {
        extras: true,
        in_iface: None,
    });
    String::from_utf8(encoder.encode(&record, None).unwrap().to_vec()).unwrap()
}

#[test]
fn eve_record_is_byte_exact() {
    assert_eq!(
        eve(&scan_interval()),
        concat!(
            r#"{"timestamp":"2024-05-01T12:00:10.000000+0000","event_type":"anomaly","interval_s":10.0,"#,
            r#""anomalies":{"ttl_low":4,"tcp_xmas":30},"#,
            r#""indicators":{"syn":12000,"syn_ack":3000,"rst":9000,"icmp_unreachable":0},"#,
            r#""syn_half_open_ratio":0.75,"#,
            r#""top_syn_targets":[{"ip":"198.51.100.9","estimate":5400},{"ip":"2001:db8::1","estimate":12}],"#,
            r#""top_port_scanners":[{"ip":"203.0.113.7","distinct_ports":40}]}"#,
            "\n"
        )
    );
}

#[test]
fn quiet_interval_has_no_ratio_and_empty_lists() {
    let quiet = AnomalyInterval {
        end: Timestamp::new(1_714_564_810, 250_000_000),
        length: Duration::from_millis(1500),
        counts: block(&[(A::IcmpUnreachable, 2)]),
        top_syn_targets: vec![],
        top_port_scanners: vec![],
    };
    assert_eq!(
        eve(&quiet),
        concat!(
            r#"{"timestamp":"2024-05-01T12:00:10.250000+0000","event_type":"anomaly","interval_s":1.5,"#,
            r#""anomalies":{},"indicators":{"syn":0,"syn_ack":0,"rst":0,"icmp_unreachable":2},"#,
            r#""top_syn_targets":[],"top_port_scanners":[]}"#,
            "\n"
        )
    );
    assert_eq!(quiet.to_string(), "anomalies/s: icmp_unreachable 1.3");
    let nothing = AnomalyInterval {
        counts: AnomalyBlock::default(),
        ..quiet
    };
    assert_eq!(nothing.to_string(), "anomalies/s: none");
    assert_eq!(nothing.rate(A::Syn), 0.0);
}

#[test]
fn live_line_lists_rates_then_top_offenders() {
    assert_eq!(
        scan_interval().to_string(),
        "anomalies/s: syn 1200 syn_ack 300 rst 900 ttl_low 0.4 tcp_xmas 3.0 \
         | top SYN target 198.51.100.9 (5400) | top port scanner 203.0.113.7 (40 ports)"
    );
}

#[test]
fn rates_and_half_open_ratio() {
    let i = scan_interval();
    assert_eq!(i.rate(A::Syn), 1200.0);
    assert_eq!(i.rate(A::TtlLow), 0.4);
    assert_eq!(i.syn_half_open_ratio(), Some(0.75));
    // More SYN-ACKs than SYNs (SYNs seen elsewhere): none half-open.
    let mut more_acks = i.clone();
    more_acks.counts = block(&[(A::Syn, 5), (A::SynAck, 9)]);
    assert_eq!(more_acks.syn_half_open_ratio(), Some(0.0));
    // A zero-length interval has no rates.
    more_acks.length = Duration::ZERO;
    assert_eq!(more_acks.rate(A::Syn), 0.0);
}

/// A sketch where `addr` (IPv4) was counted `n` times, the way the XDP
/// program counts: one increment per row at the key's column, and the key
/// in its candidate slot.
fn sketch_with(keys: &[([u8; 4], u32)]) -> Sketch {
    let mut s = Sketch::default();
    for (addr, n) in keys {
        let words = [u32::from_le_bytes(*addr), 0, 0, 0];
        let h = flowscope_common::hash::endpoint_hash(SKETCH_KEY_SEED, &words, 0);
        for (row, counters) in s.rows.iter_mut().enumerate().take(SKETCH_DEPTH) {
            counters[sketch_column(h, row)] += n;
        }
        let slot = h as usize % s.top.len();
        s.top[slot] = TopEntry {
            addr: words,
            family: 4,
            estimate: *n,
        };
    }
    s
}

#[test]
fn interval_from_two_readings_and_a_snapshot() {
    let before = block(&[(A::Syn, 100), (A::TcpNull, 7), (A::Rst, 50)]);
    let after = block(&[(A::Syn, 1_100), (A::TcpNull, 7), (A::Rst, 80), (A::Land, 2)]);
    // Two CPUs each saw part of the SYNs to the victim.
    let syn = [
        sketch_with(&[([198, 51, 100, 9], 600), ([198, 51, 100, 20], 5)]),
        sketch_with(&[([198, 51, 100, 9], 300), ([198, 51, 100, 21], 50)]),
    ];
    let ports = [sketch_with(&[([203, 0, 113, 7], 40)]), Sketch::default()];
    let i = AnomalyInterval::new(
        &before,
        &after,
        &syn,
        &ports,
        END,
        Duration::from_secs(2),
        2,
    );
    assert_eq!(
        i.counts,
        block(&[(A::Syn, 1_000), (A::Rst, 30), (A::Land, 2)])
    );
    assert_eq!(i.rate(A::Syn), 500.0);
    assert_eq!(i.end, END);
    let top: Vec<_> = i
        .top_syn_targets
        .iter()
        .map(|o| (o.addr, o.estimate))
        .collect();
    assert_eq!(top, [(ip("198.51.100.9"), 900), (ip("198.51.100.21"), 50)]);
    let scanners: Vec<_> = i
        .top_port_scanners
        .iter()
        .map(|o| (o.addr, o.estimate))
        .collect();
    assert_eq!(scanners, [(ip("203.0.113.7"), 40)]);
    // The program was reloaded between the readings: counts start over.
    let reloaded = AnomalyInterval::new(
        &after,
        &block(&[(A::Syn, 3)]),
        &[],
        &[],
        END,
        Duration::from_secs(1),
        2,
    );
    assert_eq!(reloaded.counts, block(&[(A::Syn, 3)]));
    assert!(reloaded.top_syn_targets.is_empty());
}

#[cfg(feature = "metrics")]
#[test]
fn metrics_publish_absolute_totals_for_every_label() {
    use flowscope::anomaly::{METRIC_XDP_ANOMALIES, METRIC_XDP_INDICATORS, publish_xdp_totals};
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use std::collections::BTreeMap;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let read = || -> BTreeMap<(String, String, String), u64> {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, help, value)| {
                let (_, key) = key.into_parts();
                assert!(help.is_some(), "{} has no description", key.name());
                let labels: Vec<_> = key.labels().collect();
                assert_eq!(labels.len(), 1, "one label on {}", key.name());
                let DebugValue::Counter(v) = value else {
                    panic!("{} is not a counter", key.name());
                };
                (
                    (
                        key.name().to_string(),
                        labels[0].key().to_string(),
                        labels[0].value().to_string(),
                    ),
                    v,
                )
            })
            .collect()
    };
    metrics::with_local_recorder(&recorder, || {
        let mut facade = flowscope::obs::MetricsPublisher::new();
        publish_xdp_totals(&block(&[(A::TcpXmas, 3), (A::Syn, 1_000)]), &mut facade);
        publish_xdp_totals(&block(&[(A::TcpXmas, 5), (A::Syn, 1_200)]), &mut facade);
    });
    let got = read();
    assert_eq!(got.len(), A::ALL.len(), "{got:?}");
    for k in A::ALL {
        let (name, label) = if k.is_indicator() {
            (METRIC_XDP_INDICATORS, "indicator")
        } else {
            (METRIC_XDP_ANOMALIES, "kind")
        };
        let want = match k {
            A::TcpXmas => 5,
            A::Syn => 1_200,
            _ => 0,
        };
        assert_eq!(
            got.get(&(name.into(), label.into(), k.label().into())),
            Some(&want),
            "{name}{{{label}={}}}",
            k.label()
        );
    }
    assert_eq!(METRIC_XDP_ANOMALIES, "flowscope_xdp_anomalies_total");
    assert_eq!(METRIC_XDP_INDICATORS, "flowscope_xdp_indicator_total");
}
