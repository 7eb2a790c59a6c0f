//! The service as a daemon: sweeps on the cron schedule (tokio-cron-scheduler), the systemd
//! watchdog and status line fed while they run, SIGHUP reloads applied between sweeps, and the
//! drain on shutdown. What one sweep does is [`Service::sweep`]'s, in `mod.rs`.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};

use super::reload::{self, Reload, WatchlistChange};
use super::status::{self, status_line, StatusFacts};
use super::{plan_for, AppError, Scope, Service};
use crate::config::Config;
use crate::notify::Notifier;
use crate::pipeline::{PipelineError, WatchIndex};
use crate::schedule::cron;
use crate::schedule::gate::RateGate;
use crate::stats::{Counters, Snapshot};
use crate::watchlist::Entry;

impl Service {
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
        let (mut scheduler, mut tick_receiver) = start_cron(&self.config.schedule.cron).await?;
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
        if reload::credential_rotated(&self.config, &new) {
            tracing::info!("a new API credential is in its files: it is taken when Entra ID refuses the one in use, no restart needed");
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

/// Starts tokio-cron-scheduler on `cron`; each tick arrives on the receiver, and a tick that
/// comes while the previous sweep still runs is dropped (and logged), never queued.
async fn start_cron(cron: &str) -> Result<(JobScheduler, mpsc::Receiver<()>), AppError> {
    let scheduler_failed = |source| AppError::Scheduler {
        what: "the scheduler".into(),
        source,
    };
    let (ticks, tick_receiver) = mpsc::channel::<()>(1);
    let scheduler = JobScheduler::new().await.map_err(scheduler_failed)?;
    let job = Job::new_async(cron, move |_, _| {
        let ticks = ticks.clone();
        Box::pin(async move {
            if ticks.try_send(()).is_err() {
                tracing::warn!("cron tick skipped: the previous sweep is still running");
            }
        })
    })
    .map_err(|source| AppError::Scheduler {
        what: format!("cron '{cron}'"),
        source,
    })?;
    scheduler.add(job).await.map_err(scheduler_failed)?;
    scheduler.start().await.map_err(scheduler_failed)?;
    Ok((scheduler, tick_receiver))
}
