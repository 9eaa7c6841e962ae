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
//! Counting (see [`TrackerCounters`]): every packet given to the
//! tracker is counted once as matched or unmatched; every record created
//! ends exactly once, so `created = ended + active` at all times.

mod config;
mod counters;
mod event;
mod history;
pub(crate) mod hugepage;
mod prefetch;
mod record;
mod table;
mod tcp;
mod timer;
mod trace;

pub use config::{IdleTimeoutFn, TrackerConfig};
pub use counters::TrackerCounters;
pub(crate) use event::L4_LABELS;
pub use event::{AnomalyKind, EndReason, EventSink, FlowEvent, FlowSide, FlowState, NoSink};
pub use history::{History, HistoryLetter};
pub(crate) use prefetch::prefetch;
pub use record::{FlowRecord, InTunnel, SideStats};
pub use tcp::{EndpointState, TcpTrack};

use crate::extractor::{
    Extracted, FlowExtractor, L4Proto, Orientation, TcpFlags, TcpInfo, Tunnelled, Unmatched,
};
use crate::view::PacketView;
use event::l4_index;
use table::Index;
use timer::TimerWheel;

/// Slots examined to choose a flow to evict.
pub const EVICTION_SAMPLE: usize = 8;

/// Packets between the stages of [`FlowTracker::track_batch`].
const LEAD: usize = 8;

/// Bytes at the start of a frame [`FlowTracker::track_batch`] prefetches
/// [`LEAD`] packets ahead: the headers extraction reads (Ethernet, IPv6 and
/// TCP with options fit), wherever the frame starts in its cache line.
const FRAME_HEADERS: usize = 128;

/// Records of at most this many bytes in all stay in the caches:
/// [`FlowTracker::track_batch`] then tracks packet by packet (prefetching
/// only the frames), as prefetching index and records would only add work.
const CACHED_RECORDS_BYTES: usize = 256 << 10;

/// Extracted packets [`FlowTracker::track_batch`] holds while they wait
/// (more than the two leads together).
const PIPELINE: usize = 32;
const _: () = assert!(2 * LEAD < PIPELINE);

/// The calls of [`EventSink::prefetch_deep`] for one packet, after the
/// record's prefetch and before the packet is processed.
const DEEP_STAGES: usize = 2;

/// Packets between the record's prefetch and the first deep stage, and
/// between one deep stage and the next.
const DEEP_STEP: usize = LEAD / (DEEP_STAGES + 1);
const _: () = assert!(DEEP_STEP > 0);

/// Buckets of the timer wheel (one tick each).
const WHEEL_BUCKETS: usize = 4096;

/// A slot's bookkeeping, kept beside the records (an ordinary packet does
/// not read it).
#[derive(Debug, Clone, Copy)]
struct SlotMeta {
    /// Idle timeout of this flow.
    idle_ns: u64,
    /// Low 32 bits of the key's hash, as stored in the index.
    hash: u32,
    live: bool,
}

/// One extracted packet of a batch, waiting for its turn.
#[derive(Debug, Clone, Copy)]
struct Pending<K> {
    result: Result<Extracted<K>, Unmatched>,
    hash: u32,
    /// The record the index named when it was prefetched, and
    /// [`FlowTracker::frees`] then: while no slot has been freed since, a
    /// record with the packet's key there is the packet's flow.
    record: Option<(u32, u64)>,
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
    /// Records, one per slot; see [`FlowRecord`] for their layout.
    slots: Vec<FlowRecord<E::Key>>,
    /// Bookkeeping of each slot, same index.
    meta: Vec<SlotMeta>,
    /// No flow's idle timeout is shorter: the smallest protocol default, or
    /// zero once a per-key override is set.
    min_idle_ns: u64,
    free: Vec<u32>,
    /// Slots freed so far (dates the records noted in [`Pending`]).
    frees: u64,
    index: Index,
    wheel: TimerWheel,
    live: usize,
    /// Latest time seen (ns): packet time, or the caller's clock.
    clock: u64,
    next_flow_id: u64,
    evict_hand: usize,
    idle_fn: Option<IdleTimeoutFn<E::Key>>,
    counters: TrackerCounters,
    /// The packets [`FlowTracker::track_batch`] extracted and has not
    /// processed yet, by position modulo [`PIPELINE`].
    pending: Vec<Pending<E::Key>>,
}

