//! `/healthz`: healthy while sweeps succeed and sinks acknowledge. Pure: facts in, verdict out.

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

/// Degraded when no sweep succeeded within two cadences (counted from the start until the
/// first one did), or when a sink's last delivery attempt failed.
pub fn evaluate(
    now: i64,
    started: i64,
    last_sweep_ok: Option<i64>,
    cadence_secs: u64,
    failing_sinks: &[String],
) -> Health {
    let mut reasons = Vec::new();
    let since = last_sweep_ok.unwrap_or(started);
    let allowed = 2 * cadence_secs as i64;
    if now - since > allowed {
        reasons.push(match last_sweep_ok {
            Some(_) => format!(
                "no sweep succeeded in the last {}s (two cadences of {cadence_secs}s)",
                now - since
            ),
            None => format!(
                "no sweep has succeeded since the start {}s ago (two cadences of {cadence_secs}s)",
                now - since
            ),
        });
    }
    for sink in failing_sinks {
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

    #[test]
    fn healthy_while_sweeps_succeed_within_two_cadences() {
        let h = evaluate(1_000, 0, Some(500), 300, &[]);
        assert!(h.is_healthy(), "{h:?}");
        assert_eq!(h.status, "ok");
    }

    #[test]
    fn degraded_after_two_cadences_without_success() {
        let h = evaluate(1_000, 0, Some(300), 300, &[]);
        assert_eq!(h.status, "degraded");
        assert!(h.reasons[0].contains("700s"), "{h:?}");
        let fresh = evaluate(500, 0, None, 300, &[]);
        assert!(fresh.is_healthy(), "the first sweep gets two cadences too");
        let never = evaluate(700, 0, None, 300, &[]);
        assert!(never.reasons[0].contains("since the start"), "{never:?}");
    }

    #[test]
    fn a_failing_sink_is_named() {
        let h = evaluate(10, 0, Some(5), 300, &["kafka-prod".into()]);
        assert_eq!(h.status, "degraded");
        assert!(h.reasons[0].contains("'kafka-prod'"));
    }
}
