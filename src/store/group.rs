//! Group commit: when a commit's records reach the disk. Every commit is written to sled at once
//! (the in-memory index and later batches see it), but sled's flush, which writes and syncs its
//! log and wakes its seven I/O threads, runs at most once per `flush_interval`: one flush a
//! batch was ~1 µs of the heavy benchmark's ~9 µs an alert (benches/README.md). Nothing is lost
//! by the wait: a commit only holds alerts every sink has already made durable, so a crash
//! before the flush re-sends them (duplicates), as a crash between acknowledgement and commit
//! always could. The round-robin cursor waits for the flush that makes its batch's records
//! durable, so it never gets ahead of them. Pure: the caller reads the clock.

use std::time::{Duration, Instant};

/// What the store has committed and not flushed.
#[derive(Debug)]
pub(super) struct GroupCommit {
    every: Duration,
    last_flush: Option<Instant>,
    /// Some commit went to sled after the last flush.
    behind: bool,
    /// The latest round-robin cursor of those commits, written after their flush.
    cursor: Option<u64>,
}

impl GroupCommit {
    pub(super) fn new(every: Duration) -> GroupCommit {
        GroupCommit {
            every,
            last_flush: None,
            behind: false,
            cursor: None,
        }
    }

    /// Notes a commit written at `now` that moves the cursor to `cursor`; true when it must be
    /// flushed now (the last flush is `every` old, or there was none).
    pub(super) fn committed(&mut self, now: Instant, cursor: Option<u64>) -> bool {
        self.behind = true;
        if cursor.is_some() {
            self.cursor = cursor;
        }
        self.last_flush.map_or(true, |last| {
            now.saturating_duration_since(last) >= self.every
        })
    }

    /// Whether some commit waits for a flush.
    pub(super) fn behind(&self) -> bool {
        self.behind
    }

    /// Notes a flush at `now` (of everything written before it); returns the cursor that may
    /// be written now, its records being durable.
    pub(super) fn flushed(&mut self, now: Instant) -> Option<u64> {
        self.last_flush = Some(now);
        self.behind = false;
        self.cursor.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_commit_flushes_and_later_ones_wait_for_the_interval() {
        let start = Instant::now();
        let mut group = GroupCommit::new(100 * MS);
        assert!(group.committed(start, Some(1)), "no flush yet: flush now");
        assert_eq!(group.flushed(start), Some(1));
        assert!(!group.behind());

        assert!(!group.committed(start + 40 * MS, Some(2)));
        assert!(
            !group.committed(start + 99 * MS, None),
            "a cursor-less commit"
        );
        assert!(group.behind());
        assert!(group.committed(start + 100 * MS, Some(3)));
        assert_eq!(
            group.flushed(start + 100 * MS),
            Some(3),
            "the latest cursor"
        );
        assert_eq!(group.flushed(start + 101 * MS), None, "written once");
    }

    #[test]
    fn a_flush_between_commits_carries_their_cursor() {
        let start = Instant::now();
        let mut group = GroupCommit::new(100 * MS);
        group.committed(start, None);
        group.flushed(start);
        assert!(!group.committed(start + 10 * MS, Some(7)));
        assert!(!group.committed(start + 20 * MS, None), "keeps cursor 7");
        // A flush for another reason (the sweep's end, the feed cursor, shutdown).
        assert_eq!(group.flushed(start + 30 * MS), Some(7));
        assert!(
            !group.committed(start + 40 * MS, None),
            "interval counts from that flush"
        );
    }

    #[test]
    fn a_zero_interval_flushes_every_commit() {
        let start = Instant::now();
        let mut group = GroupCommit::new(Duration::ZERO);
        for n in 0..3 {
            assert!(group.committed(start, Some(n)));
            assert_eq!(group.flushed(start), Some(n));
        }
    }

    #[test]
    fn a_clock_that_steps_back_does_not_flush_early_or_panic() {
        let start = Instant::now() + Duration::from_secs(1);
        let mut group = GroupCommit::new(100 * MS);
        group.committed(start, None);
        group.flushed(start);
        assert!(!group.committed(start - 500 * MS, None));
    }
}
