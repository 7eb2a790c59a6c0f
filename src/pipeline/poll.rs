//! The polling half of a sweep: entries polled `concurrency` at a time, in batches of
//! `batch_entries`, each batch handed to the publisher with where the round-robin cursor stands
//! once it is committed. Memory is bounded by the byte budget ([`ByteBudget`]), not by the size
//! of the answers: a response is read as it streams, and its alerts go to the publisher in pieces
//! while the rest is still coming; results wait for the rest of their batch only while there is
//! room, and go out early when a poll finds none.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::budget::{must_hand_over, Counted};
use super::intake::PollIntake;
use super::{ByteBudget, PolledBatch, SweepReport};
use crate::defender::{ApiError, DefenderClient, EntryAlerts};
use crate::errors::Chain;
use crate::schedule::plan::spare_entries;
use crate::shutdown::Shutdown;
use crate::stats::Counters;
use crate::watchlist::Entry;

/// Which of its entries a sweep polls.
pub enum Reach {
    /// The round-robin from the store's cursor: `count` entries, then as many more as the
    /// sweep's whole call budget (`calls`, when the watchlist does not fit in one sweep) still
    /// pays for once they and their retries are done. The cursor moves with each batch.
    RoundRobin {
        start: usize,
        count: usize,
        calls: Option<u64>,
    },
    /// Every entry given once (a reload's additions, a backfill); the cursor stays.
    Only,
}

/// What a poller reads with, watches and hands its batches to.
pub struct Poller {
    pub client: Arc<DefenderClient>,
    pub counters: Arc<Counters>,
    pub stop: Shutdown,
    pub sender: mpsc::Sender<PolledBatch>,
}

/// What one sweep's poller works from.
pub struct PollPlan {
    pub entries: Arc<[Entry]>,
    pub reach: Reach,
    pub batch_entries: usize,
    pub concurrency: usize,
    pub budget: ByteBudget,
}

/// Polls the planned entries and sends them to `sender` batch by batch; returns the report.
pub async fn poll(plan: PollPlan, poller: Poller) -> SweepReport {
    let entries = plan.entries;
    let total = entries.len();
    let (start, mut count, call_budget, moves_cursor) = match plan.reach {
        Reach::RoundRobin {
            start,
            count,
            calls,
        } => (start, count.min(total), calls, true),
        Reach::Only => (0, total, None, false),
    };
    let calls_before = poller.counters.calls.load(Ordering::Relaxed);
    let mut report = SweepReport::default();
    let tools = BatchTools::new(&poller, plan.budget, plan.concurrency);
    let mut consumed = 0usize;
    loop {
        if consumed == count {
            // The planned entries are done: what their retries left of the budget polls more.
            if let Some(calls) = call_budget {
                let made = poller.counters.calls.load(Ordering::Relaxed) - calls_before;
                count += spare_entries(calls, made, consumed, total);
            }
            if consumed == count {
                break;
            }
        }
        if poller.stop.is_triggered() {
            report.cancelled = true;
            break;
        }
        let first = consumed;
        let chunk: Vec<Entry> = (first..count.min(first + plan.batch_entries.max(1)))
            .map(|i| entries[(start + i) % total].clone())
            .collect();
        let polling = std::time::Instant::now();
        let polled = chunk.len();
        let batch = poll_batch(chunk, &tools, &mut report).await;
        let (results, interrupted) = match batch {
            Some(batch) => batch,
            None => break,
        };
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
        if send(&poller.sender, results, cursor_after).await.is_err() {
            break;
        }
        if let Some(reason) = &report.aborted {
            tracing::error!(error = %reason, "sweep stopped: every entry would fail the same way");
            break;
        }
    }
    report.entries = count;
    report
}

/// What polling one batch of entries uses.
struct BatchTools {
    client: Arc<DefenderClient>,
    intake: Arc<PollIntake>,
    counters: Arc<Counters>,
    sender: mpsc::Sender<PolledBatch>,
    budget: ByteBudget,
    concurrency: usize,
}

impl BatchTools {
    fn new(poller: &Poller, budget: ByteBudget, concurrency: usize) -> BatchTools {
        let sender = poller.sender.clone();
        let intake = Arc::new(PollIntake::new(budget.clone(), sender.clone()));
        BatchTools {
            client: poller.client.clone(),
            intake,
            counters: poller.counters.clone(),
            sender,
            budget,
            concurrency,
        }
    }
}

