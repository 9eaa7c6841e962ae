//! Unit tests of the tracker with a tiny extractor over a made-up frame format.

use std::time::Duration;

use super::*;
use crate::extractor::{Orientation, TcpFlags};
use crate::view::Timestamp;

/// Test frames: `[a, b, proto, flags, seq(4, BE), ack(4, BE), payload_len]`;
/// `a`/`b` are host numbers (sender first). Key = (min, max, proto).
struct TinyExtractor;

impl FlowExtractor for TinyExtractor {
    type Key = (u8, u8, u8);

    fn extract(&self, view: PacketView<'_>) -> Result<Extracted<Self::Key>, Unmatched> {
        let f = view.frame;
        let [a, b, proto, flags, s0, s1, s2, s3, a0, a1, a2, a3, len] = *f else {
            return Err(Unmatched::BadL3);
        };
        let (key, orientation) = if a <= b {
            ((a, b, proto), Orientation::Forward)
        } else {
            ((b, a, proto), Orientation::Reverse)
        };
        let l4 = L4Proto::from_number(proto);
        let tcp = (l4 == L4Proto::Tcp).then_some(TcpInfo {
            flags: TcpFlags(flags),
            seq: u32::from_be_bytes([s0, s1, s2, s3]),
            ack: u32::from_be_bytes([a0, a1, a2, a3]),
            window: 1000,
        });
        Ok(Extracted {
            key,
            orientation,
            l4,
            tcp,
            vlan: [0, 0],
            payload_offset: 13,
            payload_len: u32::from(len),
            ip_len: 20 + u32::from(len),
            fragment: None,
            tunnel: None,
        })
    }
}

fn frame(a: u8, b: u8, proto: u8, flags: TcpFlags, seq: u32, ack: u32, len: u8) -> [u8; 13] {
    let s = seq.to_be_bytes();
    let k = ack.to_be_bytes();
    [
        a, b, proto, flags.0, s[0], s[1], s[2], s[3], k[0], k[1], k[2], k[3], len,
    ]
}

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const FIN: TcpFlags = TcpFlags::FIN;
const RST: TcpFlags = TcpFlags::RST;
const NONE: TcpFlags = TcpFlags(0);

type Key = (u8, u8, u8);

/// What the sink saw, copied out of the events.
#[derive(Default)]
struct Log {
    started: Vec<u64>,
    ended: Vec<(FlowRecord<Key>, EndReason)>,
    established: usize,
    changes: Vec<(FlowState, FlowState)>,
    packets: Vec<FlowSide>,
    anomalies: Vec<AnomalyKind>,
    tunnels: usize,
}

impl EventSink<(u8, u8, u8)> for Log {
    fn event(&mut self, e: FlowEvent<'_, (u8, u8, u8)>) {
        match e {
            FlowEvent::Started { flow } => self.started.push(flow.flow_id),
            FlowEvent::Ended { flow, reason, .. } => self.ended.push((*flow, reason)),
            FlowEvent::Established { .. } => self.established += 1,
            FlowEvent::StateChange { from, to, .. } => self.changes.push((from, to)),
            FlowEvent::Packet { side, .. } => self.packets.push(side),
            FlowEvent::Anomaly { kind, .. } => self.anomalies.push(kind),
            FlowEvent::Tunnel { .. } => self.tunnels += 1,
        }
    }
}

struct Rig {
    t: FlowTracker<TinyExtractor>,
    log: Log,
}

impl Rig {
    fn new(config: TrackerConfig) -> Self {
        Self {
            t: FlowTracker::with_config(TinyExtractor, config),
            log: Log::default(),
        }
    }

    /// Sends a frame of `len` wire bytes at `ms` milliseconds.
    fn send(&mut self, ms: u64, f: [u8; 13], wire_len: u32) {
        let view = PacketView::new(&f, Timestamp(ms * 1_000_000)).with_orig_len(wire_len);
        self.t.track(view, &mut self.log);
    }

    fn finish(&mut self) {
        self.t.finish(&mut self.log);
    }

    fn check_invariants(&self) {
        let c = self.t.counters();
        assert_eq!(c.created_total(), c.ended_total() + self.t.len() as u64);
        assert_eq!(c.packets, c.packets_matched + c.unmatched_total());
        assert!(self.t.len() <= self.t.capacity());
    }
}

