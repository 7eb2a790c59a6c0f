//! The one-line status systemd shows under `systemctl status`: when the next sweep is, how much
//! of the API budget the last window used, and how the last sweep went.

use std::time::Duration;

use chrono::{DateTime, Local, Utc};

use crate::schedule::limiter::Window;
use crate::units::format_duration;

/// What the status line is made of.
#[derive(Debug, Clone, Default)]
pub struct StatusFacts {
    /// "sweeping 120 of 500 entries" while one runs.
    pub sweeping: Option<(u64, usize)>,
    pub next_sweep: Option<DateTime<Utc>>,
    /// Calls made within the longest limit window, and that window.
    pub budget: Option<(u64, Window)>,
    /// When the last sweep ended and how many of its entries failed.
    pub last_sweep: Option<(DateTime<Utc>, usize)>,
    pub published: u64,
}

pub fn status_line(facts: &StatusFacts) -> String {
    let mut parts = Vec::new();
    if let Some((done, total)) = facts.sweeping {
        parts.push(format!(
            "sweeping: {} of {} entries polled",
            thousands(done),
            thousands(total as u64)
        ));
    } else if let Some(next) = facts.next_sweep {
        parts.push(format!(
            "next sweep {}",
            next.with_timezone(&Local).format("%H:%M:%S")
        ));
    }
    if let Some((used, window)) = facts.budget {
        let span = if window.per == Duration::from_secs(3600) {
            "this hour".to_string()
        } else {
            format!("in the last {}", format_duration(window.per))
        };
        parts.push(format!(
            "{} of {} calls used {span}",
            thousands(used),
            thousands(u64::from(window.calls))
        ));
    }
    match facts.last_sweep {
        Some((at, 0)) => parts.push(format!(
            "last sweep {} ok",
            at.with_timezone(&Local).format("%H:%M:%S")
        )),
        Some((at, failed)) => parts.push(format!(
            "last sweep {}: {} entries failed",
            at.with_timezone(&Local).format("%H:%M:%S"),
            thousands(failed as u64)
        )),
        None => {}
    }
    parts.push(format!("{} alerts published", thousands(facts.published)));
    parts.join(", ")
}

/// Calls within the longest window, counted from the calls' wall-clock times.
pub fn budget_used(
    calls_wall_ms: &[i64],
    now_ms: i64,
    windows: &[Window],
) -> Option<(u64, Window)> {
    let window = *windows.iter().max_by_key(|w| w.per)?;
    let since = now_ms - window.per.as_millis() as i64;
    let used = calls_wall_ms.iter().filter(|&&at| at > since).count() as u64;
    Some((used, window))
}

/// 1480 → "1,480".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::limiter::DOCUMENTED_LIMITS;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1480, "1,480"),
            (1234567, "1,234,567"),
        ] {
            assert_eq!(thousands(n), text);
        }
    }

    #[test]
    fn budget_counts_calls_in_the_hour_window_only() {
        let now = 10_000_000;
        let calls = [now - 3_700_000, now - 3_500_000, now - 1_000, now];
        let (used, window) = budget_used(&calls, now, &DOCUMENTED_LIMITS).unwrap();
        assert_eq!((used, window.calls), (3, 1500));
        assert_eq!(budget_used(&calls, now, &[]), None);
    }

    #[test]
    fn status_says_what_is_next_and_what_was_used() {
        let facts = StatusFacts {
            budget: Some((1480, DOCUMENTED_LIMITS[1])),
            published: 12_345,
            ..StatusFacts::default()
        };
        assert_eq!(
            status_line(&facts),
            "1,480 of 1,500 calls used this hour, 12,345 alerts published"
        );
        let sweeping = StatusFacts {
            sweeping: Some((120, 500)),
            next_sweep: Some(Utc::now()),
            budget: Some((7, DOCUMENTED_LIMITS[0])),
            ..StatusFacts::default()
        };
        let line = status_line(&sweeping);
        assert!(
            line.starts_with(
                "sweeping: 120 of 500 entries polled, 7 of 100 calls used in the last 1m"
            ),
            "{line}"
        );
        let failed = StatusFacts {
            last_sweep: Some((Utc::now(), 3)),
            ..StatusFacts::default()
        };
        assert!(status_line(&failed).contains(": 3 entries failed"));
    }
}