/// Polls `chunk`, `concurrency` at a time; returns the results not handed over yet and whether
/// the batch was interrupted, or None when nobody takes batches any more.
async fn poll_batch(
    chunk: Vec<Entry>,
    tools: &BatchTools,
    report: &mut SweepReport,
) -> Option<(Vec<(Entry, Result<EntryAlerts, ApiError>)>, bool)> {
    // Each poll is its own task so responses are parsed on every core, in parallel with the
    // publisher; results come out as they complete (one held back behind a slow poll would keep
    // its budget from the batch that could free it).
    let mut polls = futures_util::stream::iter(chunk)
        .map(|entry| {
            let client = tools.client.clone();
            let intake = tools.intake.clone();
            tokio::spawn(async move {
                // Counted while it runs: a poll alone reads a large answer in larger pieces.
                let _counted = Counted::enter(&intake.in_flight, 1);
                let result = client.alerts_into(&entry, Some(&*intake)).await;
                (entry, result)
            })
        })
        .buffer_unordered(tools.concurrency.max(1));
    let mut results: Vec<(Entry, Result<EntryAlerts, ApiError>)> = Vec::new();
    let mut interrupted = false;
    loop {
        tokio::select! {
            joined = polls.next() => match joined {
                None => break,
                Some(Ok((entry, result))) => {
                    interrupted |= record(&entry, &result, &tools.counters, report);
                    results.push((entry, result));
                }
                Some(Err(err)) => {
                    tracing::error!(error = %err, "poll task failed");
                    interrupted = true;
                }
            },
            // A poll started waiting for room: checked below like a new result.
            () = tools.budget.pressure(), if !results.is_empty() => {}
        }
        // A poll waits for room that only this batch's alerts could make: what it gathered goes
        // out now, without the cursor (that moves with the batch's last part).
        if !results.is_empty()
            && must_hand_over(tools.budget.total(), held(&results), tools.budget.wanted())
        {
            send(&tools.sender, std::mem::take(&mut results), None)
                .await
                .ok()?;
        }
    }
    Some((results, interrupted))
}

/// The budget the alerts of `results` hold.
fn held(results: &[(Entry, Result<EntryAlerts, ApiError>)]) -> usize {
    results
        .iter()
        .filter_map(|(_, result)| result.as_ref().ok()?.held.as_ref())
        .map(|held| held.num_permits())
        .sum()
}

/// Counts and reports one entry's poll; true when it interrupts the sweep (stopping, or an
/// error every other entry would hit too).
fn record(
    entry: &Entry,
    result: &Result<EntryAlerts, ApiError>,
    counters: &Counters,
    report: &mut SweepReport,
) -> bool {
    match result {
        Ok(_) => {
            counters.add(&counters.entries_polled, 1);
            false
        }
        Err(ApiError::Cancelled { .. }) => true,
        Err(err @ (ApiError::Token { .. } | ApiError::Forbidden { .. })) => {
            // Every other entry would fail the same way: stop asking, say why once, and leave
            // the cursor so the next sweep starts from these entries.
            counters.add(&counters.entries_failed, 1);
            report.aborted.get_or_insert_with(|| Chain(err).to_string());
            true
        }
        Err(err) => {
            counters.add(&counters.entries_failed, 1);
            tracing::error!(kind = entry.kind().as_str(), entry = %entry.value(), error = %Chain(err), "entry not polled");
            report.failed.push((
                format!("{} {}", entry.kind().as_str(), entry.value()),
                Chain(err).to_string(),
            ));
            false
        }
    }
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
            ..PolledBatch::default()
        })
        .await
}

/// What a feed poll does with the cursor once everything it read is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorUse {
    /// A scheduled poll: the cursor moves to the latest `lastUpdateTime` it read.
    Moves,
    /// A backfill or a reload's catch-up reads behind the cursor and leaves it where it is.
    Stays,
}

/// What one poll of the feed works from.
pub struct FeedPlan {
    pub settings: crate::config::SourceConfig,
    /// The range to read: from behind the cursor (or `since`) to the open end.
    pub first: crate::feed::Slice,
    /// Where the last acknowledged poll ended (µs); None before the first.
    pub cursor: Option<i64>,
    /// Whether the poll moves the cursor (a backfill leaves it).
    pub cursor_use: CursorUse,
    pub budget: ByteBudget,
}

