//! The per-flow pipeline: IP fragment reassembly, the flow tracker, TCP
//! stream reassembly and the L7 session parsers, behind one interface that
//! a capture worker and offline mode share.
//!
//! ```text
//! frame ───────────────────────────────────────────────────► FlowTracker ─► events
//!   └─ fragment? ─► FragmentReassembler ─(whole datagram)─► its flow's parsers
//!   TCP packet ─► Reassembler (flow, side) ─► SessionDriver ─► HTTP/TLS/DNS/SSH ─► L7 records
//!   UDP packet ─────────────────────────────► DatagramDriver ─► DNS/QUIC ─────► L7 records
//!                                           (mDNS, LLMNR, DHCP, NTP, SSDP: recognised only)
//! ```
//!
//! The tracker counts every frame as it is, fragments included (a first
//! fragment in its flow, a later one as unmatched), so flow records do not
//! depend on whether reassembly and parsing run; a fragment's bytes reach
//! the parsers only with its whole datagram.
//!
//! One [`Pipeline`] per worker: [`process`](Pipeline::process) each frame
//! (or [`process_batch`](Pipeline::process_batch) a capture batch, which lets
//! the tracker prefetch across it, as live workers do),
//! [`advance`](Pipeline::advance) the clock between batches (live), and
//! [`finish`](Pipeline::finish) at the end. Everything it produces goes to
//! a [`PipelineSink`]: tracker events, L7 records tagged with their flow,
//! per-flow anomalies, and the ended flow records with what reassembly and
//! parsing did ([`FlowSummary`]). Its [`PipelineCounters`] are plain and
//! mergeable across workers.
//!
//! Memory: the tracker's table is fixed, and so is the pipeline's per-flow
//! state beside it: one [`FLOW_STATE_BYTES`]-byte state (512 bytes on
//! 64-bit targets: two reassemblers and the parser's driver state) per
//! table slot, indexed by the slot the
//! tracker's events name (no second lookup; `track_batch` prefetches it
//! with the record), reserved with the table and touched as slots are
//! first used, reset when a flow ends. A parser the driver chooses is
//! allocated then, and freed when the flow ends. Out-of-order
//! payload is copied out of the frame into storage charged to one shared
//! [`ReassemblyBudget`] (global cap)
//! and to each side's cap; in-order payload goes from the frame straight to
//! the parser. No frame is kept after `process` returns.
//!
//! Bypass (Suricata's stream depth and bypass): with a
//! [`stream_depth`](PipelineConfig::stream_depth) (default 1 MiB per side),
//! a TCP side past it, and both sides of a flow whose parser stopped (done,
//! failed, out of budget, or no parser after the probe window), skip
//! reassembly and parsing: their segments are only counted
//! ([`ReassemblyCounters::bypassed_segments`],
//! `flowscope_reassembly_bypassed_bytes_total`). Such a flow's reassembly
//! counters and anomalies cover its bytes up to the bypass.
//!
//! Capture loss: a hole the other side acknowledged, with bytes after it
//! acknowledged too, was lost by the capture and is given up at once
//! ([`Reassembler::acknowledged`](crate::reassembly::Reassembler::acknowledged)),
//! unless the flow's packets came out of time order.
//!
//! Bounds: a side that hits its cap or the budget gives up its oldest hole
//! (default [`OverflowPolicy::SlidingWindow`](crate::reassembly::OverflowPolicy))
//! or, with `DropFlow`, stops; either way the flow's record carries the
//! bound ([`FlowSummary::bounds`]), and a `DropFlow` flow is reported with
//! [`EndReason::BufferOverflow`].

mod counters;
mod flow;
mod fragments;
mod metrics;
mod tunnels;

pub use counters::{PipelineCounters, ReassemblyCounters};
pub use flow::{Bound, FAILED, FLOW_STATE_BYTES, FlowSummary, SideReassembly};
pub use tunnels::Carrier;

