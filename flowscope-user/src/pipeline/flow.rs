//! Per-flow state (two reassemblers and the parser of a TCP flow, the
//! parser of a UDP flow) and the routing of tracker events through it.

use super::counters::ReassemblyCounters;
use super::tunnels::{Carrier, Tunnels};
use super::{FlowAnomaly, PipelineAnomaly, PipelineSink};
use crate::extract::FiveTupleKey;
use crate::extractor::FlowExtractor;
use crate::extractor::{Extracted, L4Proto, TcpFlags};
use crate::l7::L7Record;
use crate::l7::session::{
    DatagramDriver, DatagramSession, FlowPorts, RecordSink, SessionDriver, SessionState, Side,
    StopReason, StreamSession, Texts,
};
use crate::reassembly::{
    Delivery, Reassembler, ReassemblyAnomaly, ReassemblyBudget, ReassemblyConfig, SideCounters,
    StreamStatus,
};
use crate::tracker::{EndReason, EventSink, FlowEvent, FlowRecord, FlowSide, FlowTracker};
use crate::view::{PacketView, Timestamp};

/// A bound a flow's reassembly or parsing hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bound {
    /// A side's own out-of-order cap.
    SideCap,
    /// The out-of-order budget all flows share.
    GlobalCap,
    /// The per-flow parser budget (parsing stopped, tracking went on).
    ParserBudget,
}

impl Bound {
    /// Static label (EVE `bounds` values).
    pub const fn label(self) -> &'static str {
        match self {
            Self::SideCap => "reassembly_side_cap",
            Self::GlobalCap => "reassembly_global_cap",
            Self::ParserBudget => "parser_budget",
        }
    }
}

/// What reassembly did on one side of a TCP flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideReassembly {
    /// The reassembler's counters.
    pub counters: SideCounters,
    /// Of its overflows, those the shared budget caused.
    pub global_overflows: u64,
}

/// [`FlowSummary::app_proto`] of a flow whose payload no parser recognised.
pub const FAILED: &str = "failed";

/// What reassembly and parsing did for one flow record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSummary {
    /// Where parsing stands (the protocol, and why it stopped).
    pub session: SessionState,
    /// TCP flows: reassembly per side, initiator first.
    pub tcp: Option<[SideReassembly; 2]>,
}

impl FlowSummary {
    /// The protocol a parser was chosen for, or Suricata's `failed` when
    /// the flow carried payload no parser recognised; `None` while probing
    /// and for flows without payload.
    pub fn app_proto(&self) -> Option<&'static str> {
        match self.session {
            SessionState::Parsing(p) => Some(p),
            SessionState::Stopped(StopReason::NoParser, None) => Some(FAILED),
            SessionState::Stopped(_, p) => p,
            SessionState::Probing => None,
        }
    }

    /// The bounds this flow hit, each once.
    pub fn bounds(&self) -> impl Iterator<Item = Bound> + use<> {
        let (mut side, mut global) = (false, false);
        for s in self.tcp.iter().flatten() {
            global |= s.global_overflows > 0;
            side |= s.counters.overflows > s.global_overflows;
        }
        let parser = matches!(
            self.session,
            SessionState::Stopped(StopReason::BudgetExhausted, _)
        );
        [
            (side, Bound::SideCap),
            (global, Bound::GlobalCap),
            (parser, Bound::ParserBudget),
        ]
        .into_iter()
        .filter_map(|(hit, b)| hit.then_some(b))
    }
}

/// State of one TCP flow.
pub(super) struct StreamFlow {
    sides: [Reassembler; 2],
    global_overflows: [u64; 2],
    /// The driver was told this side's stream ended.
    ended: [bool; 2],
    /// A side hit a cap with `OverflowPolicy::DropFlow`.
    dropped: bool,
    /// The side whose bytes made the parser fail.
    parse_error_side: Option<Side>,
    /// Latest packet time seen, and whether an earlier one came after it:
    /// in a capture out of time order an acknowledgement may precede the
    /// data it covers, so acknowledged holes are not given up early.
    last_ts: Timestamp,
    time_reordered: bool,
    /// The side bypasses reassembly and parsing (see [`bypass`]).
    bypassed: [bool; 2],
    session: StreamSession<L7Record>,
}

/// Per-flow state, one per tracker slot in [`Core::flows`].
#[expect(
    clippy::large_enum_variant,
    reason = "stored in place, one per slot: a smaller UDP variant saves nothing"
)]
pub(super) enum FlowState {
    /// No TCP or UDP payload-carrying packet yet (or not a TCP/UDP flow).
    Empty,
    Stream(StreamFlow),
    Datagram(DatagramSession<L7Record>),
}

