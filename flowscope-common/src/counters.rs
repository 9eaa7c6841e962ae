//! Per-CPU class counters of the XDP program: one [`CounterBlock`] per CPU,
//! one slot in it per [`Counter`], so a frame costs a single map lookup.

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
    /// Redirect failed (no socket in the slot): passed to the stack instead.
    PassFallback = 14 => "pass_fallback",
    /// Passed to the stack in count-only mode.
    PassCountOnly = 15 => "pass_count_only",
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

#[cfg(feature = "user")]
// SAFETY: repr(C), an array of Pod values, no padding (size asserted above).
unsafe impl aya::Pod for CounterBlock {}
