//! Counters the run summary, `state` and the metrics read. Atomics: the client, the poller and
//! the pipeline update them from different tasks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use serde::Serialize;

#[derive(Debug, Default)]
pub struct Counters {
    pub sweeps: AtomicU64,
    pub entries_polled: AtomicU64,
    pub entries_failed: AtomicU64,
    pub calls: AtomicU64,
    pub throttled: AtomicU64,
    pub alerts_received: AtomicU64,
    pub alerts_rejected: AtomicU64,
    pub alerts_published: AtomicU64,
    pub duplicates_suppressed: AtomicU64,
    pub changes_ignored: AtomicU64,
    pub sink_failures: AtomicU64,
    /// Events shrunk to a sink's size limit (free text trimmed, lists shortened).
    pub events_shortened: AtomicU64,
    /// Of those, events still over the limit at their smallest (sent whole anyway).
    pub events_oversized: AtomicU64,
    /// Feed alerts whose content matched the watchlist, and those that did not (dropped).
    pub alerts_matched: AtomicU64,
    pub alerts_unmatched: AtomicU64,
    /// Queries of the feed answered (time slices and pages).
    pub feed_pages: AtomicU64,
    pub alerts_new: AtomicU64,
    pub alerts_changed: AtomicU64,
    pub alerts_unchanged: AtomicU64,
    /// Calls by endpoint (users, files) and outcome ([`CallOutcome`]).
    pub calls_by: [[AtomicU64; CallOutcome::ALL.len()]; Endpoint::ALL.len()],
    /// Calls made again after a 429, a 5xx, a timeout or a 401.
    pub retries: AtomicU64,
    /// Time spent waiting for the rate limiter, in milliseconds.
    pub limiter_wait_ms: AtomicU64,
    /// Seconds since the epoch when the last sweep that polled at least one entry ended.
    pub last_sweep_ok: AtomicU64,
    /// Seconds since the epoch when the feed cursor last moved forward.
    pub feed_cursor_moved: AtomicU64,
    /// Seconds from handing a batch to a sink to its acknowledgement.
    pub publish_latency: Histogram,
    /// One entry per configured sink, in config order (set when the pipeline is built).
    pub sinks: OnceLock<Vec<SinkCounters>>,
}

/// The alert endpoints calls are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/api/users/{id}/alerts`
    Users = 0,
    /// `/api/files/{sha1}/alerts`
    Files = 1,
    /// `/api/alerts`, the feed
    Feed = 2,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [Endpoint::Users, Endpoint::Files, Endpoint::Feed];

    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Users => "users",
            Endpoint::Files => "files",
            Endpoint::Feed => "alerts",
        }
    }
}

/// What became of one call to an alert endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    NotFound,
    Throttled,
    Unauthorized,
    ClientError,
    ServerError,
    TransportError,
}

impl CallOutcome {
    pub const ALL: [CallOutcome; 7] = [
        CallOutcome::Ok,
        CallOutcome::NotFound,
        CallOutcome::Throttled,
        CallOutcome::Unauthorized,
        CallOutcome::ClientError,
        CallOutcome::ServerError,
        CallOutcome::TransportError,
    ];

    pub fn of_status(status: u16) -> CallOutcome {
        match status {
            200..=299 => CallOutcome::Ok,
            404 => CallOutcome::NotFound,
            429 => CallOutcome::Throttled,
            401 => CallOutcome::Unauthorized,
            400..=499 => CallOutcome::ClientError,
            _ => CallOutcome::ServerError,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CallOutcome::Ok => "2xx",
            CallOutcome::NotFound => "404",
            CallOutcome::Throttled => "429",
            CallOutcome::Unauthorized => "401",
            CallOutcome::ClientError => "4xx",
            CallOutcome::ServerError => "5xx",
            CallOutcome::TransportError => "transport_error",
        }
    }

    fn index(self) -> usize {
        CallOutcome::ALL
            .iter()
            .position(|o| *o == self)
            .unwrap_or(0)
    }
}

/// Per sink: events handed over (resends included), acknowledged, in failed attempts, waiting
/// for an acknowledgement now, and whether its last attempt failed.
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub name: String,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    pub queued: AtomicU64,
    pub failing: AtomicBool,
}