use crate::extract::FiveTupleKey;
use crate::extractor::FlowExtractor;
use crate::l7::dns;
use crate::l7::session::{DatagramDriver, DriverConfig, RecogniseFactory, SessionDriver, Side};
use crate::l7::{
    DnsConfig, DnsFactory, DnsTcpFactory, HttpConfig, HttpFactory, L7Record, QuicConfig,
    QuicFactory, SshConfig, SshFactory, TlsConfig, TlsFactory,
};
use crate::reassembly::ipfrag::{FragConfig, FragOutcome, FragmentReassembler};
use crate::reassembly::{Delivery, ReassemblyBudget, ReassemblyConfig};
use crate::tracker::{EndReason, FlowEvent, FlowRecord, FlowTracker, TrackerConfig};
use crate::view::{LinkType, PacketView, Timestamp};

/// Frames ahead of the fragment scan whose headers are prefetched.
const FRAME_LEAD: usize = 4;

/// L7 parser settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct L7Config {
    /// Parser choice and per-flow parser budget.
    pub driver: DriverConfig,
    /// HTTP parser limits.
    pub http: HttpConfig,
    /// TLS parser limits.
    pub tls: TlsConfig,
    /// DNS parser limits.
    pub dns: DnsConfig,
    /// QUIC parser limits.
    pub quic: QuicConfig,
    /// SSH parser limits.
    pub ssh: SshConfig,
}

/// Pipeline settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Flow table and timeouts.
    pub tracker: TrackerConfig,
    /// Per-side reassembly cap and policies.
    pub reassembly: ReassemblyConfig,
    /// Out-of-order storage all flows of the pipeline share (global cap),
    /// in bytes. Default 64 MiB.
    pub reassembly_budget_bytes: u64,
    /// Bytes of each side of a TCP flow that are reassembled and parsed
    /// (Suricata's `stream.reassembly.depth`). With a depth, a side's
    /// segments once it delivered that many bytes, and every segment of a
    /// flow whose parser stopped (done, failed, out of budget, or no
    /// parser after the probe window), bypass reassembly and parsing: they
    /// are counted ([`ReassemblyCounters::bypassed_segments`]) and the side
    /// is flushed and ended at once (its held bytes released). `None`:
    /// whole streams are reassembled (what [`PipelineSink::stream`] users
    /// want). Default 1 MiB, the default parser budget: with the defaults
    /// it is the parser that stops first.
    pub stream_depth: Option<u64>,
    /// IP fragment reassembly, whose datagrams go to the parsers; `None`
    /// gives them none (the tracker takes fragments as they are either
    /// way). Default on; off whatever it says when `l7` is `None` (no
    /// parser would take a datagram).
    pub fragments: Option<FragConfig>,
    /// Session parsing; `None` tracks flows only (no TCP reassembly, no
    /// parsers). Default on.
    pub l7: Option<L7Config>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            tracker: TrackerConfig::default(),
            reassembly: ReassemblyConfig::default(),
            reassembly_budget_bytes: 64 << 20,
            stream_depth: Some(1 << 20),
            fragments: Some(FragConfig::default()),
            l7: Some(L7Config::default()),
        }
    }
}

/// Irregularities the pipeline reports once per flow, side and kind, with
/// a count, when the flow record ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipelineAnomaly {
    /// Segments did not fit under the side's cap or the shared budget.
    BufferOverflow,
    /// Segments arrived ahead of a hole.
    OutOfOrderSegment,
    /// Retransmissions carried bytes different from those held.
    RetransmitInconsistency,
    /// The session parser gave up on the flow (count 1).
    SessionParseError,
}

impl PipelineAnomaly {
    /// Every kind, in [`index`](Self::index) order.
    pub const ALL: [PipelineAnomaly; 4] = [
        Self::BufferOverflow,
        Self::OutOfOrderSegment,
        Self::RetransmitInconsistency,
        Self::SessionParseError,
    ];

