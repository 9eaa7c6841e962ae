//! The flow tracker: bounded flow table, TCP state, timers, events.
//!
//! [`FlowTracker`] turns packets into bidirectional flow records. It is
//! generic over the [`FlowExtractor`] that says what a flow is, owns a table
//! of fixed capacity allocated at construction, and delivers
//! [`FlowEvent`]s to a caller-supplied [`EventSink`]: nothing is allocated
//! per packet once the table is built.
//!
//! Semantics:
//! - **Sides.** The initiator is the sender of a flow's first packet, except
//!   that when the first packet is a TCP SYN-ACK its receiver is the
//!   initiator (the history then starts with `^`). Zeek chooses by
//!   well-known server ports for every flow not opened by a SYN; we use the
//!   SYN-ACK rule only.
//! - **Bytes** are whole frames at their original (wire) length.
//! - **TCP.** See [`FlowState`]. A flow closed by FINs (both seen) or a RST
//!   lingers for [`TrackerConfig::tcp_close_linger`] to collect late packets
//!   and then ends with [`EndReason::Fin`] / [`EndReason::Rst`]; a pure SYN on
//!   such a flow ends it at once and starts a new flow on the same key.
//! - **Timeouts.** Idle timeouts per protocol (or per key, through
//!   [`FlowTracker::set_idle_timeout_fn`]) are driven by packet time, or by
//!   [`FlowTracker::advance`] with a caller-given clock live. A packet that
//!   arrives after its flow's idle timeout starts a new record even if the
//!   timer has not fired yet. The active timeout is checked when a packet
//!   arrives: a packet later than `active_timeout` after its record's first
//!   packet ends the record ([`EndReason::ActiveTimeout`]) and starts the
//!   next record of the same flow (same flow ID, TCP state kept, counters
//!   and history restarted, [`FlowRecord::continued`] set). So every record
//!   spans less than the active timeout, and a flow that falls silent ends
//!   by idle timeout instead.
//! - **Full table.** A new flow evicts one flow chosen among
//!   [`EVICTION_SAMPLE`] slots from a rotating hand: closed flows first, then
//!   flows that never completed a handshake (or one-way non-TCP flows), then
//!   the one idle longest. The cost is bounded; the choice is approximate.
//! - **End of input.** [`FlowTracker::finish`] ends every flow: closed TCP
//!   flows with `Fin`/`Rst`, every other one with
//!   [`EndReason::ForceClosed`].
//!
//! Counting (see [`crate::obs::TrackerCounters`]): every packet given to the
//! tracker is counted once as matched or unmatched; every record created
//! ends exactly once, so `created = ended + active` at all times.

mod config;
mod event;
mod history;
mod hugepage;
mod prefetch;
mod record;
mod table;
mod tcp;
mod timer;

pub use config::{IdleTimeoutFn, TrackerConfig};
pub(crate) use event::L4_LABELS;
pub use event::{AnomalyKind, EndReason, EventSink, FlowEvent, FlowSide, FlowState, NoSink};
pub use history::{History, HistoryLetter};
pub use record::{FlowRecord, SideStats};
pub use tcp::{EndpointState, TcpTrack};

use crate::extractor::{Extracted, FlowExtractor, L4Proto, TcpFlags, TcpInfo, Unmatched};
use crate::obs::{self, TrackerCounters};
use crate::view::PacketView;
use event::l4_index;
use table::Index;
use timer::TimerWheel;

/// Slots examined to choose a flow to evict.
pub const EVICTION_SAMPLE: usize = 8;

/// Packets processed together by [`FlowTracker::track_batch`].
const BATCH: usize = 16;

/// Buckets of the timer wheel (one tick each).
const WHEEL_BUCKETS: usize = 4096;

/// One table slot.
#[derive(Debug, Clone, Copy)]
struct Slot<K> {
    rec: FlowRecord<K>,
    /// Low 32 bits of the key's hash, as stored in the index.
    hash: u32,
    live: bool,
    /// Idle timeout of this flow.
    idle_ns: u64,
}

/// One extracted packet of a batch, waiting for its turn.
#[derive(Debug, Clone, Copy)]
struct Pending<K> {
    result: Result<Extracted<K>, Unmatched>,
    hash: u32,
}