/// The classic connection between hosts 1 (client) and 2 (server).
fn handshake_data_close(r: &mut Rig, t0: u64) {
    r.send(t0, frame(1, 2, 6, SYN, 100, 0, 0), 74);
    r.send(t0 + 1, frame(2, 1, 6, SYN | ACK, 500, 101, 0), 74);
    r.send(t0 + 2, frame(1, 2, 6, ACK, 101, 501, 0), 66);
    r.send(
        t0 + 3,
        frame(1, 2, 6, ACK | TcpFlags::PSH, 101, 501, 10),
        76,
    );
    r.send(t0 + 4, frame(2, 1, 6, ACK, 501, 111, 0), 66);
    r.send(
        t0 + 5,
        frame(2, 1, 6, ACK | TcpFlags::PSH, 501, 111, 20),
        86,
    );
    r.send(t0 + 6, frame(1, 2, 6, FIN | ACK, 111, 521, 0), 66);
    r.send(t0 + 7, frame(2, 1, 6, FIN | ACK, 521, 112, 0), 66);
    r.send(t0 + 8, frame(1, 2, 6, ACK, 112, 522, 0), 66);
}

#[test]
fn tcp_connection_both_directions_one_flow() {
    let mut r = Rig::new(TrackerConfig::default());
    handshake_data_close(&mut r, 1000);
    assert_eq!(r.t.len(), 1);
    assert_eq!(r.log.started.len(), 1);
    assert_eq!(r.log.established, 1);
    let rec = *r.t.get(&(1, 2, 6)).expect("flow present");
    assert_eq!(rec.state, FlowState::Closed);
    assert_eq!(rec.initiator, Orientation::Forward);
    let (i, o) = (rec.side(FlowSide::Initiator), rec.side(FlowSide::Responder));
    assert_eq!(
        (i.packets, i.bytes, i.payload_bytes),
        (5, 74 + 66 + 76 + 66 + 66, 10)
    );
    assert_eq!(
        (o.packets, o.bytes, o.payload_bytes),
        (4, 74 + 66 + 86 + 66, 20)
    );
    assert_eq!(i.tcp_flags, SYN | ACK | FIN | TcpFlags::PSH);
    assert_eq!(i.first_seen, Timestamp(1_000_000_000));
    assert_eq!(o.last_seen, Timestamp(1_007_000_000));
    assert_eq!(rec.history.as_str(), "ShADadFf");
    assert_eq!(rec.conn_state(), "SF");
    // Not ended yet: the close lingers 5 s (to 6.008 s), then the next
    // packet's time ends it, up to one timer tick (1 s) late.
    assert!(r.log.ended.is_empty());
    r.send(6_999, frame(7, 8, 17, NONE, 0, 0, 1), 60);
    assert!(r.log.ended.is_empty());
    r.send(7_000, frame(7, 8, 17, NONE, 0, 0, 1), 60);
    assert_eq!(r.log.ended.len(), 1);
    assert_eq!(r.log.ended[0].1, EndReason::Fin);
    assert_eq!(r.log.ended[0].0.packets(), 9);
    r.check_invariants();
}

#[test]
fn syn_ack_first_flips_initiator() {
    let mut r = Rig::new(TrackerConfig::default());
    r.send(0, frame(2, 1, 6, SYN | ACK, 500, 101, 0), 74);
    r.send(1, frame(1, 2, 6, ACK, 101, 501, 0), 66);
    let rec = r.t.get(&(1, 2, 6)).expect("flow");
    // Host 1 received the SYN-ACK: it is the initiator.
    assert_eq!(rec.initiator, Orientation::Forward);
    assert_eq!(rec.side(FlowSide::Initiator).packets, 1);
    assert_eq!(rec.side(FlowSide::Responder).packets, 1);
    assert_eq!(rec.history.as_str(), "^hA");
    assert_eq!(rec.state, FlowState::Established);
}

#[test]
fn midstream_pickup() {
    let mut r = Rig::new(TrackerConfig::default());
    r.send(0, frame(2, 1, 6, ACK, 9, 9, 30), 100);
    assert_eq!(
        r.t.get(&(1, 2, 6)).map(|f| f.state),
        Some(FlowState::MidStream)
    );
    // The first sender is the initiator, even from the higher address.
    assert_eq!(
        r.t.get(&(1, 2, 6)).map(|f| f.initiator),
        Some(Orientation::Reverse)
    );
    r.send(1, frame(1, 2, 6, ACK, 9, 39, 0), 60);
    assert_eq!(
        r.log.changes,
        vec![(FlowState::MidStream, FlowState::Established)]
    );
    assert_eq!(
        r.log.packets,
        vec![FlowSide::Initiator, FlowSide::Responder]
    );
}

