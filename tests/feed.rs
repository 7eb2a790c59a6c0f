//! Feed mode against the emulator's `/api/alerts`: the same watchlist gives the same events as
//! entity polls, a watchlist of 12,000 entries is served in one poll without a word about the
//! entities it does not watch, alerts created and updated while a poll pages through small pages
//! are neither lost nor published twice, and faults and a SIGKILL mid-poll lose nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use mde_watch::sim::UniverseSpec;

fn feed_source(page_size: usize) -> String {
    format!("[source]\nmode = \"feed\"\npage_size = {page_size}\n")
}

/// id → the sorted `kind:value` of its matches, and how it was found.
fn match_context(events: &[serde_json::Value]) -> BTreeMap<String, (Vec<String>, String)> {
    events
        .iter()
        .map(|event| {
            let mut matches: Vec<String> = event["mde_watch"]["matches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    format!(
                        "{}:{}",
                        m["kind"].as_str().unwrap(),
                        m["value"].as_str().unwrap()
                    )
                })
                .collect();
            matches.sort();
            (
                event["event"]["id"].as_str().unwrap().to_string(),
                (
                    matches,
                    event["mde_watch"]["found_by"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_delivers_what_entity_polls_deliver_with_the_same_matches() {
    let sim = start_sim(
        UniverseSpec {
            seed: 21,
            users: 60,
            files: 60,
            ..UniverseSpec::default()
        },
        fast_limits(),
    )
    .await;
    let watch = Watch::first(&sim, 30, 30);
    let (entities_dir, feed_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let entities = write_config(entities_dir.path(), &sim, &watch, "");
    let feed = write_config(feed_dir.path(), &sim, &watch, &feed_source(25));

    let by_entity = run(&["once"], &entities).await;
    assert!(by_entity.status.success(), "{}", show(&by_entity));
    let calls_before = sim.stats();
    let by_feed = run(&["once"], &feed).await;
    assert!(by_feed.status.success(), "{}", show(&by_feed));
    let calls = sim.stats();
    assert_eq!(
        calls.user_calls + calls.file_calls,
        calls_before.user_calls + calls_before.file_calls,
        "feed mode polls no entity"
    );
    assert!(calls.feed_calls > 0);

    let from_entities = match_context(&events(&entities_dir.path().join("alerts.ndjson")));
    let from_feed = match_context(&events(&feed_dir.path().join("alerts.ndjson")));
    let expected = sim.expected_ids(&watch.users, &watch.files);
    assert_eq!(
        from_entities.keys().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    assert_eq!(
        from_feed.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "the same alerts"
    );
    for (id, (matches, found_by)) in &from_feed {
        assert_eq!(found_by, "feed");
        let (entity_matches, entity_found_by) = &from_entities[id];
        assert_eq!(entity_found_by, "entity");
        assert_eq!(matches, entity_matches, "{id}: the same match context");
    }

    let again = run(&["once"], &feed).await;
    assert!(again.status.success(), "{}", show(&again));
    assert_eq!(
        events(&feed_dir.path().join("alerts.ndjson")).len(),
        expected.len(),
        "a second poll publishes nothing new"
    );
    let stats = run(&["state", "stats"], &feed).await;
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert!(
        stats["feed_cursor"]
            .as_str()
            .is_some_and(|c| c.starts_with("2026-11-01T")),
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_thousand_entries_in_one_poll_and_nothing_unwatched() {
    let sim = start_sim(
        UniverseSpec {
            seed: 22,
            users: 20_000,
            files: 4_000,
            max_alerts_per_user: 2,
            ..UniverseSpec::default()
        },
        fast_limits(),
    )
    .await;
    // Every other user and file: as many unwatched entities beside the watched ones.
    let watch = Watch {
        users: (1..=20_000)
            .step_by(2)
            .map(|i| format!("user{i}"))
            .collect(),
        files: (1..=4_000)
            .step_by(2)
            .map(|i| sim.universe().file_hash(i))
            .collect(),
    };
    assert_eq!(watch.users.len() + watch.files.len(), 12_000);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &watch, &feed_source(10_000));
    let check = run(&["check"], &config).await;
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("source: the alerts feed"),
        "{}",
        show(&check)
    );
    let output = run(&["once"], &config).await;
    assert!(output.status.success(), "{}", show(&output));
    let written = events(&dir.path().join("alerts.ndjson"));
    let expected = sim.expected_ids(&watch.users, &watch.files);
    assert!(expected.len() > 5_000, "{}", expected.len());
    assert_eq!(
        ids(&written),
        expected,
        "every watched alert, and none of the others"
    );
    assert!(id_counts(&written).values().all(|&n| n == 1));
    let stats = sim.stats();
    assert!(
        stats.feed_calls < 20,
        "one poll: {} feed calls",
        stats.feed_calls
    );
    assert_eq!(stats.user_calls + stats.file_calls, 0);
}
