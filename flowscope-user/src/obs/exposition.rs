//! The Prometheus text exposition format (version 0.0.4): what a scrape of
//! `/metrics` returns.
//!
//! Every family gets `# HELP` and `# TYPE`, its series in the order they
//! were written. A [`Log2Histogram`] becomes a Prometheus histogram with its
//! own bucket bounds, no resampling: bucket `i` holds the integers up to
//! `2^i - 1`, so `le` is that bound (divided by the family's `per_unit`),
//! each `_bucket` counts every sample up to its bound (cumulative), `+Inf`
//! and `_count` all samples, `_sum` their exact sum.

use std::fmt::{Display, Write};

use super::Log2Histogram;
use super::sink::{Family, Labels, MetricKind, MetricSink};

/// The media type of the text format, for the `Content-Type` header.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The last bucket exported with its own `le`: its bound, `2^49 - 1`, has 15
/// significant digits, so every `le` reads back exactly as a float (also
/// after division by a power of ten). Larger samples count in `+Inf` only.
const TOP_BUCKET: usize = 49;

/// Families rendered as text, in the order they were written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
    families: Vec<&'static str>,
}

impl Exposition {
    /// Nothing written yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text.
    pub fn into_text(self) -> String {
        self.text
    }

    /// Starts `family` unless its series are being written: `# HELP` and
    /// `# TYPE` once per family.
    fn begin(&mut self, family: &Family) {
        if self.families.last() == Some(&family.name) {
            return;
        }
        debug_assert!(
            !self.families.contains(&family.name),
            "{} written in two places",
            family.name
        );
        self.families.push(family.name);
        let kind = match family.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram { .. } => "histogram",
        };
        let help = family.help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {} {help}", family.name);
        let _ = writeln!(self.text, "# TYPE {} {kind}", family.name);
    }

    /// One sample line: `name{labels,le="…"} value`.
    fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: Labels<'_>,
        le: Option<&str>,
        value: impl Display,
    ) {
        let t = &mut self.text;
        t.push_str(name);
        t.push_str(suffix);
        let pairs = labels.iter().copied().chain(le.map(|v| ("le", v)));
        for (i, (k, v)) in pairs.enumerate() {
            t.push(if i == 0 { '{' } else { ',' });
            t.push_str(k);
            t.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => t.push_str("\\\\"),
                    '"' => t.push_str("\\\""),
                    '\n' => t.push_str("\\n"),
                    c => t.push(c),
                }
            }
            t.push('"');
        }
        if !labels.is_empty() || le.is_some() {
            t.push('}');
        }
        let _ = writeln!(t, " {value}");
    }
}

/// `v / per_unit` as a Prometheus float: an integer stays one.
fn scaled(v: u128, per_unit: u64) -> String {
    if per_unit == 1 {
        v.to_string()
    } else {
        (v as f64 / per_unit as f64).to_string()
    }
}

impl MetricSink for Exposition {
    fn counter(&mut self, family: &Family, labels: Labels<'_>, value: u64) {
        self.begin(family);
        self.sample(family.name, "", labels, None, value);
    }

    fn gauge(&mut self, family: &Family, labels: Labels<'_>, value: u64) {
        self.begin(family);
        self.sample(family.name, "", labels, None, value);
    }