    /// Position in [`ALL`](Self::ALL) and in [`PipelineCounters::anomalies`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Static label (`kind` label, EVE `anomaly.type`).
    pub const fn label(self) -> &'static str {
        match self {
            Self::BufferOverflow => "buffer_overflow",
            Self::OutOfOrderSegment => "out_of_order_segment",
            Self::RetransmitInconsistency => "retransmit_inconsistency",
            Self::SessionParseError => "session_parse_error",
        }
    }
}

/// One coalesced anomaly of one flow side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowAnomaly {
    /// What.
    pub kind: PipelineAnomaly,
    /// Which side's stream.
    pub side: Side,
    /// How many times (segments, or 1 for a parse error).
    pub count: u64,
}

/// Receives what a [`Pipeline`] produces. Calls for one flow come in
/// order: its events and L7 records, then its anomalies, then
/// [`flow_ended`](Self::flow_ended).
pub trait PipelineSink<K> {
    /// Every tracker event except [`FlowEvent::Ended`] (which arrives as
    /// [`flow_ended`](Self::flow_ended)). Default: ignored.
    fn event(&mut self, event: &FlowEvent<'_, K>) {
        let _ = event;
    }

    /// A record a session parser emitted for `flow`, at packet time `ts`.
    fn l7(&mut self, flow: &FlowRecord<K>, ts: Timestamp, record: L7Record);

    /// Text storage for a parser's next record (see
    /// [`RecordSink::spare_text`](crate::l7::session::RecordSink::spare_text)).
    /// Default: a new, unallocated one.
    fn spare_text(&mut self) -> crate::l7::session::Texts {
        crate::l7::session::Texts::default()
    }

    /// Reassembled bytes or a gap of one side of a TCP flow, in stream
    /// order, as the parser receives them (up to the stream depth: see
    /// [`PipelineConfig::stream_depth`]). Default: ignored.
    fn stream(&mut self, flow: &FlowRecord<K>, side: Side, delivery: Delivery<'_>) {
        let _ = (flow, side, delivery);
    }

    /// An anomaly of `flow`, reported when its record ends. Default: ignored.
    fn anomaly(&mut self, flow: &FlowRecord<K>, anomaly: FlowAnomaly) {
        let _ = (flow, anomaly);
    }

    /// A flow record ended; `summary` is what reassembly and parsing did
    /// (absent for flows the pipeline kept no state for), `carrier` the
    /// tunnel the flow was taken out of.
    fn flow_ended(
        &mut self,
        flow: &FlowRecord<K>,
        reason: EndReason,
        summary: Option<&FlowSummary>,
        carrier: Option<&Carrier>,
    );
}

/// The per-worker pipeline. See the [module docs](self).
pub struct Pipeline<E: FlowExtractor<Key = FiveTupleKey>> {
    tracker: FlowTracker<E>,
    fragments: Option<FragmentReassembler>,
    core: flow::Core,
    frames: u64,
}

