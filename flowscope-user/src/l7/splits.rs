//! Test helper of the stream parsers: the same result whatever the segment
//! boundaries.

use crate::l7::session::Side;

/// Runs `steps` (bytes per side, in order) through `run`, then again with
/// any one step cut in two anywhere and with every step fed byte by byte;
/// asserts every run gives what the first gave, and returns it.
pub(crate) fn assert_split_invariant<T: PartialEq + std::fmt::Debug>(
    steps: &[(Side, &[u8])],
    run: impl Fn(&[(Side, &[u8])]) -> T,
) -> T {
    let whole = run(steps);
    for (i, (side, bytes)) in steps.iter().enumerate() {
        for cut in 0..=bytes.len() {
            let mut split: Vec<(Side, &[u8])> = steps[..i].to_vec();
            split.push((*side, &bytes[..cut]));
            split.push((*side, &bytes[cut..]));
            split.extend_from_slice(&steps[i + 1..]);
            assert_eq!(run(&split), whole, "step {i} cut at {cut}");
        }
    }
    let bytewise: Vec<(Side, &[u8])> = steps
        .iter()
        .flat_map(|(side, bytes)| bytes.chunks(1).map(move |b| (*side, b)))
        .collect();
    assert_eq!(run(&bytewise), whole, "byte by byte");
    whole
}
