//! `/healthz`: healthy while sweeps succeed (in feed mode: while the cursor moves or polls
//! succeed) and sinks acknowledge. Pure: facts in, verdict out.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub reasons: Vec<String>,
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// What the verdict is made from; times are seconds since the epoch.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub now: i64,
    pub started: i64,
    pub last_sweep_ok: Option<i64>,
    pub cadence_secs: u64,
    pub failing_sinks: &'a [String],
    /// In feed mode: when this process last moved the feed cursor (`None`: not yet). A quiet
    /// tenant leaves the cursor where it is while every poll succeeds, so only a cursor that
    /// stays while polls fail degrades.
    pub feed: Option<Option<i64>>,
}

/// Degraded when no sweep succeeded within two cadences (counted from the start until the
/// first one did) and, in feed mode, the cursor did not move in that time either; or when a
/// sink's last delivery attempt failed.
pub fn evaluate(facts: &Facts) -> Health {
    let mut reasons = Vec::new();
    let allowed = 2 * facts.cadence_secs as i64;
    let since_ok = facts.now - facts.last_sweep_ok.unwrap_or(facts.started);
    let failing = since_ok > allowed;
    match facts.feed {
        None if failing => reasons.push(match facts.last_sweep_ok {
            Some(_) => format!(
                "no sweep succeeded in the last {since_ok}s (two cadences of {}s)",
                facts.cadence_secs
            ),
            None => format!(
                "no sweep has succeeded since the start {since_ok}s ago (two cadences of {}s)",
                facts.cadence_secs
            ),
        }),
        Some(moved) if failing => {
            let still = facts.now - moved.unwrap_or(facts.started);
            if still > allowed {
                reasons.push(format!(
                    "the feed cursor has not advanced for {still}s and no feed poll succeeded in the last {since_ok}s (two cadences of {}s)",
                    facts.cadence_secs
                ));
            }
        }
        _ => {}
    }
    for sink in facts.failing_sinks {
        reasons.push(format!(
            "sink '{sink}' is failing; its alerts are held and retried"
        ));
    }
    Health {
        status: if reasons.is_empty() { "ok" } else { "degraded" },
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entities(now: i64, last_sweep_ok: Option<i64>) -> Facts<'static> {
        Facts {
            now,
            started: 0,
            last_sweep_ok,
            cadence_secs: 300,
            ..Facts::default()
        }
    }

    #[test]
    fn healthy_while_sweeps_succeed_within_two_cadences() {
        let h = evaluate(&entities(1_000, Some(500)));
        assert!(h.is_healthy(), "{h:?}");
        assert_eq!(h.status, "ok");
    }

    #[test]
    fn degraded_after_two_cadences_without_success() {
        let h = evaluate(&entities(1_000, Some(300)));
        assert_eq!(h.status, "degraded");
        assert!(h.reasons[0].contains("700s"), "{h:?}");
        let fresh = evaluate(&entities(500, None));
        assert!(fresh.is_healthy(), "the first sweep gets two cadences too");
        let never = evaluate(&entities(700, None));
        assert!(never.reasons[0].contains("since the start"), "{never:?}");
    }

    #[test]
    fn a_feed_degrades_when_its_cursor_stays_while_polls_fail() {
        let feed = |last_ok, moved| Facts {
            feed: Some(moved),
            ..entities(2_000, last_ok)
        };
        // A quiet tenant: polls succeed, the cursor stays.
        assert!(evaluate(&feed(Some(1_900), Some(100))).is_healthy());
        // Polls fail (each dies on a later slice) but the cursor still moves.
        assert!(evaluate(&feed(Some(100), Some(1_800))).is_healthy());
        // Both stopped for two cadences.
        let stuck = evaluate(&feed(Some(1_000), Some(900)));
        assert_eq!(stuck.status, "degraded");
        assert!(
            stuck.reasons[0].contains("cursor has not advanced for 1100s")
                && stuck.reasons[0].contains("last 1000s"),
            "{stuck:?}"
        );
        // Never moved nor succeeded since the start.
        assert!(!evaluate(&feed(None, None)).is_healthy());
    }

    #[test]
    fn a_failing_sink_is_named() {
        let failing = ["kafka-prod".to_string()];
        let h = evaluate(&Facts {
            failing_sinks: &failing,
            ..entities(10, Some(5))
        });
        assert_eq!(h.status, "degraded");
        assert!(h.reasons[0].contains("'kafka-prod'"));
    }
}
