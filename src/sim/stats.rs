//! What the emulator saw: calls per endpoint, 429s served, and the most calls that arrived in any
//! window, so tests can assert that mde-watch never exceeded the limits.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::schedule::limiter::Window;

pub use crate::schedule::limiter::most_in_any_span;

#[derive(Debug, Default)]
pub struct CallLog {
    pub token_calls: u64,
    pub user_calls: u64,
    pub file_calls: u64,
    /// Calls to `/api/alerts`.
    pub feed_calls: u64,
    pub served_429: u64,
    pub served_401: u64,
    pub faults_injected: u64,
    /// Alert pages sent deflated.
    pub served_deflated: u64,
    /// Arrival time of every alert-endpoint call, accepted or not.
    pub arrivals: Vec<Instant>,
    /// The entity of every alert-endpoint call, in arrival order (`user:<id>`, `file:<sha1>`).
    pub entity_calls: Vec<String>,
    /// The `$filter` of every feed call (Defender's or Graph's), in arrival order.
    pub feed_filters: Vec<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct WindowPeak {
    pub calls: u32,
    pub per_ms: u64,
    pub most_seen: usize,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SimStats {
    pub token_calls: u64,
    pub user_calls: u64,
    pub file_calls: u64,
    #[serde(default)]
    pub feed_calls: u64,
    pub served_429: u64,
    pub served_401: u64,
    pub faults_injected: u64,
    /// Alert pages sent deflated (to a client that accepts it).
    #[serde(default)]
    pub served_deflated: u64,
    pub max_in_any_60s: usize,
    pub max_in_any_3600s: usize,
    /// The peak for each limit window the emulator enforces.
    pub windows: Vec<WindowPeak>,
}

impl CallLog {
    pub fn stats(&self, limits: &[Window]) -> SimStats {
        SimStats {
            token_calls: self.token_calls,
            user_calls: self.user_calls,
            file_calls: self.file_calls,
            feed_calls: self.feed_calls,
            served_429: self.served_429,
            served_401: self.served_401,
            faults_injected: self.faults_injected,
            served_deflated: self.served_deflated,
            max_in_any_60s: most_in_any_span(&self.arrivals, Duration::from_secs(60)),
            max_in_any_3600s: most_in_any_span(&self.arrivals, Duration::from_secs(3600)),
            windows: limits
                .iter()
                .map(|w| WindowPeak {
                    calls: w.calls,
                    per_ms: w.per.as_millis() as u64,
                    most_seen: most_in_any_span(&self.arrivals, w.per),
                })
                .collect(),
        }
    }
}
