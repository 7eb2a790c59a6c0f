//! One sweep from end to end: the poller ([`super::poll`]) and the publisher (the
//! [`Pipeline`]) joined by a bounded channel, so slow sinks pause polling rather than dropping
//! anything. The publisher commits each batch as soon as every sink acknowledged it
//! ([`Pipeline::commit_oldest`]), and drains what is in flight when the poller is done.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::poll::{self, FeedPlan, PollPlan, Poller};
use super::{Pipeline, PipelineError, PolledBatch};
use crate::defender::DefenderClient;
use crate::schedule::gate::RateGate;
use crate::shutdown::Shutdown;
use crate::stats::Counters;
use crate::store::Store;

/// What one sweep did.
#[derive(Debug, Default)]
pub struct SweepReport {
    pub entries: usize,
    /// Entries that could not be polled, with the reason.
    pub failed: Vec<(String, String)>,
    /// True when shutdown cut the sweep short.
    pub cancelled: bool,
    /// Why the sweep stopped early: an error that every entry would hit (no token, 403).
    pub aborted: Option<String>,
    /// Queries the feed answered, in feed mode (time slices and pages); None for entity polls.
    pub feed_queries: Option<u32>,
}

impl SweepReport {
    /// Whether the sweep read something: every feed query answered, or some entry polled.
    pub fn polled_some(&self) -> bool {
        let read = match self.feed_queries {
            Some(_) => self.failed.is_empty(),
            None => self.failed.len() < self.entries,
        };
        read && !self.cancelled && self.aborted.is_none()
    }
}

/// What a sweep reads.
pub enum Source {
    Entries(PollPlan),
    Feed(FeedPlan),
}

/// What a sweep shares with the service that runs it.
pub struct Shared {
    pub client: Arc<DefenderClient>,
    pub counters: Arc<Counters>,
    pub stop: Shutdown,
    pub gate: Arc<RateGate>,
    pub store: Arc<Store>,
    /// Polled batches waiting for the publisher before polling pauses.
    pub queue_batches: usize,
}

/// Polls `source` and publishes what it reads through `pipeline` until both are done.
pub async fn run(
    pipeline: &mut Pipeline,
    source: Source,
    shared: &Shared,
) -> Result<SweepReport, PipelineError> {
    shared.counters.add(&shared.counters.sweeps, 1);
    let (sender, receiver) = mpsc::channel::<PolledBatch>(shared.queue_batches);
    let poller = Poller {
        client: shared.client.clone(),
        counters: shared.counters.clone(),
        stop: shared.stop.clone(),
        sender,
    };
    let poller = match source {
        Source::Entries(plan) => tokio::spawn(poll::poll(plan, poller)),
        Source::Feed(plan) => tokio::spawn(poll::poll_feed(plan, poller)),
    };
    let (report, published) = tokio::join!(poller, publish(pipeline, receiver, shared));
    published?;
    report.map_err(PipelineError::PollerStopped)
}

/// Publishes the batches the poller sends until it is done, then drains.
async fn publish(
    pipeline: &mut Pipeline,
    mut receiver: mpsc::Receiver<PolledBatch>,
    shared: &Shared,
) -> Result<(), PipelineError> {
    loop {
        // A batch in flight is committed as soon as its acknowledgements are in, not when the
        // next batch arrives: polling may be slow (the rate limits), and the poller may be
        // waiting for the byte budget that batch holds.
        let waiting = pipeline.in_flight() > 0;
        let next = tokio::select! {
            biased;
            batch = receiver.recv() => batch,
            () = pipeline.oldest_acked(), if waiting => {
                pipeline.commit_oldest().await?;
                continue;
            }
        };
        let Some(batch) = next else {
            break;
        };
        // Saved before the commit so the commit's flush carries it: a restart sees the calls
        // this process made and keeps within the same windows.
        shared
            .store
            .save_recent_calls(&shared.gate.recent_calls_wall_ms())?;
        let publishing = std::time::Instant::now();
        pipeline.process(batch).await?;
        tracing::debug!(
            elapsed_ms = publishing.elapsed().as_millis() as u64,
            "batch handed to the sinks"
        );
    }
    pipeline.drain().await
}
