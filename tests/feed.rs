//! Feed mode against the emulator's `/api/alerts`: the same watchlist gives the same events as
//! entity polls, a watchlist of 12,000 entries is served in one poll without a word about the
//! entities it does not watch, alerts created and updated while a poll pages through small pages
//! are neither lost nor published twice, and faults and a SIGKILL mid-poll lose nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

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
            let found_by = event["mde_watch"]["found_by"].as_str().unwrap().to_string();
            let id = event["event"]["id"].as_str().unwrap().to_string();
            (id, (match_keys(event), found_by))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_delivers_what_entity_polls_deliver_with_the_same_matches() {
    let sim = start_sim(universe_of(21, 60, 60), fast_limits()).await;
    let watch = Watch::first(&sim, 30, 30);
    let (entities_dir, feed_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let entities = write_config(entities_dir.path(), &sim, &watch, "");
    let feed = write_config(feed_dir.path(), &sim, &watch, &feed_source(25));

    run_ok(&["once"], &entities).await;
    let calls_before = sim.stats();
    run_ok(&["once"], &feed).await;
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

    let output = feed_dir.path().join("alerts.ndjson");
    once_adds_nothing(
        &feed,
        &output,
        expected.len(),
        "a second poll publishes nothing new",
    )
    .await;
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
    run_ok(&["once"], &config).await;
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

/// Alerts appear about every half second and change while `run` polls the feed every second in
/// 10-alert slices: with `ignore`, each watched alert is published exactly once; with `emit`,
/// once when it appears and once more if it changed; never an unwatched one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_created_and_changed_while_the_feed_pages_are_neither_lost_nor_repeated() {
    let spec = UniverseSpec {
        seed: 31,
        users: 20,
        files: 10,
        late_share: 1.0,
        change_share: 0.5,
        horizon_secs: 40,
        change_delay_secs: 6,
        ..UniverseSpec::default()
    };
    let lifted = vec![mde_watch::schedule::limiter::Window {
        calls: 1_000,
        per: std::time::Duration::from_secs(1),
    }];
    let sim = mde_watch::sim::start(mde_watch::sim::SimConfig {
        universe: spec,
        limits: lifted,
        speed: 2.0,
        ..mde_watch::sim::SimConfig::default()
    })
    .await
    .unwrap();
    let watch = Watch {
        users: (1..=10).map(|i| format!("user{i}")).collect(),
        files: (1..=5).map(|i| sim.universe().file_hash(i)).collect(),
    };
    let mut daemons = Vec::new();
    let mut dirs = Vec::new();
    for policy in ["ignore", "emit"] {
        let dir = tempfile::tempdir().unwrap();
        let extra = format!(
            "{}lookback = \"2s\"\n[schedule]\ncron = \"* * * * * *\"\n[updates]\npolicy = \"{policy}\"\n",
            feed_source(10)
        );
        let config = write_config(dir.path(), &sim, &watch, &extra);
        daemons.push(spawn(&["run"], &config, "warn"));
        dirs.push(dir);
    }
    // Alerts appear over 40 virtual seconds and change 6 to 46 seconds later: 43 s of real
    // time at double speed; then two more polls.
    tokio::time::sleep(std::time::Duration::from_secs(46)).await;
    for daemon in &daemons {
        sigterm(daemon);
    }
    for daemon in daemons {
        stopped_cleanly(daemon).await;
    }

    let expected = sim.expected_ids(&watch.users, &watch.files);
    let changed = changed_by_now(&sim);
    assert!(expected.len() >= 20, "{}", expected.len());
    assert!(expected.iter().filter(|id| changed.contains(*id)).count() >= 5);

    assert_each_once(&dirs[0].path().join("alerts.ndjson"), &expected);
    assert_each_version_once(&dirs[1].path().join("alerts.ndjson"), &expected, &changed);
}

/// `ignore`: every watched alert, nothing else, none twice.
fn assert_each_once(output: &Path, expected: &BTreeSet<String>) {
    let ignore = events(output);
    assert_eq!(&ids(&ignore), expected, "every watched alert, nothing else");
    assert!(
        id_counts(&ignore).values().all(|&n| n == 1),
        "none twice: {:?}",
        id_counts(&ignore)
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .collect::<Vec<_>>()
    );
}

/// `emit`: every watched alert, a changed one twice (each version once).
fn assert_each_version_once(
    output: &Path,
    expected: &BTreeSet<String>,
    changed: &BTreeSet<String>,
) {
    let emit = events(output);
    assert_eq!(
        &ids(&emit),
        expected,
        "emit: every watched alert, nothing else"
    );
    for (id, count) in id_counts(&emit) {
        let want = if changed.contains(&id) { 2 } else { 1 };
        assert_eq!(
            count,
            want,
            "emit: {id} published {count} times, changed: {}",
            changed.contains(&id)
        );
    }
}

/// The emulator's clock moves a second at every feed call, so alerts appear and change between
/// the pages of one poll, and a change moves an alert in the feed's order: paging by `$skip`
/// skips the item that slides into a page already read. Read by slices, with no look-back at
/// all, every watched alert arrives, each version once (`emit`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_appearing_between_pages_are_never_skipped() {
    let spec = UniverseSpec {
        seed: 41,
        users: 100,
        files: 50,
        late_share: 1.0,
        change_share: 1.0,
        horizon_secs: 120,
        change_delay_secs: 2,
        ..UniverseSpec::default()
    };
    let sim = mde_watch::sim::start(mde_watch::sim::SimConfig {
        universe: spec,
        limits: fast_limits(),
        advance_per_feed_call: 1.0,
        ..mde_watch::sim::SimConfig::default()
    })
    .await
    .unwrap();
    let watch = Watch::first(&sim, 100, 50);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim,
        &watch,
        &format!(
            "{}lookback = \"0s\"\n[updates]\npolicy = \"emit\"\n",
            feed_source(5)
        ),
    );
    // Polls until the emulator's clock is past the last change (each call moves it a second).
    for _ in 0..300 {
        run_ok(&["once"], &config).await;
        if sim.virtual_now_secs() > 260 {
            break;
        }
    }
    let expected = sim.expected_ids(&watch.users, &watch.files);
    let changed = changed_by_now(&sim);
    let written = events(&dir.path().join("alerts.ndjson"));
    assert!(expected.len() > 150, "{}", expected.len());
    assert_eq!(ids(&written), expected, "none skipped");
    // Every alert's last version arrives (an update is never lost), and no version twice: an
    // alert that appeared and changed within one poll was only ever seen changed.
    let mut last_status: BTreeMap<String, String> = BTreeMap::new();
    for event in &written {
        let id = event["event"]["id"].as_str().unwrap().to_string();
        let status = event["microsoft"]["defender_endpoint"]["status"]
            .as_str()
            .unwrap()
            .to_string();
        last_status.insert(id, status);
    }
    let mut both_versions = 0;
    for (id, count) in id_counts(&written) {
        if changed.contains(&id) {
            assert!(count <= 2, "{id}: published {count} times");
            both_versions += usize::from(count == 2);
            assert_ne!(last_status[&id], "New", "{id}: its update was lost");
        } else {
            assert_eq!(count, 1, "{id}");
            assert_eq!(last_status[&id], "New");
        }
    }
    assert!(
        both_versions > 10,
        "most changes happen between polls: {both_versions}"
    );
}

