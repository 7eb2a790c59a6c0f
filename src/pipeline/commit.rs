//! Where an alert id is committed: a batch handed to the sinks waits in flight until every sink
//! acknowledged it, is sent again where one failed (with the batches behind it, so the last copy
//! of every alert on the wire stays in batch order), and only then are its seen records, the
//! entities' statuses and the cursors written to the store. Nothing else commits.

use std::time::{Duration, Instant};

use tracing::Instrument;

use super::events::{EventsSent, SinkAcked, SinkFailed, Then};
use super::{Ack, Pipeline, PipelineError};
use crate::shutdown::Shutdown;
use crate::sinks::{Events, Sink, SinkError};
use crate::stats::{Counters, SinkCounters};
use crate::store::{SeenKey, SeenRecord};

impl Pipeline {
    /// Batches handed to the sinks and not committed yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Resolves once every acknowledgement of the oldest batch in flight has come in (never, when
    /// none is). Cancel-safe: what came in is kept, so it can race the next polled batch.
    pub async fn oldest_acked(&mut self) {
        let Some(oldest) = self.in_flight.front_mut() else {
            return std::future::pending().await;
        };
        for ack in &mut oldest.acks {
            if let Ack::Pending(pending) = ack {
                let outcome = pending.as_mut().await;
                *ack = Ack::Done(outcome);
            }
        }
    }

    /// Commits the oldest batch in flight once its acknowledgements are in (see
    /// [`Pipeline::oldest_acked`]).
    pub async fn commit_oldest(&mut self) -> Result<(), PipelineError> {
        let span = tracing::info_span!("publish", entries = 0);
        let outcome = self.commit_after_acks().instrument(span).await;
        self.forget_on_error(outcome)
    }

    /// The one place an alert id is committed: waits for the oldest batch's acknowledgements,
    /// resends it where one failed, then writes its seen records, statuses and cursors.
    pub(super) async fn commit_after_acks(&mut self) -> Result<(), PipelineError> {
        let Some(mut batch) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let mut failed = Vec::new();
        for (sink, ack) in std::mem::take(&mut batch.acks).into_iter().enumerate() {
            let handed = batch.events[sink].len();
            if !self.settle(sink, ack, handed, batch.started).await {
                failed.push(sink);
            }
        }
        if !failed.is_empty() {
            self.resend(batch.events.clone(), failed).await?;
        }
        let seen: Vec<(SeenKey, String, SeenRecord)> = batch
            .records
            .drain()
            .map(|(key, (id, record))| (key, id, record))
            .collect();
        self.store
            .commit_keyed(&seen, &batch.statuses, batch.cursor_after)?;
        if let Some(cursor) = batch.feed_cursor_after {
            if self.store.feed_cursor()?.map_or(true, |was| cursor > was) {
                self.counters.feed_cursor_moved.store(
                    chrono::Utc::now().timestamp().max(0) as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
            self.store.set_feed_cursor(cursor)?;
        }
        self.count_queued();
        self.counters
            .add(&self.counters.alerts_published, batch.published as u64);
        Ok(())
    }

    /// Sends `batch` again on the sinks that failed it. The batches behind it already went out
    /// there; resending only this one would put older versions of an alert after newer ones. So
    /// they settle first, then each is sent again after it on every sink resent so far (and on
    /// its own failures), in order: the last copy of every alert on the wire is in batch order,
    /// and nothing is pending on a sink while it is retried.
    async fn resend(
        &mut self,
        events: Vec<Events>,
        failed: Vec<usize>,
    ) -> Result<(), PipelineError> {
        let mut resent = failed.clone();
        let mut later_resends = Vec::with_capacity(self.in_flight.len());
        for later in 0..self.in_flight.len() {
            let acks = std::mem::take(&mut self.in_flight[later].acks);
            let started = self.in_flight[later].started;
            for (sink, ack) in acks.into_iter().enumerate() {
                let handed = self.in_flight[later].events[sink].len();
                if !self.settle(sink, ack, handed, started).await && !resent.contains(&sink) {
                    resent.push(sink);
                }
            }
            self.in_flight[later].acks = (0..self.sinks.len()).map(|_| Ack::Settled).collect();
            later_resends.push((self.in_flight[later].events.clone(), resent.clone()));
        }
        let first = (events, failed);
        for (events, sinks) in std::iter::once(first).chain(later_resends) {
            for sink in sinks {
                if !events[sink].is_empty() {
                    send_until_acked(
                        self.sinks[sink].as_mut(),
                        &events[sink],
                        &self.stop,
                        &self.counters,
                        self.counters.sinks().get(sink),
                        self.give_up_after,
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Waits for one acknowledgement of `handed` events sent at `started`; false when they must
    /// be sent again.
    async fn settle(&mut self, sink: usize, ack: Ack, handed: usize, started: Instant) -> bool {
        let outcome = match ack {
            Ack::Settled => return true,
            Ack::Done(outcome) => outcome,
            Ack::Pending(pending) => pending.await,
        };
        let counters = self.counters.sinks().get(sink);
        match outcome {
            Ok(()) => {
                SinkAcked {
                    sink: counters,
                    events: handed,
                    started,
                }
                .emit(&self.counters);
                true
            }
            Err(error) => {
                SinkFailed {
                    name: self.sinks[sink].name(),
                    sink: counters,
                    events: handed,
                    error: &error,
                    then: Then::SendAgain,
                }
                .emit(&self.counters);
                false
            }
        }
    }

    /// Publishes how many events each sink holds unacknowledged (the batches in flight).
    pub(super) fn count_queued(&self) {
        for (i, counters) in self.counters.sinks().iter().enumerate() {
            let queued: usize = self
                .in_flight
                .iter()
                .map(|b| b.events.get(i).map_or(0, |e| e.len()))
                .sum();
            counters
                .queued
                .store(queued as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// A sink that fails is retried with backoff until it acknowledges: alerts are never dropped.
/// Only shutdown (or, for one-shot runs, `give_up_after` attempts) ends the wait, and then
/// nothing of the batch is committed.
async fn send_until_acked(
    sink: &mut dyn Sink,
    events: &Events,
    stop: &Shutdown,
    counters: &Counters,
    sink_counters: Option<&SinkCounters>,
    give_up_after: Option<u32>,
) -> Result<(), PipelineError> {
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        let result: Result<(), SinkError> = sink.send(events).await;
        EventsSent {
            sink: sink_counters,
            events: events.len(),
        }
        .emit();
        match result {
            Ok(()) => {
                SinkAcked {
                    sink: sink_counters,
                    events: events.len(),
                    started,
                }
                .emit(counters);
                return Ok(());
            }
            Err(err) => {
                let wait = crate::defender::errors::backoff(
                    attempt.min(6),
                    Duration::from_millis(500),
                    Duration::from_secs(30),
                    1.0,
                );
                attempt += 1;
                let give_up = give_up_after.is_some_and(|limit| attempt >= limit);
                SinkFailed {
                    name: sink.name(),
                    sink: sink_counters,
                    events: events.len(),
                    error: &err,
                    then: if give_up {
                        Then::GiveUp
                    } else {
                        Then::RetryIn(wait)
                    },
                }
                .emit(counters);
                if give_up {
                    return Err(PipelineError::GaveUp {
                        sink: sink.name().to_string(),
                        attempts: attempt,
                        pending: events.len(),
                        last: err,
                    });
                }
                if stop.is_triggered() || !stop.sleep(wait).await {
                    return Err(PipelineError::Undelivered {
                        sink: sink.name().to_string(),
                        pending: events.len(),
                    });
                }
            }
        }
    }
}