    fn histogram(&mut self, family: &Family, labels: Labels<'_>, h: &Log2Histogram, max: u64) {
        self.begin(family);
        let per_unit = match family.kind {
            MetricKind::Histogram { per_unit } => per_unit.max(1),
            _ => 1,
        };
        let mut cumulative = 0;
        for i in 0..=Log2Histogram::bucket_of(max).min(TOP_BUCKET) {
            cumulative += h.buckets[i];
            let le = scaled(u128::from(Log2Histogram::upper_bound(i)), per_unit);
            self.sample(family.name, "_bucket", labels, Some(&le), cumulative);
        }
        let count = h.count();
        self.sample(family.name, "_bucket", labels, Some("+Inf"), count);
        let sum = scaled(h.sum(), per_unit);
        self.sample(family.name, "_sum", labels, None, sum);
        self.sample(family.name, "_count", labels, None, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKETS: Family = Family::histogram("t_packets", "Packets per flow.", 1);
    const SECONDS: Family = Family::histogram("t_seconds", "Durations.", 1_000_000_000);

    /// The `(le, cumulative count)` pairs of one rendered histogram.
    fn buckets(text: &str, name: &str) -> Vec<(String, u64)> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{name}_bucket{{")))
            .map(|l| {
                let le = l.split("le=\"").nth(1).unwrap();
                let (le, rest) = le.split_once('"').unwrap();
                (
                    le.to_owned(),
                    rest.trim_start_matches("} ").parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn histogram_buckets_are_the_log2_bounds_cumulative() {
        let mut h = Log2Histogram::default();
        for v in [0, 1, 5, 7, 8, 100, 1 << 50] {
            h.record(v);
        }
        let mut e = Exposition::new();
        e.histogram(&PACKETS, &[("side", "a\"b")], &h, u64::MAX);
        let text = e.into_text();
        let got = buckets(&text, "t_packets");
        // Bucket i counts every sample up to 2^i - 1; 2^50 only in +Inf.
        let mut want = vec![("0", 1), ("1", 2), ("3", 2), ("7", 4), ("15", 5), ("31", 5)];
        want.extend([("63", 5), ("127", 6)]);
        for (le, n) in &want {
            assert!(got.contains(&((*le).to_owned(), *n)), "le={le}: {got:?}");
        }
        assert_eq!(got.len(), TOP_BUCKET + 2);
        assert_eq!(got[TOP_BUCKET].0, ((1u64 << 49) - 1).to_string());
        assert_eq!(got[TOP_BUCKET].1, 6);
        assert_eq!(got.last().unwrap(), &("+Inf".to_owned(), 7));
        assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));
        let sum = 1 + 5 + 7 + 8 + 100 + (1u64 << 50);
        assert!(text.contains(&format!("t_packets_sum{{side=\"a\\\"b\"}} {sum}\n")));
        assert!(text.contains("t_packets_count{side=\"a\\\"b\"} 7\n"));
        assert!(
            text.starts_with("# HELP t_packets Packets per flow.\n# TYPE t_packets histogram\n")
        );
    }

    #[test]
    fn bounded_histograms_stop_at_the_bound_and_seconds_are_scaled() {
        let mut h = Log2Histogram::default();
        h.record(1_500);
        h.record(2_000_000_000);
        let mut e = Exposition::new();
        e.histogram(&SECONDS, &[], &h, 2048);
        let text = e.into_text();
        let got = buckets(&text, "t_seconds");
        // 2048 lies in bucket 12: bounds 0 ..= 4095 ns, then +Inf.
        assert_eq!(got.len(), 14);
        assert_eq!(got[11], ("0.000002047".to_owned(), 1));
        assert_eq!(got[12], ("0.000004095".to_owned(), 1));
        assert_eq!(got[13], ("+Inf".to_owned(), 2));
        assert!(text.contains("t_seconds_sum 2.0000015\n"), "{text}");
        assert!(text.contains("t_seconds_count 2\n"));
    }

    #[test]
    fn a_family_is_introduced_once_before_its_series() {
        let f = Family::counter("t_total", "Things.");
        let g = Family::gauge("t_level", "Level.");
        let mut e = Exposition::new();
        e.counter(&f, &[("k", "a")], 1);
        e.counter(&f, &[("k", "b")], 2);
        e.gauge(&g, &[], 3);
        assert_eq!(
            e.text(),
            "# HELP t_total Things.\n# TYPE t_total counter\nt_total{k=\"a\"} 1\nt_total{k=\"b\"} 2\n\
             # HELP t_level Level.\n# TYPE t_level gauge\nt_level 3\n"
        );
    }
}
