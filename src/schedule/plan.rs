//! Fits a watchlist into the call budget: how many entries one sweep may poll, how long a full
//! pass over the watchlist takes, and what to tell the operator. Pure arithmetic.

use std::fmt;
use std::time::Duration;

use super::limiter::{Limiter, Window};
use crate::units::format_duration;

/// Share of each sweep's budget left unplanned, for retries after 429s, 5xx and timeouts.
pub const RETRY_HEADROOM_PERCENT: u64 = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub users: usize,
    pub files: usize,
    /// Shortest gap between two cron firings.
    pub cron_interval: Duration,
    /// Calls one sweep may plan (sustained budget over the cron interval, less the headroom).
    pub budget_per_sweep: u64,
    /// Calls one sweep may make in all: the sustained budget over the cron interval. What the
    /// planned entries and their retries leave of it serves further entries of the round-robin.
    pub calls_per_sweep: u64,
    /// Entries polled per sweep: all of them, or a round-robin slice when the budget is short.
    pub entries_per_sweep: usize,
    /// Sweeps needed to poll every entry once.
    pub sweeps_per_pass: usize,
    /// How often each entry is polled, given the cron and the budget.
    pub pass_every: Duration,
    /// The fastest full pass the budget alone allows.
    pub fastest_pass: Duration,
    /// Rough length of one sweep at the limiter's even spacing.
    pub sweep_takes: Duration,
    pub windows: Vec<Window>,
}

impl Plan {
    pub fn compute(
        users: usize,
        files: usize,
        cron_interval: Duration,
        windows: &[Window],
    ) -> Plan {
        let entries = users + files;
        let sustained = sustained_calls_per_sec(windows);
        let raw_budget = (sustained * cron_interval.as_secs_f64()).floor() as u64;
        let calls_per_sweep = raw_budget.max(1);
        let budget_per_sweep = (raw_budget * (100 - RETRY_HEADROOM_PERCENT) / 100).max(1);
        let entries_per_sweep = entries
            .min(budget_per_sweep.min(usize::MAX as u64) as usize)
            .max(1);
        let sweeps_per_pass = entries.div_ceil(entries_per_sweep).max(1);
        let spacing = Limiter::new(windows).spacing();
        Plan {
            users,
            files,
            cron_interval,
            budget_per_sweep,
            calls_per_sweep,
            entries_per_sweep,
            sweeps_per_pass,
            pass_every: cron_interval * sweeps_per_pass as u32,
            fastest_pass: Duration::from_secs_f64(
                entries as f64 / sustained.max(f64::MIN_POSITIVE),
            ),
            sweep_takes: spacing * entries_per_sweep as u32,
            windows: windows.to_vec(),
        }
    }

    pub fn entries(&self) -> usize {
        self.users + self.files
    }

    /// Whether sweeps serve a round-robin slice (and so may spend spare calls on more entries).
    pub fn round_robin(&self) -> bool {
        self.sweeps_per_pass > 1
    }

    /// Warnings the operator should see at start and in `check`.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.sweeps_per_pass > 1 {
            warnings.push(format!(
                "the watchlist ({} entries) is larger than one sweep's budget ({} calls): entries are served \
                 round-robin, {} per sweep, so each is polled every {} instead of every {}",
                self.entries(),
                self.budget_per_sweep,
                self.entries_per_sweep,
                format_duration(self.pass_every),
                format_duration(self.cron_interval),
            ));
        }
        if self.sweep_takes > self.cron_interval {
            warnings.push(format!(
                "a sweep takes about {} but the cron fires every {}; ticks that arrive during a sweep are skipped",
                format_duration(self.sweep_takes),
                format_duration(self.cron_interval)
            ));
        }
        warnings
    }
}

