//! The writer thread: drains every worker's ring (and the control
//! thread's) into the [`Outputs`], flushing when idle and rotating files
//! when due. One thread serves every output kind, live and offline.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::output::{Outputs, Record, WriterStats};

/// How long the writer naps when every ring is empty.
const IDLE_NAP: Duration = Duration::from_millis(2);

/// `n` rings of `capacity` records each: producers for the workers,
/// consumers for the writer.
pub fn rings(
    n: usize,
    capacity: usize,
) -> (Vec<rtrb::Producer<Record>>, Vec<rtrb::Consumer<Record>>) {
    (0..n)
        .map(|_| rtrb::RingBuffer::new(capacity.max(1)))
        .unzip()
}

/// The running writer thread and the flag that tells it to drain and stop.
pub struct WriterThread {
    done: Arc<AtomicBool>,
    thread: JoinHandle<WriterStats>,
}

impl WriterThread {
    /// Starts the writer on `consumers`, writing into `outputs`.
    ///
    /// # Errors
    ///
    /// The thread cannot start.
    pub fn start(
        mut consumers: Vec<rtrb::Consumer<Record>>,
        mut outputs: Outputs,
    ) -> io::Result<Self> {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("fs-writer".into())
            .spawn(move || {
                loop {
                    // Read the flag before draining: after it is set, one
                    // more full pass empties every ring.
                    let last = flag.load(Ordering::Acquire);
                    let mut any = false;
                    for c in &mut consumers {
                        while let Ok(record) = c.pop() {
                            outputs.write(&record);
                            any = true;
                        }
                    }
                    outputs.rotate_due();
                    if last {
                        break;
                    }
                    if !any {
                        outputs.flush();
                        std::thread::sleep(IDLE_NAP);
                    }
                }
                outputs.finish()
            })?;
        Ok(Self { done, thread })
    }

    /// Drains every ring, flushes and closes every output.
    ///
    /// # Errors
    ///
    /// The thread panicked.
    pub fn finish(self) -> io::Result<WriterStats> {
        self.done.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| io::Error::other("record writer thread panicked"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{FileOptions, OutputSpec};
    use crate::tracker::EndReason;

    #[test]
    fn every_ring_is_drained_into_one_output_and_rotated_by_size() {
        let dir = std::env::temp_dir().join(format!("fs-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("eve.json");
        let files = FileOptions {
            append: true,
            rotate_bytes: Some(2000),
            rotate_after: None,
        };
        let outputs = Outputs::open(&[OutputSpec::Eve(Some(path.clone()))], files).unwrap();
        let (mut producers, consumers) = rings(2, 64);
        let writer = WriterThread::start(consumers, outputs).unwrap();
        let recs = super::super::test_records::records(40);
        for (i, r) in recs.iter().enumerate() {
            let record = Record::flow(r, EndReason::IdleTimeout, None);
            assert!(producers[i % 2].push(record).is_ok());
            if i % 10 == 9 {
                // Let the writer see the size bound between bursts.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let stats = writer.finish().unwrap();
        assert_eq!(stats.records, 40);
        assert_eq!(stats.outputs[0].written, 40);
        assert!(stats.rotations >= 1, "{stats:?}");
        let mut lines = 0;
        let mut files = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            lines += text
                .lines()
                .inspect(|l| assert!(l.contains("\"event_type\":\"flow\"")))
                .count();
            files += 1;
        }
        assert_eq!(lines, 40, "every record once, across {files} files");
        assert_eq!(files as u64, stats.rotations + 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
