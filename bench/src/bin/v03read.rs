//! `v03read FILE`: flowscope 0.3.0 reading a capture file, for the peers
//! benchmark (`cargo xtask bench peers`): every packet, read with our
//! streaming pcap reader, tracked by 0.3.0's `FlowTracker` (five-tuple,
//! bidirectional, its default timeouts and table size), with a sweep at the
//! end; prints the packets and flow events it saw.

use anyhow::Context;
use flowscope::pcap::PcapReader;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: v03read FILE (a pcap or pcapng file)")?;
    let file = std::fs::File::open(&path).with_context(|| format!("open {path}"))?;
    // A stream, as 0.3.0's own reader would read it.
    let mut reader = PcapReader::new(std::io::BufReader::with_capacity(1 << 20, file))
        .with_context(|| format!("read {path}"))?;
    let mut tracker = flowscope03::FlowTracker::<flowscope03::extract::FiveTuple>::new(
        flowscope03::extract::FiveTuple::bidirectional(),
    );
    let (mut packets, mut events, mut last) = (0u64, 0u64, flowscope03::Timestamp::new(0, 0));
    while let Some(p) = reader.next_packet()? {
        let ts = flowscope03::Timestamp::new(p.timestamp.sec() as u32, p.timestamp.subsec_nanos());
        last = ts;
        events += tracker
            .track(flowscope03::PacketView::new(p.frame, ts))
            .len() as u64;
        packets += 1;
    }
    let far = flowscope03::Timestamp::new(last.sec.saturating_add(1 << 20), 0);
    events += tracker.sweep(far).len() as u64;
    println!("{packets} packets, {events} flow events");
    Ok(())
}