impl<E: FlowExtractor<Key = FiveTupleKey>> std::fmt::Debug for Pipeline<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("flows", &self.tracker.len())
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl<E: FlowExtractor<Key = FiveTupleKey>> Pipeline<E> {
    /// A pipeline with the HTTP, TLS, DNS, QUIC and SSH parsers (when
    /// `config.l7` is set). The flow table and the per-flow index are allocated now.
    pub fn new(extractor: E, config: PipelineConfig) -> Self {
        let tracker = FlowTracker::with_config(extractor, config.tracker);
        let l7 = config.l7.unwrap_or_default();
        let mut streams = SessionDriver::new(l7.driver);
        let mut datagrams = DatagramDriver::new(l7.driver);
        if config.l7.is_some() {
            // A few factories per driver: far below MAX_PARSERS.
            let _ = streams.register(Box::new(HttpFactory { config: l7.http }));
            let _ = streams.register(Box::new(TlsFactory { config: l7.tls }));
            let _ = streams.register(Box::new(DnsTcpFactory { config: l7.dns }));
            let _ = streams.register(Box::new(SshFactory { config: l7.ssh }));
            let _ = datagrams.register(Box::new(DnsFactory { config: l7.dns }));
            let _ = datagrams.register(Box::new(QuicFactory { config: l7.quic }));
            // After DNS: they accept DNS messages too, and win on their ports.
            let _ = datagrams.register(Box::new(dns::MDNS));
            let _ = datagrams.register(Box::new(dns::LLMNR));
            let _ = datagrams.register(Box::new(RecogniseFactory::DHCP));
            let _ = datagrams.register(Box::new(RecogniseFactory::NTP));
            let _ = datagrams.register(Box::new(RecogniseFactory::SSDP));
        }
        let core = flow::Core {
            enabled: config.l7.is_some(),
            reassembly: config.reassembly,
            stream_depth: config.stream_depth,
            budget: ReassemblyBudget::new(config.reassembly_budget_bytes),
            flows: flow::slot_states(tracker.capacity()),
            streams,
            datagrams,
            counters: ReassemblyCounters::default(),
            anomalies: [0; 4],
            tunnels: tunnels::Tunnels::default(),
        };
        Self {
            fragments: config
                .l7
                .as_ref()
                .and(config.fragments)
                .map(FragmentReassembler::new),
            tracker,
            core,
            frames: 0,
        }
    }

    /// The tracker (flows in the table, its configuration).
    pub fn tracker(&self) -> &FlowTracker<E> {
        &self.tracker
    }

    /// Processes one frame.
    pub fn process(&mut self, view: PacketView<'_>, sink: &mut impl PipelineSink<FiveTupleKey>) {
        let candidate = self.fragment_candidate(&view);
        self.process_candidate(view, candidate, sink);
    }

    /// The outer IP packet of `view` when fragment reassembly is on and the
    /// packet may be a fragment.
    fn fragment_candidate<'a>(&self, view: &PacketView<'a>) -> Option<&'a [u8]> {
        self.fragments.as_ref()?;
        // A malformed record (captured > original length) is the tracker's
        // to count, never reassembled.
        if view.frame.len() > view.orig_len as usize {
            return None;
        }
        fragments::fragment_candidate(view)
    }

    /// [`process`](Self::process) with `view`'s fragment candidate known:
    /// the tracker takes the frame as it is (a first fragment counts in its
    /// flow, a later one as unmatched), then a fragment goes to the
    /// reassembler, and the datagram it may complete goes to its flow's
    /// parsers.
    fn process_candidate(
        &mut self,
        view: PacketView<'_>,
        candidate: Option<&[u8]>,
        sink: &mut impl PipelineSink<FiveTupleKey>,
    ) {
        self.frames += 1;
        let mut stage = flow::Stage {
            core: &mut self.core,
            sink: &mut *sink,
        };
        self.tracker.track(view, &mut stage);
        let (Some(frag), Some(ip)) = (&mut self.fragments, candidate) else {
            return;
        };
        if let FragOutcome::Complete(datagram) = frag.push(ip, view.timestamp) {
            let whole = PacketView {
                frame: datagram,
                timestamp: view.timestamp,
                link: LinkType::RawIp,
                orig_len: datagram.len() as u32,
                hint: None,
            };
            self.core.datagram(&self.tracker, whole, sink);
        }
    }

    /// Processes frames in order, exactly as [`process`](Self::process) one
    /// by one would: runs of frames that cannot be IP fragments go through
    /// the tracker's prefetching batch path
    /// ([`FlowTracker::track_batch`]), fragment candidates one by one.
    pub fn process_batch(
        &mut self,
        views: &[PacketView<'_>],
        sink: &mut impl PipelineSink<FiveTupleKey>,
    ) {
        if self.fragments.is_none() {
            // No frame leaves the batch: the tracker reads each first.
            self.track_run(views, sink);
            return;
        }
        let mut run = 0;
        for (i, view) in views.iter().enumerate() {
            // This scan is the first to read each frame: have the next
            // ones' headers on their way.
            crate::tracker::prefetch_frame(views, i + FRAME_LEAD);
            if let Some(ip) = self.fragment_candidate(view) {
                self.track_run(views.get(run..i).unwrap_or_default(), sink);
                self.process_candidate(*view, Some(ip), sink);
                run = i + 1;
            }
        }
        self.track_run(views.get(run..).unwrap_or_default(), sink);
    }

    /// Tracks frames that are not IP fragments, as one batch.
    fn track_run(&mut self, views: &[PacketView<'_>], sink: &mut impl PipelineSink<FiveTupleKey>) {
        if views.is_empty() {
            return;
        }
        self.frames += views.len() as u64;
        let mut stage = flow::Stage {
            core: &mut self.core,
            sink,
        };
        self.tracker.track_batch(views, &mut stage);
    }

    /// Moves the clock to `now`: ends timed-out flows and drops timed-out
    /// fragments. Live capture calls it once per batch and when idle.
    pub fn advance(&mut self, now: Timestamp, sink: &mut impl PipelineSink<FiveTupleKey>) {
        if let Some(frag) = &mut self.fragments {
            frag.expire(now);
        }
        let mut stage = flow::Stage {
            core: &mut self.core,
            sink,
        };
        self.tracker.advance(now, &mut stage);
    }

    /// Ends every flow (end of input, shutdown) and drops every fragment
    /// still waiting.
    pub fn finish(&mut self, sink: &mut impl PipelineSink<FiveTupleKey>) {
        if let Some(frag) = &mut self.fragments {
            frag.expire_all();
        }
        let mut stage = flow::Stage {
            core: &mut self.core,
            sink,
        };
        self.tracker.finish(&mut stage);
    }

    /// A snapshot of everything counted (allocates; call on scrape, not
    /// per packet).
    pub fn counters(&self) -> PipelineCounters {
        let core = &self.core;
        let mut reassembly = core.counters.clone();
        reassembly.budget_used_bytes = core.budget.used_bytes();
        reassembly.budget_high_watermark_bytes = core.budget.high_watermark_bytes();
        reassembly.budget_refusals = core.budget.refusals();
        let mut tracker = self.tracker.counters().clone();
        for i in 0..2 {
            let side = &reassembly.sides[i];
            tracker.reassembly_dropped_ooo[i] += side.overflows;
            tracker.reassembly_bytes_dropped_oversize[i] += side.bytes_dropped_oversize;
            tracker.reassembly_bypassed_bytes[i] += reassembly.bypassed_bytes[i];
            tracker.reassembler_high_watermark_bytes[i] = reassembly.flow_high_watermark_bytes[i];
        }
        use crate::tracker::AnomalyKind as K;
        let a = |k: PipelineAnomaly| core.anomalies[k.index()];
        tracker.anomalies[K::BufferOverflow.index()] += a(PipelineAnomaly::BufferOverflow);
        tracker.anomalies[K::OutOfOrderSegment.index()] += a(PipelineAnomaly::OutOfOrderSegment);
        tracker.anomalies[K::ParseError.index()] += a(PipelineAnomaly::SessionParseError);
        PipelineCounters {
            frames: self.frames,
            tracker,
            reassembly,
            fragments: self
                .fragments
                .as_ref()
                .map(|f| *f.counters())
                .unwrap_or_default(),
            streams: core.streams.counters().clone(),
            datagrams: core.datagrams.counters().clone(),
            anomalies: core.anomalies,
        }
    }

    /// Bytes the shared reassembly budget holds now, and its peak.
    pub fn reassembly_memory(&self) -> (u64, u64) {
        (
            self.core.budget.used_bytes(),
            self.core.budget.high_watermark_bytes(),
        )
    }
}
