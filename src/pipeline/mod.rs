//! One polled batch through dedup → normalize → sinks → commit. Alerts reached through several
//! watchlist entries in one batch become one event carrying every match; matches are also read
//! from the alert's own content (related user, logged-on users, evidence accounts and hashes), so
//! an alert reached through a user and a file is one event with both even when the two entries
//! were polled in different batches. Nothing is committed before every sink acknowledged.
//!
//! Batches overlap: while the sinks' acknowledgements of one batch travel (a Kafka round trip),
//! the next is decided, normalized and handed over. Commits stay in batch order, and a batch
//! still in flight is what `decide` consults first, so an alert is not published twice because
//! its first publication is not committed yet.

mod budget;
mod matches;

pub use budget::{ByteBudget, Held};
pub use matches::WatchIndex;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::Instrument;

use crate::config::UpdatePolicy;
use crate::defender::{time, ApiError, EntryAlerts, PolledAlert};
use crate::normalize::{self, Change, EventContext, Format, FoundBy, Match, Severity};
use crate::shutdown::Shutdown;
use crate::sinks::{OutEvent, Pending, Sink, SinkError};
use crate::stats::{Counters, SinkCounters};
use crate::store::{decide, AlertDigest, Decision, EntityStatus, SeenRecord, Store, StoreError};
use crate::watchlist::Entry;

/// An unchanged alert's `last_observed` is rewritten at most this often: retention works in days,
/// and every rewrite is a random write into the store.
const TOUCH_EVERY_SECS: i64 = 86_400;

/// What the poller hands the pipeline: each entry with its result, alerts read from the feed,
/// and where the round-robin and feed cursors stand once this batch is committed.
#[derive(Default)]
pub struct PolledBatch {
    pub results: Vec<(Entry, Result<EntryAlerts, ApiError>)>,
    /// Alerts of the tenant's feed: published only when their content matches the watchlist.
    pub feed: Option<EntryAlerts>,
    pub cursor_after: Option<u64>,
    /// The feed's cursor (µs), moved when this batch, the last of its poll, is committed.
    pub feed_cursor_after: Option<i64>,
    /// This batch's share of the queue's byte budget, returned when the batch is dropped.
    pub budget: Option<tokio::sync::OwnedSemaphorePermit>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stopping with {pending} alert(s) not acknowledged by sink '{sink}'; they are not committed and go out after the restart")]
    Undelivered { sink: String, pending: usize },
    #[error("sink '{sink}' still failing after {attempts} retries ({last}); {pending} alert(s) not committed: they go out on the next run")]
    GaveUp {
        sink: String,
        attempts: u32,
        pending: usize,
        last: String,
    },
    #[error(transparent)]
    Normalize(#[from] normalize::NormalizeError),
}

pub struct Pipeline {
    store: Arc<Store>,
    sinks: Vec<Box<dyn Sink>>,
    updates: UpdatePolicy,
    tenant_id: String,
    collector: String,
    index: WatchIndex,
    counters: Arc<Counters>,
    stop: Shutdown,
    in_flight: VecDeque<InFlight>,
    in_flight_limit: usize,
    /// Set for `mde-watch backfill`.
    backfill: Option<Backfill>,
    /// Delivery attempts per batch before giving up (one-shot runs); the service never does.
    give_up_after: Option<u32>,
}

/// What a backfill publishes: each alert created since `since_ms`, once. The store is not
/// consulted, so the backfill remembers what it sent itself (a hash of each id): an alert
/// reached through a user and a file, or read again when the feed splits a slice, goes out
/// once.
struct Backfill {
    since_ms: i64,
    sent: HashSet<u64>,
}

impl Backfill {
    fn wants(&mut self, alert: &crate::defender::Alert) -> bool {
        let created = alert
            .alert_creation_time
            .as_deref()
            .or(alert.last_update_time.as_deref())
            .and_then(time::parse)
            .map(|t| t.timestamp_millis());
        if !created.is_some_and(|at| at >= self.since_ms) {
            return false;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&*alert.id, &mut hasher);
        self.sent.insert(std::hash::Hasher::finish(&hasher))
    }
}

/// A batch handed to the sinks, committed once every sink acknowledged it.
struct InFlight {
    records: HashMap<String, SeenRecord>,
    statuses: Vec<(String, EntityStatus)>,
    cursor_after: Option<u64>,
    feed_cursor_after: Option<i64>,
    published: usize,
    /// What each sink was given, kept for a resend.
    events: Vec<Arc<[OutEvent]>>,
    acks: Vec<Ack>,
    /// When it was handed over: publish latency runs from here to the acknowledgement.
    started: Instant,
    /// The batch's share of the queue's byte budget, held until the commit.
    _budget: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Where one sink stands with one batch.
enum Ack {
    Settled,
    Pending(Pending),
    /// Came in while the pipeline was waiting for the next batch.
    Done(Result<(), SinkError>),
}

/// One alert of the batch with every match found for it.
struct Candidate {
    polled: PolledAlert,
    matches: Vec<Match>,
    found_by: FoundBy,
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<Store>,
        sinks: Vec<Box<dyn Sink>>,
        updates: UpdatePolicy,
        tenant_id: &str,
        collector: &str,
        index: WatchIndex,
        counters: Arc<Counters>,
        stop: Shutdown,
        in_flight_limit: usize,
    ) -> Pipeline {
        let names = sinks
            .iter()
            .map(|s| SinkCounters::named(s.name()))
            .collect();
        // Set once per set of counters; a second pipeline on the same counters keeps the first's.
        let _ = counters.sinks.set(names);
        Pipeline {
            store,
            sinks,
            updates,
            tenant_id: tenant_id.to_string(),
            collector: collector.to_string(),
            index,
            counters,
            stop,
            in_flight: VecDeque::new(),
            in_flight_limit: in_flight_limit.max(1),
            backfill: None,
            give_up_after: None,
        }
    }

