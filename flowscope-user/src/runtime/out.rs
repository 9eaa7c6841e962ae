//! [`RecordOut`]: where a worker's records go, and what it does when there
//! is no room.
//!
//! Workers with a writer thread push into a bounded single-producer ring
//! (`rtrb`); a worker running inline (`read --workers 1`) writes straight
//! into the [`Outputs`]. Live workers never wait for the writer: a full ring
//! drops the record and the worker counts it. Offline workers wait (the
//! reader, not the wire, sets the pace, so nothing needs to be lost), and
//! at shutdown live workers wait too, up to a deadline.
//!
//! Written L7 records' text buffers come back to their worker's
//! [`TextPool`] (through a return ring beside each record ring; straight
//! from the inline output), so that its parsers build the next records
//! without allocating.

use std::time::{Duration, Instant};

use crate::l7::session::{TextPool, Texts};
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

    /// The text storage of a record already written, if one came back;
    /// else a new, unallocated one.
    fn spare_text(&mut self) -> Texts;
}

/// A worker's end of its way to the writer thread: records go out, the
/// text buffers of written records come back into its pool.
pub struct RecordRing {
    records: rtrb::Producer<Record>,
    returned: rtrb::Consumer<Texts>,
    pool: TextPool,
}

/// The writer's end of one [`RecordRing`].
pub struct WriterEnd {
    records: rtrb::Consumer<Record>,
    spares: rtrb::Producer<Texts>,
}

/// A ring of `capacity` records and the way back for their text buffers.
///
/// The way back holds as many buffers as the ring holds records, and the
/// worker empties it into its pool before each push: every buffer the
/// writer returns finds room, none is freed only to be allocated again.
pub fn record_ring(capacity: usize) -> (RecordRing, WriterEnd) {
    let capacity = capacity.max(1);
    let (rp, rc) = rtrb::RingBuffer::new(capacity);
    let (sp, sc) = rtrb::RingBuffer::new(capacity);
    (
        RecordRing {
            records: rp,
            returned: sc,
            pool: TextPool::new(),
        },
        WriterEnd {
            records: rc,
            spares: sp,
        },
    )
}

impl RecordRing {
    /// Moves the buffers the writer returned into the pool.
    fn collect(&mut self) {
        while let Ok(text) = self.returned.pop() {
            self.pool.keep(text);
        }
    }
}

impl RecordOut for RecordRing {
    #[inline]
    fn push(&mut self, record: Record) -> Result<(), Record> {
        self.collect();
        self.records
            .push(record)
            .map_err(|rtrb::PushError::Full(r)| r)
    }

    fn spare_text(&mut self) -> Texts {
        self.collect();
        self.pool.take()
    }
}

impl WriterEnd {
    /// The next record, if one is waiting.
    pub fn pop(&mut self) -> Option<Record> {
        self.records.pop().ok()
    }

    /// Prefetches the record after the one just popped, if it is there:
    /// it was written on another core, and its text lies apart from it.
    pub(crate) fn prefetch_next(&self) {
        if let Ok(record) = self.records.peek() {
            record.prefetch();
        }
    }

    /// Hands a written record's text buffer back to its worker (dropped
    /// here when it is not [worth keeping](TextPool::worth_keeping)).
    pub fn recycle(&mut self, record: Record) {
        if let Some(text) = record.into_buffer().filter(TextPool::worth_keeping) {
            let _ = self.spares.push(text);
        }
    }
}

/// Inline: the worker is the writer; written records' text buffers wait
/// here for its next records.
pub struct InlineOut {
    outputs: Outputs,
    pool: TextPool,
}

impl InlineOut {
    /// Writes into `outputs`.
    pub fn new(outputs: Outputs) -> Self {
        Self {
            outputs,
            pool: TextPool::new(),
        }
    }

    /// The outputs, to finish them.
    pub fn into_outputs(self) -> Outputs {
        self.outputs
    }
}

impl RecordOut for InlineOut {
    #[inline]
    fn push(&mut self, record: Record) -> Result<(), Record> {
        self.outputs.write(&record);
        if let Some(text) = record.into_buffer() {
            self.pool.keep(text);
        }
        Ok(())
    }

    fn spare_text(&mut self) -> Texts {
        self.pool.take()
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
