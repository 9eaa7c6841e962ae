//! Class counters of the XDP program.
//!
//! The program counts each frame once, in the slot of its kind (what it did
//! with the frame × L3 class × L4 class × the flags that are counters, see
//! [`frame_kind`]) of a per-CPU [`KindBlock`], which shares its map value
//! ([`CpuBlock`]) with the parse result and the anomaly counters: one map
//! lookup and one slot per frame. Userspace adds the kinds up into the classes of a
//! [`CounterBlock`], one slot per [`Counter`], when it reads them.

use crate::anomaly::AnomalyBlock;
use crate::config::MODE_COUNT_ONLY;
use crate::frame::{L3Class, L4Class};
use crate::meta::{FLAG_ERR_L2, FLAG_ERR_L3, FLAG_ERR_L4, FLAG_FRAGMENT, Parsed};

/// Packets and bytes counted in one slot on one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounter {
    /// Frames.
    pub packets: u64,
    /// Bytes of those frames (whole frame as seen by XDP).
    pub bytes: u64,
}

const _: () = assert!(core::mem::size_of::<ClassCounter>() == 16);

#[cfg(feature = "user")]
// SAFETY: repr(C), two u64 fields, no padding.
unsafe impl aya::Pod for ClassCounter {}

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident = $idx:literal => $label:literal,)*) => {
        /// A slot of the `COUNTERS` per-CPU array.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Counter {
            $($(#[$doc])* $name = $idx,)*
        }

        impl Counter {
            /// Every slot, in index order.
            pub const ALL: &'static [Counter] = &[$(Counter::$name,)*];

            /// Static label used for the `class` metric label.
            pub const fn label(self) -> &'static str {
                match self { $(Counter::$name => $label,)* }
            }
        }
    };
}

counters! {
    /// Every frame the program saw.
    All = 0 => "all",
    /// IPv4 frames.
    Ipv4 = 1 => "ipv4",
    /// IPv6 frames.
    Ipv6 = 2 => "ipv6",
    /// Frames that are neither (or whose L2 failed).
    L3Other = 3 => "l3_other",
    /// TCP (by protocol number, fragments included).
    Tcp = 4 => "tcp",
    /// UDP.
    Udp = 5 => "udp",
    /// ICMP.
    Icmp = 6 => "icmp",
    /// ICMPv6.
    Icmpv6 = 7 => "icmpv6",
    /// Other IP protocols.
    L4Other = 8 => "l4_other",
    /// IP fragments, first and non-first.
    Fragment = 9 => "fragment",
    /// Truncated Ethernet or VLAN header.
    ErrL2 = 10 => "error_l2",
    /// Truncated or malformed IP header or extension chain.
    ErrL3 = 11 => "error_l3",
    /// Truncated L4 header.
    ErrL4 = 12 => "error_l4",
    /// Redirected to an AF_XDP socket.
    Redirected = 13 => "redirected",
    /// Redirect failed (no socket in the slot), or the filter's tail call
    /// to the rest of the program did: passed to the stack instead.
    PassFallback = 14 => "pass_fallback",
    /// Passed to the stack in count-only mode.
    PassCountOnly = 15 => "pass_count_only",
    /// Rejected by the filter expression (`--filter`), then passed to the
    /// stack or dropped (`--filter-action`).
    FilterRejected = 16 => "filter_rejected",
    /// Non-first IP fragments whose datagram's first fragment the program
    /// had not seen (it came later, or a newer datagram took its entry in
    /// the fragment table, `crate::frag`): steered by the address pair,
    /// perhaps to another socket than their first fragment. Counted within
    /// `fragment`.
    FragmentUnsteered = 17 => "fragment_unsteered",
}

impl Counter {
    /// Number of slots.
    pub const COUNT: u32 = Self::ALL.len() as u32;
}

/// The single value of the `COUNTERS` per-CPU array: every slot of one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterBlock {
    /// Indexed by `Counter as usize`.
    pub slots: [ClassCounter; Counter::COUNT as usize],
}

const _: () = assert!(core::mem::size_of::<CounterBlock>() == 16 * Counter::COUNT as usize);

impl CounterBlock {
    /// The slot of `c`.
    pub fn get(&self, c: Counter) -> ClassCounter {
        self.slots[c as usize]
    }

    /// Adds `other` slot by slot (merging CPUs).
    pub fn add(&mut self, other: &CounterBlock) {
        for (a, b) in self.slots.iter_mut().zip(other.slots.iter()) {
            a.packets += b.packets;
            a.bytes += b.bytes;
        }
    }
}

/// Codes of the counted flags: fragment, then the layer that failed.
const FLAG_CODES: usize = 16;

/// Number of frame kinds: 2 modes × 3 L3 classes × 6 L4 classes × 16 flag
/// codes (not all of them occur).
pub const FRAME_KINDS: usize = 2 * 3 * 6 * FLAG_CODES;

