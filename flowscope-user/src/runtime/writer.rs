//! The writer thread: drains every worker's ring (and the control
//! thread's) into the [`Outputs`], handing each written L7 record's text
//! buffer back to its worker, flushing when idle, rotating files when
//! due and reopening them when asked (SIGHUP). One thread serves every
//! output kind, live and offline. It publishes each output's counts a few
//! times per second for the live view and Prometheus.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::out::{RecordRing, WriterEnd, record_ring};
use crate::output::{OutputReport, Outputs, WriterStats};

/// How long the writer naps when every ring is empty.
const IDLE_NAP: Duration = Duration::from_millis(2);

/// How often the writer publishes its outputs' counts.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// What the writer thread and its owner share.
#[derive(Default)]
struct Control {
    done: AtomicBool,
    reopen: AtomicBool,
    outputs: Mutex<Vec<OutputReport>>,
}

/// `n` rings of `capacity` records each: the workers' ends, the writer's.
pub fn rings(n: usize, capacity: usize) -> (Vec<RecordRing>, Vec<WriterEnd>) {
    (0..n).map(|_| record_ring(capacity)).unzip()
}

/// The running writer thread and the flag that tells it to drain and stop.
pub struct WriterThread {
    control: Arc<Control>,
    thread: JoinHandle<WriterStats>,
}

impl WriterThread {
    /// Starts the writer on `consumers`, writing into `outputs`.
    ///
    /// # Errors
    ///
    /// The thread cannot start.
    pub fn start(mut consumers: Vec<WriterEnd>, mut outputs: Outputs) -> io::Result<Self> {
        let control = Arc::new(Control::default());
        *lock(&control.outputs) = outputs.reports();
        let shared = Arc::clone(&control);
        let thread = std::thread::Builder::new()
            .name("fs-writer".into())
            .spawn(move || {
                let mut published = Instant::now();
                loop {
                    // Read the flag before draining: after it is set, one
                    // more full pass empties every ring.
                    let last = shared.done.load(Ordering::Acquire);
                    let mut any = false;
                    for c in &mut consumers {
                        while let Some(record) = c.pop() {
                            c.prefetch_next();
                            outputs.write(&record);
                            c.recycle(record);
                            any = true;
                        }
                    }
                    // Between two records: the reopen cuts no record.
                    if shared.reopen.swap(false, Ordering::AcqRel) {
                        outputs.reopen();
                    }
                    outputs.rotate_due();
                    if last {
                        break;
                    }
                    if !any {
                        outputs.flush();
                        std::thread::sleep(IDLE_NAP);
                    }
                    if published.elapsed() >= PUBLISH_EVERY {
                        *lock(&shared.outputs) = outputs.reports();
                        published = Instant::now();
                    }
                }
                let stats = outputs.finish();
                *lock(&shared.outputs) = stats.outputs.clone();
                stats
            })?;
        Ok(Self { control, thread })
    }

    /// Asks the writer to reopen every file output, between two records.
    pub fn reopen(&self) {
        self.control.reopen.store(true, Ordering::Release);
    }

    /// Every output's counts, as last published (at most a fraction of a
    /// second old).
    pub fn outputs(&self) -> Vec<OutputReport> {
        lock(&self.control.outputs).clone()
    }

    /// Drains every ring, flushes and closes every output.
    ///
    /// # Errors
    ///
    /// The thread panicked.
    pub fn finish(self) -> io::Result<WriterStats> {
        self.control.done.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| io::Error::other("record writer thread panicked"))
    }
}

/// The published counts, even if a panicking writer poisoned the lock.
fn lock(m: &Mutex<Vec<OutputReport>>) -> std::sync::MutexGuard<'_, Vec<OutputReport>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{FileOptions, OutputSpec, Record};
    use crate::runtime::RecordOut;
    use crate::tracker::EndReason;

    #[test]
    fn every_ring_is_drained_into_one_output_and_rotated_by_size() {
        let dir = std::env::temp_dir().join(format!("fs-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("eve.json");
        let files = FileOptions {
            rotate_bytes: Some(2000),
            ..FileOptions::default()
        };
        let outputs = Outputs::open(&[OutputSpec::Eve(Some(path.clone()))], files).unwrap();
        let (mut producers, consumers) = rings(2, 64);
        let writer = WriterThread::start(consumers, outputs).unwrap();
        let recs = super::super::test_records::records(40);
        for (i, r) in recs.iter().enumerate() {
            let record = Record::flow(r, EndReason::IdleTimeout, None, None);
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