/// One slot's state, aligned to cache lines so that prefetching it brings
/// its own lines only.
#[repr(align(64))]
pub(super) struct FlowSlot(FlowState);

/// Bytes of pipeline state per flow-table slot (the memory bound stated in
/// the [module docs](super)).
pub const FLOW_STATE_BYTES: usize = std::mem::size_of::<FlowSlot>();

/// Bytes from the start of a frame the parsers read, as far as the
/// tracker's batch path prefetches them: an HTTP request or response head
/// in its segment (a few hundred bytes; a response's body is skipped
/// unread, and the rest of a long head follows by the hardware's own
/// prefetch).
const PARSED_FRAME_BYTES: usize = 640;

/// The state of `slot`, `flows` grown to it if it is the first use of that
/// slot (within the capacity reserved: never a reallocation).
fn slot_state(flows: &mut Vec<FlowSlot>, slot: u32) -> Option<&mut FlowState> {
    let i = slot as usize;
    if i >= flows.len() && i < flows.capacity() {
        flows.resize_with(i + 1, || FlowSlot(FlowState::Empty));
    }
    flows.get_mut(i).map(|s| &mut s.0)
}

/// Per-slot states for a tracker of `capacity` slots: room reserved now
/// (never reallocated), pages touched as slots are first used.
pub(super) fn slot_states(capacity: usize) -> Vec<FlowSlot> {
    crate::tracker::hugepage::vec_with_capacity(capacity)
}

/// Everything the event handler needs; the pipeline minus tracker and
/// fragment reassembler.
pub(super) struct Core {
    pub(super) enabled: bool,
    pub(super) reassembly: ReassemblyConfig,
    /// [`PipelineConfig::stream_depth`](super::PipelineConfig::stream_depth).
    pub(super) stream_depth: Option<u64>,
    pub(super) budget: ReassemblyBudget,
    /// Per-flow state by tracker slot; grows (within its capacity, the
    /// tracker's) as the tracker's slots are first used.
    pub(super) flows: Vec<FlowSlot>,
    pub(super) streams: SessionDriver<L7Record>,
    pub(super) datagrams: DatagramDriver<L7Record>,
    pub(super) counters: ReassemblyCounters,
    pub(super) anomalies: [u64; 4],
    pub(super) tunnels: Tunnels,
}

/// The tracker's event sink during one pipeline call.
pub(super) struct Stage<'a, S> {
    pub(super) core: &'a mut Core,
    pub(super) sink: &'a mut S,
}

/// Tags parser records with their flow and time.
struct Tag<'a, S> {
    sink: &'a mut S,
    flow: &'a FlowRecord<FiveTupleKey>,
    ts: Timestamp,
}

impl<S: PipelineSink<FiveTupleKey>> RecordSink<L7Record> for Tag<'_, S> {
    fn emit(&mut self, record: L7Record) {
        self.sink.l7(self.flow, self.ts, record);
    }

    fn spare_text(&mut self) -> Texts {
        self.sink.spare_text()
    }
}

fn session_side(side: FlowSide) -> Side {
    match side {
        FlowSide::Initiator => Side::Initiator,
        FlowSide::Responder => Side::Responder,
    }
}

fn ports(flow: &FlowRecord<FiveTupleKey>) -> FlowPorts {
    let k = flow.key.oriented(flow.initiator);
    FlowPorts {
        initiator: k.src_port(),
        responder: k.dst_port(),
    }
}

