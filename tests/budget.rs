//! The call budget used whole: a watchlist larger than the budget spends the calls a sweep's
//! retries did not need on the next entries of the round-robin, so every hour's calls are used,
//! and none over. Time is compressed 60 times (100 calls per second, 1,500 per minute, a sweep
//! every 5 seconds); the counts are the emulator's own.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use mde_watch::schedule::limiter::Window;

const HOUR: Duration = Duration::from_secs(60);
const HOURLY_CALLS: usize = 1500;

fn compressed_limits() -> Vec<Window> {
    vec![
        Window {
            calls: 100,
            per: Duration::from_secs(1),
        },
        Window {
            calls: HOURLY_CALLS as u32,
            per: HOUR,
        },
    ]
}

/// Calls inside `[from, from + per)` of `times` (sorted).
fn calls_between(times: &[Duration], from: Duration, per: Duration) -> usize {
    times.partition_point(|&t| t < from + per) - times.partition_point(|&t| t < from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watchlist_larger_than_the_budget_uses_every_call_and_none_over() {
    let Fixture { sim, watch, dir } =
        Fixture::start(universe_of(21, 3000, 10), compressed_limits(), 3000, 0).await;
    // Sweeps on the cron only: 12 in the first hour. Planning alone they would make 12 x 112 =
    // 1,344 calls (89.6%); with the calls the retries left, 12 x 125.
    let cron_only = "[schedule]\ncron = \"*/5 * * * * *\"\nrun_on_start = false\n";
    let config = write_config(dir.path(), &sim, &watch, cron_only);

    let check = run(&["check"], &config).await;
    let plan = String::from_utf8_lossy(&check.stdout);
    assert!(
        plan.contains("a sweep may plan 112 calls") && plan.contains("up to 125 calls per sweep"),
        "{}",
        show(&check)
    );

    let daemon = spawn(&["run"], &config, "warn");
    tokio::time::sleep(HOUR + Duration::from_secs(15)).await;
    sigterm(&daemon);
    stopped_cleanly(daemon).await;

    let stats = sim.stats();
    assert_eq!(stats.served_429, 0, "a call over the limit: {stats:?}");
    assert_within_limits(&sim);

    // The first hour, as the API counts it from the first call: all of its calls used.
    let times = sim.call_times();
    let first_hour = calls_between(&times, Duration::ZERO, HOUR);
    let hourly = stats.windows[1].most_seen;
    eprintln!(
        "calls: {} in 75 s; first hour {first_hour} of {HOURLY_CALLS}; busiest hour {hourly}",
        times.len()
    );
    assert!(
        first_hour * 100 >= HOURLY_CALLS * 99,
        "the first hour used {first_hour} of {HOURLY_CALLS} calls"
    );

    // The spare calls went to the next entries, not to entries polled again: the first pass
    // over the 3,000 users has no repeats.
    let calls = sim.entity_calls();
    let pass = &calls[..calls.len().min(watch.users.len())];
    let distinct: BTreeSet<&String> = pass.iter().collect();
    assert_eq!(
        distinct.len(),
        pass.len(),
        "an entry polled twice in a pass"
    );

    let written = events(&dir.path().join("alerts.ndjson"));
    assert!(!written.is_empty(), "the sweeps published");
}
