//! The limiter on the real clock: every HTTP call to an alert endpoint waits here first, so the
//! budget is shared by both endpoints and by every concurrent poll. The calls of the last hour
//! are saved in the store and restored at start, so a restart cannot double the budget.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::limiter::{Limiter, Window};

pub struct RateGate {
    origin: Instant,
    /// Wall-clock milliseconds at `origin`, to save and restore history across processes.
    origin_wall_ms: i64,
    /// Limiter time at `origin`: one memory span, so restored calls land at positive times.
    base: Duration,
    limiter: Mutex<Limiter>,
}

impl RateGate {
    pub fn new(windows: &[Window]) -> RateGate {
        let limiter = Limiter::new(windows);
        RateGate {
            origin: Instant::now(),
            origin_wall_ms: chrono::Utc::now().timestamp_millis(),
            base: limiter.memory(),
            limiter: Mutex::new(limiter),
        }
    }

    fn now(&self) -> Duration {
        self.base + self.origin.elapsed()
    }

    /// Restores calls a previous process made (wall-clock milliseconds since the epoch).
    pub fn restore(&self, calls_wall_ms: &[i64]) {
        let mut limiter = self.lock();
        let mut restored: Vec<Duration> = calls_wall_ms
            .iter()
            .filter_map(|&wall| {
                let ago = Duration::from_millis(u64::try_from(self.origin_wall_ms - wall).ok()?);
                self.base.checked_sub(ago)
            })
            .collect();
        restored.sort();
        for at in restored {
            limiter.record(at);
        }
    }

    /// The recorded calls as wall-clock milliseconds, for saving.
    pub fn recent_calls_wall_ms(&self) -> Vec<i64> {
        let limiter = self.lock();
        limiter
            .recent_calls()
            .map(|at| self.origin_wall_ms + at.as_millis() as i64 - self.base.as_millis() as i64)
            .collect()
    }

    /// Waits until a call may be made. The slot is reserved before waiting, so concurrent callers
    /// queue for distinct slots in order and the pacing does not depend on timer resolution.
    pub async fn acquire(&self) {
        loop {
            let (slot, now) = {
                let mut limiter = self.lock();
                let now = self.now();
                let slot = limiter.next_slot(now);
                limiter.record(slot);
                (slot, now)
            };
            if slot > now {
                tokio::time::sleep(slot - now).await;
            }
            // A 429 that arrived while we waited moves everyone behind its Retry-After; the
            // reserved slot stays recorded, which only makes the budget stricter.
            if self.lock().paused_until() <= slot {
                return;
            }
        }
    }

    /// Pauses every caller for `delay` (a 429's Retry-After).
    pub fn pause_for(&self, delay: Duration) {
        let until = self.now() + delay;
        self.lock().pause_until(until);
    }

    pub fn spacing(&self) -> Duration {
        self.lock().spacing()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Limiter> {
        // The limiter holds only numbers; a panic elsewhere cannot leave it inconsistent.
        self.limiter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_round_trips_between_gates() {
        let windows = [Window {
            calls: 3,
            per: Duration::from_secs(60),
        }];
        let first = RateGate::new(&windows);
        {
            let mut limiter = first.lock();
            let now = first.now();
            limiter.record(now);
            limiter.record(now);
            limiter.record(now);
        }
        let saved = first.recent_calls_wall_ms();
        assert_eq!(saved.len(), 3);
        let second = RateGate::new(&windows);
        second.restore(&saved);
        let limiter = second.lock();
        assert!(
            limiter.next_slot(second.now()) >= second.now() + Duration::from_secs(59),
            "the restored calls still count"
        );
    }
}
