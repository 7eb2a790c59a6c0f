//! The running service: builds the client, store, sinks and pipeline from a [`Config`], chooses
//! what each sweep reads (the round-robin slice, the feed from its cursor, a reload's additions)
//! and hands it to [`crate::pipeline::sweep`]. Running it as a daemon (cron, watchdog, status
//! line, reloads, the drain on shutdown) is `daemon.rs`.

pub mod check;
mod daemon;
pub mod demo;
pub mod reload;
pub mod security;
pub mod state;
pub mod status;

use std::sync::Arc;

use chrono::Utc;
use tracing::Instrument;

use crate::config::Config;
use crate::defender::{ApiError, DefenderClient};
use crate::pipeline::poll::{CursorUse, FeedPlan, PollPlan, Reach};
use crate::pipeline::sweep::{self, Source};
pub use crate::pipeline::SweepReport;
use crate::pipeline::{ByteBudget, Pipeline, PipelineError, PipelineParts, WatchIndex};
use crate::schedule::cron;
use crate::schedule::gate::RateGate;
use crate::schedule::plan::Plan;
use crate::shutdown::Shutdown;
use crate::sinks::{self, SinkError};
use crate::stats::{Counters, Snapshot};
use crate::store::{Store, StoreError};
use crate::watchlist::Entry;

/// Stored alerts retention looks at after each sweep: bounded work per sweep, the whole store
/// covered every few hours at the default cadence.

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("scheduler: {what}")]
    Scheduler {
        what: String,
        #[source]
        source: tokio_cron_scheduler::JobSchedulerError,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    DemoDir(#[from] demo::DemoDirError),
}

/// Which entries a sweep polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The plan's round-robin slice (what cron ticks run).
    Planned,
    /// Every entry once (`once`, the demo).
    Full,
}

pub struct Service {
    /// Entity polls or the feed, as `[source] mode` and the plan decided.
    source: crate::feed::Choice,
    config: Config,
    store: Arc<Store>,
    client: Arc<DefenderClient>,
    gate: Arc<RateGate>,
    pipeline: Pipeline,
    plan: Plan,
    counters: Arc<Counters>,
    stop: Shutdown,
    /// When the last sweep ended and how many of its entries failed (for the status line).
    last_sweep: Option<(chrono::DateTime<Utc>, usize)>,
    /// Seconds since the epoch when the service was built (health counts from here).
    started: i64,
}

/// The plan for a config, as `check` and the start-up log print it.
pub fn plan_for(config: &Config) -> Plan {
    let interval = cron::parse(&config.schedule.cron)
        .ok()
        .and_then(|c| cron::shortest_interval(&c, Utc::now(), 64))
        .unwrap_or(std::time::Duration::from_secs(300));
    Plan::compute(
        config.watchlist.users().count(),
        config.watchlist.files().count(),
        interval,
        &config.limits,
    )
}

impl Service {
    pub fn build(config: Config, stop: Shutdown) -> Result<Service, AppError> {
        let counters = Arc::new(Counters::default());
        let store = Arc::new(Store::open(&config.store)?);
        let gate = Arc::new(RateGate::new(&config.limits));
        gate.restore(&store.recent_calls()?);
        let client = Arc::new(DefenderClient::new(
            &config.api,
            gate.clone(),
            stop.clone(),
            counters.clone(),
        )?);
        let sinks = sinks::build(&config.sinks, &config.api.tenant_id, &config.collector)?;
        let pipeline = Pipeline::new(PipelineParts {
            store: store.clone(),
            sinks,
            updates: config.updates,
            tenant_id: config.api.tenant_id.clone(),
            collector: config.collector.clone(),
            index: WatchIndex::new(&config.watchlist),
            counters: counters.clone(),
            stop: stop.clone(),
            in_flight_batches: config.pipeline.in_flight_batches,
        });
        let plan = plan_for(&config);
        let source = crate::feed::choose(config.alert_source.mode, &plan);
        Ok(Service {
            source,
            config,
            store,
            client,
            gate,
            pipeline,
            plan,
            counters,
            stop,
            last_sweep: None,
            started: Utc::now().timestamp(),
        })
    }