/// The kind of a frame: the program's `mode`
/// ([`MODE_REDIRECT`](crate::config::MODE_REDIRECT) or [`MODE_COUNT_ONLY`]),
/// the frame's `l3` and `l4` classes and its `FLAG_*` bits (of which
/// fragment and the three errors count).
#[inline(always)]
pub const fn frame_kind(mode: u32, l3: u8, l4: u8, flags: u8) -> usize {
    const _: () = assert!(
        FLAG_FRAGMENT == 1
            && FLAG_ERR_L2 == 1 << 3
            && FLAG_ERR_L3 == 1 << 4
            && FLAG_ERR_L4 == 1 << 5
    );
    let codes = (flags & FLAG_FRAGMENT) | ((flags >> 2) & 0b1110);
    ((mode as usize * 3 + l3 as usize) * 6 + l4 as usize) * FLAG_CODES + codes as usize
}

/// The frame counters of one CPU, part of its [`CpuBlock`].
///
/// A frame is counted in its kind before the filter and the redirect; a
/// frame the filter rejects is counted again in `filter_rejected`, a
/// redirect that fails in `pass_fallback`. So the frames delivered in the
/// program's mode (redirected, or passed in count-only mode) are that
/// mode's kinds less `filter_rejected`, and redirected ones less
/// `pass_fallback` too.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindBlock {
    /// Redirects that failed (no socket in the slot): passed to the stack.
    /// Before the kinds, so a copy taken while the program runs reads it
    /// first and never finds more fallbacks than redirect-mode frames.
    pub pass_fallback: ClassCounter,
    /// Frames the filter expression rejected (counted by the filter
    /// program, see `--filter`): passed or dropped, never delivered.
    /// Before the kinds, like `pass_fallback`.
    pub filter_rejected: ClassCounter,
    /// [`Counter::FragmentUnsteered`].
    pub frag_unsteered: ClassCounter,
    /// Frames and bytes, indexed by [`frame_kind`].
    pub kinds: [ClassCounter; FRAME_KINDS],
}

const _: () = assert!(core::mem::size_of::<KindBlock>() <= 32 * 1024);

impl Default for KindBlock {
    fn default() -> Self {
        Self {
            pass_fallback: ClassCounter::default(),
            filter_rejected: ClassCounter::default(),
            frag_unsteered: ClassCounter::default(),
            kinds: [ClassCounter::default(); FRAME_KINDS],
        }
    }
}

impl KindBlock {
    /// Adds the kinds up into the classes of `into`: each kind moves
    /// [`Counter::All`], its L3 class, its L4 class (IP frames), fragment
    /// and error counters by its flags, and its mode's verdict counter
    /// ([`Counter::PassCountOnly`], or [`Counter::Redirected`] less the
    /// fallbacks, which go to [`Counter::PassFallback`]), less the frames
    /// the filter rejected, which go to [`Counter::FilterRejected`].
    ///
    /// A program runs in one mode, so a block's kinds are of one mode: the
    /// rejected frames come out of the verdict of the mode that counted
    /// frames.
    pub fn add_classes(&self, into: &mut CounterBlock) {
        let mut add = |counter: Counter, c: &ClassCounter| {
            let slot = &mut into.slots[counter as usize];
            slot.packets += c.packets;
            slot.bytes += c.bytes;
        };
        let (mut redirected, mut count_only) = (ClassCounter::default(), ClassCounter::default());
        for (kind, c) in self.kinds.iter().enumerate() {
            if c.packets == 0 && c.bytes == 0 {
                continue;
            }
            let codes = kind % FLAG_CODES;
            let l4 = kind / FLAG_CODES % 6;
            let l3 = kind / (FLAG_CODES * 6) % 3;
            add(Counter::All, c);
            add(
                match L3Class::from_u8(l3 as u8) {
                    L3Class::Ipv4 => Counter::Ipv4,
                    L3Class::Ipv6 => Counter::Ipv6,
                    L3Class::Other => Counter::L3Other,
                },
                c,
            );
            match L4Class::from_u8(l4 as u8) {
                L4Class::None => {}
                L4Class::Tcp => add(Counter::Tcp, c),
                L4Class::Udp => add(Counter::Udp, c),
                L4Class::Icmp => add(Counter::Icmp, c),
                L4Class::Icmpv6 => add(Counter::Icmpv6, c),
                L4Class::Other => add(Counter::L4Other, c),
            }
            for (bit, counter) in [
                (1, Counter::Fragment),
                (2, Counter::ErrL2),
                (4, Counter::ErrL3),
                (8, Counter::ErrL4),
            ] {
                if codes & bit != 0 {
                    add(counter, c);
                }
            }
            let verdict = if kind / (FLAG_CODES * 18) == MODE_COUNT_ONLY as usize {
                &mut count_only
            } else {
                &mut redirected
            };
            verdict.packets += c.packets;
            verdict.bytes += c.bytes;
        }
        let (fallback, rejected) = (self.pass_fallback, self.filter_rejected);
        add(Counter::PassFallback, &fallback);
        add(Counter::FilterRejected, &rejected);
        add(Counter::FragmentUnsteered, &self.frag_unsteered);
        let delivered = if count_only.packets != 0 {
            &mut count_only
        } else {
            &mut redirected
        };
        take(delivered, &rejected);
        take(&mut redirected, &fallback);
        add(Counter::Redirected, &redirected);
        add(Counter::PassCountOnly, &count_only);
    }
}

