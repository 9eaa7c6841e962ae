//! Target `frame`: the frame parser. [`wire::classify`] and
//! [`anomaly::detect`] over the input as an Ethernet frame, and the base
//! extractors over it as every [`LinkType`].

use flowscope::extract::{FiveTuple, FlowLabel, IpPair, MacPair};
use flowscope::{Extracted, FlowExtractor, LinkType, PacketView, Timestamp, anomaly, wire};
use flowscope_common::meta::FLAG_L4_VALID;

/// Hash seed given to [`wire::classify`] (the XDP differential test uses it too).
pub const SEED: u32 = 0x0bad_5eed;

/// Every link type an extractor walks.
pub const LINK_TYPES: [LinkType; 5] = [
    LinkType::Ethernet,
    LinkType::RawIp,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Loopback,
];

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let m = wire::classify(data, SEED);
    assert_eq!(m.anomalies, anomaly::detect(data), "classify embeds detect");
    assert_eq!(
        usize::from(m.frame_len),
        data.len().min(usize::from(u16::MAX))
    );
    assert!(usize::from(m.l3_offset) <= data.len(), "l3_offset {m:?}");
    if m.flags & FLAG_L4_VALID != 0 {
        assert!(usize::from(m.l4_offset) <= data.len(), "l4_offset {m:?}");
    } else {
        assert_eq!(m.l4_offset, 0, "l4_offset without L4_VALID {m:?}");
    }
    every_link(&FiveTuple::bidirectional(), data);
    every_link(&FiveTuple::directional(), data);
    every_link(&IpPair, data);
    every_link(&MacPair, data);
    every_link(&FlowLabel::new(FiveTuple::bidirectional()), data);
}

/// Runs `extractor` over `frame` read as every link type and checks each result.
pub fn every_link<E: FlowExtractor>(extractor: &E, frame: &[u8]) {
    for link in LINK_TYPES {
        let view = PacketView::new(frame, Timestamp(1)).with_link(link);
        if let Ok(x) = extractor.extract(view) {
            check_extracted(frame, &x);
        }
    }
}

/// What every successful extraction promises: its payload lies in the frame.
pub fn check_extracted<K>(frame: &[u8], x: &Extracted<K>) {
    let end = u64::from(x.payload_offset) + u64::from(x.payload_len);
    assert!(
        end <= frame.len() as u64,
        "payload {}+{} past the frame's {} bytes",
        x.payload_offset,
        x.payload_len,
        frame.len()
    );
}
