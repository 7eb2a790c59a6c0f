//! The dedup decision, pure: given an alert's digest and what the store remembers, is it new,
//! changed, or already shipped as it is?

use super::record::{AlertDigest, SeenRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    New,
    Changed,
    Unchanged,
}

/// An alert is Changed when its `lastUpdateTime` moved forward, or (same or absent time) when a
/// field analysts edit differs. An *older* `lastUpdateTime` is a stale read from a lagging replica
/// and is Unchanged, so that replicas cannot make an alert flap. Times compare in whole seconds,
/// the precision the store keeps in memory; within one second the fingerprint decides.
pub fn decide(digest: &AlertDigest, previous: Option<&SeenRecord>) -> Decision {
    let Some(previous) = previous else {
        return Decision::New;
    };
    let seconds = |micros: Option<i64>| micros.map(|m| m.div_euclid(1_000_000));
    match (seconds(digest.last_update), seconds(previous.last_update)) {
        (Some(now), Some(before)) if now > before => Decision::Changed,
        (Some(now), Some(before)) if now < before => Decision::Unchanged,
        (Some(_), None) => Decision::Changed,
        _ if digest.fingerprint != previous.fingerprint => Decision::Changed,
        _ => Decision::Unchanged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(last_update: Option<i64>, fingerprint: u32) -> SeenRecord {
        SeenRecord {
            last_update,
            fingerprint,
            first_observed: 0,
            last_observed: 0,
        }
    }

    fn digest(last_update: Option<i64>, fingerprint: u32) -> AlertDigest {
        AlertDigest {
            last_update,
            fingerprint,
        }
    }

    #[test]
    fn table() {
        use Decision::{Changed, New, Unchanged};
        // (update time, fingerprint) polled, the same of the record stored, the decision.
        #[rustfmt::skip]
        let cases = [
            ((Some(10_000_000), 1), None, New),
            ((Some(10_000_000), 1), Some((Some(10_000_000), 1)), Unchanged),
            ((Some(11_000_000), 1), Some((Some(10_000_000), 1)), Changed),
            ((Some(10_000_000), 2), Some((Some(10_000_000), 1)), Changed),
            ((Some(9_000_000), 2), Some((Some(10_000_000), 1)), Unchanged),
            ((None, 1), Some((None, 1)), Unchanged),
            ((None, 2), Some((None, 1)), Changed),
            ((Some(5_000_000), 1), Some((None, 1)), Changed),
            // The same second, read with and without its fraction: unchanged, not a flap.
            ((Some(12_500_000), 1), Some((Some(12_000_000), 1)), Unchanged),
            ((Some(13_000_000), 1), Some((Some(12_999_999), 1)), Changed),
        ];
        let cases = cases.map(|((update, print), previous, expected)| {
            (
                digest(update, print),
                previous.map(|(update, print)| seen(update, print)),
                expected,
            )
        });
        for (digest, previous, expected) in cases {
            assert_eq!(
                decide(&digest, previous.as_ref()),
                expected,
                "{digest:?} vs {previous:?}"
            );
        }
    }
}