impl<S: PipelineSink<FiveTupleKey>> EventSink<FiveTupleKey> for Stage<'_, S> {
    #[inline(always)]
    fn event(&mut self, event: FlowEvent<'_, FiveTupleKey>) {
        match event {
            FlowEvent::Ended { flow, slot, reason } => {
                let carrier = self.core.tunnels.ended(flow, reason);
                self.core
                    .ended(slot, flow, reason, carrier.as_ref(), self.sink);
            }
            FlowEvent::Started { flow } => {
                self.core.tunnels.started(flow);
                self.sink.event(&event);
            }
            FlowEvent::Tunnel { flow, .. } => {
                self.core.tunnels.carrier_found(flow);
                self.sink.event(&event);
            }
            FlowEvent::Packet {
                flow,
                slot,
                side,
                extracted,
                view,
            } => {
                self.sink.event(&event);
                // A fragment's bytes reach the parsers with its whole
                // datagram (`Core::datagram`), not on their own.
                // A carrier's payload is the tunnel: its flows are parsed.
                let fragment = extracted.fragment.is_some_and(|f| f.more || f.offset > 0);
                let carrier = flow.carries.is_some();
                if self.core.enabled && !fragment && !carrier {
                    self.core
                        .packet(slot, flow, session_side(side), extracted, view, self.sink);
                }
            }
            other => self.sink.event(&other),
        }
    }

    #[inline(always)]
    fn frame_bytes(&self) -> usize {
        if self.core.enabled {
            PARSED_FRAME_BYTES
        } else {
            0
        }
    }

    #[inline(always)]
    fn prefetch(&mut self, slot: u32) {
        if let Some(state) = self.core.flows.get(slot as usize) {
            crate::tracker::prefetch(state, FLOW_STATE_BYTES);
        }
    }

    #[inline(always)]
    fn prefetch_deep(&mut self, slot: u32, depth: usize) {
        match (self.core.flows.get(slot as usize).map(|s| &s.0), depth) {
            (Some(FlowState::Stream(f)), 1) => f.session.prefetch(),
            (Some(FlowState::Stream(f)), _) => f.session.prefetch_parser_data(),
            (Some(FlowState::Datagram(d)), 1) => d.prefetch(),
            _ => {}
        }
    }
}

/// Delivers one reassembler output to the sink and the parser.
#[expect(
    clippy::too_many_arguments,
    reason = "split borrows of the flow state and the pipeline"
)]
fn deliver<S: PipelineSink<FiveTupleKey>>(
    driver: &mut SessionDriver<L7Record>,
    session: &mut StreamSession<L7Record>,
    parse_error_side: &mut Option<Side>,
    flow: &FlowRecord<FiveTupleKey>,
    side: Side,
    delivery: Delivery<'_>,
    ts: Timestamp,
    sink: &mut S,
) {
    sink.stream(flow, side, delivery);
    let mut tag = Tag { sink, flow, ts };
    match delivery {
        Delivery::Data(bytes) => driver.on_data(session, ports(flow), side, bytes, ts, &mut tag),
        Delivery::Gap(len) => driver.on_gap(session, ports(flow), side, len, ts, &mut tag),
    }
    if parse_error_side.is_none()
        && matches!(
            driver.state(session),
            SessionState::Stopped(StopReason::ParseError, _)
        )
    {
        *parse_error_side = Some(side);
    }
}

impl Core {
    /// A datagram the fragment reassembler completed, to its flow's parsers
    /// (the tracker counted its fragments one by one). A datagram whose
    /// flow is no longer in the table is dropped.
    pub(super) fn datagram<E: FlowExtractor<Key = FiveTupleKey>, S: PipelineSink<FiveTupleKey>>(
        &mut self,
        tracker: &FlowTracker<E>,
        view: PacketView<'_>,
        sink: &mut S,
    ) {
        if !self.enabled {
            return;
        }
        let Ok(ext) = tracker.extractor().extract(view) else {
            return;
        };
        let Some((slot, flow)) = tracker.find(&ext.key) else {
            return;
        };
        let side = if ext.orientation == flow.initiator {
            Side::Initiator
        } else {
            Side::Responder
        };
        self.packet(slot, flow, side, &ext, view, sink);
    }