#[test]
fn idle_timeouts_per_protocol() {
    let mut r = Rig::new(TrackerConfig::default());
    r.send(0, frame(1, 2, 17, NONE, 0, 0, 5), 60); // UDP: 60 s
    r.send(0, frame(1, 3, 1, NONE, 0, 0, 5), 60); // ICMP: 30 s
    r.send(0, frame(1, 4, 6, SYN, 1, 0, 0), 60); // TCP: 300 s
    let at = |s: u64| Timestamp(s * 1_000_000_000);
    r.t.advance(at(29), &mut r.log);
    assert!(r.log.ended.is_empty());
    r.t.advance(at(30), &mut r.log);
    assert_eq!(
        r.log.ended.iter().map(|e| e.0.key).collect::<Vec<_>>(),
        vec![(1, 3, 1)]
    );
    r.t.advance(at(60), &mut r.log);
    assert_eq!(r.log.ended.len(), 2);
    assert_eq!(r.log.ended[1].0.key, (1, 2, 17));
    r.t.advance(at(299), &mut r.log);
    assert_eq!(r.log.ended.len(), 2);
    r.t.advance(at(300), &mut r.log);
    assert_eq!(r.log.ended.len(), 3);
    assert_eq!(r.log.ended[2].0.key, (1, 4, 6));
    assert!(r.log.ended.iter().all(|e| e.1 == EndReason::IdleTimeout));
    r.check_invariants();
}

#[test]
fn late_packet_starts_new_record_before_timer_fires() {
    // A coarse wheel: the lookup itself must notice the timeout.
    let cfg = TrackerConfig {
        timer_tick: Duration::from_secs(100),
        ..TrackerConfig::default()
    };
    let mut r = Rig::new(cfg);
    r.send(0, frame(1, 2, 17, NONE, 0, 0, 5), 60);
    r.send(61_000, frame(2, 1, 17, NONE, 0, 0, 5), 60);
    assert_eq!(r.log.ended.len(), 1);
    assert_eq!(r.log.ended[0].1, EndReason::IdleTimeout);
    let rec = r.t.get(&(1, 2, 17)).expect("new record");
    assert_eq!(rec.packets(), 1);
    assert_eq!(rec.initiator, Orientation::Reverse);
    assert_eq!(r.log.started, vec![1, 2]);
    r.check_invariants();
}

#[test]
fn per_key_idle_override() {
    let mut r = Rig::new(TrackerConfig::default());
    r.t.set_idle_timeout_fn(|k, _| (k.1 == 53).then_some(Duration::from_secs(2)));
    r.send(0, frame(1, 53, 17, NONE, 0, 0, 5), 60);
    r.send(0, frame(1, 54, 17, NONE, 0, 0, 5), 60);
    r.t.advance(Timestamp(3_000_000_000), &mut r.log);
    assert_eq!(r.log.ended.len(), 1);
    assert_eq!(r.log.ended[0].0.key, (1, 53, 17));
}

#[test]
fn new_syn_on_closed_tuple_starts_new_flow() {
    let mut r = Rig::new(TrackerConfig::default());
    handshake_data_close(&mut r, 0);
    r.send(100, frame(1, 2, 6, SYN, 9000, 0, 0), 74);
    assert_eq!(r.log.ended.len(), 1);
    assert_eq!(r.log.ended[0].1, EndReason::Fin);
    let rec = r.t.get(&(1, 2, 6)).expect("new flow");
    assert_eq!(rec.packets(), 1);
    assert_eq!(rec.state, FlowState::SynSent);
    assert_ne!(rec.flow_id, r.log.ended[0].0.flow_id);

    // A late ACK on a reset flow stays in it; a SYN does not.
    r.send(101, frame(2, 1, 6, RST | ACK, 0, 9001, 0), 60);
    r.send(102, frame(1, 2, 6, ACK, 9001, 1, 0), 60);
    assert_eq!(r.t.get(&(1, 2, 6)).map(|f| f.packets()), Some(3));
    assert_eq!(r.t.get(&(1, 2, 6)).map(|f| f.conn_state()), Some("REJ"));
    r.send(103, frame(1, 2, 6, SYN, 9500, 0, 0), 74);
    assert_eq!(r.log.ended.len(), 2);
    assert_eq!(r.log.ended[1].1, EndReason::Rst);
    r.check_invariants();
}