/// Bidirectional flow tracker of bounded size. See the [module docs](self).
#[derive(Debug)]
pub struct FlowTracker<E: FlowExtractor> {
    extractor: E,
    config: TrackerConfig,
    /// Keyed hash of flow keys (aHash, keys from the OS random source), so
    /// that bucket collisions cannot be predicted from outside.
    hasher: ahash::RandomState,
    /// `config.tcp_close_linger` in ns.
    linger_ns: u64,
    /// `config.active_timeout` in ns.
    active_ns: Option<u64>,
    slots: Vec<Slot<E::Key>>,
    free: Vec<u32>,
    index: Index,
    wheel: TimerWheel,
    live: usize,
    /// Latest time seen (ns): packet time, or the caller's clock.
    clock: u64,
    next_flow_id: u64,
    evict_hand: usize,
    idle_fn: Option<IdleTimeoutFn<E::Key>>,
    counters: TrackerCounters,
    /// The group [`FlowTracker::track_batch`] processes, and the next one.
    pending: Vec<Pending<E::Key>>,
    pending_next: Vec<Pending<E::Key>>,
}

/// Nanoseconds of a duration, saturating.
fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A pure SYN: the only packet that reopens a closed flow.
fn is_pure_syn(tcp: Option<&TcpInfo>) -> bool {
    tcp.is_some_and(|t| {
        t.flags.contains(TcpFlags::SYN) && t.flags.0 & (TcpFlags::ACK.0 | TcpFlags::RST.0) == 0
    })
}

/// How a flow in `state` ends when it ends by itself.
fn closed_reason(state: FlowState) -> Option<EndReason> {
    match state {
        FlowState::Closed | FlowState::Closing => Some(EndReason::Fin),
        FlowState::Reset => Some(EndReason::Rst),
        _ => None,
    }
}

impl<E: FlowExtractor> FlowTracker<E> {
    /// A tracker with the default [`TrackerConfig`].
    pub fn new(extractor: E) -> Self {
        Self::with_config(extractor, TrackerConfig::default())
    }

    /// A tracker with room for exactly `config.max_flows` flows (at least
    /// one), allocated now. The hash seed comes from the OS random source.
    pub fn with_config(extractor: E, config: TrackerConfig) -> Self {
        let cap = config.max_flows.clamp(1, (u32::MAX / 4) as usize);
        let tick = nanos(config.timer_tick).max(1);
        Self {
            extractor,
            hasher: ahash::RandomState::new(),
            linger_ns: nanos(config.tcp_close_linger),
            active_ns: config.active_timeout.map(nanos),
            slots: hugepage::vec_with_capacity(cap),
            free: hugepage::vec_with_capacity(cap),
            index: Index::new(cap),
            wheel: TimerWheel::new(cap, WHEEL_BUCKETS, tick),
            live: 0,
            clock: 0,
            next_flow_id: config.flow_id_base,
            evict_hand: 0,
            idle_fn: None,
            counters: TrackerCounters::default(),
            pending: Vec::with_capacity(BATCH),
            pending_next: Vec::with_capacity(BATCH),
            config: TrackerConfig {
                max_flows: cap,
                ..config
            },
        }
    }

    /// Overrides the idle timeout per key (consulted once, when a flow starts).
    pub fn set_idle_timeout_fn(&mut self, f: IdleTimeoutFn<E::Key>) {
        self.idle_fn = Some(f);
    }

    /// The configuration in force (`max_flows` as allocated).
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// The extractor.
    pub fn extractor(&self) -> &E {
        &self.extractor
    }

    /// This tracker's counters (one shard of the metrics).
    pub fn counters(&self) -> &TrackerCounters {
        &self.counters
    }

    /// Flows in the table now.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True if no flow is in the table.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Most flows the table holds.
    pub fn capacity(&self) -> usize {
        self.config.max_flows
    }

    /// The live record of `key`, if any.
    pub fn get(&self, key: &E::Key) -> Option<&FlowRecord<E::Key>> {
        let hash = self.hasher.hash_one(key) as u32;
        let slot = self.index.find(hash, |s| self.slot_has(s, key))?;
        self.slots.get(slot as usize).map(|s| &s.rec)
    }

    /// Every live record (in table order).
    pub fn flows(&self) -> impl Iterator<Item = &FlowRecord<E::Key>> {
        self.slots.iter().filter(|s| s.live).map(|s| &s.rec)
    }

    fn slot_has(&self, slot: u32, key: &E::Key) -> bool {
        self.slots
            .get(slot as usize)
            .is_some_and(|s| s.rec.key == *key)
    }

    /// Tracks one packet.
    pub fn track(&mut self, view: PacketView<'_>, sink: &mut impl EventSink<E::Key>) {
        let result = self.extractor.extract(view);
        let hash = match &result {
            Ok(ext) => self.hasher.hash_one(ext.key) as u32,
            Err(_) => 0,
        };
        self.process(view, &Pending { result, hash }, sink);
    }

