//! Cron expressions as tokio-cron-scheduler reads them (six fields, seconds first), and the
//! cadence they imply, for the plan.

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;

pub const DEFAULT_CRON: &str = "0 */5 * * * *";

/// Parses with the same rules the scheduler uses, so `check` rejects what `run` would.
pub fn parse(expression: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .build()
        .parse(expression)
        .map_err(|err| {
            format!(
                "'{expression}' is not a valid cron expression ({err}); six fields with seconds first, \
                 e.g. \"0 */5 * * * *\" for every five minutes"
            )
        })
}

/// The shortest gap between consecutive firings over the next `samples` firings after `from`:
/// the cadence the operator asked for, at its tightest.
pub fn shortest_interval(cron: &Cron, from: DateTime<Utc>, samples: usize) -> Option<Duration> {
    // Stepped by hand: croner 3's iterator adds a second before its exclusive search and so
    // skips every other firing of a per-second schedule.
    let mut times = Vec::with_capacity(samples + 1);
    let mut at = from;
    for _ in 0..=samples {
        at = cron.find_next_occurrence(&at, false).ok()?;
        times.push(at);
    }
    times
        .windows(2)
        .filter_map(|pair| (pair[1] - pair[0]).to_std().ok())
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The shortest gap between `samples` firings of `expression` from 2026-11-23 10:02:00.
    fn shortest(expression: &str, samples: usize) -> Option<Duration> {
        let from = Utc.with_ymd_and_hms(2026, 11, 23, 10, 2, 0).unwrap();
        shortest_interval(&parse(expression).unwrap(), from, samples)
    }

    #[test]
    fn default_cron_fires_every_five_minutes() {
        assert_eq!(shortest(DEFAULT_CRON, 20), Some(Duration::from_secs(300)));
    }

    #[test]
    fn every_second_is_one_second() {
        assert_eq!(shortest("* * * * * *", 10), Some(Duration::from_secs(1)));
    }

    #[test]
    fn five_field_cron_is_rejected_with_an_example() {
        let err = parse("*/5 * * * *").unwrap_err();
        assert!(
            err.contains("'*/5 * * * *'") && err.contains("seconds first"),
            "{err}"
        );
    }
}
