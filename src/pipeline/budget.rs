//! The byte budget (`[pipeline] queue_bytes`) that bounds what polling holds in memory: alerts
//! read from responses and not yet published. A poll takes budget for the alerts it reads, as it
//! reads them; the pipeline gives it back when their batch is committed. A poll that finds no
//! room hands over what it holds and says so ([`ByteBudget::pressure`]), so that completed results
//! waiting for the rest of their batch go out too, and only then waits: nobody waits for budget
//! while holding any, so polls and the pipeline cannot block each other.
//!
//! One alert larger than the whole budget waits until everything else is given back, then goes
//! through alone: memory is then that alert, whatever the budget says.

use std::sync::Arc;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Budget held by alerts in memory; given back when dropped.
pub type Held = OwnedSemaphorePermit;

#[derive(Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    total: u32,
    pressure: Arc<Notify>,
}

impl ByteBudget {
    pub fn new(bytes: u64) -> ByteBudget {
        let total = u32::try_from(bytes).unwrap_or(u32::MAX).max(1);
        ByteBudget {
            semaphore: Arc::new(Semaphore::new(total as usize)),
            total,
            pressure: Arc::new(Notify::new()),
        }
    }

    pub fn total(&self) -> usize {
        self.total as usize
    }

    /// Budget not held by anyone right now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    fn clamp(&self, bytes: usize) -> u32 {
        u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.total)
    }

    /// `bytes` of budget (at most the whole), if there is room now.
    pub fn try_take(&self, bytes: usize) -> Option<Held> {
        self.semaphore
            .clone()
            .try_acquire_many_owned(self.clamp(bytes))
            .ok()
    }

    /// Waits for `bytes` of budget (at most the whole). Call it holding none.
    pub async fn take(&self, bytes: usize) -> Held {
        match self
            .semaphore
            .clone()
            .acquire_many_owned(self.clamp(bytes))
            .await
        {
            Ok(held) => held,
            // The semaphore is never closed; an unreachable fallback that still bounds nothing.
            Err(_) => std::future::pending().await,
        }
    }

    /// Waits until there is room for `bytes` without keeping it: polling looks before a request.
    pub async fn room_for(&self, bytes: usize) {
        drop(self.take(bytes).await);
    }

    /// Says a poll found no room: results held for a batch should go out now.
    pub fn signal_pressure(&self) {
        self.pressure.notify_one();
    }

    /// Resolves when a poll found no room (a signal sent while nobody listened is kept).
    pub async fn pressure(&self) {
        self.pressure.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn held_budget_comes_back_when_dropped_and_large_asks_are_clamped() {
        let budget = ByteBudget::new(1000);
        let held = budget.try_take(600).unwrap();
        assert!(budget.try_take(600).is_none());
        assert_eq!(budget.available(), 400);
        drop(held);
        let all = budget.take(5_000_000).await;
        assert_eq!(
            all.num_permits(),
            1000,
            "an alert larger than the budget takes it all"
        );
        assert_eq!(budget.available(), 0);
        drop(all);
        budget.room_for(1000).await;
        assert_eq!(budget.available(), 1000);
    }

    #[tokio::test]
    async fn pressure_signalled_before_anyone_listens_is_kept() {
        let budget = ByteBudget::new(10);
        budget.signal_pressure();
        tokio::time::timeout(std::time::Duration::from_secs(1), budget.pressure())
            .await
            .unwrap();
    }
}
