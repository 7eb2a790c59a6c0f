//! Feed mode: instead of one call per watched entity, read the tenant's alert feed
//! (`GET /api/alerts`, every alert created or changed since a cursor) and match each alert
//! against the watchlist here, so a watchlist of any size costs a call or a few per cadence.
//! This module holds the pure parts: how a poll covers its time range ([`slices`]) and when
//! `[source] mode = "auto"` picks the feed ([`choose`]); the poll itself runs with the service's
//! poller, and the match is the pipeline's content match.

pub mod slices;

pub use slices::{Next, Reading, Slice};

use crate::config::SourceMode;
use crate::schedule::plan::Plan;

/// Which source a sweep uses, and why (for `check` and the start-up plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub feed: bool,
    pub why: String,
}

/// `entities` and `feed` are what they say; `auto` reads the feed when the watchlist is larger
/// than what one sweep's budget can poll at the cron's cadence.
pub fn choose(mode: SourceMode, plan: &Plan) -> Choice {
    let entries = plan.users + plan.files;
    match mode {
        SourceMode::Entities => Choice {
            feed: false,
            why: "source.mode = \"entities\"".into(),
        },
        SourceMode::Feed => Choice {
            feed: true,
            why: "source.mode = \"feed\"".into(),
        },
        SourceMode::Auto if entries > plan.entries_per_sweep => Choice {
            feed: true,
            why: format!(
                "auto: {entries} entries are more than one sweep's budget polls ({} per sweep)",
                plan.entries_per_sweep
            ),
        },
        SourceMode::Auto => Choice {
            feed: false,
            why: format!(
                "auto: one sweep's budget polls all {entries} entries ({} per sweep)",
                plan.entries_per_sweep
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::limiter::DOCUMENTED_LIMITS;
    use std::time::Duration;

    #[test]
    fn auto_reads_the_feed_when_the_budget_cannot_poll_every_entry_each_sweep() {
        let small = Plan::compute(50, 20, Duration::from_secs(300), &DOCUMENTED_LIMITS);
        let large = Plan::compute(5_000, 10_000, Duration::from_secs(300), &DOCUMENTED_LIMITS);
        assert!(!choose(SourceMode::Auto, &small).feed);
        let picked = choose(SourceMode::Auto, &large);
        assert!(picked.feed, "{}", picked.why);
        assert!(picked.why.contains("15000 entries"), "{}", picked.why);
        assert!(choose(SourceMode::Feed, &small).feed);
        assert!(!choose(SourceMode::Entities, &large).feed);
    }
}