    fn packet<S: PipelineSink<FiveTupleKey>>(
        &mut self,
        slot: u32,
        flow: &FlowRecord<FiveTupleKey>,
        side: Side,
        ext: &Extracted<FiveTupleKey>,
        view: PacketView<'_>,
        sink: &mut S,
    ) {
        let payload = view
            .frame
            .get(ext.payload_offset as usize..)
            .and_then(|p| p.get(..ext.payload_len as usize))
            .unwrap_or_default();
        let ts = view.timestamp;
        match (flow.l4, ext.tcp) {
            (L4Proto::Tcp, Some(tcp)) => {
                let Some(state) = slot_state(&mut self.flows, slot) else {
                    return;
                };
                if let FlowState::Empty = state {
                    *state = FlowState::Stream(StreamFlow {
                        sides: [Reassembler::new(), Reassembler::new()],
                        global_overflows: [0; 2],
                        ended: [false; 2],
                        dropped: false,
                        parse_error_side: None,
                        last_ts: ts,
                        time_reordered: false,
                        bypassed: [false; 2],
                        session: StreamSession::new(),
                    });
                }
                let FlowState::Stream(st) = state else {
                    return;
                };
                st.time_reordered |= ts < st.last_ts;
                st.last_ts = st.last_ts.max(ts);
                let i = side.index();
                if bypass(
                    &mut self.streams,
                    &mut self.budget,
                    self.stream_depth,
                    st,
                    flow,
                    side,
                    ts,
                    sink,
                ) {
                    if !payload.is_empty() {
                        self.counters.bypassed_segments[i] += 1;
                        self.counters.bypassed_bytes[i] += payload.len() as u64;
                    }
                } else {
                    let refusals = self.budget.refusals();
                    let driver = &mut self.streams;
                    let StreamFlow {
                        sides,
                        session,
                        parse_error_side,
                        ..
                    } = st;
                    let status = sides[i].segment(
                        &mut self.budget,
                        &self.reassembly,
                        tcp.seq,
                        tcp.flags,
                        payload,
                        &mut |d| {
                            deliver(driver, session, parse_error_side, flow, side, d, ts, sink)
                        },
                    );
                    if self.budget.refusals() > refusals {
                        st.global_overflows[i] += 1;
                    }
                    if status == StreamStatus::Overflow {
                        st.dropped = true;
                    }
                    if status != StreamStatus::Open {
                        end_side(&mut self.streams, st, flow, side, ts, sink);
                    }
                }
                let peer = side.other();
                if tcp.flags.contains(TcpFlags::ACK)
                    && !st.time_reordered
                    && !st.bypassed[peer.index()]
                {
                    // The peer's holes this segment acknowledges were lost
                    // by the capture: give them up now.
                    let StreamFlow {
                        sides,
                        session,
                        parse_error_side,
                        ..
                    } = st;
                    let status =
                        sides[peer.index()].acknowledged(&mut self.budget, tcp.ack, &mut |d| {
                            deliver(
                                &mut self.streams,
                                session,
                                parse_error_side,
                                flow,
                                peer,
                                d,
                                ts,
                                sink,
                            )
                        });
                    if status != StreamStatus::Open {
                        end_side(&mut self.streams, st, flow, peer, ts, sink);
                    }
                }
                if tcp.flags.contains(TcpFlags::RST) {
                    for s in Side::BOTH {
                        flush_side(&mut self.streams, &mut self.budget, st, flow, s, ts, sink);
                    }
                }
            }
            (L4Proto::Udp, _) if !payload.is_empty() => {
                let Some(state) = slot_state(&mut self.flows, slot) else {
                    return;
                };
                if let FlowState::Empty = state {
                    *state = FlowState::Datagram(DatagramSession::new());
                }
                if let FlowState::Datagram(session) = state {
                    let mut tag = Tag { sink, flow, ts };
                    self.datagrams
                        .on_datagram(session, ports(flow), side, payload, ts, &mut tag);
                }
            }
            _ => {}
        }
    }

    /// A flow record ended: interim records (active timeout) report the
    /// state so far; otherwise the state is flushed, counted and freed.
    fn ended<S: PipelineSink<FiveTupleKey>>(
        &mut self,
        slot: u32,
        flow: &FlowRecord<FiveTupleKey>,
        reason: EndReason,
        carrier: Option<&Carrier>,
        sink: &mut S,
    ) {
        if reason == EndReason::ActiveTimeout {
            let summary = self
                .flows
                .get(slot as usize)
                .and_then(|s| self.summary(&s.0));
            sink.flow_ended(flow, reason, summary.as_ref(), carrier);
            return;
        }
        let Some(FlowSlot(state)) = self.flows.get_mut(slot as usize) else {
            sink.flow_ended(flow, reason, None, carrier);
            return;
        };
        let mut state = std::mem::replace(state, FlowState::Empty);
        let ts = flow.end();
        let mut reason = reason;
        match &mut state {
            FlowState::Empty => {}
            FlowState::Stream(st) => {
                for s in Side::BOTH {
                    flush_side(&mut self.streams, &mut self.budget, st, flow, s, ts, sink);
                }
                let mut tag = Tag { sink, flow, ts };
                self.streams
                    .finish(&mut st.session, ports(flow), ts, &mut tag);
                let mut overflowed = false;
                for s in Side::BOTH {
                    let r = &mut st.sides[s.index()];
                    r.release(&mut self.budget);
                    let c = *r.counters();
                    overflowed |= c.overflows > 0;
                    self.counters
                        .add_side(s.index(), &c, st.global_overflows[s.index()]);
                    for (kind, count) in r.anomalies() {
                        let kind = match kind {
                            ReassemblyAnomaly::BufferOverflow => PipelineAnomaly::BufferOverflow,
                            ReassemblyAnomaly::OutOfOrderSegment => {
                                PipelineAnomaly::OutOfOrderSegment
                            }
                            ReassemblyAnomaly::RetransmitInconsistency => {
                                PipelineAnomaly::RetransmitInconsistency
                            }
                        };
                        self.report(flow, kind, s, count, sink);
                    }
                }
                self.counters.flows_overflowed += u64::from(overflowed);
                if let Some(side) = st.parse_error_side {
                    self.report(flow, PipelineAnomaly::SessionParseError, side, 1, sink);
                }
                if st.dropped {
                    reason = EndReason::BufferOverflow;
                }
            }
            FlowState::Datagram(session) => {
                let mut tag = Tag { sink, flow, ts };
                self.datagrams.finish(session, ts, &mut tag);
                if matches!(
                    self.datagrams.state(session),
                    SessionState::Stopped(StopReason::ParseError, _)
                ) {
                    self.report(
                        flow,
                        PipelineAnomaly::SessionParseError,
                        Side::Initiator,
                        1,
                        sink,
                    );
                }
            }
        }
        let summary = self.summary(&state);
        sink.flow_ended(flow, reason, summary.as_ref(), carrier);
    }

