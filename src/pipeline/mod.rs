//! The flow of a sweep, all of it: polling ([`poll`]), the poller and the publisher joined
//! ([`sweep`]), and each polled batch through merge → dedup → encode → sinks → commit
//! (`commit.rs`, the one place ids are committed). Alerts reached through several
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
mod commit;
mod encode;
mod events;
mod intake;
mod matches;
mod merge;
pub mod poll;
pub mod sweep;

use events::EventsSent;

pub use budget::{ByteBudget, Held};
pub use matches::WatchIndex;
pub use sweep::SweepReport;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tracing::Instrument;

use crate::config::UpdatePolicy;
use crate::defender::{time, ApiError, EntryAlerts, PolledAlert};
use crate::errors::Chain;
use crate::normalize::{self, Change, FoundBy, Match};
use crate::shutdown::Shutdown;
use crate::sinks::{Events, Pending, Sink, SinkError};
use crate::stats::{Counters, SinkCounters};
use crate::store::{
    decide, AlertDigest, Decision, EntityStatus, SeenKey, SeenRecord, Store, StoreError,
};
use crate::watchlist::Entry;

/// The maps a batch builds per alert, keyed by alert ids (from the API) and watchlist keys
/// (from the config): FxHash, not SipHash, which was ~3% of the instructions per alert. Nobody
/// who could choose colliding keys fills them, so their keys do not pile up in one place; a
/// lookup of a value an alert carries (a crafted account name) costs what any lookup costs.
type FastMap<K, V> = HashMap<K, V, fxhash::FxBuildHasher>;