    /// Tracks packets in order, in groups, pipelined: a group is extracted
    /// and hashed while its index entries are prefetched; the slots those
    /// entries point at are prefetched; the next group is extracted while
    /// they arrive; then the group is processed. The cache misses of a group
    /// overlap with each other and with the next group's extraction instead
    /// of being paid one at a time.
    pub fn track_batch(&mut self, views: &[PacketView<'_>], sink: &mut impl EventSink<E::Key>) {
        // Taken out for the loop (and put back: no allocation) so that
        // `process` can borrow the tracker while reading the groups in place.
        let mut current = std::mem::take(&mut self.pending);
        let mut next = std::mem::take(&mut self.pending_next);
        let mut chunks = views.chunks(BATCH).peekable();
        if let Some(first) = chunks.peek() {
            self.extract_group(first, &mut current);
        }
        while let Some(chunk) = chunks.next() {
            self.prefetch_slots(&current);
            next.clear();
            if let Some(following) = chunks.peek() {
                self.extract_group(following, &mut next);
            }
            for (view, p) in chunk.iter().zip(&current) {
                self.process(*view, p, sink);
            }
            std::mem::swap(&mut current, &mut next);
        }
        self.pending = current;
        self.pending_next = next;
    }

    /// Extracts and hashes `views` into `out`, prefetching their index entries.
    fn extract_group(&self, views: &[PacketView<'_>], out: &mut Vec<Pending<E::Key>>) {
        out.clear();
        for view in views {
            let result = self.extractor.extract(*view);
            let hash = match &result {
                Ok(ext) => {
                    let hash = self.hasher.hash_one(ext.key) as u32;
                    self.index.prefetch(hash);
                    hash
                }
                Err(_) => 0,
            };
            out.push(Pending { result, hash });
        }
    }

    /// Prefetches the slots the index points at for `group`.
    fn prefetch_slots(&self, group: &[Pending<E::Key>]) {
        for p in group {
            if p.result.is_ok()
                && let Some(slot) = self.index.touch(p.hash)
            {
                prefetch::prefetch(
                    self.slots.as_ptr().wrapping_add(slot as usize),
                    std::mem::size_of::<Slot<E::Key>>(),
                );
            }
        }
    }

    /// Moves the clock to `now` (if later) and ends every flow whose timeout
    /// passed. Live capture calls this with its clock once per batch (and
    /// when idle); offline, packet time drives it.
    #[inline]
    pub fn advance(&mut self, now: crate::view::Timestamp, sink: &mut impl EventSink<E::Key>) {
        if now.0 > self.clock {
            self.clock = now.0;
        }
        while let Some(slot) = self.wheel.pop_due(self.clock) {
            let Some(s) = self.slots.get(slot as usize) else {
                continue;
            };
            if !s.live {
                continue;
            }
            let (deadline, reason) = self.deadline(s);
            if deadline <= self.clock {
                self.end_and_free(slot, reason, sink);
            } else {
                self.wheel.schedule(slot, deadline);
            }
        }
    }

    /// Ends every flow (end of input, shutdown): closed TCP flows with
    /// `Fin`/`Rst`, the rest with `ForceClosed`. The tracker is empty after.
    pub fn finish(&mut self, sink: &mut impl EventSink<E::Key>) {
        for slot in 0..self.slots.len() {
            let Some(s) = self.slots.get(slot) else { break };
            if s.live {
                let reason = closed_reason(s.rec.state).unwrap_or(EndReason::ForceClosed);
                self.end_and_free(slot as u32, reason, sink);
            }
        }
    }

    /// When a slot's flow ends by itself, and why.
    fn deadline(&self, s: &Slot<E::Key>) -> (u64, EndReason) {
        let last = s.rec.end().0;
        match closed_reason(s.rec.state) {
            Some(r) => (last.saturating_add(self.linger_ns), r),
            None => (last.saturating_add(s.idle_ns), EndReason::IdleTimeout),
        }
    }

    #[inline]
    fn process(
        &mut self,
        view: PacketView<'_>,
        p: &Pending<E::Key>,
        sink: &mut impl EventSink<E::Key>,
    ) {
        self.counters.packets += 1;
        self.advance(view.timestamp, sink);
        let ext = match &p.result {
            Ok(ext) => ext,
            Err(reason) => {
                self.counters.count_unmatched(*reason);
                return;
            }
        };
        let now = view.timestamp.0;
        let found = self.index.find(p.hash, |s| self.slot_has(s, &ext.key));
        let slot = match found {
            Some(slot) => {
                self.renew_if_over(slot, ext, now, sink);
                slot
            }
            None => {
                if self.live >= self.config.max_flows {
                    self.evict(sink);
                }
                let rec = self.new_record(ext);
                let slot = self.place(rec, p.hash);
                self.index.insert(p.hash, slot);
                self.started(slot, now, sink);
                slot
            }
        };
        self.update(slot, view, ext, sink);
    }

    /// Ends the record in `slot` and starts a new one on the same key when
    /// the packet comes after its timeout, reopens a closed flow with a SYN,
    /// or passes the active timeout.
    fn renew_if_over(
        &mut self,
        slot: u32,
        ext: &Extracted<E::Key>,
        now: u64,
        sink: &mut impl EventSink<E::Key>,
    ) {
        let Some(s) = self.slots.get(slot as usize) else {
            return;
        };
        let (deadline, reason) = self.deadline(s);
        let closed = closed_reason(s.rec.state);
        let ending = if deadline <= now {
            Some((reason, false))
        } else if let (Some(r), true) = (closed, is_pure_syn(ext.tcp.as_ref())) {
            Some((r, false))
        } else {
            self.active_ns
                .filter(|&a| now.saturating_sub(s.rec.start().0) >= a)
                .map(|_| (EndReason::ActiveTimeout, true))
        };
        let Some((reason, continued)) = ending else {
            return;
        };
        self.ended(slot, reason, sink);
        let rec = match self.slots.get(slot as usize) {
            Some(s) if continued => FlowRecord {
                sides: [SideStats::default(); 2],
                history: History::default(),
                continued: true,
                ..s.rec
            },
            _ => self.new_record(ext),
        };
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.rec = rec;
        }
        self.started(slot, now, sink);
    }

    /// A fresh record for the flow of `ext` (flow ID assigned in `started`).
    fn new_record(&self, ext: &Extracted<E::Key>) -> FlowRecord<E::Key> {
        let mut history = History::default();
        let mut initiator = ext.orientation;
        let state = match (ext.l4, ext.tcp) {
            (L4Proto::Tcp, Some(t)) if t.flags.contains(TcpFlags::SYN) => {
                if t.flags.contains(TcpFlags::ACK) && !t.flags.contains(TcpFlags::RST) {
                    initiator = initiator.flip();
                    history.push_flip();
                }
                FlowState::SynSent
            }
            (L4Proto::Tcp, _) => FlowState::MidStream,
            _ => FlowState::Active,
        };
        FlowRecord {
            key: ext.key,
            flow_id: 0,
            l4: ext.l4,
            initiator,
            vlan: ext.vlan,
            sides: [SideStats::default(); 2],
            state,
            history,
            tcp: TcpTrack::default(),
            continued: false,
        }
    }

    /// Stores `rec` in a free slot; the caller made room.
    fn place(&mut self, rec: FlowRecord<E::Key>, hash: u32) -> u32 {
        let idle_ns = nanos(
            self.idle_fn
                .and_then(|f| f(&rec.key, rec.l4))
                .unwrap_or_else(|| self.config.idle_timeout(rec.l4)),
        );
        let slot = Slot {
            rec,
            hash,
            live: true,
            idle_ns,
        };
        self.live += 1;
        self.counters.flows_active = self.live as u64;
        match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    *s = slot;
                }
                i
            }
            None => {
                // Within the capacity reserved at construction: no reallocation.
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Numbers, counts, schedules and announces the new record in `slot`.
    fn started(&mut self, slot: u32, now: u64, sink: &mut impl EventSink<E::Key>) {
        self.next_flow_id += 1;
        let id = self.next_flow_id;
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return;
        };
        if !s.rec.continued {
            s.rec.flow_id = id;
        }
        let deadline = now.saturating_add(s.idle_ns);
        self.counters.flows_created[l4_index(s.rec.l4)] += 1;
        self.wheel.schedule(slot, deadline);
        obs::trace_flow_started(&s.rec);
        sink.event(FlowEvent::Started { flow: &s.rec });
    }