    /// Decides, normalizes and hands one batch to the sinks; commits the batches ahead of it
    /// whose acknowledgements are in, oldest first, keeping at most `in_flight` unacknowledged.
    pub async fn process(&mut self, batch: PolledBatch) -> Result<(), PipelineError> {
        let span = tracing::info_span!("publish", entries = batch.results.len());
        let outcome = self.process_inner(batch).instrument(span).await;
        if outcome.is_err() {
            // Nothing of these batches is committed: they go out again after the restart.
            self.in_flight.clear();
        }
        outcome
    }

    /// Waits for every outstanding acknowledgement and commits (at the end of a sweep).
    pub async fn drain(&mut self) -> Result<(), PipelineError> {
        let span = tracing::info_span!("publish", entries = 0);
        let outcome = async {
            while !self.in_flight.is_empty() {
                self.settle_oldest().await?;
            }
            Ok(())
        }
        .instrument(span)
        .await;
        if outcome.is_err() {
            self.in_flight.clear();
        }
        outcome
    }

    async fn process_inner(&mut self, batch: PolledBatch) -> Result<(), PipelineError> {
        let now = Utc::now();
        let now_secs = now.timestamp();
        let observed_at = time::format(now);
        let (candidates, statuses) = self.merge(batch.results, batch.feed, &observed_at);

        let mut records: HashMap<String, SeenRecord> = HashMap::with_capacity(candidates.len());
        let mut to_emit: Vec<(Candidate, Change)> = Vec::new();
        let (statuses, cursor_after, feed_cursor_after) = match self.backfill {
            // A backfill leaves the store as it found it: no seen records, statuses or cursors.
            Some(_) => (Vec::new(), None, None),
            None => (statuses, batch.cursor_after, batch.feed_cursor_after),
        };
        for candidate in candidates {
            if let Some(backfill) = &mut self.backfill {
                if backfill.wants(candidate.polled.alert()) {
                    to_emit.push((candidate, Change::New));
                }
                continue;
            }
            let digest = AlertDigest::of(candidate.polled.alert());
            let previous = self.previous(&candidate.polled.alert().id)?;
            let decision = decide(&digest, previous.as_ref());
            let first_observed = previous.map_or(now_secs, |p| p.first_observed);
            let record = SeenRecord {
                last_update: digest.last_update,
                fingerprint: digest.fingerprint,
                first_observed,
                last_observed: now_secs,
            };
            let id = candidate.polled.alert().id.to_string();
            match decision {
                Decision::New => {
                    self.counters.add(&self.counters.alerts_new, 1);
                    records.insert(id, record);
                    to_emit.push((candidate, Change::New));
                }
                Decision::Changed if self.updates == UpdatePolicy::Emit => {
                    self.counters.add(&self.counters.alerts_changed, 1);
                    records.insert(id, record);
                    to_emit.push((candidate, Change::Updated));
                }
                Decision::Changed => {
                    self.counters.add(&self.counters.alerts_changed, 1);
                    self.counters.add(&self.counters.changes_ignored, 1);
                    records.insert(id, record);
                }
                Decision::Unchanged => {
                    self.counters.add(&self.counters.alerts_unchanged, 1);
                    self.counters.add(&self.counters.duplicates_suppressed, 1);
                    let previous = previous.unwrap_or(record);
                    if now_secs - previous.last_observed >= TOUCH_EVERY_SECS {
                        records.insert(
                            id,
                            SeenRecord {
                                last_observed: now_secs,
                                ..previous
                            },
                        );
                    }
                }
            }
        }

        let published = to_emit.len();
        let events = self.encode(&to_emit, &observed_at)?;
        drop(to_emit);
        let mut acks = Vec::with_capacity(self.sinks.len());
        for (i, (sink, events)) in self.sinks.iter_mut().zip(&events).enumerate() {
            if let Some(counters) = self.counters.sinks().get(i) {
                counters
                    .sent
                    .fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            acks.push(if events.is_empty() {
                Ack::Settled
            } else {
                Ack::Pending(sink.start(events).await)
            });
        }
        self.in_flight.push_back(InFlight {
            records,
            statuses,
            cursor_after,
            feed_cursor_after,
            published,
            events,
            acks,
            started: Instant::now(),
            _budget: batch.budget,
        });
        self.count_queued();
        while self.in_flight.len() >= self.in_flight_limit {
            self.settle_oldest().await?;
        }
        Ok(())
    }

    /// What the store (or a batch still in flight, which is newer) knows of an alert.
    fn previous(&self, id: &str) -> Result<Option<SeenRecord>, StoreError> {
        if let Some(record) = self.in_flight.iter().rev().find_map(|b| b.records.get(id)) {
            return Ok(Some(*record));
        }
        self.store.previous(id)
    }

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
        let outcome = self.settle_oldest().instrument(span).await;
        if outcome.is_err() {
            self.in_flight.clear();
        }
        outcome
    }

