//! The Graph security API (`[source] api = "graph"`) against the emulator's `alerts_v2`: the
//! same watchlist gives the same Defender alerts with the same match context as Defender's own
//! API (entity polls and feed), plus the other products' alerts about watched users; moving an
//! install from Defender to Graph publishes nothing twice; faults while paging lose nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use mde_watch::sim::{Faults, UniverseSpec};

const GRAPH: &str = "[source]\napi = \"graph\"\npage_size = 20\n";

/// id → the sorted `kind:value` of its matches.
fn matches(events: &[serde_json::Value]) -> BTreeMap<String, Vec<String>> {
    events
        .iter()
        .map(|event| {
            (
                event["event"]["id"].as_str().unwrap().to_string(),
                match_keys(event),
            )
        })
        .collect()
}

fn universe() -> UniverseSpec {
    universe_of(31, 40, 40)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_delivers_what_defender_delivers_and_the_other_products_alerts() {
    let sim = start_sim(universe(), fast_limits()).await;
    let watch = Watch::first(&sim, 20, 20);
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let entities = write_config(dirs[0].path(), &sim, &watch, "");
    let feed = write_config(
        dirs[1].path(),
        &sim,
        &watch,
        "[source]\nmode = \"feed\"\npage_size = 20\n",
    );
    let graph = write_config(dirs[2].path(), &sim, &watch, GRAPH);

    let check = run(&["check"], &graph).await;
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{}", show(&check));
    assert!(text.contains("Graph"), "check names the API: {text}");

    let mut delivered = Vec::new();
    for config in [&entities, &feed, &graph] {
        // Three installs, three stores, one tenant's budget: each waits out the short window
        // the one before it filled (a store remembers only its own calls).
        tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
        run_ok(&["once"], config).await;
        let dir = config.parent().unwrap();
        delivered.push(matches(&events(&dir.join("alerts.ndjson"))));
    }
    let defender_ids = sim.expected_ids(&watch.users, &watch.files);
    let graph_ids = sim.expected_graph_ids(&watch.users, &watch.files);
    assert!(
        graph_ids.len() > defender_ids.len(),
        "some Office 365 alerts are watched"
    );
    assert_eq!(
        delivered[0].keys().cloned().collect::<BTreeSet<_>>(),
        defender_ids
    );
    assert_eq!(
        delivered[1], delivered[0],
        "Defender's feed: the same alerts and matches"
    );
    assert_eq!(
        delivered[2].keys().cloned().collect::<BTreeSet<_>>(),
        graph_ids,
        "Graph: the Defender alerts and the other products' alerts about watched users"
    );
    for (id, found) in &delivered[0] {
        assert_eq!(
            &delivered[2][id], found,
            "{id}: the same match context through Graph"
        );
    }
    let graph_events = events(&dirs[2].path().join("alerts.ndjson"));
    let office = graph_events
        .iter()
        .find(|e| {
            e["event"]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("fa"))
        })
        .expect("an Office 365 alert");
    assert_eq!(office["observer"]["product"], "Defender for Office 365");
    assert_eq!(office["mde_watch"]["found_by"], "feed");

    let stats = sim.stats();
    assert!(stats.feed_calls > 0);
    assert_within_limits(&sim);
}

/// An install that ran on Defender's API moves to Graph on the same store: only what Defender
/// could not serve (the other products' alerts) is published, none of the alerts already shipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_from_defender_to_graph_publishes_nothing_twice() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 20, 20).await;
    for source in ["", "[source]\nmode = \"feed\"\npage_size = 20\n"] {
        once_with(dir.path(), &sim, &watch, source).await;
    }
    let output_file = dir.path().join("alerts.ndjson");
    let (shipped, before) = shipped_by_defender(&sim, &watch, &output_file);

    once_with(dir.path(), &sim, &watch, GRAPH).await;
    assert_graph_added_only_the_rest(&sim, &watch, &output_file, before, &shipped);
}

/// `once` with `source` on the store in `dir`; it must succeed.
async fn once_with(
    dir: &std::path::Path,
    sim: &mde_watch::sim::SimHandle,
    watch: &Watch,
    source: &str,
) {
    let config = write_config(dir, sim, watch, source);
    run_ok(&["once"], &config).await;
}

/// What Defender's API shipped into `output_file`: every alert it serves for `watch` (asserted),
/// and how many events that took.
fn shipped_by_defender(
    sim: &mde_watch::sim::SimHandle,
    watch: &Watch,
    output_file: &std::path::Path,
) -> (BTreeSet<String>, usize) {
    let written = events(output_file);
    let shipped = ids(&written);
    assert_eq!(shipped, sim.expected_ids(&watch.users, &watch.files));
    (shipped, written.len())
}

/// After a move to Graph, the events written past `before` are exactly the alerts Graph serves
/// that were not `shipped` already (the other products'), and no alert was written twice.
fn assert_graph_added_only_the_rest(
    sim: &mde_watch::sim::SimHandle,
    watch: &Watch,
    output_file: &std::path::Path,
    before: usize,
    shipped: &BTreeSet<String>,
) {
    let written = events(output_file);
    let new: BTreeSet<String> = ids(&written[before..]);
    let office: BTreeSet<String> = sim
        .expected_graph_ids(&watch.users, &watch.files)
        .difference(shipped)
        .cloned()
        .collect();
    assert!(!office.is_empty());
    assert_eq!(new, office, "only what the first source did not serve");
    assert!(
        id_counts(&written).values().all(|&n| n == 1),
        "an alert twice"
    );
}

/// An install that polled entities moves to Graph: its first Graph poll starts where the entity
/// polls left off (the API's clock when it answered them, less the look-back), not from the
/// beginning of the tenant, and publishes nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_entity_polls_the_first_graph_poll_starts_where_they_left_off() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 20, 20).await;
    once_with(dir.path(), &sim, &watch, "").await;
    let answered =
        mde_watch::sim::epoch() + chrono::Duration::seconds(sim.virtual_now_secs() as i64);
    let output_file = dir.path().join("alerts.ndjson");
    let (shipped, before) = shipped_by_defender(&sim, &watch, &output_file);

    once_with(dir.path(), &sim, &watch, GRAPH).await;
    let lookback = chrono::Duration::minutes(10);
    assert_eq!(
        sim.feed_filters().first().map(String::as_str),
        Some(
            format!(
                "lastUpdateDateTime ge {}",
                (answered - lookback).format("%Y-%m-%dT%H:%M:%S%.6fZ")
            )
            .as_str()
        ),
        "the first Graph query starts from the entity polls' answers"
    );
    assert_graph_added_only_the_rest(&sim, &watch, &output_file, before, &shipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_5xx_while_paging_graph_lose_nothing() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 20, 20).await;
    sim.set_faults(Faults {
        error_rate: 0.2,
        throttle_rate: 0.1,
        throttle_retry_after_secs: 1,
        truncated_rate: 0.05,
        ..Default::default()
    });
    let config = write_config(dir.path(), &sim, &watch, GRAPH);
    run_ok(&["once"], &config).await;
    let written = events(&dir.path().join("alerts.ndjson"));
    assert_eq!(
        ids(&written),
        sim.expected_graph_ids(&watch.users, &watch.files)
    );
    assert!(id_counts(&written).values().all(|&n| n == 1));
    assert!(sim.stats().faults_injected > 0);
    assert_within_limits(&sim);
}
