//! Counters the run summary, `state` and (later) metrics read. Atomics: the client, the poller
//! and the pipeline update them from different tasks.

use std::sync::atomic::{AtomicU64, Ordering};

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
    pub events_shortened: AtomicU64,
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
}

impl Counters {
    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
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
        }
    }
}