/// 5xx, 429s, cut-short and malformed answers in the middle of a feed poll, then a SIGKILL while
/// a poll runs and a restart on the same store: nothing lost, duplicates no more than the
/// batches in flight hold (every commit flushed), and a poll after a clean run publishes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_a_kill_mid_poll_lose_nothing() {
    let (written, page_size) = kill_mid_poll_and_restart(51, "0s").await;
    let duplicates: usize = id_counts(&written).values().map(|n| n - 1).sum();
    // What a kill can repeat: the batches handed to the sink and not committed, at most
    // in_flight_batches (2). A batch is one answer of at most a page, except for a slice of one
    // microsecond, which is paged whole into one batch: as many as share that instant.
    let largest_batch = largest_batch(&written, page_size);
    assert!(
        duplicates <= 2 * largest_batch,
        "{duplicates} duplicates (batches of up to {largest_batch})"
    );
}

/// The same kill with commits left waiting for their flush (a second, the longest interval):
/// what sled had not flushed is sent again, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_before_commits_are_flushed_loses_nothing() {
    kill_mid_poll_and_restart(52, "1s").await;
}

/// Runs the service on a faulty feed with `[store] flush_interval`, kills it once it has
/// published something, runs `once` on the same store, and checks that every expected alert
/// was written and that a clean restart adds nothing. Returns the events written and the page
/// size.
async fn kill_mid_poll_and_restart(
    seed: u64,
    flush_interval: &str,
) -> (Vec<serde_json::Value>, usize) {
    let sim = start_sim(universe_of(seed, 80, 40), fast_limits()).await;
    sim.set_faults(mde_watch::sim::Faults {
        error_rate: 0.15,
        throttle_rate: 0.05,
        throttle_retry_after_secs: 1,
        truncated_rate: 0.05,
        malformed_rate: 0.05,
        latency_ms: 40,
        ..Default::default()
    });
    let watch = Watch::first(&sim, 80, 40);
    let page_size = 10;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, &watch, &feed_source(page_size));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("[store]\n"),
        "the interval needs a [store] table"
    );
    let text = text.replacen(
        "[store]\n",
        &format!("[store]\nflush_interval = \"{flush_interval}\"\n"),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let expected = sim.expected_ids(&watch.users, &watch.files);

    // A service killed once its first poll has published something: some batches committed,
    // some not.
    let daemon = spawn(&["run"], &config, "warn");
    let out = dir.path().join("alerts.ndjson");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Whole lines only: the kill may land in the middle of a write.
    let lines = |path: &std::path::Path| {
        std::fs::read(path)
            .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count())
            .unwrap_or(0)
    };
    while lines(&out) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pid = daemon.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap()
        .success());
    let _ = daemon.wait_with_output().await;
    let before_restart = lines(&out);
    assert!(
        before_restart > 0 && before_restart < expected.len(),
        "killed mid-poll: {before_restart} of {}",
        expected.len()
    );

    run_ok(&["once"], &config).await;
    let written = events(&out);
    assert_eq!(ids(&written), expected, "nothing lost");
    assert!(sim.stats().faults_injected >= 5, "{:?}", sim.stats());
    once_adds_nothing(
        &config,
        &out,
        written.len(),
        "a clean restart publishes nothing",
    )
    .await;
    (written, page_size)
}

