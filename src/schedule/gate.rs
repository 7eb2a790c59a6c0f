//! The limiter on the real clock: every HTTP call to an alert endpoint waits here first, so the
//! budget is shared by both endpoints and by every concurrent poll.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::limiter::{Limiter, Window};

pub struct RateGate {
    origin: Instant,
    limiter: Mutex<Limiter>,
}

impl RateGate {
    pub fn new(windows: &[Window]) -> RateGate {
        RateGate { origin: Instant::now(), limiter: Mutex::new(Limiter::new(windows)) }
    }

    /// Waits until a call may be made and records it.
    pub async fn acquire(&self) {
        loop {
            let now = self.origin.elapsed();
            let wait = {
                let mut limiter = self.lock();
                let slot = limiter.next_slot(now);
                if slot <= now {
                    limiter.record(now);
                    return;
                }
                slot - now
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Pauses every caller for `delay` (a 429's Retry-After).
    pub fn pause_for(&self, delay: Duration) {
        let until = self.origin.elapsed() + delay;
        self.lock().pause_until(until);
    }

    pub fn spacing(&self) -> Duration {
        self.lock().spacing()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Limiter> {
        // The limiter holds only numbers; a panic elsewhere cannot leave it inconsistent.
        self.limiter.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
