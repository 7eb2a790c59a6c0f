//! The emulator's shared state: its virtual clock, the calls it admitted under the limits, the
//! tokens it issued and for which API, its fault settings and draws, its page cache.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use tokio::time::Instant;

use super::faults::Faults;
use super::stats::CallLog;
use super::universe::{mix, Universe};
use super::wire::Wire;
use super::SimConfig;

pub(super) struct Clock {
    pub(super) started: Instant,
    pub(super) offset_secs: f64,
}

pub(super) struct SimState {
    pub(super) config: SimConfig,
    pub(super) universe: Universe,
    pub(super) clock: Mutex<Clock>,
    pub(super) faults: Mutex<Faults>,
    pub(super) draws: Mutex<u64>,
    /// Each token: when it dies, and which API it was issued for.
    pub(super) tokens: Mutex<HashMap<String, (Instant, Audience)>>,
    pub(super) accepted: Mutex<VecDeque<Instant>>,
    pub(super) log: Mutex<CallLog>,
    /// Whole response bodies by (collection, entity, wire), with the virtual second they
    /// render: an entity asked again while nothing of it changed is served without building
    /// (or deflating) its page again, so a benchmark's server is not its bottleneck even with
    /// 100 MB answers.
    pub(super) pages: Mutex<HashMap<PageKey, (u64, Bytes)>>,
    /// Where this emulator answers (`@odata.nextLink` points there).
    pub(super) base_url: String,
}

/// A cached page: which collection, which entity, how it goes on the wire.
pub(super) type PageKey = (Collection, String, Wire);

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimState {
    pub(super) fn virtual_now_secs(&self) -> u64 {
        let clock = lock(&self.clock);
        (clock.offset_secs + clock.started.elapsed().as_secs_f64() * self.config.speed).max(0.0)
            as u64
    }

    pub(super) fn draw(&self) -> f64 {
        let mut state = lock(&self.draws);
        *state = mix(*state);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(super) fn fresh_id(&self) -> String {
        let a = mix(self.draw().to_bits());
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            a as u32,
            (a >> 32) as u16,
            (a >> 48) & 0xfff,
            (a >> 20) & 0xfff,
            mix(a) & 0xffff_ffff_ffff
        )
    }

    /// Admits a call under the per-app limits, or says how long to wait.
    pub(super) fn admit(&self, now: Instant) -> Result<(), Duration> {
        let mut accepted = lock(&self.accepted);
        let longest = self
            .config
            .limits
            .iter()
            .map(|w| w.per)
            .max()
            .unwrap_or_default();
        while accepted.front().is_some_and(|&t| t + longest <= now) {
            accepted.pop_front();
        }
        for window in &self.config.limits {
            let inside: Vec<&Instant> =
                accepted.iter().filter(|&&t| t + window.per > now).collect();
            if inside.len() >= window.calls as usize {
                let frees_at = *inside[inside.len() - window.calls as usize] + window.per;
                return Err(frees_at.saturating_duration_since(now));
            }
        }
        accepted.push_back(now);
        Ok(())
    }
}

/// Which API a token is good for: a Graph token opens only Graph's route, a Defender token
/// only Defender's, as the real audiences do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    Defender,
    Graph,
}

impl Audience {
    pub(super) fn of(value: &str) -> Audience {
        if value.contains("graph.microsoft") {
            Audience::Graph
        } else {
            Audience::Defender
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Collection {
    Users,
    Files,
}