    fn report<S: PipelineSink<FiveTupleKey>>(
        &mut self,
        flow: &FlowRecord<FiveTupleKey>,
        kind: PipelineAnomaly,
        side: Side,
        count: u64,
        sink: &mut S,
    ) {
        self.anomalies[kind.index()] += 1;
        sink.anomaly(flow, FlowAnomaly { kind, side, count });
    }

    /// What reassembly and parsing did; `None` for a flow without state.
    fn summary(&self, state: &FlowState) -> Option<FlowSummary> {
        Some(match state {
            FlowState::Empty => return None,
            FlowState::Stream(st) => FlowSummary {
                session: self.streams.state(&st.session),
                tcp: Some(Side::BOTH.map(|s| SideReassembly {
                    counters: *st.sides[s.index()].counters(),
                    global_overflows: st.global_overflows[s.index()],
                })),
            },
            FlowState::Datagram(session) => FlowSummary {
                session: self.datagrams.state(session),
                tcp: None,
            },
        })
    }
}

/// Whether `side`'s segments bypass reassembly and parsing: with a stream
/// depth, once the flow's parser stopped or the side delivered `depth`
/// bytes. The first time, the side is flushed (its held bytes released)
/// and its stream ended.
#[expect(
    clippy::too_many_arguments,
    reason = "split borrows of the flow state and the pipeline"
)]
#[inline(always)]
fn bypass<S: PipelineSink<FiveTupleKey>>(
    driver: &mut SessionDriver<L7Record>,
    budget: &mut ReassemblyBudget,
    depth: Option<u64>,
    st: &mut StreamFlow,
    flow: &FlowRecord<FiveTupleKey>,
    side: Side,
    ts: Timestamp,
    sink: &mut S,
) -> bool {
    let i = side.index();
    if st.bypassed[i] {
        return true;
    }
    let Some(depth) = depth else {
        return false;
    };
    let delivered = st.sides[i].counters().bytes_delivered;
    if !st.session.is_stopped() && delivered < depth {
        return false;
    }
    st.bypassed[i] = true;
    flush_side(driver, budget, st, flow, side, ts, sink);
    true
}

/// Tells the driver `side`'s stream ended, once.
fn end_side<S: PipelineSink<FiveTupleKey>>(
    driver: &mut SessionDriver<L7Record>,
    st: &mut StreamFlow,
    flow: &FlowRecord<FiveTupleKey>,
    side: Side,
    ts: Timestamp,
    sink: &mut S,
) {
    if !st.ended[side.index()] {
        st.ended[side.index()] = true;
        let mut tag = Tag { sink, flow, ts };
        driver.on_end(&mut st.session, ports(flow), side, ts, &mut tag);
    }
}

/// Delivers what `side` still holds (with its gaps) and ends its stream.
fn flush_side<S: PipelineSink<FiveTupleKey>>(
    driver: &mut SessionDriver<L7Record>,
    budget: &mut ReassemblyBudget,
    st: &mut StreamFlow,
    flow: &FlowRecord<FiveTupleKey>,
    side: Side,
    ts: Timestamp,
    sink: &mut S,
) {
    let StreamFlow {
        sides,
        session,
        parse_error_side,
        ..
    } = st;
    sides[side.index()].flush(budget, &mut |d| {
        deliver(driver, session, parse_error_side, flow, side, d, ts, sink)
    });
    end_side(driver, st, flow, side, ts, sink);
}

#[cfg(test)]
mod tests {
    /// The per-slot figure the module docs and BENCHMARKS.md state.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn flow_state_is_eight_cache_lines() {
        assert_eq!(super::FLOW_STATE_BYTES, 512);
    }
}
