//! The byte budget (`[pipeline] queue_bytes`) that bounds what polling holds in memory: alerts
//! read from responses and not yet published. A poll takes budget for the alerts it reads, as it
//! reads them; the pipeline gives it back when their batch is committed. A poll that finds no
//! room hands over what it holds and says so ([`ByteBudget::pressure`]), so that completed results
//! waiting for the rest of their batch go out too, and only then waits: nobody waits for budget
//! while holding any, so polls and the pipeline cannot block each other. The batch being gathered
//! goes out early only when what it holds stands between a waiting poll and its room
//! ([`must_hand_over`]): budget held by batches already queued or in flight comes back by itself
//! when they are committed, and cutting the gathering batch at every wait made batches of one
//! entry (twice the batches, commits and Kafka requests at the default budget).
//!
//! One alert larger than the whole budget waits until everything else is given back, then goes
//! through alone: memory is then that alert, whatever the budget says.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Budget held by alerts in memory; given back when dropped.
pub type Held = OwnedSemaphorePermit;

#[derive(Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    total: u32,
    pressure: Arc<Notify>,
    /// Bytes the polls waiting right now asked for, together.
    wanted: Arc<AtomicUsize>,
}

/// `by` added to a count for as long as this lives (also when the future holding it is
/// dropped unfinished): a waiting poll's ask in [`ByteBudget::wanted`], a poll in flight.
pub(super) struct Counted<'a> {
    count: &'a AtomicUsize,
    by: usize,
}

impl<'a> Counted<'a> {
    pub(super) fn enter(count: &'a AtomicUsize, by: usize) -> Counted<'a> {
        count.fetch_add(by, Ordering::AcqRel);
        Counted { count, by }
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(self.by, Ordering::AcqRel);
    }
}

/// Whether a batch being gathered, holding `held` of a `total` budget, must go out now for
/// polls waiting for `wanted` bytes: when even everything else given back would not make their
/// room. Anything less comes back by itself, as the batches ahead are committed. Counting every
/// waiter's ask together errs towards handing over.
pub fn must_hand_over(total: usize, held: usize, wanted: usize) -> bool {
    wanted > 0 && total.saturating_sub(held) < wanted
}

impl ByteBudget {
    pub fn new(bytes: u64) -> ByteBudget {
        let total = u32::try_from(bytes).unwrap_or(u32::MAX).max(1);
        ByteBudget {
            semaphore: Arc::new(Semaphore::new(total as usize)),
            total,
            pressure: Arc::new(Notify::new()),
            wanted: Arc::new(AtomicUsize::new(0)),
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

    /// `bytes` of budget (at most the whole), waiting for it when there is no room now; a wait
    /// is counted and signalled first ([`ByteBudget::pressure`]). Call it holding none.
    pub async fn take(&self, bytes: usize) -> Held {
        if let Some(held) = self.try_take(bytes) {
            return held;
        }
        let bytes = self.clamp(bytes);
        // Counted before the signal, so whoever the signal wakes sees this wait.
        let _waiting = Counted::enter(&self.wanted, bytes as usize);
        self.pressure.notify_one();
        match self.semaphore.clone().acquire_many_owned(bytes).await {
            Ok(held) => held,
            // The semaphore is never closed; an unreachable fallback that still bounds nothing.
            Err(_) => std::future::pending().await,
        }
    }

    /// Waits until there is room for `bytes` without keeping it: polling looks before a request.
    pub async fn room_for(&self, bytes: usize) {
        drop(self.take(bytes).await);
    }

    /// Resolves when a poll found no room (a signal sent while nobody listened is kept: ask
    /// [`ByteBudget::wanted`] whether the wait it announced still goes on).
    pub async fn pressure(&self) {
        self.pressure.notified().await;
    }

    /// Bytes the polls waiting for room right now asked for, together (0: nobody waits).
    pub fn wanted(&self) -> usize {
        self.wanted.load(Ordering::Acquire)
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
    async fn a_wait_is_signalled_kept_for_a_late_listener_and_counted_while_it_lasts() {
        let budget = ByteBudget::new(10);
        let all = budget.take(10).await;
        assert_eq!(
            budget.wanted(),
            0,
            "a take that found room waited for nothing"
        );
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.take(4).await.num_permits() }
        });
        tokio::time::timeout(std::time::Duration::from_secs(1), budget.pressure())
            .await
            .expect("the waiting take signalled pressure");
        assert_eq!(budget.wanted(), 4);
        drop(all);
        assert_eq!(waiter.await.unwrap(), 4);
        assert_eq!(budget.wanted(), 0, "the wait is over");
    }

    #[tokio::test]
    async fn a_wait_given_up_is_no_longer_counted() {
        let budget = ByteBudget::new(10);
        let _all = budget.take(10).await;
        let gave_up =
            tokio::time::timeout(std::time::Duration::from_millis(20), budget.take(1)).await;
        assert!(gave_up.is_err());
        assert_eq!(budget.wanted(), 0);
    }

    #[test]
    fn a_gathering_batch_goes_out_only_when_it_stands_in_a_waiters_way() {
        let total = 2 << 20;
        assert!(!must_hand_over(total, total, 0), "nobody waits");
        assert!(
            !must_hand_over(total, 100_000, 64 << 10),
            "the batches ahead hold the rest: their commits make the room"
        );
        assert!(must_hand_over(total, total - 1000, 64 << 10));
        assert!(
            must_hand_over(total, 1, total),
            "an alert as large as the whole budget needs every byte back"
        );
        assert!(!must_hand_over(total, 0, total));
    }
}
