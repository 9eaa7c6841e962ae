//! [`RecordOut`]: where a worker's records go, and what it does when there
//! is no room.
//!
//! Workers with a writer thread push into a bounded single-producer ring
//! (`rtrb`); a worker running inline (`read --workers 1`) writes straight
//! into the [`Outputs`]. Live workers never wait for the writer: a full ring
//! drops the record and the worker counts it. Offline workers wait (the
//! reader, not the wire, sets the pace, so nothing needs to be lost), and
//! at shutdown live workers wait too, up to a deadline.

use std::time::{Duration, Instant};

use crate::output::{Outputs, Record};

/// What to do with a record when the ring is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backpressure {
    /// Drop it (the caller counts it): live.
    #[default]
    Drop,
    /// Wait for room up to this instant, then drop: live shutdown.
    WaitUntil(Instant),
    /// Wait as long as it takes: offline.
    Wait,
}

/// Takes a worker's records.
pub trait RecordOut: Send {
    /// Hands `record` on; gives it back when there is no room for it.
    #[expect(
        clippy::result_large_err,
        reason = "the record goes back to the caller by value, as rtrb hands it: boxing it would allocate per record"
    )]
    fn push(&mut self, record: Record) -> Result<(), Record>;
}

impl RecordOut for rtrb::Producer<Record> {
    #[inline]
    fn push(&mut self, record: Record) -> Result<(), Record> {
        rtrb::Producer::push(self, record).map_err(|rtrb::PushError::Full(r)| r)
    }
}

/// Inline: the worker is the writer.
impl RecordOut for Outputs {
    #[inline]
    fn push(&mut self, record: Record) -> Result<(), Record> {
        self.write(&record);
        Ok(())
    }
}

/// How long a waiting worker sleeps between tries once yielding did not
/// free room (the writer drains a ring in well under this).
const WAIT_NAP: Duration = Duration::from_micros(100);

/// Pushes `record` under `policy`; false when it was dropped.
pub(super) fn push_with(
    out: &mut impl RecordOut,
    mut record: Record,
    policy: Backpressure,
) -> bool {
    let mut tries = 0u32;
    loop {
        match out.push(record) {
            Ok(()) => return true,
            Err(back) => record = back,
        }
        if !wait_for_room(policy, &mut tries) {
            return false;
        }
    }
}

/// Waits once for a consumer to make room, after `tries` failed tries under
/// `policy`; false when the caller should drop instead.
pub(super) fn wait_for_room(policy: Backpressure, tries: &mut u32) -> bool {
    match policy {
        Backpressure::Drop => return false,
        Backpressure::WaitUntil(deadline) if Instant::now() >= deadline => return false,
        _ => {}
    }
    *tries += 1;
    if *tries < 16 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(WAIT_NAP);
    }
    true
}
