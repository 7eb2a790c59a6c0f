//! The config's plain sections: schedule, watchlist, store, updates and pipeline, each checked
//! into its typed settings with every problem named by its key.

use std::time::Duration;

use super::super::raw::{RawPipeline, RawSchedule, RawStore, RawUpdates, RawWatchlist};
use super::{Checker, DEFAULT_FLUSH_INTERVAL, DEFAULT_QUEUE_BYTES};
use crate::config::*;
use crate::schedule::cron;
use crate::units::parse_bytes;
use crate::watchlist::{self, ListSources, Watchlist};

impl Checker {
    pub(super) fn schedule(&mut self, raw: RawSchedule) -> ScheduleConfig {
        let schedule = ScheduleConfig {
            cron: raw.cron.unwrap_or_else(|| cron::DEFAULT_CRON.to_string()),
            run_on_start: raw.run_on_start.unwrap_or(true),
        };
        if let Err(err) = cron::parse(&schedule.cron) {
            self.problem(format!("schedule.cron: {err}"));
        }
        schedule
    }

    pub(super) fn watchlist(&mut self, raw: RawWatchlist) -> (ListSources, Watchlist) {
        let watchlist_sources = ListSources {
            users: raw.users,
            files: raw.files,
            users_file: raw.users_file.as_deref().map(|p| self.path(p)),
            files_file: raw.files_file.as_deref().map(|p| self.path(p)),
        };
        let report = watchlist::load(&watchlist_sources);
        self.problems
            .extend(report.errors.iter().map(ToString::to_string));
        if report.watchlist.is_empty() && report.errors.is_empty() {
            self.problem("watchlist: no users and no files to watch (set watchlist.users, watchlist.files or a list file)");
        }
        self.warnings.extend(report.warnings);
        (watchlist_sources, report.watchlist)
    }

    pub(super) fn store(&mut self, raw: RawStore) -> StoreConfig {
        StoreConfig {
            path: self.path(raw.path.as_deref().unwrap_or("/var/lib/mde-watch/store")),
            retention: self.duration(
                "store.retention",
                raw.retention.as_deref(),
                Duration::from_secs(90 * 86_400),
            ),
            cache_bytes: match raw.cache.as_deref() {
                None => 16 << 20,
                Some(text) => parse_bytes(text).unwrap_or_else(|err| {
                    self.problem(format!("store.cache: {err}"));
                    16 << 20
                }),
            },
            flush_interval: self.flush_interval(raw.flush_interval.as_deref()),
        }
    }

    /// `store.flush_interval`: at most a second, the interval sled flushes at on its own.
    fn flush_interval(&mut self, value: Option<&str>) -> Duration {
        let interval = self.duration("store.flush_interval", value, DEFAULT_FLUSH_INTERVAL);
        if interval > Duration::from_secs(1) {
            self.problem(format!(
                "store.flush_interval: '{}' is longer than a second, and the store flushes every second anyway (0s flushes every commit)",
                value.unwrap_or_default()
            ));
            return DEFAULT_FLUSH_INTERVAL;
        }
        interval
    }

    pub(super) fn updates(&mut self, raw: RawUpdates) -> UpdatePolicy {
        match raw.policy.as_deref().unwrap_or("ignore") {
            "ignore" => UpdatePolicy::Ignore,
            "emit" => UpdatePolicy::Emit,
            other => {
                self.problem(format!(
                    "updates.policy: '{other}' is not a policy (ignore | emit)"
                ));
                UpdatePolicy::Ignore
            }
        }
    }

    pub(super) fn pipeline(&mut self, raw: RawPipeline) -> PipelineConfig {
        PipelineConfig {
            batch_entries: self.at_least_one("pipeline.batch_entries", raw.batch_entries, 64),
            concurrency: self.at_least_one("pipeline.concurrency", raw.concurrency, 4),
            queue_batches: self.at_least_one("pipeline.queue_batches", raw.queue_batches, 4),
            in_flight_batches: match raw.in_flight_batches {
                None => 2,
                Some(n @ 1..=16) => n,
                Some(n) => {
                    self.problem(format!(
                        "pipeline.in_flight_batches: {n} is out of range (1 to 16)"
                    ));
                    2
                }
            },
            queue_bytes: match raw.queue_bytes.as_deref() {
                None => DEFAULT_QUEUE_BYTES,
                Some(text) => match parse_bytes(text) {
                    Ok(bytes) if bytes >= 64 << 10 => bytes,
                    Ok(_) => {
                        self.problem(format!(
                            "pipeline.queue_bytes: '{text}' is too small (at least 64KiB)"
                        ));
                        DEFAULT_QUEUE_BYTES
                    }
                    Err(err) => {
                        self.problem(format!("pipeline.queue_bytes: {err}"));
                        DEFAULT_QUEUE_BYTES
                    }
                },
            },
        }
    }
}