/// Takes `c` out of `from` (never below zero: a copy taken while the
/// program runs may have a later `c` than `from`).
fn take(from: &mut ClassCounter, c: &ClassCounter) {
    from.packets = from.packets.saturating_sub(c.packets);
    from.bytes = from.bytes.saturating_sub(c.bytes);
}

/// The single value of the `COUNTERS` per-CPU array: the parse result of
/// the frame the program last ran on, the frame counters and the anomaly
/// counters, so that a frame costs one map lookup for all three.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBlock {
    /// What the program parsed of its last frame on this CPU (read back
    /// after `BPF_PROG_TEST_RUN` on a pinned CPU by the differential tests).
    pub parsed: Parsed,
    /// Frames and bytes by kind.
    pub counts: KindBlock,
    /// Frames per anomaly kind and indicator.
    pub anomalies: AnomalyBlock,
}

#[cfg(feature = "user")]
// SAFETY: repr(C) of repr(C) integer-only structs whose sizes are multiples
// of 8, no padding.
unsafe impl aya::Pod for CpuBlock {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MODE_REDIRECT;

    fn classes(block: &KindBlock) -> [(u64, u64); Counter::COUNT as usize] {
        let mut classes = CounterBlock::default();
        block.add_classes(&mut classes);
        classes.slots.map(|c| (c.packets, c.bytes))
    }

    #[test]
    fn a_kind_adds_up_to_its_classes() {
        let mut block = KindBlock::default();
        let kind = frame_kind(
            MODE_REDIRECT,
            L3Class::Ipv6 as u8,
            L4Class::Udp as u8,
            FLAG_FRAGMENT | FLAG_ERR_L4 | crate::meta::FLAG_L4_VALID,
        );
        block.kinds[kind] = ClassCounter {
            packets: 3,
            bytes: 150,
        };
        block.pass_fallback = ClassCounter {
            packets: 1,
            bytes: 50,
        };
        let got = classes(&block);
        for &c in Counter::ALL {
            let want = match c {
                Counter::All
                | Counter::Ipv6
                | Counter::Udp
                | Counter::Fragment
                | Counter::ErrL4 => (3, 150),
                Counter::Redirected => (2, 100),
                Counter::PassFallback => (1, 50),
                _ => (0, 0),
            };
            assert_eq!(got[c as usize], want, "{c:?}");
        }
    }

    #[test]
    fn count_only_kinds_are_passed() {
        let mut block = KindBlock::default();
        block.kinds[frame_kind(MODE_COUNT_ONLY, 0, 0, FLAG_ERR_L2)] = ClassCounter {
            packets: 1,
            bytes: 9,
        };
        let got = classes(&block);
        for &c in Counter::ALL {
            let moved = matches!(
                c,
                Counter::All | Counter::L3Other | Counter::ErrL2 | Counter::PassCountOnly
            );
            assert_eq!(
                got[c as usize],
                if moved { (1, 9) } else { (0, 0) },
                "{c:?}"
            );
        }
    }

    #[test]
    fn rejected_frames_come_out_of_their_modes_verdict() {
        for (mode, verdict) in [
            (MODE_REDIRECT, Counter::Redirected),
            (MODE_COUNT_ONLY, Counter::PassCountOnly),
        ] {
            let mut block = KindBlock::default();
            block.kinds[frame_kind(mode, L3Class::Ipv4 as u8, L4Class::Tcp as u8, 0)] =
                ClassCounter {
                    packets: 5,
                    bytes: 500,
                };
            block.filter_rejected = ClassCounter {
                packets: 2,
                bytes: 120,
            };
            let got = classes(&block);
            for &c in Counter::ALL {
                let want = match c {
                    Counter::All | Counter::Ipv4 | Counter::Tcp => (5, 500),
                    Counter::FilterRejected => (2, 120),
                    c if c == verdict => (3, 380),
                    _ => (0, 0),
                };
                assert_eq!(got[c as usize], want, "mode {mode}: {c:?}");
            }
        }
    }

    #[test]
    fn kinds_are_distinct_and_in_range() {
        let mut seen = [false; FRAME_KINDS];
        for mode in [MODE_REDIRECT, MODE_COUNT_ONLY] {
            for l3 in 0..3 {
                for l4 in 0..6 {
                    for flags in 0..64u8 {
                        let k = frame_kind(mode, l3, l4, flags);
                        let codes = (flags & 1) | (flags >> 2 & 0b1110);
                        if flags & 0b110 == 0 {
                            assert!(!seen[k], "kind {k} twice");
                        }
                        assert!(k < FRAME_KINDS && k % FLAG_CODES == codes as usize);
                        seen[k] = true;
                    }
                }
            }
        }
        assert!(seen.iter().all(|s| *s));
    }
}
