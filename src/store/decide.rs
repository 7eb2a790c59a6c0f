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
/// and is Unchanged, so that replicas cannot make an alert flap.
pub fn decide(digest: &AlertDigest, previous: Option<&SeenRecord>) -> Decision {
    let Some(previous) = previous else {
        return Decision::New;
    };
    match (digest.last_update, previous.last_update) {
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

    fn seen(last_update: Option<i64>, fingerprint: u64) -> SeenRecord {
        SeenRecord {
            last_update,
            fingerprint,
            first_observed: 0,
            last_observed: 0,
        }
    }

    fn digest(last_update: Option<i64>, fingerprint: u64) -> AlertDigest {
        AlertDigest {
            last_update,
            fingerprint,
        }
    }

    #[test]
    fn table() {
        let cases = [
            (digest(Some(10), 1), None, Decision::New),
            (
                digest(Some(10), 1),
                Some(seen(Some(10), 1)),
                Decision::Unchanged,
            ),
            (
                digest(Some(11), 1),
                Some(seen(Some(10), 1)),
                Decision::Changed,
            ),
            (
                digest(Some(10), 2),
                Some(seen(Some(10), 1)),
                Decision::Changed,
            ),
            (
                digest(Some(9), 2),
                Some(seen(Some(10), 1)),
                Decision::Unchanged,
            ),
            (digest(None, 1), Some(seen(None, 1)), Decision::Unchanged),
            (digest(None, 2), Some(seen(None, 1)), Decision::Changed),
            (digest(Some(5), 1), Some(seen(None, 1)), Decision::Changed),
        ];
        for (digest, previous, expected) in cases {
            assert_eq!(
                decide(&digest, previous.as_ref()),
                expected,
                "{digest:?} vs {previous:?}"
            );
        }
    }
}
