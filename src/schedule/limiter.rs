//! The API's call budget as pure arithmetic. Both watchlist endpoints share one budget per app
//! and tenant: at most 100 calls in any 60 s and 1500 in any 3600 s (docs/microsoft-api.md §3, §9).
//!
//! Time is a `Duration` since an arbitrary origin, passed in by the caller, so the same code runs
//! against the real clock and a fake one. The invariant, proven by a property test: for every
//! window, no span of `per` ever holds more than `calls` recorded calls.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// At most `calls` calls in any span of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub calls: u32,
    pub per: Duration,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} per {}",
            self.calls,
            crate::units::format_duration(self.per)
        )
    }
}

/// The limits Microsoft documents for both alert endpoints.
pub const DOCUMENTED_LIMITS: [Window; 2] = [
    Window {
        calls: 100,
        per: Duration::from_secs(60),
    },
    Window {
        calls: 1500,
        per: Duration::from_secs(3600),
    },
];

/// The Graph security API's published limit for security alert operations: 150 requests a
/// minute per app and tenant (Graph's throttling-limits page; that it covers `alerts_v2` is not
/// confirmed, so it can be set like any window).
pub const GRAPH_LIMITS: [Window; 1] = [Window {
    calls: 150,
    per: Duration::from_secs(60),
}];

/// How many calls `windows` allow, at most, inside any span of `span`.
pub fn max_calls_in(windows: &[Window], span: Duration) -> u64 {
    windows
        .iter()
        .map(|w| {
            let spans = span.as_nanos().div_ceil(w.per.as_nanos().max(1)) as u64;
            u64::from(w.calls) * spans.max(1)
        })
        .min()
        .unwrap_or(u64::MAX)
}

/// Describes how `windows` exceed `documented`, if they do.
pub fn exceeds(windows: &[Window], documented: &[Window]) -> Option<String> {
    let excess: Vec<String> = documented
        .iter()
        .filter_map(|limit| {
            let allowed = max_calls_in(windows, limit.per);
            (allowed > u64::from(limit.calls)).then(|| {
                format!(
                    "up to {allowed} calls in {} (API: {limit})",
                    crate::units::format_duration(limit.per)
                )
            })
        })
        .collect();
    (!excess.is_empty()).then(|| excess.join(", "))
}

/// The limiter's state: the calls made inside the longest window, and any pause ordered by a 429.
#[derive(Debug, Clone)]
pub struct Limiter {
    /// Each window with its margin added, so that calls granted exactly `per` apart cannot
    /// land inside one window at the server after network and scheduling jitter.
    windows: Vec<Window>,
    spans: Vec<Duration>,
    spacing: Duration,
    calls: VecDeque<Duration>,
    paused_until: Duration,
}

impl Limiter {
    pub fn new(windows: &[Window]) -> Limiter {
        let spans = windows.iter().map(|w| w.per + margin(w.per)).collect();
        // Even spacing at the pace of the tightest window: no bursts, and a full window's
        // budget still fits inside the window.
        let spacing = windows
            .iter()
            .map(|w| w.per / w.calls.max(1))
            .min()
            .unwrap_or_default();
        Limiter {
            windows: windows.to_vec(),
            spans,
            spacing,
            calls: VecDeque::new(),
            paused_until: Duration::ZERO,
        }
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// The gap kept between two calls.
    pub fn spacing(&self) -> Duration {
        self.spacing
    }

    /// The earliest time at or after `now` when a call may be made.
    pub fn next_slot(&self, now: Duration) -> Duration {
        let mut slot = now.max(self.paused_until);
        if let Some(&last) = self.calls.back() {
            slot = slot.max(last + self.spacing);
        }
        // Each window pushes the slot past the call that would be one too many; repeat until no
        // window moves it (a later slot can only drop calls out of windows, never add).
        loop {
            let mut moved = false;
            for (window, &span) in self.windows.iter().zip(&self.spans) {
                let expired = self.calls.partition_point(|&at| at + span <= slot);
                let in_window = self.calls.len() - expired;
                if in_window >= window.calls as usize {
                    let oldest_to_expire = self.calls[self.calls.len() - window.calls as usize];
                    let free_at = oldest_to_expire + span;
                    if free_at > slot {
                        slot = free_at;
                        moved = true;
                    }
                }
            }
            if !moved {
                return slot;
            }
        }
    }

    /// Records a call made at `at` (which must be a slot `next_slot` granted).
    pub fn record(&mut self, at: Duration) {
        self.calls.push_back(at);
        let longest = self.memory();
        let keep = self
            .windows
            .iter()
            .map(|w| w.calls as usize)
            .max()
            .unwrap_or(0);
        while self.calls.len() > keep
            || self
                .calls
                .front()
                .is_some_and(|&first| first + longest <= at)
        {
            self.calls.pop_front();
        }
    }

    /// A 429 pauses every call until `until`.
    pub fn pause_until(&mut self, until: Duration) {
        self.paused_until = self.paused_until.max(until);
    }

    pub fn paused_until(&self) -> Duration {
        self.paused_until
    }

    /// The calls still inside some window, oldest first.
    pub fn recent_calls(&self) -> impl Iterator<Item = Duration> + '_ {
        self.calls.iter().copied()
    }

    /// The longest window plus its margin: how far back history matters.
    pub fn memory(&self) -> Duration {
        self.spans.iter().copied().max().unwrap_or_default()
    }
}