    /// Waits for the oldest batch's acknowledgements, resends it where one failed, commits it.
    async fn settle_oldest(&mut self) -> Result<(), PipelineError> {
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
        let seen: Vec<(String, SeenRecord)> = batch.records.drain().collect();
        self.store
            .commit(&seen, &batch.statuses, batch.cursor_after)?;
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
        events: Vec<Arc<[OutEvent]>>,
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
        if let Some(counters) = self.counters.sinks().get(sink) {
            counters.attempt(handed, outcome.is_ok());
        }
        match outcome {
            Ok(()) => {
                self.counters
                    .publish_latency
                    .observe(started.elapsed().as_secs_f64());
                true
            }
            Err(err) => {
                self.counters.add(&self.counters.sink_failures, 1);
                tracing::error!(sink = self.sinks[sink].name(), error = %err, "sink failed; sending again (nothing is dropped)");
                false
            }
        }
    }

    /// Publishes how many events each sink holds unacknowledged (the batches in flight).
    fn count_queued(&self) {
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

    /// Merges the batch by alert id and adds content matches; also builds each entry's status.
    fn merge(
        &self,
        results: Vec<(Entry, Result<EntryAlerts, ApiError>)>,
        feed: Option<EntryAlerts>,
        observed_at: &str,
    ) -> (Vec<Candidate>, Vec<(String, EntityStatus)>) {
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        let mut statuses = Vec::with_capacity(results.len());
        if let Some(feed) = feed {
            self.merge_feed(feed, &mut candidates, &mut by_id);
        }
        for (entry, result) in results {
            let reached = Match {
                kind: entry.kind,
                value: entry.value.clone(),
                original: entry.original.clone(),
            };
            // A piece of a response still streaming says nothing of the entry yet: its status
            // comes with the rest of the response (and never when that fails).
            let piece = result.as_ref().is_ok_and(|found| !found.complete);
            let (outcome, count, alert_ids, last_ok) = match result {
                Err(err) => {
                    // A failed poll says nothing new about the entry's alerts: keep the last list
                    // and the time of the last poll that read them.
                    let known = self.store.entity(&entry.key()).ok().flatten();
                    let (ids, last_ok) = known
                        .map(|status| (status.alert_ids, status.last_ok))
                        .unwrap_or_default();
                    (format!("error: {err}"), 0, ids, last_ok)
                }
                Ok(found) => {
                    let count = found.ids.len() as u32;
                    let alert_ids = found.ids;
                    self.counters
                        .add(&self.counters.alerts_received, found.alerts.len() as u64);
                    for rejected in &found.rejected {
                        tracing::error!(entry = %entry.value, problem = %rejected, "alert skipped: unreadable");
                    }
                    self.counters
                        .add(&self.counters.alerts_rejected, found.rejected.len() as u64);
                    for polled in found.alerts {
                        if let Some(&at) = by_id.get(polled.alert().id.as_ref()) {
                            self.counters.add(&self.counters.duplicates_suppressed, 1);
                            push_match(&mut candidates[at].matches, reached.clone());
                            continue;
                        }
                        let mut matches = vec![reached.clone()];
                        for found in self.index.matches_in(polled.alert()) {
                            push_match(&mut matches, found);
                        }
                        by_id.insert(polled.alert().id.to_string(), candidates.len());
                        candidates.push(Candidate {
                            polled,
                            matches,
                            found_by: FoundBy::Entity,
                        });
                    }
                    let outcome = if found.rejected.is_empty() {
                        "ok".to_string()
                    } else {
                        format!("ok, {} unreadable alert(s) skipped", found.rejected.len())
                    };
                    // In the API's time when it said (its clock is the one alerts carry).
                    let answered = found
                        .answered_at
                        .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_micros)
                        .map(time::format)
                        .unwrap_or_else(|| observed_at.to_string());
                    (outcome, count, alert_ids, Some(answered))
                }
            };
            if piece {
                continue;
            }
            statuses.push((
                entry.key(),
                EntityStatus {
                    last_poll: observed_at.to_string(),
                    outcome,
                    alerts: count,
                    alert_ids,
                    last_ok,
                },
            ));
        }
        for candidate in &mut candidates {
            candidate.matches.sort();
        }
        (candidates, statuses)
    }

