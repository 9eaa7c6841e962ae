//! TCP reassembly against a reference model, plus properties, wrap-around,
//! gaps, caps and overflow.

use std::collections::BTreeMap;

use flowscope::TcpFlags;
use flowscope::reassembly::{
    Delivery, OverflowPolicy, OverlapPolicy, Reassembler, ReassemblyBudget, ReassemblyConfig,
    StreamStatus,
};
use proptest::prelude::*;

/// What a consumer saw: data runs merged, gaps kept apart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Data(Vec<u8>),
    Gap(u64),
}

fn push_data(items: &mut Vec<Item>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    if let Some(Item::Data(last)) = items.last_mut() {
        last.extend_from_slice(bytes);
    } else {
        items.push(Item::Data(bytes.to_vec()));
    }
}

fn collector(items: &mut Vec<Item>) -> impl FnMut(Delivery<'_>) + '_ {
    move |d| match d {
        Delivery::Data(b) => push_data(items, b),
        Delivery::Gap(n) => items.push(Item::Gap(n)),
    }
}

/// The reference: a byte map where each byte remembers the start offset of
/// the segment that wrote it, the policy applied byte by byte.
struct Model {
    policy: OverlapPolicy,
    base: Option<i64>,
    next: i64,
    bytes: BTreeMap<i64, (u8, i64)>,
    out: Vec<Item>,
}

impl Model {
    fn new(policy: OverlapPolicy) -> Self {
        Self {
            policy,
            base: None,
            next: 0,
            bytes: BTreeMap::new(),
            out: Vec::new(),
        }
    }

    fn new_wins(&self, old: i64, new: i64) -> bool {
        match self.policy {
            OverlapPolicy::First => false,
            OverlapPolicy::Last => true,
            OverlapPolicy::LowerSeq => new < old,
            OverlapPolicy::HigherSeq => new > old,
        }
    }

    /// A segment at absolute position `abs` (the test's own numbering).
    fn segment(&mut self, abs: i64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let base = *self.base.get_or_insert(abs);
        let start = abs - base;
        let origin = start.max(0);
        for (i, &b) in data.iter().enumerate() {
            let p = start + i as i64;
            if p < self.next {
                continue;
            }
            match self.bytes.get(&p) {
                Some(&(_, old)) if !self.new_wins(old, origin) => {}
                _ => {
                    self.bytes.insert(p, (b, origin));
                }
            }
        }
        while let Some((b, _)) = self.bytes.remove(&self.next) {
            push_data(&mut self.out, &[b]);
            self.next += 1;
        }
    }

    fn flush(&mut self) {
        let held: Vec<(i64, u8)> = self.bytes.iter().map(|(&p, &(b, _))| (p, b)).collect();
        for (p, b) in held {
            if p > self.next {
                self.out.push(Item::Gap((p - self.next) as u64));
            }
            push_data(&mut self.out, &[b]);
            self.next = p + 1;
        }
        self.bytes.clear();
    }
}

/// Feeds `(offset, bytes)` segments, numbered from `isn + 1`, to a
/// reassembler; with `syn` the SYN comes first.
fn run(
    config: &ReassemblyConfig,
    isn: u32,
    syn: bool,
    segments: &[(u32, Vec<u8>)],
    flush: bool,
) -> (Vec<Item>, Reassembler, ReassemblyBudget) {
    let mut budget = ReassemblyBudget::new(1 << 26);
    let mut side = Reassembler::new();
    let mut items = Vec::new();
    let mut out = collector(&mut items);
    if syn {
        side.segment(&mut budget, config, isn, TcpFlags::SYN, b"", &mut out);
    }
    for (off, data) in segments {
        let seq = isn.wrapping_add(1).wrapping_add(*off);
        side.segment(&mut budget, config, seq, TcpFlags::ACK, data, &mut out);
    }
    if flush {
        side.flush(&mut budget, &mut out);
    }
    drop(out);
    (items, side, budget)
}

fn policy() -> impl Strategy<Value = OverlapPolicy> {
    prop_oneof![
        Just(OverlapPolicy::First),
        Just(OverlapPolicy::Last),
        Just(OverlapPolicy::LowerSeq),
        Just(OverlapPolicy::HigherSeq),
    ]
}

/// Segments with arbitrary offsets (within 600 bytes) and contents, so
/// overlaps carry different bytes.
fn segments() -> impl Strategy<Value = Vec<(u32, Vec<u8>)>> {
    prop::collection::vec(
        (0u32..600, prop::collection::vec(any::<u8>(), 1..80)),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every overlap policy, with a SYN: the reassembler delivers exactly
    /// what the byte-map model delivers, gaps included.
    #[test]
    fn matches_model_with_syn(policy in policy(), isn in any::<u32>(), segs in segments()) {
        let config = ReassemblyConfig { overlap: policy, ..ReassemblyConfig::default() };
        let (items, side, budget) = run(&config, isn, true, &segs, true);
        let mut model = Model::new(policy);
        model.base = Some(0);
        for (off, data) in &segs {
            model.segment(i64::from(*off), data);
        }
        model.flush();
        prop_assert_eq!(&items, &model.out);
        prop_assert_eq!(side.status(), StreamStatus::Finished);
        prop_assert!(budget.used_bytes() <= budget.cap_bytes());
    }

    /// Every overlap policy, picked up mid-stream: anchored at the first
    /// data segment, earlier bytes dropped as old.
    #[test]
    fn matches_model_mid_stream(policy in policy(), isn in any::<u32>(), segs in segments()) {
        let config = ReassemblyConfig { overlap: policy, ..ReassemblyConfig::default() };
        let (items, _, _) = run(&config, isn, false, &segs, true);
        let mut model = Model::new(policy);
        for (off, data) in &segs {
            model.segment(i64::from(*off), data);
        }
        model.flush();
        prop_assert_eq!(items, model.out);
    }

    /// Any split, reordering and duplication of a stream (First policy,
    /// consistent retransmissions) delivers the stream itself, no gap.
    #[test]
    fn any_split_order_duplication_yields_the_stream(
        stream in prop::collection::vec(any::<u8>(), 1..3000),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        dups in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..20),
        order in any::<u64>(),
        isn in any::<u32>(),
    ) {
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(stream.len())).collect();
        bounds.extend([0, stream.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut segs: Vec<(u32, Vec<u8>)> = bounds
            .windows(2)
            .map(|w| (w[0] as u32, stream[w[0]..w[1]].to_vec()))
            .collect();
        for (a, b) in &dups {
            let (x, y) = (a.index(stream.len()), b.index(stream.len()));
            let (lo, hi) = (x.min(y), x.max(y) + 1);
            segs.push((lo as u32, stream[lo..hi].to_vec()));
        }
        // A deterministic shuffle driven by `order`.
        let mut state = order | 1;
        for i in (1..segs.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            segs.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let (items, side, _) = run(&ReassemblyConfig::default(), isn, true, &segs, false);
        prop_assert_eq!(items, vec![Item::Data(stream.clone())]);
        prop_assert_eq!(side.counters().inconsistent_retransmits, 0);
        prop_assert_eq!(side.counters().bytes_delivered, stream.len() as u64);
        prop_assert_eq!(side.buffered_bytes(), 0);
    }

    /// Small caps, several sides on one budget: memory never exceeds either
    /// cap, and under SlidingWindow every delivered byte is the stream's
    /// byte at that offset, with gaps accounting for the rest.
    #[test]
    fn caps_respected_and_sliding_window_stays_truthful(
        stream in prop::collection::vec(any::<u8>(), 1..20_000),
        pieces in prop::collection::vec((any::<prop::sample::Index>(), 1usize..1500), 1..120),
        side_cap in 4096u64..20_000,
        global_cap in 4096u64..40_000,
    ) {
        let config = ReassemblyConfig { max_side_bytes: side_cap, ..ReassemblyConfig::default() };
        let mut budget = ReassemblyBudget::new(global_cap);
        let mut sides = [Reassembler::new(), Reassembler::new(), Reassembler::new()];
        let mut items = [Vec::new(), Vec::new(), Vec::new()];
        for s in 0..3 {
            sides[s].segment(&mut budget, &config, 41, TcpFlags::SYN, b"", &mut collector(&mut items[s]));
        }
        for (k, (at, len)) in pieces.iter().enumerate() {
            let s = k % 3;
            let lo = at.index(stream.len());
            let hi = (lo + len).min(stream.len());
            let seq = 42u32.wrapping_add(lo as u32);
            sides[s].segment(&mut budget, &config, seq, TcpFlags::ACK, &stream[lo..hi], &mut collector(&mut items[s]));
            prop_assert!(budget.used_bytes() <= global_cap);
            prop_assert!(sides[s].memory_bytes() <= side_cap);
        }
        for s in 0..3 {
            sides[s].flush(&mut budget, &mut collector(&mut items[s]));
            let mut pos = 0usize;
            for item in &items[s] {
                match item {
                    Item::Gap(n) => pos += *n as usize,
                    Item::Data(d) => {
                        prop_assert_eq!(&stream[pos..pos + d.len()], &d[..]);
                        pos += d.len();
                    }
                }
            }
            prop_assert_eq!(sides[s].memory_bytes(), 0);
        }
    }

    /// Arbitrary segments (any sequence number, flags, payload) under tiny
    /// caps: no panic, caps hold.
    #[test]
    fn no_panic_on_arbitrary_segments(
        segs in prop::collection::vec((any::<u32>(), any::<u8>(), prop::collection::vec(any::<u8>(), 0..300)), 0..60),
        near in any::<bool>(),
        drop_flow in any::<bool>(),
        policy in policy(),
    ) {
        let config = ReassemblyConfig {
            max_side_bytes: 5000,
            overlap: policy,
            overflow: if drop_flow { OverflowPolicy::DropFlow } else { OverflowPolicy::SlidingWindow },
        };
        let mut budget = ReassemblyBudget::new(9000);
        let mut side = Reassembler::new();
        let mut sink = |_: Delivery<'_>| {};
        for (seq, flags, payload) in &segs {
            // Half the runs keep sequence numbers close, to reach overlaps.
            let seq = if near { 1000 + seq % 4000 } else { *seq };
            side.segment(&mut budget, &config, seq, TcpFlags(*flags), payload, &mut sink);
            prop_assert!(budget.used_bytes() <= 9000);
        }
        side.flush(&mut budget, &mut sink);
        prop_assert_eq!(side.memory_bytes(), 0);
    }
}

#[test]
fn wraps_around_2_pow_32() {
    let config = ReassemblyConfig::default();
    let isn = u32::MAX - 5;
    // Offsets 0..20 span seq u32::MAX-4 ..= 14: the wrap is inside.
    let segs = vec![
        (10, b"klmnopqrst".to_vec()),
        (0, b"abcde".to_vec()),
        (5, b"fghij".to_vec()),
    ];
    let (items, side, _) = run(&config, isn, true, &segs, false);
    assert_eq!(items, vec![Item::Data(b"abcdefghijklmnopqrst".to_vec())]);
    assert_eq!(side.next_seq(), Some(isn.wrapping_add(21)));
    assert_eq!(side.counters().ooo_segments, 1);
}

#[test]
fn gaps_have_exact_lengths_at_flush() {
    // Holes [3,10) and [12,20), FIN at offset 25 with [20,25) missing.
    let mut budget = ReassemblyBudget::new(1 << 20);
    let config = ReassemblyConfig::default();
    let mut side = Reassembler::new();
    let mut items = Vec::new();
    let mut out = collector(&mut items);
    side.segment(&mut budget, &config, 99, TcpFlags::SYN, b"", &mut out);
    side.segment(&mut budget, &config, 100, TcpFlags::ACK, b"abc", &mut out);
    side.segment(&mut budget, &config, 110, TcpFlags::ACK, b"kl", &mut out);
    side.segment(&mut budget, &config, 125, TcpFlags::FIN, b"", &mut out);
    assert_eq!(side.status(), StreamStatus::Open);
    side.flush(&mut budget, &mut out);
    drop(out);
    assert_eq!(
        items,
        vec![
            Item::Data(b"abc".to_vec()),
            Item::Gap(7),
            Item::Data(b"kl".to_vec()),
            Item::Gap(13),
        ]
    );
    assert_eq!(side.counters().gaps, 2);
    assert_eq!(side.counters().gap_bytes, 20);
    assert_eq!(side.memory_bytes(), 0);
}

#[test]
fn fin_in_order_finishes_the_stream() {
    let mut budget = ReassemblyBudget::new(1 << 20);
    let config = ReassemblyConfig::default();
    let mut side = Reassembler::new();
    let mut items = Vec::new();
    let mut out = collector(&mut items);
    side.segment(&mut budget, &config, 7, TcpFlags::SYN, b"", &mut out);
    // FIN with data ahead of a hole: not finished until the hole fills.
    let st = side.segment(
        &mut budget,
        &config,
        11,
        TcpFlags::FIN | TcpFlags::ACK,
        b"def",
        &mut out,
    );
    assert_eq!(st, StreamStatus::Open);
    let st = side.segment(&mut budget, &config, 8, TcpFlags::ACK, b"abc", &mut out);
    assert_eq!(st, StreamStatus::Finished);
    drop(out);
    assert_eq!(items, vec![Item::Data(b"abcdef".to_vec())]);
}

#[test]
fn retransmissions_and_inconsistencies_are_counted() {
    let mut budget = ReassemblyBudget::new(1 << 20);
    let config = ReassemblyConfig::default();
    let mut side = Reassembler::new();
    let mut items = Vec::new();
    let mut out = collector(&mut items);
    side.segment(&mut budget, &config, 0, TcpFlags::SYN, b"", &mut out);
    side.segment(&mut budget, &config, 1, TcpFlags::ACK, b"aaaa", &mut out);
    // Old bytes, already delivered: a retransmit.
    side.segment(&mut budget, &config, 1, TcpFlags::ACK, b"aaaa", &mut out);
    // Ahead of a hole, then the same range with other bytes.
    side.segment(&mut budget, &config, 9, TcpFlags::ACK, b"cccc", &mut out);
    side.segment(&mut budget, &config, 9, TcpFlags::ACK, b"cXcc", &mut out);
    side.segment(&mut budget, &config, 5, TcpFlags::ACK, b"bbbb", &mut out);
    drop(out);
    let c = *side.counters();
    assert_eq!(c.retransmits, 2);
    assert_eq!(c.inconsistent_retransmits, 1);
    assert_eq!(c.ooo_segments, 2);
    // First wins: the first "cccc" was kept.
    assert_eq!(items, vec![Item::Data(b"aaaabbbbcccc".to_vec())]);
    let kinds: Vec<_> = side.anomalies().map(|(k, n)| (k.label(), n)).collect();
    assert_eq!(
        kinds,
        vec![("out_of_order_segment", 2), ("retransmit_inconsistency", 1)]
    );
}

#[test]
fn drop_flow_reports_overflow_and_discards() {
    let mut budget = ReassemblyBudget::new(1 << 20);
    let config = ReassemblyConfig {
        max_side_bytes: 4096,
        overflow: OverflowPolicy::DropFlow,
        ..ReassemblyConfig::default()
    };
    let mut side = Reassembler::new();
    let mut items = Vec::new();
    let mut out = collector(&mut items);
    side.segment(&mut budget, &config, 0, TcpFlags::SYN, b"", &mut out);
    side.segment(
        &mut budget,
        &config,
        101,
        TcpFlags::ACK,
        &[1; 1000],
        &mut out,
    );
    // Ends 6100 bytes past the next expected byte: more than 4096.
    let st = side.segment(
        &mut budget,
        &config,
        5101,
        TcpFlags::ACK,
        &[2; 1000],
        &mut out,
    );
    assert_eq!(st, StreamStatus::Overflow);
    assert_eq!(side.counters().bytes_dropped_oversize, 2000);
    assert_eq!(side.counters().overflows, 1);
    let st = side.segment(&mut budget, &config, 1, TcpFlags::ACK, &[0; 100], &mut out);
    assert_eq!(st, StreamStatus::Overflow);
    assert_eq!(side.counters().bytes_dropped_oversize, 2100);
    drop(out);
    assert!(items.is_empty());
    side.release(&mut budget);
    assert_eq!(side.memory_bytes(), 0);
}

/// 100 000 one-byte segments above a one-byte hole, contiguous (First
/// policy merges them) and spaced (LowerSeq, one run each): memory stays
/// under both caps and everything after the hole is delivered.
#[test]
fn one_byte_segments_above_a_hole_stay_within_caps() {
    const COUNT: u32 = 100_000;
    for (policy, stride) in [(OverlapPolicy::First, 1u32), (OverlapPolicy::LowerSeq, 2)] {
        let config = ReassemblyConfig {
            max_side_bytes: 64 * 1024,
            overlap: policy,
            ..ReassemblyConfig::default()
        };
        let mut budget = ReassemblyBudget::new(96 * 1024);
        let mut side = Reassembler::new();
        let (mut data_bytes, mut gap_bytes) = (0u64, 0u64);
        let mut out = |d: Delivery<'_>| match d {
            Delivery::Data(b) => data_bytes += b.len() as u64,
            Delivery::Gap(n) => gap_bytes += n,
        };
        side.segment(&mut budget, &config, 0, TcpFlags::SYN, b"", &mut out);
        // Offset 0 is the hole.
        for i in 0..COUNT {
            side.segment(
                &mut budget,
                &config,
                2 + i * stride,
                TcpFlags::ACK,
                b"x",
                &mut out,
            );
            assert!(budget.used_bytes() <= budget.cap_bytes());
            assert!(side.memory_bytes() <= config.max_side_bytes);
        }
        side.flush(&mut budget, &mut out);
        assert_eq!(data_bytes, u64::from(COUNT), "{policy:?}");
        assert_eq!(
            data_bytes + gap_bytes,
            1 + u64::from(COUNT - 1) * u64::from(stride) + 1
        );
        assert!(side.counters().overflows > 0);
    }
}
