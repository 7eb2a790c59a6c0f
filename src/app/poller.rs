//! The polling half of a sweep: entries polled `concurrency` at a time, in batches of
//! `batch_entries`, each batch handed to the publisher with where the round-robin cursor stands
//! once it is committed. Memory is bounded by the byte budget ([`ByteBudget`]), not by the size
//! of the answers: a response is read as it streams, and its alerts go to the publisher in pieces
//! while the rest is still coming; results wait for the rest of their batch only while there is
//! room, and go out early when a poll finds none.

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::SweepReport;
use crate::defender::{ApiError, DefenderClient, EntryAlerts, Intake};
use crate::pipeline::{ByteBudget, PolledBatch};
use crate::shutdown::Shutdown;
use crate::stats::Counters;
use crate::watchlist::Entry;

/// Room a poll waits for before it sends a request (so polling pauses while the publisher holds
/// the budget), at most the whole budget.
const ROOM_BEFORE_REQUEST: usize = 64 << 10;

/// The service's [`Intake`]: budget from the sweep's [`ByteBudget`], pieces straight to the
/// publisher.
struct PollIntake {
    budget: ByteBudget,
    sender: mpsc::Sender<PolledBatch>,
    piece_bytes: usize,
}

#[async_trait::async_trait]
impl Intake for PollIntake {
    fn try_take(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        self.budget.try_take(bytes)
    }

    async fn take(&self, bytes: usize) -> OwnedSemaphorePermit {
        self.budget.signal_pressure();
        self.budget.take(bytes).await
    }

    async fn before_request(&self) {
        let room = ROOM_BEFORE_REQUEST.min(self.budget.total());
        if self.budget.try_take(room).is_none() {
            self.budget.signal_pressure();
            self.budget.room_for(room).await;
        }
    }

    async fn hand_over(&self, entry: &Entry, mut piece: EntryAlerts) -> bool {
        let budget = piece.held.take();
        self.sender
            .send(PolledBatch {
                results: vec![(entry.clone(), Ok(piece))],
                cursor_after: None,
                budget,
            })
            .await
            .is_ok()
    }

    fn piece_bytes(&self) -> usize {
        self.piece_bytes
    }
}

/// What one sweep's poller works from.
pub struct PollPlan {
    pub entries: Arc<[Entry]>,
    pub start: usize,
    pub count: usize,
    pub moves_cursor: bool,
    pub batch_entries: usize,
    pub concurrency: usize,
    pub budget: ByteBudget,
}

/// Polls the planned entries and sends them to `sender` batch by batch; returns the report.
pub async fn poll(
    plan: PollPlan,
    client: Arc<DefenderClient>,
    counters: Arc<Counters>,
    stop: Shutdown,
    sender: mpsc::Sender<PolledBatch>,
) -> SweepReport {
    let PollPlan {
        entries,
        start,
        count,
        moves_cursor,
        batch_entries,
        concurrency,
        budget,
    } = plan;
    let total = entries.len();
    let mut report = SweepReport {
        entries: count,
        ..Default::default()
    };
    // A poll gathers this much before handing a piece over, so concurrent polls and a batch
    // being gathered share the budget.
    let piece_bytes = (budget.total() / (2 * concurrency.max(1))).max(16 << 10);
    let intake = Arc::new(PollIntake {
        budget: budget.clone(),
        sender: sender.clone(),
        piece_bytes,
    });
    let mut consumed = 0usize;
    for first in (0..count).step_by(batch_entries.max(1)) {
        if stop.is_triggered() {
            report.cancelled = true;
            break;
        }
        let chunk: Vec<Entry> = (first..count.min(first + batch_entries))
            .map(|i| entries[(start + i) % total].clone())
            .collect();
        let polling = std::time::Instant::now();
        let polled = chunk.len();
        // Each poll is its own task so responses are parsed on every core, in parallel with
        // the publisher; results come out as they complete (one held back behind a slow poll
        // would keep its budget from the batch that could free it).
        let mut polls = futures_util::stream::iter(chunk)
            .map(|entry| {
                let client = client.clone();
                let intake = intake.clone();
                tokio::spawn(async move {
                    let result = client.alerts_into(&entry, Some(&*intake)).await;
                    (entry, result)
                })
            })
            .buffer_unordered(concurrency.max(1));
        let mut results: Vec<(Entry, Result<EntryAlerts, ApiError>)> = Vec::new();
        let mut interrupted = false;
        let mut receiver_gone = false;
        loop {
            let next = tokio::select! {
                next = polls.next() => next,
                // A poll found no room: what this batch gathered goes out now, without the
                // cursor (that moves with the batch's last part).
                () = budget.pressure(), if !results.is_empty() => {
                    if send(&sender, std::mem::take(&mut results), None).await.is_err() {
                        receiver_gone = true;
                        break;
                    }
                    continue;
                }
            };
            let Some(joined) = next else {
                break;
            };
            let (entry, result) = match joined {
                Ok(done) => done,
                Err(err) => {
                    tracing::error!(error = %err, "poll task failed");
                    interrupted = true;
                    continue;
                }
            };
            match &result {
                Ok(_) => counters.add(&counters.entries_polled, 1),
                Err(ApiError::Cancelled { .. }) => interrupted = true,
                Err(err @ (ApiError::Token(_) | ApiError::Forbidden { .. })) => {
                    // Every other entry would fail the same way: stop asking, say why once,
                    // and leave the cursor so the next sweep starts from these entries.
                    interrupted = true;
                    counters.add(&counters.entries_failed, 1);
                    report.aborted.get_or_insert_with(|| err.to_string());
                }
                Err(err) => {
                    counters.add(&counters.entries_failed, 1);
                    tracing::error!(kind = entry.kind.as_str(), entry = %entry.value, error = %err, "entry not polled");
                    report.failed.push((
                        format!("{} {}", entry.kind.as_str(), entry.value),
                        err.to_string(),
                    ));
                }
            }
            results.push((entry, result));
        }
        if receiver_gone {
            break;
        }
        consumed += polled;
        tracing::debug!(
            entries = polled,
            elapsed_ms = polling.elapsed().as_millis() as u64,
            "batch polled"
        );
        report.cancelled |= interrupted && report.aborted.is_none();
        // An interrupted batch keeps the cursor where it was: its entries are polled again.
        let cursor_after =
            (!interrupted && moves_cursor).then(|| ((start + consumed) % total) as u64);
        if send(&sender, results, cursor_after).await.is_err() {
            break;
        }
        if let Some(reason) = &report.aborted {
            tracing::error!(error = %reason, "sweep stopped: every entry would fail the same way");
            break;
        }
    }
    report
}

/// Sends `results` as a batch holding the budget its alerts took.
async fn send(
    sender: &mpsc::Sender<PolledBatch>,
    mut results: Vec<(Entry, Result<EntryAlerts, ApiError>)>,
    cursor_after: Option<u64>,
) -> Result<(), mpsc::error::SendError<PolledBatch>> {
    let mut budget: Option<OwnedSemaphorePermit> = None;
    for held in results
        .iter_mut()
        .filter_map(|(_, result)| result.as_mut().ok())
        .filter_map(|found| found.held.take())
    {
        match &mut budget {
            Some(budget) => budget.merge(held),
            None => budget = Some(held),
        }
    }
    sender
        .send(PolledBatch {
            results,
            cursor_after,
            budget,
        })
        .await
}
