//! Hashed timer wheel over slot numbers, with intrusive doubly linked lists.
//!
//! Each slot is in at most one bucket. Expiry visits only due buckets, never
//! the whole table. Timers are lazy: the tracker does not move a flow's timer
//! on every packet; when a bucket comes due, the tracker checks the flow's
//! real deadline and either ends it or schedules it again. Deadlines further
//! than one revolution away are parked in the last bucket of the revolution
//! and rescheduled when it comes due.

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
    bucket: u32,
}

/// The wheel. Ticks are `now_ns / tick_ns`.
#[derive(Debug)]
pub(crate) struct TimerWheel {
    heads: Box<[u32]>,
    links: Box<[Link]>,
    tick_ns: u64,
    /// Next tick to drain; every earlier tick has been drained.
    cursor: u64,
    started: bool,
    /// `cursor * tick_ns`: before this time no bucket is due, so
    /// [`TimerWheel::pop_due`] answers without dividing.
    due_ns: u64,
}

impl TimerWheel {
    /// A wheel of `buckets` buckets (a power of two) for `slots` slots.
    pub(crate) fn new(slots: usize, buckets: usize, tick_ns: u64) -> Self {
        let mut links = super::hugepage::vec_with_capacity(slots);
        links.resize(
            slots,
            Link {
                prev: NIL,
                next: NIL,
                bucket: NIL,
            },
        );
        Self {
            heads: vec![NIL; buckets.next_power_of_two()].into_boxed_slice(),
            links: links.into_boxed_slice(),
            tick_ns: tick_ns.max(1),
            cursor: 0,
            started: false,
            due_ns: 0,
        }
    }

    fn bucket_of(&self, tick: u64) -> usize {
        (tick as usize) & (self.heads.len() - 1)
    }

    /// Schedules `slot` for `deadline_ns` (rounded up to a tick), replacing
    /// any earlier schedule.
    pub(crate) fn schedule(&mut self, slot: u32, deadline_ns: u64) {
        self.cancel(slot);
        let span = self.heads.len() as u64 - 1;
        let tick = deadline_ns
            .div_ceil(self.tick_ns)
            .clamp(self.cursor, self.cursor + span);
        let b = self.bucket_of(tick);
        let head = self.heads.get(b).copied().unwrap_or(NIL);
        if let Some(l) = self.links.get_mut(slot as usize) {
            *l = Link {
                prev: NIL,
                next: head,
                bucket: b as u32,
            };
        }
        if let Some(h) = self.links.get_mut(head as usize) {
            h.prev = slot;
        }
        if let Some(h) = self.heads.get_mut(b) {
            *h = slot;
        }
    }

    /// Removes `slot` from its bucket, if it is in one.
    pub(crate) fn cancel(&mut self, slot: u32) {
        let Some(&Link { prev, next, bucket }) = self.links.get(slot as usize) else {
            return;
        };
        if bucket == NIL {
            return;
        }
        match self.links.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => {
                if let Some(h) = self.heads.get_mut(bucket as usize) {
                    *h = next;
                }
            }
        }
        if let Some(n) = self.links.get_mut(next as usize) {
            n.prev = prev;
        }
        if let Some(l) = self.links.get_mut(slot as usize) {
            *l = Link {
                prev: NIL,
                next: NIL,
                bucket: NIL,
            };
        }
    }

    /// Unlinks and returns one slot whose bucket is due at `now_ns`, or `None`
    /// when every due bucket is empty. The caller reschedules slots whose
    /// real deadline is still ahead.
    #[inline]
    pub(crate) fn pop_due(&mut self, now_ns: u64) -> Option<u32> {
        if self.started && now_ns < self.due_ns {
            return None;
        }
        self.pop_due_slow(now_ns)
    }

    /// [`TimerWheel::pop_due`] once some bucket may be due.
    fn pop_due_slow(&mut self, now_ns: u64) -> Option<u32> {
        let target = now_ns / self.tick_ns;
        if !self.started {
            self.started = true;
            self.cursor = target;
        }
        let revolution = self.heads.len() as u64;
        if target >= self.cursor + revolution {
            // A jump longer than a revolution: visiting each bucket once is enough.
            self.cursor = target + 1 - revolution;
        }
        while self.cursor <= target {
            let head = self
                .heads
                .get(self.bucket_of(self.cursor))
                .copied()
                .unwrap_or(NIL);
            if head != NIL {
                self.cancel(head);
                return Some(head);
            }
            self.cursor += 1;
        }
        self.due_ns = self.cursor.saturating_mul(self.tick_ns);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(w: &mut TimerWheel, now: u64) -> Vec<u32> {
        let mut v = Vec::new();
        while let Some(s) = w.pop_due(now) {
            v.push(s);
        }
        v.sort();
        v
    }

    #[test]
    fn fires_at_deadline_not_before() {
        let mut w = TimerWheel::new(4, 8, 10);
        assert_eq!(drain(&mut w, 100), Vec::<u32>::new());
        w.schedule(0, 125);
        w.schedule(1, 130);
        w.schedule(2, 131);
        assert_eq!(drain(&mut w, 129), Vec::<u32>::new());
        assert_eq!(drain(&mut w, 130), vec![0, 1]);
        assert_eq!(drain(&mut w, 139), Vec::<u32>::new());
        assert_eq!(drain(&mut w, 140), vec![2]);
    }

    #[test]
    fn cancel_and_reschedule() {
        let mut w = TimerWheel::new(4, 8, 10);
        drain(&mut w, 0);
        w.schedule(0, 20);
        w.schedule(1, 20);
        w.schedule(2, 20);
        w.cancel(1);
        w.schedule(2, 50);
        assert_eq!(drain(&mut w, 30), vec![0]);
        assert_eq!(drain(&mut w, 50), vec![2]);
    }

    #[test]
    fn far_deadlines_and_long_jumps() {
        let mut w = TimerWheel::new(4, 8, 10);
        drain(&mut w, 0);
        // Beyond one revolution: parked in the revolution's last tick (8 =
        // 80 ns), popped early there, not lost.
        w.schedule(3, 1000);
        assert_eq!(drain(&mut w, 79), Vec::<u32>::new());
        assert_eq!(drain(&mut w, 80), vec![3]);
        w.schedule(3, 1000);
        w.schedule(1, 75);
        // Jump far ahead: everything due comes out in one drain.
        assert_eq!(drain(&mut w, 100_000), vec![1, 3]);
    }
}