/// Reads the feed from `lookback` behind the cursor to now, slice by slice
/// ([`crate::feed::slices`]), sending what each answer holds to the publisher; the last batch
/// carries the new cursor, the latest `lastUpdateTime` the API returned, so it moves only once
/// every alert before it is committed. A poll that fails or is stopped moves nothing: the next
/// one reads the same range again.
pub async fn poll_feed(plan: FeedPlan, poller: Poller) -> SweepReport {
    use crate::feed::{slices, Next, Reading};
    let Poller {
        client,
        counters,
        stop,
        sender,
    } = poller;
    let FeedPlan {
        settings,
        first,
        cursor,
        cursor_use,
        budget,
    } = plan;
    let mut report = SweepReport {
        entries: 1,
        feed_queries: Some(0),
        ..Default::default()
    };
    let intake = Arc::new(PollIntake::new(budget, sender.clone()));
    let mut pending = vec![first];
    let mut latest = cursor;
    while let Some(slice) = pending.pop() {
        if stop.is_triggered() {
            report.cancelled = true;
            return report;
        }
        let filter = slices::filter(slice, crate::defender::client::update_field(client.api()));
        let read = client
            .feed_into(&filter, settings.page_size, false, Some(&*intake))
            .await;
        let found = match read {
            Ok(found) => found,
            Err(err) => {
                feed_failed(&mut report, &counters, err);
                return report;
            }
        };
        count_query(&mut report, &counters);
        let mut found = found;
        let reading = Reading::of(found.more, &mut found.update_times);
        let whole = match slices::next(slice, &reading) {
            Next::Done => found,
            Next::Split(earlier, later) => {
                // What this answer held is read again, half by half; what it handed over on
                // the way is already out, and deduplicated when it comes again.
                tracing::debug!(filter = %filter, "feed slice over one page: split");
                pending.push(later);
                pending.push(earlier);
                continue;
            }
            Next::Page => {
                drop(found);
                tracing::warn!(filter = %filter, "more than a page of alerts in one microsecond: paging");
                match client
                    .feed_into(&filter, settings.page_size, true, Some(&*intake))
                    .await
                {
                    Ok(found) => found,
                    Err(err) => {
                        feed_failed(&mut report, &counters, err);
                        return report;
                    }
                }
            }
        };
        latest = latest.into_iter().chain(whole.latest_update).max();
        if sender.send(PolledBatch::of_feed(whole)).await.is_err() {
            report.cancelled = true;
            return report;
        }
    }
    feed_read(&report, &counters, latest, cursor_use, &sender).await;
    report
}

/// The whole range was read: said, counted, and the cursor moves with a last batch, after all
/// the others.
async fn feed_read(
    report: &SweepReport,
    counters: &Counters,
    latest: Option<i64>,
    cursor_use: CursorUse,
    sender: &mpsc::Sender<PolledBatch>,
) {
    counters.add(&counters.entries_polled, 1);
    tracing::info!(
        queries = report.feed_queries.unwrap_or(0),
        cursor = ?latest.and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_micros),
        "feed read to its end"
    );
    if cursor_use == CursorUse::Moves {
        let _ = sender
            .send(PolledBatch {
                feed_cursor_after: latest,
                ..PolledBatch::default()
            })
            .await;
    }
}

impl PolledBatch {
    /// A batch of what a feed query returned, holding the budget its alerts hold.
    fn of_feed(mut found: EntryAlerts) -> PolledBatch {
        let budget = found.held.take();
        PolledBatch {
            feed: Some(found),
            budget,
            ..PolledBatch::default()
        }
    }
}

fn count_query(report: &mut SweepReport, counters: &Counters) {
    counters.add(&counters.feed_pages, 1);
    if let Some(queries) = &mut report.feed_queries {
        *queries += 1;
    }
}

fn feed_failed(report: &mut SweepReport, counters: &Counters, err: ApiError) {
    match err {
        ApiError::Cancelled { .. } => report.cancelled = true,
        err @ (ApiError::Token { .. } | ApiError::Forbidden { .. }) => {
            counters.add(&counters.entries_failed, 1);
            report.aborted = Some(Chain(&err).to_string());
        }
        err => {
            counters.add(&counters.entries_failed, 1);
            tracing::error!(error = %Chain(&err), "feed not read; its cursor stays, the next poll reads the range again");
            report
                .failed
                .push(("the alerts feed".into(), Chain(&err).to_string()));
        }
    }
}