    /// Feed alerts whose content matches the watchlist become candidates, with those matches:
    /// the relation an entity poll observes (related user, user evidence, logged-on users, file
    /// and process hashes), found by one hash lookup per value. The rest are counted and dropped;
    /// one that matches later (its evidence came late) is read again when it is updated.
    fn merge_feed(
        &self,
        feed: EntryAlerts,
        candidates: &mut Vec<Candidate>,
        by_id: &mut HashMap<String, usize>,
    ) {
        self.counters
            .add(&self.counters.alerts_received, feed.alerts.len() as u64);
        for rejected in &feed.rejected {
            tracing::error!(problem = %rejected, "feed alert skipped: unreadable");
        }
        self.counters
            .add(&self.counters.alerts_rejected, feed.rejected.len() as u64);
        for polled in feed.alerts {
            let matches = self.index.matches_in(polled.alert());
            if matches.is_empty() {
                self.counters.add(&self.counters.alerts_unmatched, 1);
                continue;
            }
            self.counters.add(&self.counters.alerts_matched, 1);
            if by_id.contains_key(polled.alert().id.as_ref()) {
                self.counters.add(&self.counters.duplicates_suppressed, 1);
                continue;
            }
            by_id.insert(polled.alert().id.to_string(), candidates.len());
            candidates.push(Candidate {
                polled,
                matches,
                found_by: FoundBy::Feed,
            });
        }
    }