/// An alert id's hash in merge's index of a batch's alerts (FxHash, as in [`FastMap`]).
fn id_hash(id: &str) -> u64 {
    fxhash::FxBuildHasher::default().hash_one(id)
}

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
    #[error("sink '{sink}' still failing after {attempts} retries; {pending} alert(s) not committed (they go out on the next run); the last failure")]
    GaveUp {
        sink: String,
        attempts: u32,
        pending: usize,
        #[source]
        last: SinkError,
    },
    #[error(transparent)]
    Normalize(#[from] normalize::NormalizeError),
    #[error("the poller stopped")]
    PollerStopped(#[source] tokio::task::JoinError),
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

/// What a pipeline is built from.
pub struct PipelineParts {
    pub store: Arc<Store>,
    pub sinks: Vec<Box<dyn Sink>>,
    pub updates: UpdatePolicy,
    /// Named in every event (`mde_watch.tenant_id`).
    pub tenant_id: String,
    /// Named in every event (`mde_watch.collector`).
    pub collector: String,
    /// The watchlist, for the matches an alert's own content names.
    pub index: WatchIndex,
    pub counters: Arc<Counters>,
    pub stop: Shutdown,
    /// Batches handed to the sinks and not yet acknowledged, at most (`[pipeline]`).
    pub in_flight_batches: usize,
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
        let created = alert.created_or_updated_ms();
        if !created.is_some_and(|at| at >= self.since_ms) {
            return false;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&*alert.id, &mut hasher);
        self.sent.insert(std::hash::Hasher::finish(&hasher))
    }
}

/// What a batch will commit of each alert, by its id's key (hashed once, when judged).
type Records = FastMap<SeenKey, (String, SeenRecord)>;

/// A batch handed to the sinks, committed once every sink acknowledged it.
struct InFlight {
    records: Records,
    statuses: Vec<(String, EntityStatus)>,
    cursor_after: Option<u64>,
    feed_cursor_after: Option<i64>,
    published: usize,
    /// What each sink was given, kept for a resend.
    events: Vec<Events>,
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

type Matches = smallvec::SmallVec<[Match; 2]>;

/// One alert of the batch with every match found for it.
struct Candidate {
    polled: PolledAlert,
    /// Inline: nearly every alert is reached through one or two entries.
    matches: Matches,
    found_by: FoundBy,
}

impl Pipeline {
    pub fn new(parts: PipelineParts) -> Pipeline {
        let names = parts
            .sinks
            .iter()
            .map(|s| SinkCounters::named(s.name()))
            .collect();
        // Set once per set of counters; a second pipeline on the same counters keeps the first's.
        let _ = parts.counters.sinks.set(names);
        Pipeline {
            store: parts.store,
            sinks: parts.sinks,
            updates: parts.updates,
            tenant_id: parts.tenant_id,
            collector: parts.collector,
            index: parts.index,
            counters: parts.counters,
            stop: parts.stop,
            in_flight: VecDeque::new(),
            in_flight_limit: parts.in_flight_batches.max(1),
            backfill: None,
            give_up_after: None,
        }
    }

    /// Decides, normalizes and hands one batch to the sinks; commits the batches ahead of it
    /// whose acknowledgements are in, oldest first, keeping at most `in_flight` unacknowledged.
    pub async fn process(&mut self, batch: PolledBatch) -> Result<(), PipelineError> {
        let span = tracing::info_span!("publish", entries = batch.results.len());
        let outcome = self.process_inner(batch).instrument(span).await;
        self.forget_on_error(outcome)
    }

    /// After an error nothing in flight is committed: those batches go out again after the
    /// restart (or the next run), and the pipeline holds none of them.
    fn forget_on_error(&mut self, outcome: Result<(), PipelineError>) -> Result<(), PipelineError> {
        if outcome.is_err() {
            self.in_flight.clear();
        }
        outcome
    }

    /// Waits for every outstanding acknowledgement and commits (at the end of a sweep).
    pub async fn drain(&mut self) -> Result<(), PipelineError> {
        let span = tracing::info_span!("publish", entries = 0);
        let outcome = async {
            while !self.in_flight.is_empty() {
                self.commit_after_acks().await?;
            }
            // A sweep's end is durable before the service idles until the next tick.
            self.store.flush_behind()?;
            Ok(())
        }
        .instrument(span)
        .await;
        self.forget_on_error(outcome)
    }

    async fn process_inner(&mut self, batch: PolledBatch) -> Result<(), PipelineError> {
        let now = Utc::now();
        let now_secs = now.timestamp();
        let observed_at = time::format(now);
        let (candidates, statuses) = self.merge(batch.results, batch.feed, &observed_at);

        let mut records: Records =
            FastMap::with_capacity_and_hasher(candidates.len(), Default::default());
        let mut to_emit: Vec<(Candidate, Change)> = Vec::with_capacity(candidates.len());
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
            self.judge(candidate, now_secs, &mut records, &mut to_emit)?;
        }

        let published = to_emit.len();
        let events = self.encode(&to_emit, &observed_at)?;
        drop(to_emit);
        let acks = self.start_sends(&events).await;
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
            self.commit_after_acks().await?;
        }
        Ok(())
    }

    /// Decides one candidate against what is known of it: new and (per the update policy)
    /// changed alerts are to be published, and what the store will hold of it once committed
    /// goes into `records` (an unchanged alert only when its last sighting is stale).
    fn judge(
        &self,
        candidate: Candidate,
        now_secs: i64,
        records: &mut Records,
        to_emit: &mut Vec<(Candidate, Change)>,
    ) -> Result<(), StoreError> {
        let digest = AlertDigest::of(candidate.polled.alert());
        let key = SeenKey::of(&candidate.polled.alert().id);
        let previous = self.previous(key)?;
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
                records.insert(key, (id, record));
                to_emit.push((candidate, Change::New));
            }
            Decision::Changed if self.updates == UpdatePolicy::Emit => {
                self.counters.add(&self.counters.alerts_changed, 1);
                records.insert(key, (id, record));
                to_emit.push((candidate, Change::Updated));
            }
            Decision::Changed => {
                self.counters.add(&self.counters.alerts_changed, 1);
                self.counters.add(&self.counters.changes_ignored, 1);
                records.insert(key, (id, record));
            }
            Decision::Unchanged => {
                self.counters.add(&self.counters.alerts_unchanged, 1);
                self.counters.add(&self.counters.duplicates_suppressed, 1);
                let previous = previous.unwrap_or(record);
                if now_secs - previous.last_observed >= TOUCH_EVERY_SECS {
                    let touched = SeenRecord {
                        last_observed: now_secs,
                        ..previous
                    };
                    records.insert(key, (id, touched));
                }
            }
        }
        Ok(())
    }

    /// Hands each sink its events; their acknowledgements are awaited when the batch commits.
    async fn start_sends(&mut self, events: &[Events]) -> Vec<Ack> {
        let mut acks = Vec::with_capacity(self.sinks.len());
        for (i, (sink, events)) in self.sinks.iter_mut().zip(events).enumerate() {
            EventsSent {
                sink: self.counters.sinks().get(i),
                events: events.len(),
            }
            .emit();
            acks.push(if events.is_empty() {
                Ack::Settled
            } else {
                Ack::Pending(sink.start(events).await)
            });
        }
        acks
    }

    /// What the store (or a batch still in flight, which is newer) knows of an alert.
    fn previous(&self, key: SeenKey) -> Result<Option<SeenRecord>, StoreError> {
        let mut newest_first = self.in_flight.iter().rev();
        if let Some((_, record)) = newest_first.find_map(|b| b.records.get(&key)) {
            return Ok(Some(*record));
        }
        self.store.previous_of(key)
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
                tracing::warn!(sink = sink.name(), error = %Chain(&err), "sink not reachable yet; its batches are retried until it is");
            }
        }
    }

    /// Flushes every sink and the store (at shutdown).
    pub async fn close(&mut self) -> Result<(), PipelineError> {
        for sink in &mut self.sinks {
            if let Err(err) = sink.flush().await {
                tracing::error!(error = %Chain(&err), "flush failed at shutdown");
            }
        }
        self.store.flush()?;
        Ok(())
    }
}