/// Nanoseconds of a duration, saturating.
fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Prefetches the headers of `views[i]`, if there is one.
#[inline(always)]
pub(crate) fn prefetch_frame(views: &[PacketView<'_>], i: usize) {
    prefetch_frame_bytes(views, i, FRAME_HEADERS);
}

/// Prefetches the first `bytes` of frame `i` (its headers at least), if
/// there is one.
#[inline(always)]
fn prefetch_frame_bytes(views: &[PacketView<'_>], i: usize, bytes: usize) {
    if let Some(view) = views.get(i) {
        let len = view.frame.len().min(bytes).max(FRAME_HEADERS);
        prefetch::prefetch(view.frame.as_ptr(), len);
    }
}

/// A pure SYN: the only packet that reopens a closed flow.
fn is_pure_syn(tcp: Option<&TcpInfo>) -> bool {
    tcp.is_some_and(|t| {
        t.flags.contains(TcpFlags::SYN) && t.flags.0 & (TcpFlags::ACK.0 | TcpFlags::RST.0) == 0
    })
}

/// How a flow in `state` ends when it ends by itself: by its RST or FINs
/// once [`FlowState::is_closed`], by idle timeout (`None`) otherwise.
fn closed_reason(state: FlowState) -> Option<EndReason> {
    match state {
        FlowState::Reset => Some(EndReason::Rst),
        s if s.is_closed() => Some(EndReason::Fin),
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
            meta: hugepage::vec_with_capacity(cap),
            min_idle_ns: [
                config.idle_timeout_tcp,
                config.idle_timeout_udp,
                config.idle_timeout_other,
            ]
            .into_iter()
            .map(nanos)
            .min()
            .unwrap_or(0),
            free: hugepage::vec_with_capacity(cap),
            frees: 0,
            index: Index::new(cap),
            wheel: TimerWheel::new(cap, WHEEL_BUCKETS, tick),
            live: 0,
            clock: 0,
            next_flow_id: config.flow_id_base,
            evict_hand: 0,
            idle_fn: None,
            counters: TrackerCounters::default(),
            pending: Vec::with_capacity(PIPELINE),
            config: TrackerConfig {
                max_flows: cap,
                ..config
            },
        }
    }

    /// Overrides the idle timeout per key (consulted once, when a flow starts).
    pub fn set_idle_timeout_fn(&mut self, f: IdleTimeoutFn<E::Key>) {
        self.idle_fn = Some(f);
        self.min_idle_ns = 0;
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
        self.find(key).map(|(_, rec)| rec)
    }

    /// The live record of `key` and its slot (as in
    /// [`FlowEvent::Packet`]), if any.
    pub fn find(&self, key: &E::Key) -> Option<(u32, &FlowRecord<E::Key>)> {
        let hash = self.hasher.hash_one(key) as u32;
        let slot = self.index.find(hash, |s| self.slot_has(s, key))?;
        Some((slot, self.slots.get(slot as usize)?))
    }

    /// Every live record (in table order).
    pub fn flows(&self) -> impl Iterator<Item = &FlowRecord<E::Key>> {
        self.slots
            .iter()
            .zip(&self.meta)
            .filter(|(_, m)| m.live)
            .map(|(r, _)| r)
    }

    #[inline(always)]
    fn slot_has(&self, slot: u32, key: &E::Key) -> bool {
        self.slots.get(slot as usize).is_some_and(|r| r.key == *key)
    }

    /// Extracts `view`'s key; a frame longer than its length on the wire
    /// (a malformed capture record) is unmatched.
    #[inline(always)]
    fn extract(&self, view: PacketView<'_>) -> Result<Extracted<E::Key>, Unmatched> {
        if view.frame.len() > view.orig_len as usize {
            return Err(Unmatched::CaplenOverLen);
        }
        self.extractor.extract(view)
    }

    /// Tracks one packet.
    pub fn track(&mut self, view: PacketView<'_>, sink: &mut impl EventSink<E::Key>) {
        let result = self.extract(view);
        let hash = match &result {
            Ok(ext) => self.hasher.hash_one(ext.key) as u32,
            Err(_) => 0,
        };
        self.process(view, &result, hash, None, sink);
    }

    /// Tracks packets in order, software-pipelined: packet `i` is extracted
    /// and hashed and its index entry prefetched; `LEAD` (8) packets later
    /// the record that entry points at is prefetched (and the sink's
    /// per-slot state), `DEEP_STEP` (2) packets later what that state
    /// points to, as many packets later what that points to
    /// ([`EventSink::prefetch_deep`]), and `LEAD` packets after the record
    /// the packet is processed. The cache misses of about sixteen packets
    /// are in flight at once instead of being paid one after the other.
    /// The headers of each frame, and as much more as the sink reads
    /// ([`EventSink::frame_bytes`]), are prefetched `LEAD` packets before it
    /// is extracted (frames fresh from a NIC ring or a capture file are
    /// rarely in the core's caches).
    pub fn track_batch(&mut self, views: &[PacketView<'_>], sink: &mut impl EventSink<E::Key>) {
        if self
            .live
            .saturating_mul(std::mem::size_of::<FlowRecord<E::Key>>())
            <= CACHED_RECORDS_BYTES
        {
            for (i, view) in views.iter().enumerate() {
                prefetch_frame(views, i + LEAD);
                self.track(*view, sink);
            }
            return;
        }
        // Taken out for the loop (and put back: no allocation) so that
        // `process` can borrow the tracker while reading the ring in place.
        let mut ring = std::mem::take(&mut self.pending);
        ring.clear();
        let n = views.len();
        let frame_bytes = sink.frame_bytes();
        for i in 0..n + 2 * LEAD {
            prefetch_frame_bytes(views, i + LEAD, frame_bytes);
            if let Some(view) = views.get(i) {
                let p = self.extract_prefetched(*view);
                match ring.get_mut(i % PIPELINE) {
                    Some(slot) => *slot = p,
                    None => ring.push(p),
                }
            }
            if i >= LEAD
                && i - LEAD < n
                && let Some(p) = ring.get_mut((i - LEAD) % PIPELINE)
            {
                self.prefetch_record(p, sink);
            }
            for depth in 1..=DEEP_STAGES {
                let ahead = LEAD + depth * DEEP_STEP;
                if i >= ahead
                    && i - ahead < n
                    && let Some(Pending {
                        record: Some((slot, _)),
                        ..
                    }) = ring.get((i - ahead) % PIPELINE)
                {
                    sink.prefetch_deep(*slot, depth);
                }
            }
            if i >= 2 * LEAD
                && let (Some(view), Some(p)) =
                    (views.get(i - 2 * LEAD), ring.get((i - 2 * LEAD) % PIPELINE))
            {
                self.process(*view, &p.result, p.hash, p.record, sink);
            }
        }
        self.pending = ring;
    }

    /// Extracts and hashes `view`, prefetching its index entry.
    #[inline(always)]
    fn extract_prefetched(&self, view: PacketView<'_>) -> Pending<E::Key> {
        let result = self.extract(view);
        let hash = match &result {
            Ok(ext) => {
                let hash = self.hasher.hash_one(ext.key) as u32;
                self.index.prefetch(hash);
                hash
            }
            Err(_) => 0,
        };
        Pending {
            result,
            hash,
            record: None,
        }
    }

    /// Notes which record the index names for `p` and prefetches the two
    /// lines an ordinary packet touches: the first, and the counters of the
    /// side that sent it (the index entry's bit says which way the
    /// initiator sends); `sink` prefetches its own state of that slot.
    #[inline(always)]
    fn prefetch_record(&self, p: &mut Pending<E::Key>, sink: &mut impl EventSink<E::Key>) {
        let Ok(ext) = &p.result else {
            return;
        };
        let Some((slot, reverse_initiator)) = self.index.touch(p.hash) else {
            p.record = None;
            return;
        };
        p.record = Some((slot, self.frees));
        sink.prefetch(slot);
        if let Some(rec) = self.slots.get(slot as usize) {
            let from_initiator = (ext.orientation == Orientation::Reverse) == reverse_initiator;
            prefetch::prefetch(rec, 64);
            prefetch::prefetch(&rec.sides[usize::from(!from_initiator)], 64);
        }
    }

    /// Moves the clock to `now` (if later) and ends every flow whose timeout
    /// passed. Live capture calls this with its clock once per batch (and
    /// when idle); offline, packet time drives it.
    #[inline(always)]
    pub fn advance(&mut self, now: crate::view::Timestamp, sink: &mut impl EventSink<E::Key>) {
        if now.0 > self.clock {
            self.clock = now.0;
        }
        while let Some(slot) = self.wheel.pop_due(self.clock) {
            if !self.meta.get(slot as usize).is_some_and(|m| m.live) {
                continue;
            }
            let Some((deadline, reason)) = self.deadline(slot) else {
                continue;
            };
            if deadline <= self.clock {
                self.end_and_free(slot, reason, sink);
            } else {
                self.wheel.schedule(slot, deadline);
            }
        }
    }

    /// Ends every flow (end of input, shutdown): a flow whose timeout
    /// already passed on the clock (its timer, a wheel tick coarse, had not
    /// fired yet) for that reason, closed TCP flows with `Fin`/`Rst`, the
    /// rest with `ForceClosed`. The tracker is empty after.
    pub fn finish(&mut self, sink: &mut impl EventSink<E::Key>) {
        for slot in 0..self.slots.len() {
            let (Some(rec), Some(m)) = (self.slots.get(slot), self.meta.get(slot)) else {
                break;
            };
            if m.live {
                let reason = match self.deadline(slot as u32) {
                    Some((deadline, reason)) if deadline <= self.clock => reason,
                    _ => closed_reason(rec.state).unwrap_or(EndReason::ForceClosed),
                };
                self.end_and_free(slot as u32, reason, sink);
            }
        }
    }

    /// When a slot's flow ends by itself, and why.
    fn deadline(&self, slot: u32) -> Option<(u64, EndReason)> {
        let rec = self.slots.get(slot as usize)?;
        let last = rec.end().0;
        Some(match closed_reason(rec.state) {
            Some(r) => (last.saturating_add(self.linger_ns), r),
            None => {
                let idle = self.meta.get(slot as usize)?.idle_ns;
                (last.saturating_add(idle), EndReason::IdleTimeout)
            }
        })
    }

    /// Always inlined: `track` and `track_batch` each get their own copy
    /// (shared, it is not inlined into `track_batch`'s pipeline, which then
    /// runs about a third slower with a million flows).
    #[inline(always)]
    fn process(
        &mut self,
        view: PacketView<'_>,
        result: &Result<Extracted<E::Key>, Unmatched>,
        hash: u32,
        hint: Option<(u32, u64)>,
        sink: &mut impl EventSink<E::Key>,
    ) {
        self.counters.packets += 1;
        self.advance(view.timestamp, sink);
        let ext = match result {
            Ok(ext) => ext,
            Err(reason) => {
                self.counters.count_unmatched(*reason);
                return;
            }
        };
        let role = match ext.tunnel {
            Some(tunnel) => self
                .carrier(view, tunnel, sink)
                .map(|parent| InTunnel { parent, tunnel }),
            None => None,
        };
        let slot = self.slot_for(ext, hash, hint, role, view.timestamp.0, sink);
        self.update::<true>(slot, view, ext, sink);
    }

    /// The slot of `ext`'s flow (`hint`: where the index pointed when the
    /// batch prefetched it): its record renewed if over, or a new record
    /// with `role`.
    #[inline(always)]
    fn slot_for(
        &mut self,
        ext: &Extracted<E::Key>,
        hash: u32,
        hint: Option<(u32, u64)>,
        role: Option<InTunnel>,
        now: u64,
        sink: &mut impl EventSink<E::Key>,
    ) -> u32 {
        let found = match hint {
            Some((r, frees)) if frees == self.frees && self.slot_has(r, &ext.key) => Some(r),
            _ => self.index.find(hash, |s| self.slot_has(s, &ext.key)),
        };
        match found {
            Some(slot) => {
                self.renew_if_over(slot, ext, role, now, sink);
                slot
            }
            None => {
                if self.live >= self.config.max_flows {
                    self.evict(sink);
                }
                let rec = self.new_record(ext, role);
                let reverse_initiator = rec.initiator == Orientation::Reverse;
                let slot = self.place(rec, hash);
                self.index.insert(hash, slot, reverse_initiator);
                self.started(slot, now, sink);
                slot
            }
        }
    }

    /// Counts a tunnelled packet in the tunnel's own flow, which becomes a
    /// carrier; its flow ID. Not counted again in the tracker's totals
    /// (the packet is counted once, in the flow inside).
    #[cold]
    #[inline(never)]
    fn carrier(
        &mut self,
        view: PacketView<'_>,
        tunnel: Tunnelled,
        sink: &mut impl EventSink<E::Key>,
    ) -> Option<u64> {
        let ext = self.extractor.carrier(view)?;
        let hash = self.hasher.hash_one(ext.key) as u32;
        let slot = self.slot_for(&ext, hash, None, None, view.timestamp.0, sink);
        let rec = self.slots.get_mut(slot as usize)?;
        if rec.carries.is_none() {
            rec.carries = Some(tunnel.encap);
            sink.event(FlowEvent::Tunnel {
                flow: rec,
                ts: view.timestamp,
            });
        }
        let id = rec.flow_id;
        self.update::<false>(slot, view, &ext, sink);
        Some(id)
    }

    /// Ends the record in `slot` and starts a new one on the same key when
    /// the packet comes after its timeout, reopens a closed flow with a SYN,
    /// or passes the active timeout.
    #[inline(always)]
    fn renew_if_over(
        &mut self,
        slot: u32,
        ext: &Extracted<E::Key>,
        role: Option<InTunnel>,
        now: u64,
        sink: &mut impl EventSink<E::Key>,
    ) {
        let Some(rec) = self.slots.get(slot as usize) else {
            return;
        };
        // The common case, read from the lines the packet touches anyway:
        // an open flow without active timeout whose side sent a packet less
        // than any idle timeout ago cannot be over.
        let own = rec.side(rec.side_of(ext.orientation));
        if self.active_ns.is_none()
            && own.packets > 0
            && now.saturating_sub(own.last_seen.0) < self.min_idle_ns
            && !rec.state.is_closed()
        {
            return;
        }
        let closed = closed_reason(rec.state);
        let Some((deadline, reason)) = self.deadline(slot) else {
            return;
        };
        let ending = if deadline <= now {
            Some((reason, false))
        } else if let (Some(r), true) = (closed, is_pure_syn(ext.tcp.as_ref())) {
            Some((r, false))
        } else {
            self.active_ns
                .filter(|&a| now.saturating_sub(rec.start().0) >= a)
                .map(|_| (EndReason::ActiveTimeout, true))
        };
        let Some((reason, continued)) = ending else {
            return;
        };
        self.ended(slot, reason, sink);
        let rec = match self.slots.get(slot as usize) {
            Some(r) if continued => FlowRecord {
                sides: [SideStats::default(); 2],
                history: History::default(),
                continued: true,
                ..*r
            },
            _ => self.new_record(ext, role),
        };
        if !continued && let Some(m) = self.meta.get(slot as usize) {
            self.index
                .retag(m.hash, slot, rec.initiator == Orientation::Reverse);
        }
        if let Some(r) = self.slots.get_mut(slot as usize) {
            *r = rec;
        }
        self.started(slot, now, sink);
    }

    /// A fresh record for the flow of `ext` (flow ID assigned in `started`).
    fn new_record(&self, ext: &Extracted<E::Key>, tunnel: Option<InTunnel>) -> FlowRecord<E::Key> {
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
            carries: None,
            tunnel,
        }
    }

    /// Stores `rec` in a free slot; the caller made room.
    fn place(&mut self, rec: FlowRecord<E::Key>, hash: u32) -> u32 {
        let idle_ns = nanos(
            self.idle_fn
                .and_then(|f| f(&rec.key, rec.l4))
                .unwrap_or_else(|| self.config.idle_timeout(rec.l4)),
        );
        let meta = SlotMeta {
            idle_ns,
            hash,
            live: true,
        };
        self.live += 1;
        self.counters.flows_active = self.live as u64;
        match self.free.pop() {
            Some(i) => {
                if let (Some(r), Some(m)) = (
                    self.slots.get_mut(i as usize),
                    self.meta.get_mut(i as usize),
                ) {
                    *r = rec;
                    *m = meta;
                }
                i
            }
            None => {
                // Within the capacity reserved at construction: no reallocation.
                self.slots.push(rec);
                self.meta.push(meta);
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Numbers, counts, schedules and announces the new record in `slot`.
    fn started(&mut self, slot: u32, now: u64, sink: &mut impl EventSink<E::Key>) {
        self.next_flow_id += 1;
        let id = self.next_flow_id;
        let (Some(rec), Some(m)) = (
            self.slots.get_mut(slot as usize),
            self.meta.get(slot as usize),
        ) else {
            return;
        };
        if !rec.continued {
            rec.flow_id = id;
        }
        let deadline = now.saturating_add(m.idle_ns);
        self.counters.flows_created[l4_index(rec.l4)] += 1;
        self.wheel.schedule(slot, deadline);
        trace::trace_flow_started(rec);
        sink.event(FlowEvent::Started { flow: rec });
    }

    /// Counts and announces the end of the record in `slot` (the slot stays).
    fn ended(&mut self, slot: u32, reason: EndReason, sink: &mut impl EventSink<E::Key>) {
        let Some(rec) = self.slots.get(slot as usize) else {
            return;
        };
        self.counters.count_ended(rec, reason);
        trace::trace_flow_ended(rec, reason);
        sink.event(FlowEvent::Ended {
            flow: rec,
            slot,
            reason,
        });
    }

    fn end_and_free(&mut self, slot: u32, reason: EndReason, sink: &mut impl EventSink<E::Key>) {
        self.ended(slot, reason, sink);
        let Some(m) = self.meta.get_mut(slot as usize) else {
            return;
        };
        m.live = false;
        let hash = m.hash;
        self.index.remove(hash, slot);
        self.wheel.cancel(slot);
        self.free.push(slot);
        self.frees += 1;
        self.live -= 1;
        self.counters.flows_active = self.live as u64;
    }

    /// Evicts one flow: the least valuable of [`EVICTION_SAMPLE`] slots.
    fn evict(&mut self, sink: &mut impl EventSink<E::Key>) {
        let n = self.slots.len();
        if n == 0 {
            return;
        }
        let value = |r: &FlowRecord<E::Key>| {
            let class = if r.state.is_closed() {
                0
            } else if matches!(
                r.state,
                FlowState::SynSent | FlowState::SynReceived | FlowState::MidStream
            ) || (r.state == FlowState::Active && r.sides[1].packets == 0)
            {
                1
            } else {
                2
            };
            (class, r.end())
        };
        let mut best: Option<(usize, (u8, crate::view::Timestamp))> = None;
        for k in 0..EVICTION_SAMPLE.min(n) {
            let i = (self.evict_hand + k) % n;
            let (Some(r), Some(m)) = (self.slots.get(i), self.meta.get(i)) else {
                continue;
            };
            if !m.live {
                continue;
            }
            let v = value(r);
            if best.is_none_or(|(_, b)| v < b) {
                best = Some((i, v));
            }
        }
        self.evict_hand = (self.evict_hand + EVICTION_SAMPLE) % n;
        let Some((victim, _)) = best else { return };
        let ts = crate::view::Timestamp(self.clock);
        self.counters.anomalies[AnomalyKind::FlowTableEviction.index()] += 1;
        if let Some(r) = self.slots.get(victim) {
            trace::trace_anomaly(Some(r.flow_id), AnomalyKind::FlowTableEviction);
            sink.event(FlowEvent::Anomaly {
                flow: Some(r),
                kind: AnomalyKind::FlowTableEviction,
                ts,
            });
        }
        self.end_and_free(victim as u32, EndReason::Evicted, sink);
    }

    /// Counts the packet in its flow and runs the TCP state machine; in the
    /// tracker's totals too when `TOTALS` (not for a carrier).
    #[inline(always)]
    fn update<const TOTALS: bool>(
        &mut self,
        slot: u32,
        view: PacketView<'_>,
        ext: &Extracted<E::Key>,
        sink: &mut impl EventSink<E::Key>,
    ) {
        let linger = self.linger_ns;
        let Some(rec) = self.slots.get_mut(slot as usize) else {
            return;
        };
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
        if TOTALS {
            self.counters.packets_matched += 1;
            self.counters.count_bytes(side, u64::from(view.orig_len));
        }
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
                trace::trace_anomaly(Some(rec.flow_id), AnomalyKind::TcpFlagCombo);
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
            if t.to.is_closed() && !t.from.is_closed() {
                self.wheel
                    .schedule(slot, rec.end().0.saturating_add(linger));
            }
        }
        sink.event(FlowEvent::Packet {
            flow: rec,
            slot,
            side,
            extracted: ext,
            view,
        });
    }
}

#[cfg(test)]
mod tests;
