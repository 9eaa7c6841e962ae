//! Heavy hitters of the XDP program's sketches (SYN targets, port scanners).

use flowscope_common::anomaly::{
    SKETCH_DEPTH, SKETCH_KEY_SEED, SKETCH_WIDTH, Sketch, sketch_column,
};
use std::net::IpAddr;

/// An address and its estimated count in one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offender {
    /// The address.
    pub addr: IpAddr,
    /// Count-min estimate (never below the true count while the key was
    /// counted; may exceed it on collisions).
    pub estimate: u64,
}

/// Merges the per-CPU copies of one sketch and returns its `n` heaviest
/// candidates, heaviest first.
pub fn top_offenders(per_cpu: &[Sketch], n: usize) -> Vec<Offender> {
    let mut rows = vec![[0u64; SKETCH_WIDTH]; SKETCH_DEPTH];
    for s in per_cpu {
        for (sum, row) in rows.iter_mut().zip(s.rows.iter()) {
            for (a, b) in sum.iter_mut().zip(row.iter()) {
                *a += u64::from(*b);
            }
        }
    }
    let mut out: Vec<Offender> = Vec::new();
    for e in per_cpu
        .iter()
        .flat_map(|s| s.top.iter())
        .filter(|e| e.family != 0)
    {
        let addr = words_to_ip(&e.addr, e.family);
        if out.iter().any(|o| o.addr == addr) {
            continue;
        }
        let h = flowscope_common::hash::endpoint_hash(SKETCH_KEY_SEED, &e.addr, 0);
        let estimate = (0..SKETCH_DEPTH)
            .map(|r| rows[r][sketch_column(h, r)])
            .min()
            .unwrap_or(0);
        out.push(Offender { addr, estimate });
    }
    out.sort_by(|a, b| b.estimate.cmp(&a.estimate).then(a.addr.cmp(&b.addr)));
    out.truncate(n);
    out
}

fn words_to_ip(w: &[u32; 4], family: u32) -> IpAddr {
    if family == 4 {
        IpAddr::from(w[0].to_le_bytes())
    } else {
        let mut b = [0u8; 16];
        for (chunk, word) in b.chunks_mut(4).zip(w.iter()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        IpAddr::from(b)
    }
}