/// The time added to a window of `per`: enough to absorb the delay between a granted slot and
/// the call's arrival (a late timer, a busy runtime, the network), small against the window:
/// 1/50 of it, between 250 ms and 1 s, and never more than a quarter of it. Each window has its
/// own: the hour's second would turn a one-second window into a two-second one.
fn margin(per: Duration) -> Duration {
    (per / 50)
        .clamp(Duration::from_millis(250), Duration::from_secs(1))
        .min(per / 4)
}

/// The most of `times` (sorted) inside any half-open span of `per`: what a limit window of
/// `per` saw at its fullest. Used to check the limiter and by the emulator's counts.
pub fn most_in_any_span<T>(times: &[T], per: Duration) -> usize
where
    T: Copy + PartialOrd + std::ops::Add<Duration, Output = T>,
{
    let mut most = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] >= times[start] + per {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::says;
    use proptest::prelude::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn documented_limits_space_calls_600ms_apart() {
        let mut limiter = Limiter::new(&DOCUMENTED_LIMITS);
        let first = limiter.next_slot(Duration::ZERO);
        limiter.record(first);
        assert_eq!(limiter.next_slot(first), first + Duration::from_millis(600));
    }

    #[test]
    fn hour_window_blocks_after_1500_calls() {
        let mut limiter = Limiter::new(&DOCUMENTED_LIMITS);
        let mut now = Duration::ZERO;
        for _ in 0..1500 {
            now = limiter.next_slot(now);
            limiter.record(now);
        }
        let first_call = Duration::ZERO;
        let next = limiter.next_slot(now);
        assert!(next >= first_call + Duration::from_secs(3600), "{next:?}");
    }

    #[test]
    fn each_window_keeps_its_own_margin() {
        let windows = [
            Window {
                calls: 100,
                per: Duration::from_secs(1),
            },
            Window {
                calls: 1500,
                per: Duration::from_secs(60),
            },
        ];
        let mut limiter = Limiter::new(&windows);
        let mut now = Duration::ZERO;
        for _ in 0..100 {
            now = limiter.next_slot(now);
            limiter.record(now);
        }
        assert_eq!(limiter.next_slot(now), secs(1.25));
        assert_eq!(limiter.memory(), secs(61.0));
    }

    #[test]
    fn a_429_pauses_everything() {
        let mut limiter = Limiter::new(&DOCUMENTED_LIMITS);
        limiter.record(Duration::ZERO);
        limiter.pause_until(secs(30.0));
        assert_eq!(limiter.next_slot(secs(1.0)), secs(30.0));
    }

    #[test]
    fn generous_windows_are_reported() {
        assert_eq!(exceeds(&DOCUMENTED_LIMITS, &DOCUMENTED_LIMITS), None);
        let fast = [Window {
            calls: 10,
            per: Duration::from_secs(1),
        }];
        let text = exceeds(&fast, &DOCUMENTED_LIMITS).unwrap();
        says(&text, "600 calls in 1m");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// For random watchlist sizes, sweep cadences and 429 patterns, no 60 s span ever holds
        /// more than 100 calls and no 3600 s span more than 1500.
        #[test]
        fn never_exceeds_any_window(
            entries in 1usize..400,
            sweep_every_secs in 10u64..900,
            sweeps in 1usize..12,
            throttled in proptest::collection::vec(any::<bool>(), 1..50),
            retry_after_secs in 0u64..120,
        ) {
            let mut limiter = Limiter::new(&DOCUMENTED_LIMITS);
            let mut calls = Vec::new();
            let mut now = Duration::ZERO;
            for sweep in 0..sweeps {
                now = now.max(Duration::from_secs(sweep as u64 * sweep_every_secs));
                for entry in 0..entries {
                    now = limiter.next_slot(now);
                    limiter.record(now);
                    calls.push(now);
                    if throttled[(sweep * entries + entry) % throttled.len()] && entry % 7 == 0 {
                        limiter.pause_until(now + Duration::from_secs(retry_after_secs));
                    }
                }
            }
            for window in DOCUMENTED_LIMITS {
                let most = most_in_any_span(&calls, window.per);
                prop_assert!(most <= window.calls as usize, "{} calls in {:?}", most, window.per);
            }
        }

        /// The same holds for the short windows tests use to compress time.
        #[test]
        fn compressed_windows_hold_too(
            calls_a in 1u32..20, per_a_ms in 50u64..2000,
            calls_b in 1u32..200, per_b_ms in 500u64..20_000,
            count in 1usize..600,
            jitter_ms in proptest::collection::vec(0u64..300, 1..40),
        ) {
            let windows = [
                Window { calls: calls_a, per: Duration::from_millis(per_a_ms) },
                Window { calls: calls_b, per: Duration::from_millis(per_b_ms) },
            ];
            let mut limiter = Limiter::new(&windows);
            let mut calls = Vec::new();
            let mut now = Duration::ZERO;
            for index in 0..count {
                // Callers arrive late by random amounts; the limiter must still hold.
                now += Duration::from_millis(jitter_ms[index % jitter_ms.len()]);
                now = limiter.next_slot(now);
                limiter.record(now);
                calls.push(now);
            }
            for window in windows {
                prop_assert!(most_in_any_span(&calls, window.per) <= window.calls as usize);
            }
        }
    }
}