    /// Ends a sweep whose sink still fails after `attempts` deliveries (one-shot commands).
    pub fn give_up_after(&mut self, attempts: u32) {
        self.pipeline.give_up_after(attempts);
    }

    /// Connects the sinks (before the first sweep).
    pub async fn connect(&mut self) {
        self.pipeline.connect().await;
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Which source sweeps read, and why.
    pub fn source(&self) -> &crate::feed::Choice {
        &self.source
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store, shared: to look at it while a sweep runs elsewhere.
    pub fn store_handle(&self) -> Arc<Store> {
        self.store.clone()
    }

    pub fn counters(&self) -> Snapshot {
        self.counters.snapshot()
    }

    /// Polls the scope's entries (or reads the feed, in feed mode), publishing batch by batch
    /// as they arrive.
    pub async fn sweep(&mut self, scope: Scope) -> Result<SweepReport, AppError> {
        if self.source.feed {
            let cursor = match self.store.feed_cursor()? {
                Some(cursor) => Some(cursor),
                None => self.entity_polls_left_off()?,
            };
            let first = crate::feed::slices::first(
                cursor,
                self.config.alert_source.lookback,
                self.config.alert_source.since,
                Utc::now(),
            );
            let span = tracing::info_span!("sweep", source = "feed");
            return self
                .sweep_feed(first, CursorUse::Moves)
                .instrument(span)
                .await;
        }
        let entries = self.config.watchlist.entries.clone();
        let total = entries.len();
        if total == 0 {
            return Ok(SweepReport::default());
        }
        let start = (self.store.cursor()? % total as u64) as usize;
        let (count, calls) = match scope {
            Scope::Full => (total, None),
            Scope::Planned => (
                self.plan.entries_per_sweep.min(total),
                self.plan.round_robin().then_some(self.plan.calls_per_sweep),
            ),
        };
        let span = tracing::info_span!("sweep", entries = count, start);
        let reach = Reach::RoundRobin {
            start,
            count,
            calls,
        };
        self.sweep_entries(entries, reach).instrument(span).await
    }

    /// For the first feed poll on a store that entity polls filled: where they left off.
    fn entity_polls_left_off(&self) -> Result<Option<i64>, AppError> {
        let entries = &self.config.watchlist.entries;
        let mut last_ok = Vec::with_capacity(entries.len());
        for entry in entries.iter() {
            let status = self.store.entity(&entry.key()).unwrap_or_else(|err| {
                // Damaged, it says nothing of where polls left off: the feed starts from its
                // own look-back, as for an entry never read whole.
                tracing::warn!(error = %crate::errors::Chain(&err), "entity status unreadable");
                None
            });
            match status.and_then(|s| s.last_ok) {
                Some(time) => last_ok.push(Some(time)),
                // One entry never read whole decides it: no need to read the others.
                None => return Ok(None),
            }
        }
        let left_off =
            crate::feed::slices::entity_polls_left_off(last_ok.iter().map(Option::as_deref));
        if let Some(micros) = left_off {
            let at = chrono::DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
            tracing::info!(
                from = %crate::defender::time::format(at),
                "first feed poll starts where the entity polls left off (less the look-back)"
            );
        }
        Ok(left_off)
    }

    /// Polls every entry once and publishes each alert created at or after `since`, whether
    /// or not it was shipped before; the store is left as it was (see [`Pipeline::backfill`]).
    pub async fn backfill(
        &mut self,
        since: chrono::DateTime<Utc>,
    ) -> Result<SweepReport, AppError> {
        self.pipeline.backfill(since);
        if self.source.feed {
            // The feed from `since` on, matched as usual; the cursor stays where it is.
            let from = crate::defender::time::to_micros(since);
            let first = crate::feed::Slice {
                from: Some(from),
                to: None,
            };
            let span = tracing::info_span!("sweep", source = "feed", backfill = %since);
            return self
                .sweep_feed(first, CursorUse::Stays)
                .instrument(span)
                .await;
        }
        let entries = self.config.watchlist.entries.clone();
        self.sweep_only(entries).await
    }

    /// Publishes the alerts of `entries` (added by a reload) from before they were watched. In
    /// entity mode that is a poll of each; in feed mode one read of the feed from `since` (a
    /// few queries, where polling thousands of added hashes would hold the feed up for hours),
    /// deduplicated as usual so only the added entries' alerts are new, with the cursor left
    /// where it is.
    async fn catch_up(&mut self, entries: Arc<[Entry]>) -> Result<SweepReport, AppError> {
        if !self.source.feed {
            return self.sweep_only(entries).await;
        }
        let first = crate::feed::slices::first(
            None,
            self.config.alert_source.lookback,
            self.config.alert_source.since,
            Utc::now(),
        );
        let span = tracing::info_span!("sweep", source = "feed", added = entries.len());
        self.sweep_feed(first, CursorUse::Stays)
            .instrument(span)
            .await
    }

    /// Polls just `entries` (added by a reload), leaving the round-robin cursor where it is.
    pub async fn sweep_only(&mut self, entries: Arc<[Entry]>) -> Result<SweepReport, AppError> {
        let total = entries.len();
        if total == 0 {
            return Ok(SweepReport::default());
        }
        let span = tracing::info_span!("sweep", entries = total, start = "added");
        self.sweep_entries(entries, Reach::Only)
            .instrument(span)
            .await
    }

    /// Polls the `reach` of `entries`.
    async fn sweep_entries(
        &mut self,
        entries: Arc<[Entry]>,
        reach: Reach,
    ) -> Result<SweepReport, AppError> {
        tracing::info!("sweep started");
        let plan = PollPlan {
            entries,
            reach,
            batch_entries: self.config.pipeline.batch_entries,
            concurrency: self.config.pipeline.concurrency,
            budget: ByteBudget::new(self.config.pipeline.queue_bytes),
        };
        self.run_sweep(Source::Entries(plan)).await
    }

    /// Reads the tenant's feed from `first` on and publishes what matches the watchlist.
    async fn sweep_feed(
        &mut self,
        first: crate::feed::Slice,
        cursor_use: CursorUse,
    ) -> Result<SweepReport, AppError> {
        tracing::info!(why = %self.source.why, "feed poll started");
        let plan = FeedPlan {
            settings: self.config.alert_source.clone(),
            first,
            cursor_use,
            cursor: self.store.feed_cursor()?,
            budget: ByteBudget::new(self.config.pipeline.queue_bytes),
        };
        self.run_sweep(Source::Feed(plan)).await
    }

    /// Runs one sweep through the pipeline; then records its outcome and maintains the store.
    async fn run_sweep(&mut self, source: Source) -> Result<SweepReport, AppError> {
        let shared = sweep::Shared {
            client: self.client.clone(),
            counters: self.counters.clone(),
            stop: self.stop.clone(),
            gate: self.gate.clone(),
            store: self.store.clone(),
            queue_batches: self.config.pipeline.queue_batches,
        };
        let report = sweep::run(&mut self.pipeline, source, &shared).await?;
        if report.polled_some() {
            self.counters.last_sweep_ok.store(
                Utc::now().timestamp().max(0) as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        self.maintain_store()?;
        tracing::info!(
            failed = report.failed.len(),
            cancelled = report.cancelled,
            "sweep finished"
        );
        Ok(report)
    }

    /// Retention and compaction after a sweep, when due (see [`Store::maintain`]).
    fn maintain_store(&self) -> Result<(), AppError> {
        let now = Utc::now().timestamp();
        let cutoff = now - self.config.store.retention.as_secs() as i64;
        let started = std::time::Instant::now();
        if let Some(done) = self.store.maintain(cutoff, now)? {
            tracing::info!(
                forgotten = done.expired,
                kept = done.kept,
                superseded_dropped = done.dropped,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "store compacted; forgotten alerts were not observed within the retention period"
            );
        }
        Ok(())
    }

    /// What metrics and `/healthz` read.
    pub fn telemetry_sources(&self) -> crate::telemetry::Sources {
        crate::telemetry::Sources {
            counters: self.counters.clone(),
            gate: self.gate.clone(),
            windows: self.config.limits.clone(),
            store: self.store.clone(),
            cadence: self.plan.cron_interval.max(self.plan.sweep_takes),
            started: self.started,
            feed: self.source.feed,
        }
    }

    /// Flushes sinks and the store.
    pub async fn close(mut self) -> Result<Snapshot, AppError> {
        self.pipeline.close().await?;
        Ok(self.counters.snapshot())
    }
}