    /// Encodes once per format; a sink with a size limit gets its own copy where an event is over.
    fn encode(
        &self,
        to_emit: &[(Candidate, Change)],
        observed_at: &str,
    ) -> Result<Vec<Arc<[OutEvent]>>, PipelineError> {
        let mut encoded: HashMap<Format, Arc<[OutEvent]>> = HashMap::new();
        let mut per_sink = Vec::with_capacity(self.sinks.len());
        for sink in &self.sinks {
            let format = sink.format();
            let events = match encoded.get(&format) {
                Some(events) => events.clone(),
                None => {
                    let mut events = Vec::with_capacity(to_emit.len());
                    for (candidate, change) in to_emit {
                        let context = self.context(candidate, *change, observed_at);
                        events.push(out_event(format, candidate, &context)?);
                    }
                    let events: Arc<[OutEvent]> = events.into();
                    encoded.insert(format, events.clone());
                    events
                }
            };
            let over = |event: &OutEvent| {
                sink.payload_limit(event)
                    .is_some_and(|limit| event.payload.len() > limit)
            };
            per_sink.push(if events.iter().any(over) {
                self.fit(sink.as_ref(), &events, to_emit, observed_at)?
                    .into()
            } else {
                events
            });
        }
        Ok(per_sink)
    }

    fn context<'a>(
        &'a self,
        candidate: &'a Candidate,
        change: Change,
        observed_at: &'a str,
    ) -> EventContext<'a> {
        EventContext {
            found_by: candidate.found_by,
            ..EventContext::new(
                &candidate.matches,
                &self.tenant_id,
                &self.collector,
                change,
                observed_at,
            )
        }
    }

    /// For a sink with a size limit (syslog): an event over it is shrunk into a whole, smaller
    /// event of its format (normalize::encode_within), counted and logged once per alert.
    fn fit(
        &self,
        sink: &dyn Sink,
        events: &[OutEvent],
        to_emit: &[(Candidate, Change)],
        observed_at: &str,
    ) -> Result<Vec<OutEvent>, PipelineError> {
        let mut fitted = Vec::with_capacity(events.len());
        for (event, (candidate, change)) in events.iter().zip(to_emit) {
            let limit = match sink.payload_limit(event) {
                Some(limit) if event.payload.len() > limit => limit,
                _ => {
                    fitted.push(event.clone());
                    continue;
                }
            };
            let context = self.context(candidate, *change, observed_at);
            let shrunk =
                normalize::encode_within(sink.format(), &candidate.polled, &context, limit)?;
            EventShrunk {
                sink: sink.name(),
                alert_id: &event.alert_id,
                bytes: event.payload.len(),
                shrunk_to: shrunk.payload.len(),
                limit,
                fits: shrunk.fits,
            }
            .emit(&self.counters);
            fitted.push(OutEvent {
                payload: shrunk.payload,
                ..event.clone()
            });
        }
        Ok(fitted)
    }

    /// Publishes every polled alert created at or after `since`, seen or not, and writes nothing
    /// to the store: a new SIEM gets the history while normal runs keep their dedup state.
    pub fn backfill(&mut self, since: chrono::DateTime<Utc>) {
        self.backfill = Some(Backfill {
            since_ms: since.timestamp_millis(),
            sent: HashSet::new(),
        });
    }

    /// Makes a failing sink end the run after `attempts` tries instead of retrying until it
    /// recovers: for `once` and `backfill`, which a cron job or an operator waits on.
    pub fn give_up_after(&mut self, attempts: u32) {
        self.give_up_after = Some(attempts.max(1));
    }

    /// The watchlist content matches are read against (after a reload).
    pub fn set_watch_index(&mut self, index: WatchIndex) {
        self.index = index;
    }

    /// Connects every sink ahead of the first batch; a sink that cannot connect is reported and
    /// retried when it is sent to.
    pub async fn connect(&mut self) {
        for sink in &mut self.sinks {
            if let Err(err) = sink.connect().await {
                tracing::warn!(sink = sink.name(), error = %err, "sink not reachable yet; its batches are retried until it is");
            }
        }
    }

    /// Flushes every sink and the store (at shutdown).
    pub async fn close(&mut self) -> Result<(), PipelineError> {
        for sink in &mut self.sinks {
            if let Err(err) = sink.flush().await {
                tracing::error!(error = %err, "flush failed at shutdown");
            }
        }
        self.store.flush()?;
        Ok(())
    }
}