/// The steady rate all windows allow together, in calls per second.
pub fn sustained_calls_per_sec(windows: &[Window]) -> f64 {
    windows
        .iter()
        .map(|w| f64::from(w.calls) / w.per.as_secs_f64().max(1e-9))
        .fold(f64::INFINITY, f64::min)
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limits: Vec<String> = self.windows.iter().map(ToString::to_string).collect();
        writeln!(
            f,
            "plan: {} entries ({} users, {} files), one call each per pass",
            self.entries(),
            self.users,
            self.files
        )?;
        writeln!(
            f,
            "  budget: {} -> {:.1} calls/min sustained; a full pass could run every {} at best",
            limits.join(" and "),
            sustained_calls_per_sec(&self.windows) * 60.0,
            format_duration(round_up_to_second(self.fastest_pass))
        )?;
        writeln!(
            f,
            "  cron fires every {}; a sweep may plan {} calls ({}% kept for retries)",
            format_duration(self.cron_interval),
            self.budget_per_sweep,
            RETRY_HEADROOM_PERCENT
        )?;
        if self.round_robin() {
            writeln!(
                f,
                "  calls a sweep's retries leave serve the next entries, up to {} calls per sweep",
                self.calls_per_sweep
            )?;
        }
        write!(
            f,
            "  each sweep polls {} entries in about {}; every entry is polled every {} ({} sweep{} per pass)",
            self.entries_per_sweep,
            format_duration(round_up_to_second(self.sweep_takes)),
            format_duration(self.pass_every),
            self.sweeps_per_pass,
            if self.sweeps_per_pass == 1 { "" } else { "s" }
        )
    }
}

/// How many entries a round-robin sweep adds once its planned ones are polled: one per call
/// the sweep's budget still holds (an entry costs at least one), never an entry twice.
pub fn spare_entries(calls_per_sweep: u64, calls_made: u64, polled: usize, total: usize) -> usize {
    let spare = calls_per_sweep.saturating_sub(calls_made);
    usize::try_from(spare)
        .unwrap_or(usize::MAX)
        .min(total.saturating_sub(polled))
}

fn round_up_to_second(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs() + u64::from(duration.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::limiter::DOCUMENTED_LIMITS;
    use crate::testing::says;

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn small_watchlist_fits_one_sweep() {
        let plan = Plan::compute(20, 5, FIVE_MINUTES, &DOCUMENTED_LIMITS);
        assert_eq!(plan.budget_per_sweep, 112); // 1500/h sustained = 125 per 5 min, less 10%
        assert_eq!(plan.entries_per_sweep, 25);
        assert_eq!(plan.sweeps_per_pass, 1);
        assert_eq!(plan.pass_every, FIVE_MINUTES);
        assert_eq!(plan.sweep_takes, Duration::from_secs(15));
        assert!(plan.warnings().is_empty());
    }

    #[test]
    fn large_watchlist_goes_round_robin() {
        let plan = Plan::compute(300, 100, FIVE_MINUTES, &DOCUMENTED_LIMITS);
        assert_eq!(plan.entries_per_sweep, 112);
        assert_eq!(plan.sweeps_per_pass, 4);
        assert_eq!(plan.pass_every, Duration::from_secs(1200));
        assert_eq!(plan.fastest_pass, Duration::from_secs(960)); // 400 entries at 2.4 s each
        let warnings = plan.warnings();
        assert!(
            warnings[0].contains("round-robin, 112 per sweep"),
            "{warnings:?}"
        );
        let text = plan.to_string();
        says(&text, "every entry is polled every 20m (4 sweeps per pass)");
    }

    #[test]
    fn spare_calls_serve_more_entries() {
        let plan = Plan::compute(3000, 0, FIVE_MINUTES, &DOCUMENTED_LIMITS);
        assert_eq!((plan.budget_per_sweep, plan.calls_per_sweep), (112, 125));
        // No retries: 13 more entries; 5 retries: 8; more retries than the headroom: none.
        assert_eq!(spare_entries(plan.calls_per_sweep, 112, 112, 3000), 13);
        assert_eq!(spare_entries(plan.calls_per_sweep, 117, 112, 3000), 8);
        assert_eq!(spare_entries(plan.calls_per_sweep, 130, 112, 3000), 0);
        // Never past the end of the watchlist.
        assert_eq!(spare_entries(plan.calls_per_sweep, 112, 118, 120), 2);
        assert!(
            plan.to_string().contains("up to 125 calls per sweep"),
            "{plan}"
        );
    }

    #[test]
    fn per_minute_cron_is_bound_by_the_hour_window() {
        let plan = Plan::compute(50, 0, Duration::from_secs(60), &DOCUMENTED_LIMITS);
        assert_eq!(plan.budget_per_sweep, 22); // 25 per minute sustained, less 10%
        assert_eq!(plan.sweeps_per_pass, 3);
    }
}
