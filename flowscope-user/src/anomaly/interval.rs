//! One interval of the XDP program's anomaly counting: counts, rates and
//! offenders, as an EVE record (written by [`crate::output::eve`]) and as
//! one line of text.
//!
//! EVE record (written with `--eve-extras` only, its shape being
//! flowscope's own; one line; `anomalies` lists the non-zero kinds in bit
//! order, `syn_half_open_ratio` appears when the interval saw a SYN):
//!
//! ```json
//! {"timestamp":"2024-05-01T12:00:10.000000+0000","event_type":"anomaly","interval_s":10.0,
//!  "anomalies":{"ttl_low":4,"tcp_xmas":30},
//!  "indicators":{"syn":12000,"syn_ack":3000,"rst":9000,"icmp_unreachable":0},
//!  "syn_half_open_ratio":0.75,
//!  "top_syn_targets":[{"ip":"198.51.100.9","estimate":5400}],
//!  "top_port_scanners":[{"ip":"203.0.113.7","distinct_ports":40}]}
//! ```
//!
//! Text form: `anomalies/s: syn 1200 rst 900 tcp_xmas 3 | top SYN target
//! 198.51.100.9 (5400) | top port scanner 203.0.113.7 (40 ports)` —
//! indicators first, then kinds in bit order, non-zero rates only; rates of
//! 10/s and more are whole numbers, smaller ones have one decimal.

use std::fmt;
use std::time::Duration;

use flowscope_common::anomaly::{Anomaly, AnomalyBlock, Sketch};

use super::{Offender, top_offenders};
use crate::view::Timestamp;

/// One interval of anomaly counting.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyInterval {
    /// End of the interval.
    pub end: Timestamp,
    /// Length of the interval.
    pub length: Duration,
    /// Frames per kind and indicator within the interval.
    pub counts: AnomalyBlock,
    /// Heaviest SYN destinations (estimate = SYNs received).
    pub top_syn_targets: Vec<Offender>,
    /// Heaviest port scanners (estimate = distinct destination ports).
    pub top_port_scanners: Vec<Offender>,
}

impl AnomalyInterval {
    /// The interval between two successive readings of the summed
    /// anomaly block, with the sketches taken at its end (per CPU) and
    /// the `top` heaviest keys of each. A counter that went backwards (the
    /// program was reloaded) counts from zero.
    pub fn new(
        before: &AnomalyBlock,
        after: &AnomalyBlock,
        syn_dst: &[Sketch],
        src_ports: &[Sketch],
        end: Timestamp,
        length: Duration,
        top: usize,
    ) -> Self {
        let mut counts = AnomalyBlock::default();
        for (c, (a, b)) in counts
            .counts
            .iter_mut()
            .zip(after.counts.iter().zip(before.counts.iter()))
        {
            *c = if a >= b { a - b } else { *a };
        }
        Self {
            end,
            length,
            counts,
            top_syn_targets: top_offenders(syn_dst, top),
            top_port_scanners: top_offenders(src_ports, top),
        }
    }

    /// True when no kind and no indicator moved in the interval.
    pub fn is_quiet(&self) -> bool {
        self.counts.counts.iter().all(|c| *c == 0)
    }

    /// Frames of `a` in the interval.
    pub fn count(&self, a: Anomaly) -> u64 {
        self.counts.get(a)
    }

    /// Frames of `a` per second (0 for an empty interval).
    pub fn rate(&self, a: Anomaly) -> f64 {
        let s = self.length.as_secs_f64();
        if s > 0.0 {
            self.count(a) as f64 / s
        } else {
            0.0
        }
    }

    /// Share of the interval's SYNs not answered by a SYN-ACK:
    /// `(syn − min(syn_ack, syn)) / syn`; `None` without SYNs. Counts
    /// frames, not flows, and assumes both directions pass this interface.
    pub fn syn_half_open_ratio(&self) -> Option<f64> {
        let syn = self.count(Anomaly::Syn);
        let ack = self.count(Anomaly::SynAck).min(syn);
        (syn > 0).then(|| (syn - ack) as f64 / syn as f64)
    }
}

/// Indicators first, then kinds in bit order.
fn display_order() -> impl Iterator<Item = Anomaly> {
    let all = Anomaly::ALL.iter().copied();
    all.clone()
        .filter(|a| a.is_indicator())
        .chain(all.filter(|a| !a.is_indicator()))
}

impl fmt::Display for AnomalyInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("anomalies/s:")?;
        let mut any = false;
        for a in display_order().filter(|a| self.count(*a) > 0) {
            let r = self.rate(a);
            if r >= 10.0 {
                write!(f, " {} {r:.0}", a.label())?;
            } else {
                write!(f, " {} {r:.1}", a.label())?;
            }
            any = true;
        }
        if !any {
            f.write_str(" none")?;
        }
        if let Some(o) = self.top_syn_targets.first() {
            write!(f, " | top SYN target {} ({})", o.addr, o.estimate)?;
        }
        if let Some(o) = self.top_port_scanners.first() {
            write!(f, " | top port scanner {} ({} ports)", o.addr, o.estimate)?;
        }
        Ok(())
    }
}
