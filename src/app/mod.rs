//! The running service: builds the client, store, sinks and pipeline from a [`Config`], chooses
//! what each sweep reads (the round-robin slice, the feed from its cursor, a reload's additions)
//! and hands it to [`crate::pipeline::sweep`], drives sweeps from tokio-cron-scheduler with the
//! watchdog, reloads and status line, and drains on shutdown.

pub mod check;
pub mod demo;
pub mod reload;
pub mod security;
pub mod state;
pub mod status;

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::Instrument;

use self::reload::{Reload, WatchlistChange};
use self::status::{status_line, StatusFacts};
use crate::config::Config;
use crate::defender::{ApiError, DefenderClient};
use crate::notify::Notifier;
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
    #[error("scheduler: {0}")]
    Scheduler(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{what}: {source}")]
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

/// What the status line is read from, detached from the service so it can be read while a
/// sweep borrows the service.
struct StatusSource {
    counters: Arc<Counters>,
    gate: Arc<RateGate>,
    windows: Vec<crate::schedule::limiter::Window>,
    cron: Option<croner::Cron>,
    last_sweep: Option<(chrono::DateTime<Utc>, usize)>,
}

impl StatusSource {
    fn facts(&self, sweeping: Option<(u64, usize)>) -> StatusFacts {
        let now = Utc::now();
        StatusFacts {
            sweeping,
            next_sweep: self
                .cron
                .as_ref()
                .and_then(|cron| cron.find_next_occurrence(&now, false).ok()),
            budget: status::budget_used(
                &self.gate.recent_calls_wall_ms(),
                now.timestamp_millis(),
                &self.windows,
            ),
            last_sweep: self.last_sweep,
            published: self.counters.snapshot().alerts_published,
        }
    }
}

/// The next SIGHUP's config, once it reads and validates; an invalid one is logged and waited
/// past (the running config stays). Never resolves without a reload source.
async fn reloaded(reload: &mut Option<Reload>) -> Option<Config> {
    let Some(reload) = reload else {
        return std::future::pending().await;
    };
    loop {
        reload.requested().await;
        tracing::info!(path = %reload.path.display(), "SIGHUP: reading the config again");
        match Config::load(&reload.path) {
            Ok(config) => return Some(config),
            Err(err) => {
                for problem in &err.problems {
                    tracing::error!(config = %err.source_name, "reload refused, the running config stays: {problem}");
                }
            }
        }
    }
}

/// How often the main loop proves it is alive: what systemd asked for, else every 30 s (the
/// status line is refreshed on the same beat).
fn heartbeat(notifier: &Notifier) -> tokio::time::Interval {
    let period = notifier
        .watchdog_interval()
        .unwrap_or(std::time::Duration::from_secs(30));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
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
            match self.store.entity(&entry.key())?.and_then(|s| s.last_ok) {
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
            concurrency: self.config.pipeline.concurrency,
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

    /// Runs sweeps on the cron schedule until shutdown, then drains and flushes. `notifier`
    /// tells systemd when the service is ready, what it is doing, that its main loop is alive,
    /// and when it stops.
    pub async fn run(
        mut self,
        notifier: Arc<Notifier>,
        mut reload: Option<Reload>,
    ) -> Result<Snapshot, AppError> {
        for line in self.plan.to_string().lines() {
            tracing::info!("{line}");
        }
        for warning in self.plan.warnings() {
            tracing::warn!("{warning}");
        }
        let (ticks, mut tick_receiver) = mpsc::channel::<()>(1);
        let mut scheduler = JobScheduler::new()
            .await
            .map_err(|e| AppError::Scheduler(e.to_string()))?;
        let job = Job::new_async(self.config.schedule.cron.as_str(), move |_, _| {
            let ticks = ticks.clone();
            Box::pin(async move {
                if ticks.try_send(()).is_err() {
                    tracing::warn!("cron tick skipped: the previous sweep is still running");
                }
            })
        })
        .map_err(|e| AppError::Scheduler(format!("cron '{}': {e}", self.config.schedule.cron)))?;
        scheduler
            .add(job)
            .await
            .map_err(|e| AppError::Scheduler(e.to_string()))?;
        scheduler
            .start()
            .await
            .map_err(|e| AppError::Scheduler(e.to_string()))?;

        let mut stop = self.stop.clone();
        let stopping = notifier.clone();
        let mut stop_seen = self.stop.clone();
        tokio::spawn(async move {
            stop_seen.wait().await;
            stopping
                .stopping("stopping: finishing the batch in flight, flushing sinks and the store");
        });

        self.connect().await;
        if let Some(listen) = self.config.telemetry.listen {
            crate::telemetry::server::serve(listen, self.telemetry_sources(), self.stop.clone())
                .await
                .map_err(|source| AppError::Io {
                    what: format!("telemetry.listen {listen}"),
                    source,
                })?;
        }
        notifier.ready(&status_line(&self.status_facts(None)));
        let mut heartbeat = heartbeat(&notifier);
        let mut outcome = Ok(());
        if self.config.schedule.run_on_start {
            outcome = self.watched_sweep(&notifier, None, &mut reload).await;
        }
        while outcome.is_ok() && !self.stop.is_triggered() {
            tokio::select! {
                tick = tick_receiver.recv() => {
                    if tick.is_none() { break; }
                    outcome = self.watched_sweep(&notifier, None, &mut reload).await;
                }
                Some(new) = reloaded(&mut reload) => {
                    let added = self.apply(new);
                    notifier.status(&status_line(&self.status_facts(None)));
                    if !added.is_empty() {
                        outcome = self.watched_sweep(&notifier, Some(added), &mut reload).await;
                    }
                }
                _ = heartbeat.tick() => {
                    notifier.watchdog();
                    notifier.status(&status_line(&self.status_facts(None)));
                }
                _ = stop.wait() => break,
            }
        }
        let _ = scheduler.shutdown().await;
        self.pipeline.close().await?;
        match outcome {
            Err(AppError::Pipeline(PipelineError::Undelivered { .. }))
                if self.stop.is_triggered() =>
            {
                tracing::warn!("stopped with undelivered alerts; they were not committed and will be sent after the restart");
            }
            other => other?,
        }
        Ok(self.counters.snapshot())
    }

    /// One planned sweep, with the watchdog fed and the status kept current while it runs: the
    /// keep-alive comes from this loop, so a sweep that hangs stops it and systemd restarts us.
    /// A SIGHUP during the sweep is read and checked at once (errors logged then); a valid
    /// config is applied when the sweep ends, so the work in flight is untouched.
    async fn watched_sweep(
        &mut self,
        notifier: &Notifier,
        only: Option<Vec<Entry>>,
        reload: &mut Option<Reload>,
    ) -> Result<(), AppError> {
        let mut heartbeat = heartbeat(notifier);
        let polled_before = self.counters.snapshot().entries_polled;
        let total = match &only {
            Some(entries) => entries.len(),
            // A round-robin sweep goes on while its calls last, up to one entry per call.
            None if self.plan.round_robin() => {
                (self.plan.calls_per_sweep as usize).min(self.config.watchlist.len())
            }
            None => self.plan.entries_per_sweep.min(self.config.watchlist.len()),
        };
        let facts = self.status_source();
        let mut waiting_config = None;
        let report = {
            let sweep = async {
                match only {
                    Some(entries) => self.catch_up(entries.into()).await,
                    None => self.sweep(Scope::Planned).await,
                }
            };
            tokio::pin!(sweep);
            loop {
                tokio::select! {
                    report = &mut sweep => break report,
                    _ = heartbeat.tick() => {
                        notifier.watchdog();
                        let polled = facts.counters.snapshot().entries_polled - polled_before;
                        notifier.status(&status_line(&facts.facts(Some((polled, total)))));
                    }
                    Some(new) = reloaded(reload) => {
                        tracing::info!("reloaded config is valid; it applies when this sweep ends");
                        waiting_config = Some(new);
                    }
                }
            }
        };
        if report.is_ok() {
            self.last_sweep = report.as_ref().ok().map(|r| (Utc::now(), r.failed.len()));
        }
        let mut outcome = report.map(|_| ());
        if let Some(new) = waiting_config {
            let added = self.apply(new);
            if outcome.is_ok() && !added.is_empty() {
                outcome = Box::pin(self.watched_sweep(notifier, Some(added), reload)).await;
            }
        }
        notifier.status(&status_line(&self.status_facts(None)));
        outcome
    }

    /// Takes the reloaded config's watchlist; returns the entries it added, to be polled now.
    fn apply(&mut self, new: Config) -> Vec<Entry> {
        for warning in &new.warnings {
            tracing::warn!("{warning}");
        }
        let later = reload::needs_restart(&self.config, &new);
        if !later.is_empty() {
            tracing::warn!(sections = %later.join(", "), "changed settings take effect at the next restart; only the watchlist is applied on reload");
        }
        let change = WatchlistChange::between(&self.config.watchlist, &new.watchlist);
        self.config.watchlist = new.watchlist;
        self.config.watchlist_sources = new.watchlist_sources;
        self.plan = plan_for(&self.config);
        self.pipeline
            .set_watch_index(WatchIndex::new(&self.config.watchlist));
        tracing::info!(
            added = change.added.len(),
            removed = change.removed.len(),
            entries = self.config.watchlist.len(),
            "watchlist reloaded"
        );
        for line in self.plan.to_string().lines() {
            tracing::info!("{line}");
        }
        change.added
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

    fn status_source(&self) -> StatusSource {
        StatusSource {
            counters: self.counters.clone(),
            gate: self.gate.clone(),
            windows: self.config.limits.clone(),
            cron: cron::parse(&self.config.schedule.cron).ok(),
            last_sweep: self.last_sweep,
        }
    }

    fn status_facts(&self, sweeping: Option<(u64, usize)>) -> StatusFacts {
        self.status_source().facts(sweeping)
    }

    /// Flushes sinks and the store.
    pub async fn close(mut self) -> Result<Snapshot, AppError> {
        self.pipeline.close().await?;
        Ok(self.counters.snapshot())
    }
}