#[test]
fn eviction_prefers_unanswered_then_oldest() {
    let cfg = TrackerConfig {
        max_flows: 3,
        ..TrackerConfig::default()
    };
    let mut r = Rig::new(cfg);
    // Answered UDP flows (old), then an unanswered one (newest).
    r.send(0, frame(1, 2, 17, NONE, 0, 0, 1), 60);
    r.send(1, frame(2, 1, 17, NONE, 0, 0, 1), 60);
    r.send(2, frame(1, 3, 17, NONE, 0, 0, 1), 60);
    r.send(3, frame(3, 1, 17, NONE, 0, 0, 1), 60);
    r.send(4, frame(1, 4, 17, NONE, 0, 0, 1), 60);
    r.send(5, frame(1, 5, 17, NONE, 0, 0, 1), 60);
    assert_eq!(r.log.ended.len(), 1);
    assert_eq!(r.log.ended[0].0.key, (1, 4, 17));
    assert_eq!(r.log.ended[0].1, EndReason::Evicted);
    // Next: all answered or newest; the oldest answered one goes.
    r.send(6, frame(5, 1, 17, NONE, 0, 0, 1), 60);
    r.send(7, frame(1, 6, 17, NONE, 0, 0, 1), 60);
    assert_eq!(r.log.ended[1].0.key, (1, 2, 17));
    assert_eq!(r.log.anomalies, vec![AnomalyKind::FlowTableEviction; 2]);
    assert_eq!(r.t.counters().ended(EndReason::Evicted), 2);
    assert_eq!(r.t.len(), 3);
    r.check_invariants();
}

#[test]
fn active_timeout_splits_records_of_one_flow() {
    let cfg = TrackerConfig {
        active_timeout: Some(Duration::from_secs(10)),
        ..TrackerConfig::default()
    };
    let mut r = Rig::new(cfg);
    for s in 0..25u64 {
        r.send(s * 1000, frame(1, 2, 17, NONE, 0, 0, 1), 100);
    }
    r.finish();
    let reasons: Vec<_> = r
        .log
        .ended
        .iter()
        .map(|e| (e.1, e.0.packets(), e.0.continued))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (EndReason::ActiveTimeout, 10, false),
            (EndReason::ActiveTimeout, 10, true),
            (EndReason::ForceClosed, 5, true)
        ]
    );
    // One flow ID for all its records.
    assert!(
        r.log
            .ended
            .iter()
            .all(|e| e.0.flow_id == r.log.ended[0].0.flow_id)
    );
    assert_eq!(r.log.ended[1].0.start(), Timestamp(10_000_000_000));
    r.check_invariants();
}

#[test]
fn finish_force_closes_open_flows_and_reports_closed_ones() {
    let mut r = Rig::new(TrackerConfig::default());
    handshake_data_close(&mut r, 0);
    r.send(10, frame(3, 4, 6, SYN, 1, 0, 0), 74);
    r.send(11, frame(3, 5, 17, NONE, 0, 0, 0), 74);
    r.finish();
    let mut reasons: Vec<_> = r.log.ended.iter().map(|e| (e.0.key, e.1)).collect();
    reasons.sort_by_key(|e| e.0);
    assert_eq!(
        reasons,
        vec![
            ((1, 2, 6), EndReason::Fin),
            ((3, 4, 6), EndReason::ForceClosed),
            ((3, 5, 17), EndReason::ForceClosed)
        ]
    );
    assert!(r.t.is_empty());
    r.check_invariants();
}

#[test]
fn unmatched_packets_counted_by_reason() {
    let mut r = Rig::new(TrackerConfig::default());
    let junk = [1u8, 2, 3];
    r.t.track(PacketView::new(&junk, Timestamp(0)), &mut r.log);
    r.send(0, frame(1, 2, 17, NONE, 0, 0, 0), 60);
    let c = r.t.counters();
    assert_eq!(c.packets, 2);
    assert_eq!(c.packets_unmatched[2], 1); // BadL3
    assert_eq!(c.packets_matched, 1);
    r.check_invariants();
}