/// The most alerts one batch can hold: a page, or every alert sharing one `lastUpdateTime`
/// (a slice of one microsecond is paged whole into one batch).
fn largest_batch(written: &[serde_json::Value], page_size: usize) -> usize {
    let mut at_one_instant: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for event in written {
        let updated = event["microsoft"]["defender_endpoint"]["lastUpdateTime"].to_string();
        let id = event["event"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        at_one_instant.entry(updated).or_default().insert(id);
    }
    at_one_instant
        .values()
        .map(BTreeSet::len)
        .max()
        .unwrap_or(0)
        .max(page_size)
}

/// `backfill` in feed mode reads the feed from `--since` (not one call per entry), publishes
/// each watched alert once (a slice split and read again, after part of its answer went out,
/// repeats nothing), and leaves the cursor and dedup as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_backfill_publishes_each_alert_once_and_moves_nothing() {
    let Fixture { sim, watch, dir } =
        Fixture::start(universe_of(23, 60, 30), fast_limits(), 40, 20).await;
    // Ten-alert pages from a small budget: answers go out in pieces before a split is decided.
    let small_budget = format!("{}[pipeline]\nqueue_bytes = \"64KiB\"\n", feed_source(10));
    let config = write_config(dir.path(), &sim, &watch, &small_budget);
    let expected = sim.expected_ids(&watch.users, &watch.files);
    let output = dir.path().join("alerts.ndjson");

    run_ok(&["once"], &config).await;
    assert_eq!(ids(&events(&output)), expected);
    let cursor = |stats: std::process::Output| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&stats.stdout).unwrap()["feed_cursor"].clone()
    };
    let cursor_before = cursor(run(&["state", "stats"], &config).await);
    assert!(cursor_before.is_string(), "{cursor_before}");
    let entity_calls = sim.stats().user_calls + sim.stats().file_calls;

    let backfill = run_ok(&["backfill", "--since", "36500d"], &config).await;
    let stdout = String::from_utf8_lossy(&backfill.stdout);
    says(&stdout, "the alerts feed read in");
    let written = events(&output);
    let again = &written[expected.len()..];
    assert_eq!(ids(again), expected, "every watched alert again");
    assert!(
        id_counts(again).values().all(|&n| n == 1),
        "an alert published twice by one backfill: {:?}",
        id_counts(again)
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        sim.stats().user_calls + sim.stats().file_calls,
        entity_calls,
        "the backfill read the feed, not the entities"
    );
    assert_eq!(
        cursor(run(&["state", "stats"], &config).await),
        cursor_before
    );

    run_ok(&["once"], &config).await;
    assert_eq!(events(&output).len(), written.len(), "dedup as it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_paged_past_one_microsecond_is_read_at_a_budget_of_one_poll() {
    let Fixture { sim, watch, dir } =
        Fixture::start(universe_of(23, 60, 30), fast_limits(), 40, 20).await;
    // One poll at a time takes pieces of half the budget, so a page's remainder can hold more
    // than the room the next page's request waits for: the query must give it back first.
    let one_poll = format!(
        "{}[pipeline]\nqueue_bytes = \"64KiB\"\nconcurrency = 1\n",
        feed_source(10)
    );
    let config = write_config(dir.path(), &sim, &watch, &one_poll);
    let output = dir.path().join("alerts.ndjson");

    let once = run_ok(&["once"], &config).await;
    says(
        &String::from_utf8_lossy(&once.stderr),
        "more than a page of alerts in one microsecond: paging",
    );
    assert_each_once(&output, &sim.expected_ids(&watch.users, &watch.files));
}
