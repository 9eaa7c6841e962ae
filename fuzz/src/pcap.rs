//! Target `pcap`: [`PcapReader`] over arbitrary bytes until an error or the
//! end, once from one buffer, once through reads of a few bytes each and
//! once in batches ([`PcapReader::next_frames`]); all must yield the same
//! packets and the same error.

use std::io::Read;

use flowscope::pcap::{FrameRef, MAX_PACKET_BYTES, PcapReader};

/// What a read produced: each packet (bytes, time, link, wire length) and
/// the error that ended it, if any.
type Outcome = (Vec<(Vec<u8>, u64, String, u32)>, Option<String>);

/// Runs the target on one input; the first byte sets the trickle's read size.
pub fn run(data: &[u8]) {
    let step = usize::from(data.first().copied().unwrap_or(0) % 7) + 1;
    let whole = read_all(data);
    let trickled = read_all(Trickle { data, step });
    assert_eq!(
        whole, trickled,
        "reading {step} bytes at a time changed the result"
    );
    let batch = usize::from(data.get(1).copied().unwrap_or(0) % 64) + 1;
    assert_eq!(
        whole,
        read_batches(data, batch),
        "reading in batches of {batch} changed the result"
    );
}

fn read_batches(data: &[u8], batch: usize) -> Outcome {
    let mut reader = match PcapReader::new(data) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let mut frames = vec![FrameRef::default(); batch];
    let mut packets = Vec::new();
    let error = loop {
        match reader.next_frames(&mut frames) {
            Ok(0) => break None,
            Ok(n) => {
                let bytes = reader.chunk().bytes();
                for f in &frames[..n] {
                    let p = f.view(bytes);
                    packets.push((
                        p.frame.to_vec(),
                        p.timestamp.0,
                        format!("{:?}", p.link),
                        p.orig_len,
                    ));
                }
            }
            Err(e) => break Some(e.to_string()),
        }
    };
    assert_eq!(reader.stats().packets, packets.len() as u64);
    (packets, error)
}

fn read_all<R: Read>(src: R) -> Outcome {
    let mut reader = match PcapReader::new(src) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let mut packets = Vec::new();
    let error = loop {
        match reader.next_packet() {
            Ok(Some(p)) => {
                assert!(p.frame.len() <= MAX_PACKET_BYTES as usize);
                packets.push((
                    p.frame.to_vec(),
                    p.timestamp.0,
                    format!("{:?}", p.link),
                    p.orig_len,
                ));
            }
            Ok(None) => break None,
            Err(e) => break Some(e.to_string()),
        }
    };
    assert_eq!(reader.stats().packets, packets.len() as u64);
    (packets, error)
}

/// A reader handing out at most `step` bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        buf[..n].copy_from_slice(head);
        self.data = tail;
        Ok(n)
    }
}