impl SinkCounters {
    pub fn named(name: &str) -> SinkCounters {
        SinkCounters {
            name: name.to_string(),
            ..SinkCounters::default()
        }
    }

    /// Counts one delivery attempt of `events` and its outcome.
    pub fn attempt(&self, events: usize, delivered: bool) {
        let counter = if delivered { &self.acked } else { &self.failed };
        counter.fetch_add(events as u64, Ordering::Relaxed);
        self.failing.store(!delivered, Ordering::Relaxed);
    }
}

/// Upper bounds (seconds) of the publish latency buckets; the last bucket is +Inf.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A fixed-bucket histogram of seconds, Prometheus-style (cumulative when read).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        let at = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[at].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (cumulative count per bucket bound, +Inf last; sum in seconds; count).
    pub fn read(&self) -> (Vec<u64>, f64, u64) {
        let mut running = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                running += b.load(Ordering::Relaxed);
                running
            })
            .collect();
        (
            cumulative,
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            self.count.load(Ordering::Relaxed),
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub sweeps: u64,
    pub entries_polled: u64,
    pub entries_failed: u64,
    pub calls: u64,
    pub throttled: u64,
    pub alerts_received: u64,
    pub alerts_rejected: u64,
    pub alerts_published: u64,
    pub duplicates_suppressed: u64,
    pub changes_ignored: u64,
    pub sink_failures: u64,
    pub events_shortened: u64,
    /// Alerts seen for the first time.
    pub alerts_new: u64,
    /// Alerts seen before whose content changed (published when `[updates] policy = "emit"`).
    pub alerts_changed: u64,
}

impl Counters {
    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one call to the users (`file == false`) or files endpoint.
    pub fn call(&self, endpoint: Endpoint, outcome: CallOutcome) {
        self.calls_by[endpoint as usize][outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn calls_of(&self, endpoint: Endpoint, outcome: CallOutcome) -> u64 {
        self.calls_by[endpoint as usize][outcome.index()].load(Ordering::Relaxed)
    }

    pub fn sinks(&self) -> &[SinkCounters] {
        self.sinks.get().map(Vec::as_slice).unwrap_or_default()
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            sweeps: get(&self.sweeps),
            entries_polled: get(&self.entries_polled),
            entries_failed: get(&self.entries_failed),
            calls: get(&self.calls),
            throttled: get(&self.throttled),
            alerts_received: get(&self.alerts_received),
            alerts_rejected: get(&self.alerts_rejected),
            alerts_published: get(&self.alerts_published),
            duplicates_suppressed: get(&self.duplicates_suppressed),
            changes_ignored: get(&self.changes_ignored),
            sink_failures: get(&self.sink_failures),
            events_shortened: get(&self.events_shortened),
            alerts_new: get(&self.alerts_new),
            alerts_changed: get(&self.alerts_changed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_reads_cumulative_buckets() {
        let h = Histogram::default();
        for s in [0.001, 0.02, 0.02, 3.0, 60.0] {
            h.observe(s);
        }
        let (buckets, sum, count) = h.read();
        assert_eq!(count, 5);
        assert!((sum - 63.041).abs() < 1e-6);
        assert_eq!(buckets[0], 1); // <= 5 ms
        assert_eq!(buckets[2], 3); // <= 25 ms
        assert_eq!(buckets[9], 4); // <= 5 s
        assert_eq!(*buckets.last().unwrap(), 5); // +Inf
    }

    #[test]
    fn calls_are_counted_by_endpoint_and_status_class() {
        let c = Counters::default();
        c.call(Endpoint::Users, CallOutcome::of_status(200));
        c.call(Endpoint::Files, CallOutcome::of_status(429));
        c.call(Endpoint::Files, CallOutcome::of_status(503));
        assert_eq!(c.calls_of(Endpoint::Users, CallOutcome::Ok), 1);
        assert_eq!(c.calls_of(Endpoint::Files, CallOutcome::Throttled), 1);
        assert_eq!(c.calls_of(Endpoint::Files, CallOutcome::ServerError), 1);
        assert_eq!(CallOutcome::of_status(403).label(), "4xx");
    }
}