/// `track_batch`, in calls of several lengths, does exactly what `track`
/// does packet by packet: same records, same counters.
/// At the end `min_live` flows are in the table.
fn assert_batch_equals_one_by_one(
    frames: &[[u8; 13]],
    gap_ns: u64,
    cfg: &TrackerConfig,
    min_live: usize,
) {
    let views: Vec<_> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| PacketView::new(f, Timestamp(i as u64 * gap_ns)))
        .collect();
    let mut a = Rig::new(cfg.clone());
    for v in &views {
        a.t.track(*v, &mut a.log);
    }
    assert!(a.t.len() >= min_live, "{} flows live", a.t.len());
    a.finish();
    let summary = |l: &Log| -> Vec<_> {
        l.ended
            .iter()
            .map(|e| (e.0.key, e.0.flow_id, e.0.sides, e.1))
            .collect()
    };
    // Calls shorter than the pipeline, about as long, and longer.
    for call in [1, 5, 16, 17, 33, 100] {
        let mut b = Rig::new(cfg.clone());
        for chunk in views.chunks(call) {
            b.t.track_batch(chunk, &mut b.log);
        }
        b.finish();
        assert_eq!(summary(&a.log), summary(&b.log), "calls of {call}");
        assert_eq!(a.t.counters(), b.t.counters(), "calls of {call}");
    }
    a.check_invariants();
}

/// Mixed TCP and UDP packets of a few flows (`hosts` distinct pairs).
fn mixed(n: u32, hosts: u32) -> Vec<[u8; 13]> {
    (0..n)
        .map(|i| {
            let h = (i % hosts) as u16;
            let (a, b) = ((h % 251) as u8, (h / 251) as u8 + 1);
            let proto = if i % 3 == 0 { 6 } else { 17 };
            let flags = if i % 5 == 0 { SYN } else { ACK };
            frame(a, b, proto, flags, i, i, (i % 4) as u8)
        })
        .collect()
}

#[test]
fn batch_equals_one_by_one_in_a_small_table() {
    // Evictions (4 slots for 7 flows) and idle timeouts (70 s in all).
    let cfg = TrackerConfig {
        max_flows: 4,
        ..TrackerConfig::default()
    };
    assert_batch_equals_one_by_one(&mixed(100, 7), 700_000_000, &cfg, 1);
}

#[test]
fn batch_equals_one_by_one_through_the_prefetch_pipeline() {
    // More live records than `CACHED_RECORDS_BYTES` holds, so the pipeline
    // runs; a full table, so new flows evict; 13 s apart per 1000 packets.
    let cached = CACHED_RECORDS_BYTES / std::mem::size_of::<FlowRecord<Key>>();
    let flows = cached + 200;
    let cfg = TrackerConfig {
        max_flows: flows - 50,
        ..TrackerConfig::default()
    };
    let frames = mixed(6 * flows as u32, flows as u32);
    assert_batch_equals_one_by_one(&frames, 13_000_000, &cfg, cached + 1);
}

#[test]
fn an_ordinary_packet_touches_two_lines_of_its_record() {
    use crate::extract::FiveTupleKey;
    use std::mem::{align_of, offset_of, size_of};
    type R = FlowRecord<FiveTupleKey>;
    // What an ordinary packet reads or writes besides its side's counters:
    // (field, offset, bytes of it read).
    let first_line = [
        ("key", offset_of!(R, key), size_of::<FiveTupleKey>()),
        ("state", offset_of!(R, state), size_of::<FlowState>()),
        ("initiator", offset_of!(R, initiator), 1),
        // The per-side "seen" bits come first in `History`.
        ("history", offset_of!(R, history), 2),
        // Endpoint states and the FIN bits come first in `TcpTrack`.
        ("tcp", offset_of!(R, tcp), 3),
    ];
    for (name, at, len) in first_line {
        assert!(at + len <= 64, "{name} at {at}+{len} leaves the first line");
    }
    assert_eq!(align_of::<R>(), 64);
    assert_eq!(size_of::<SideStats>(), 64, "one line per side");
    assert_eq!(offset_of!(R, sides) % 64, 0);
    assert_eq!(size_of::<R>(), 256, "four lines per record");
}
