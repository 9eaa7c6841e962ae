//! Tracker configuration: capacity and timeouts.

use std::time::Duration;

use crate::extractor::L4Proto;

/// Settings of a [`FlowTracker`](crate::tracker::FlowTracker), fixed at construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Most flows held at once; memory is allocated for exactly this many.
    /// Default 100 000.
    pub max_flows: usize,
    /// Idle timeout of TCP flows. Default 300 s.
    pub idle_timeout_tcp: Duration,
    /// Idle timeout of UDP flows. Default 60 s.
    pub idle_timeout_udp: Duration,
    /// Idle timeout of every other protocol. Default 30 s.
    pub idle_timeout_other: Duration,
    /// Length after which a flow's record is ended with
    /// [`EndReason::ActiveTimeout`](crate::tracker::EndReason::ActiveTimeout)
    /// and the flow continues in a new record. `None` (default): never.
    pub active_timeout: Option<Duration>,
    /// How long a TCP flow closed by FINs or reset by a RST stays in the
    /// table to collect late ACKs and retransmissions. Default 5 s (Zeek's
    /// `tcp_close_delay`).
    pub tcp_close_linger: Duration,
    /// Granularity of the timer wheel: records end at most this late. Default 1 s.
    pub timer_tick: Duration,
    /// First flow ID minus one: give each tracker (worker) its own range.
    /// Default 0.
    pub flow_id_base: u64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            max_flows: 100_000,
            idle_timeout_tcp: Duration::from_secs(300),
            idle_timeout_udp: Duration::from_secs(60),
            idle_timeout_other: Duration::from_secs(30),
            active_timeout: None,
            tcp_close_linger: Duration::from_secs(5),
            timer_tick: Duration::from_secs(1),
            flow_id_base: 0,
        }
    }
}

impl TrackerConfig {
    /// The idle timeout of a protocol.
    pub fn idle_timeout(&self, l4: L4Proto) -> Duration {
        match l4 {
            L4Proto::Tcp => self.idle_timeout_tcp,
            L4Proto::Udp => self.idle_timeout_udp,
            _ => self.idle_timeout_other,
        }
    }
}

/// Per-key idle-timeout override: `Some` replaces the protocol default.
/// A plain function pointer, so it costs no allocation and no indirection
/// state per flow.
pub type IdleTimeoutFn<K> = fn(&K, L4Proto) -> Option<Duration>;
