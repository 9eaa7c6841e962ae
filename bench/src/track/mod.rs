//! The extract + track benchmark behind `trackbench` (`cargo xtask bench
//! track`): ns/packet of our [`FlowTracker`](flowscope::tracker::FlowTracker)
//! (`track` and `track_batch`) and of the published flowscope 0.3.0 crate's
//! tracker, both with a bidirectional five-tuple extractor, on the same
//! in-memory frames in the same process, runs interleaved.
//!
//! [`workload`] builds or loads the frames, [`run`] times one contender on
//! one workload, and [`bench()`] runs everything and prints a Markdown table
//! of medians (min–max) and median ratios. [`hint`] compares plain and
//! XDP-hinted extraction alone (`trackbench --hints`).

pub mod hint;
pub mod run;
pub mod workload;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

use run::{Contender, Sample};
use workload::Workload;

/// flowscope 0.3.0's default `max_flows`, used for every workload that fits.
const DEFAULT_CAPACITY: usize = 100_000;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Timed runs per contender and workload.
    pub runs: usize,
    /// Packets timed in the steady passes of one run (at least one pass).
    pub packets: u64,
    /// Captures replayed from memory.
    pub pcaps: Vec<PathBuf>,
    /// Flows of the concurrent-flows workload (0: skip it).
    pub big_flows: usize,
    /// Run only the workloads whose name contains this.
    pub only: Option<String>,
}

/// Minimum, median and maximum of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Smallest sample.
    pub min: f64,
    /// Median (mean of the two middle samples for an even count).
    pub median: f64,
    /// Largest sample.
    pub max: f64,
}

impl Stats {
    /// The statistics of `v`; `None` when it is empty.
    pub fn of(v: &[f64]) -> Option<Self> {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => s[n / 2],
            _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        };
        Some(Self {
            min: s[0],
            median,
            max: s[n - 1],
        })
    }
}

/// Which pass of a run a table row reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The first pass: every flow is created.
    First,
    /// The passes after the first.
    Steady,
}

/// Runs every workload and writes the Markdown table to `out` (progress
/// goes to stderr).
///
/// # Errors
/// A capture that cannot be read, a frame that cannot be built, or `out`.
pub fn bench(cfg: &Config, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "| workload | pass | packets timed per run | flows at end (ours / 0.3.0) \
         | ours `track` ns/pkt | ours `track_batch` ns/pkt | 0.3.0 `track` ns/pkt \
         | 0.3.0 ÷ `track` | 0.3.0 ÷ `track_batch` |"
    )?;
    writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|")?;
    type Build = Box<dyn Fn(&str) -> Result<Workload>>;
    let mut plan: Vec<(String, Build, Vec<Phase>)> = vec![(
        "one flow".to_owned(),
        Box::new(|name| Workload::synthetic(name, 1)),
        vec![Phase::Steady],
    )];
    for n in [10, 100, 1_000, 10_000] {
        plan.push((
            format!("{n} flows round-robin"),
            Box::new(move |name| Workload::synthetic(name, n)),
            vec![Phase::Steady],
        ));
    }
    for path in &cfg.pcaps {
        let file = path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        let path = path.clone();
        plan.push((
            format!("capture `{file}`"),
            Box::new(move |name| Workload::capture(name, &path)),
            vec![Phase::First, Phase::Steady],
        ));
    }
    if cfg.big_flows > 0 {
        let n = cfg.big_flows;
        plan.push((
            format!("{n} concurrent flows"),
            Box::new(move |name| Workload::synthetic(name, n)),
            vec![Phase::First, Phase::Steady],
        ));
    }
    for (name, build, phases) in plan {
        if cfg
            .only
            .as_ref()
            .is_some_and(|o| !name.contains(o.as_str()))
        {
            continue;
        }
        let w = build(&name)?;
        let samples = measure(cfg, &w);
        for phase in phases {
            write_row(out, &w, cfg, phase, &samples)?;
        }
        out.flush()?;
    }
    Ok(())
}

/// Steady passes of one run of `w`.
fn steady_passes(cfg: &Config, w: &Workload) -> u64 {
    cfg.packets.div_ceil(w.packets.len().max(1) as u64).max(1)
}

/// `cfg.runs` samples per contender, runs interleaved (the order rotates).
fn measure(cfg: &Config, w: &Workload) -> [Vec<Sample>; 3] {
    let capacity = DEFAULT_CAPACITY.max(w.flows + w.flows / 4);
    let passes = steady_passes(cfg, w);
    let mut samples: [Vec<Sample>; 3] = Default::default();
    for r in 0..cfg.runs {
        for k in 0..Contender::ALL.len() {
            let i = (r + k) % Contender::ALL.len();
            let s = run::run(Contender::ALL[i], w, capacity, passes);
            eprintln!(
                "{}: run {} {:?}: first {:.1} ns/pkt, steady {:.1} ns/pkt, {} flows",
                w.name,
                r + 1,
                Contender::ALL[i],
                s.first,
                s.steady,
                s.flows
            );
            samples[i].push(s);
        }
    }
    samples
}

fn write_row(
    out: &mut impl Write,
    w: &Workload,
    cfg: &Config,
    phase: Phase,
    samples: &[Vec<Sample>; 3],
) -> Result<()> {
    let pick = |s: &Sample| match phase {
        Phase::First => s.first,
        Phase::Steady => s.steady,
    };
    let stats: Vec<Option<Stats>> = samples
        .iter()
        .map(|v| Stats::of(&v.iter().map(pick).collect::<Vec<_>>()))
        .collect();
    let cell = |s: &Option<Stats>| {
        s.map_or_else(
            || "–".to_owned(),
            |s| format!("**{:.1}** ({:.1}–{:.1})", s.median, s.min, s.max),
        )
    };
    let ratio = |ours: &Option<Stats>| match (ours, &stats[2]) {
        (Some(o), Some(t)) if o.median > 0.0 => format!("{:.1}×", t.median / o.median),
        _ => "–".to_owned(),
    };
    let flows = |v: &Vec<Sample>| v.last().map_or(0, |s| s.flows);
    let (pass, packets) = match phase {
        Phase::First => ("first (creations)", w.packets.len() as u64),
        Phase::Steady => (
            "steady (after the first)",
            w.packets.len() as u64 * steady_passes(cfg, w),
        ),
    };
    writeln!(
        out,
        "| {} | {} | {} | {} / {} | {} | {} | {} | {} | {} |",
        w.name,
        pass,
        packets,
        flows(&samples[0]),
        flows(&samples[2]),
        cell(&stats[0]),
        cell(&stats[1]),
        cell(&stats[2]),
        ratio(&stats[0]),
        ratio(&stats[1]),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_odd_and_even_counts() {
        let s = Stats::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        let s = Stats::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 4.0));
        assert_eq!(Stats::of(&[]), None);
    }
}