/// An event shrunk to a sink's size limit: logged and counted together.
struct EventShrunk<'a> {
    sink: &'a str,
    alert_id: &'a str,
    bytes: usize,
    shrunk_to: usize,
    limit: usize,
    fits: bool,
}

impl EventShrunk<'_> {
    fn emit(&self, counters: &Counters) {
        counters.add(&counters.events_shortened, 1);
        if self.fits {
            tracing::warn!(sink = self.sink, alert = %self.alert_id, bytes = self.bytes, shrunk_to = self.shrunk_to, limit = self.limit, "event over the sink's size limit: free text trimmed and lists shortened, marked truncated");
        } else {
            counters.add(&counters.events_oversized, 1);
            tracing::error!(sink = self.sink, alert = %self.alert_id, bytes = self.shrunk_to, limit = self.limit, "event over the sink's size limit even shrunk: sent whole (raise max_message or pick a smaller format)");
        }
    }
}

fn push_match(matches: &mut Vec<Match>, found: Match) {
    if !matches
        .iter()
        .any(|m| m.kind == found.kind && m.value.eq_ignore_ascii_case(&found.value))
    {
        matches.push(found);
    }
}

fn out_event(
    format: Format,
    candidate: &Candidate,
    context: &EventContext,
) -> Result<OutEvent, PipelineError> {
    let alert = &candidate.polled.alert();
    let kinds = {
        let user = candidate
            .matches
            .iter()
            .any(|m| m.kind == crate::watchlist::EntryKind::User);
        let file = candidate
            .matches
            .iter()
            .any(|m| m.kind == crate::watchlist::EntryKind::File);
        match (user, file) {
            (true, true) => "user,file",
            (false, true) => "file",
            _ => "user",
        }
    };
    let time_ms = alert
        .alert_creation_time
        .as_deref()
        .or(alert.last_update_time.as_deref())
        .and_then(time::parse)
        .map(|t| t.timestamp_millis());
    Ok(OutEvent {
        alert_id: alert.id.to_string(),
        payload: normalize::encode(format, &candidate.polled, context)?,
        severity: Severity::parse(alert.severity.as_deref()),
        match_kinds: kinds,
        matches: normalize::matches_text(&candidate.matches),
        time_ms,
    })
}

/// A sink that fails is retried with backoff until it acknowledges: alerts are never dropped.
/// Only shutdown (or, for one-shot runs, `give_up_after` attempts) ends the wait, and then
/// nothing of the batch is committed.
async fn send_until_acked(
    sink: &mut dyn Sink,
    events: &[OutEvent],
    stop: &Shutdown,
    counters: &Counters,
    sink_counters: Option<&SinkCounters>,
    give_up_after: Option<u32>,
) -> Result<(), PipelineError> {
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        let result: Result<(), SinkError> = sink.send(events).await;
        if let Some(sink_counters) = sink_counters {
            sink_counters
                .sent
                .fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
            sink_counters.attempt(events.len(), result.is_ok());
        }
        match result {
            Ok(()) => {
                counters
                    .publish_latency
                    .observe(started.elapsed().as_secs_f64());
                return Ok(());
            }
            Err(err) => {
                counters.add(&counters.sink_failures, 1);
                let wait = crate::defender::errors::backoff(
                    attempt.min(6),
                    Duration::from_millis(500),
                    Duration::from_secs(30),
                    1.0,
                );
                attempt += 1;
                if give_up_after.is_some_and(|limit| attempt >= limit) {
                    return Err(PipelineError::GaveUp {
                        sink: sink.name().to_string(),
                        attempts: attempt,
                        pending: events.len(),
                        last: err.to_string(),
                    });
                }
                tracing::error!(sink = sink.name(), error = %err, retry_in_ms = wait.as_millis() as u64, pending = events.len(), "sink failed; retrying (nothing is dropped)");
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