    /// Counts and announces the end of the record in `slot` (the slot stays).
    fn ended(&mut self, slot: u32, reason: EndReason, sink: &mut impl EventSink<E::Key>) {
        let Some(s) = self.slots.get(slot as usize) else {
            return;
        };
        self.counters.count_ended(&s.rec, reason);
        obs::trace_flow_ended(&s.rec, reason);
        sink.event(FlowEvent::Ended {
            flow: &s.rec,
            reason,
        });
    }

    fn end_and_free(&mut self, slot: u32, reason: EndReason, sink: &mut impl EventSink<E::Key>) {
        self.ended(slot, reason, sink);
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return;
        };
        s.live = false;
        let hash = s.hash;
        self.index.remove(hash, slot);
        self.wheel.cancel(slot);
        self.free.push(slot);
        self.live -= 1;
        self.counters.flows_active = self.live as u64;
    }

    /// Evicts one flow: the least valuable of [`EVICTION_SAMPLE`] slots.
    fn evict(&mut self, sink: &mut impl EventSink<E::Key>) {
        let n = self.slots.len();
        if n == 0 {
            return;
        }
        let value = |s: &Slot<E::Key>| {
            let class = if closed_reason(s.rec.state).is_some() {
                0
            } else if matches!(
                s.rec.state,
                FlowState::SynSent | FlowState::SynReceived | FlowState::MidStream
            ) || (s.rec.state == FlowState::Active && s.rec.sides[1].packets == 0)
            {
                1
            } else {
                2
            };
            (class, s.rec.end())
        };
        let mut best: Option<(usize, (u8, crate::view::Timestamp))> = None;
        for k in 0..EVICTION_SAMPLE.min(n) {
            let i = (self.evict_hand + k) % n;
            let Some(s) = self.slots.get(i) else { continue };
            if !s.live {
                continue;
            }
            let v = value(s);
            if best.is_none_or(|(_, b)| v < b) {
                best = Some((i, v));
            }
        }
        self.evict_hand = (self.evict_hand + EVICTION_SAMPLE) % n;
        let Some((victim, _)) = best else { return };
        let ts = crate::view::Timestamp(self.clock);
        self.counters.anomalies[AnomalyKind::FlowTableEviction.index()] += 1;
        if let Some(s) = self.slots.get(victim) {
            obs::trace_anomaly(Some(s.rec.flow_id), AnomalyKind::FlowTableEviction);
            sink.event(FlowEvent::Anomaly {
                flow: Some(&s.rec),
                kind: AnomalyKind::FlowTableEviction,
                ts,
            });
        }
        self.end_and_free(victim as u32, EndReason::Evicted, sink);
    }

    /// Counts the packet in its flow and runs the TCP state machine.
    fn update(
        &mut self,
        slot: u32,
        view: PacketView<'_>,
        ext: &Extracted<E::Key>,
        sink: &mut impl EventSink<E::Key>,
    ) {
        let linger = self.linger_ns;
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return;
        };
        let rec = &mut s.rec;
        let side = rec.side_of(ext.orientation);
        let ts = view.timestamp;
        let st = &mut rec.sides[side.index()];
        st.packets += 1;
        st.bytes += u64::from(view.orig_len);
        st.payload_bytes += u64::from(ext.payload_len);
        st.ip_bytes += u64::from(ext.ip_len);
        if st.packets == 1 {
            st.first_seen = ts;
        }
        st.last_seen = st.last_seen.max(ts);
        self.counters.packets_matched += 1;
        self.counters.count_bytes(side, u64::from(view.orig_len));
        let mut transition = None;
        match (ext.l4, ext.tcp) {
            (L4Proto::Tcp, Some(tcp)) => {
                st.tcp_flags |= tcp.flags;
                let t = rec.tcp.update(
                    &mut rec.state,
                    &mut rec.history,
                    side,
                    &tcp,
                    ext.payload_len,
                );
                if t.flag_combo {
                    self.counters.anomalies[AnomalyKind::TcpFlagCombo.index()] += 1;
                }
                transition = Some(t);
            }
            (L4Proto::Udp, _) => {
                rec.history.record_once(side.index(), HistoryLetter::Data);
            }
            _ => {}
        }
        if let Some(t) = transition {
            if t.flag_combo {
                obs::trace_anomaly(Some(rec.flow_id), AnomalyKind::TcpFlagCombo);
                sink.event(FlowEvent::Anomaly {
                    flow: Some(rec),
                    kind: AnomalyKind::TcpFlagCombo,
                    ts,
                });
            }
            if t.established {
                sink.event(FlowEvent::Established { flow: rec, ts });
            } else if t.from != t.to {
                sink.event(FlowEvent::StateChange {
                    flow: rec,
                    from: t.from,
                    to: t.to,
                    ts,
                });
            }
            if closed_reason(t.to).is_some() && closed_reason(t.from).is_none() {
                self.wheel
                    .schedule(slot, rec.end().0.saturating_add(linger));
            }
        }
        sink.event(FlowEvent::Packet {
            flow: rec,
            side,
            extracted: ext,
            view,
        });
    }
}

#[cfg(test)]
mod tests;
