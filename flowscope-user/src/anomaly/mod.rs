//! Anomaly counting outside the XDP program.
//!
//! The kinds, indicators and their rules are defined in
//! `flowscope_common::anomaly`; the XDP program counts them per CPU at line
//! rate and keeps two sketches per interval (SYN targets, distinct ports per
//! source). This module holds:
//!
//! - [`detect`]: the same rules over one Ethernet frame (tests, offline use);
//! - [`top_offenders`]: the heaviest keys of a sketch, merged over CPUs;
//! - [`AnomalyInterval`]: one interval's counts, rates and offenders, with its
//!   EVE record (written by [`crate::output::eve`]) and one-line text form
//!   (`Display`);
//! - [`publish_xdp_totals`]: the running totals as metric families.

mod detect;
mod interval;
mod offenders;
mod publish;

pub use detect::detect;
pub use interval::AnomalyInterval;
pub use offenders::{Offender, top_offenders};
pub use publish::{METRIC_XDP_ANOMALIES, METRIC_XDP_INDICATORS, publish_xdp_totals};
