//! The service in-process and as a daemon: round-robin with a persisted cursor, commit only after
//! the sink acknowledged, update policy, and a clean stop on SIGTERM.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use mde_watch::app::{AppError, Scope, Service};
use mde_watch::config::Config;
use mde_watch::pipeline::PipelineError;
use mde_watch::schedule::limiter::Window;
use mde_watch::shutdown;
use mde_watch::sim::UniverseSpec;

fn universe() -> UniverseSpec {
    universe_of(11, 30, 30)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_cursor_survives_restarts_and_starves_no_one() {
    // A budget of 10 calls a second and a cron firing every second: 9 entries planned per
    // sweep, and the call kept for retries serves a tenth when no retry needs it.
    let limits = vec![Window {
        calls: 10,
        per: Duration::from_secs(1),
    }];
    let Fixture { sim, watch, dir } = Fixture::start(universe(), limits, 25, 0).await;
    let path = write_config(
        dir.path(),
        &sim,
        &watch,
        "[schedule]\ncron = \"* * * * * *\"\n",
    );
    let polled = |service: &Service| -> BTreeSet<String> {
        (1..=25)
            .filter(|i| {
                service
                    .store()
                    .entity(&format!("u:user{i}"))
                    .unwrap()
                    .is_some()
            })
            .map(|i| format!("user{i}"))
            .collect()
    };

    let mut service =
        Service::build(Config::load(&path).unwrap(), shutdown::Shutdown::never()).unwrap();
    assert_eq!(service.plan().entries_per_sweep, 9, "{}", service.plan());
    assert_eq!(service.plan().calls_per_sweep, 10, "{}", service.plan());
    service.sweep(Scope::Planned).await.unwrap();
    assert_eq!(service.store().cursor().unwrap(), 10);
    assert_eq!(
        polled(&service),
        (1..=10).map(|i| format!("user{i}")).collect()
    );
    drop(service);

    // A new process on the same store resumes where the last one stopped.
    let mut service =
        Service::build(Config::load(&path).unwrap(), shutdown::Shutdown::never()).unwrap();
    service.sweep(Scope::Planned).await.unwrap();
    assert_eq!(service.store().cursor().unwrap(), 20);
    service.sweep(Scope::Planned).await.unwrap();
    assert_eq!(
        service.store().cursor().unwrap(),
        5,
        "the cursor wraps around"
    );
    assert_eq!(
        polled(&service).len(),
        25,
        "every entry was polled within one pass"
    );
    assert_within_limits(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_committed_until_the_sink_acknowledges() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 10, 5).await;
    let path = write_config(dir.path(), &sim, &watch, "");
    // /dev/full accepts the open and fails every write with ENOSPC: a sink that is down.
    edit_config(&path, "path = \"alerts.ndjson\"", "path = \"/dev/full\"");

    let (trigger, stop) = shutdown::channel();
    let mut service = Service::build(Config::load(&path).unwrap(), stop).unwrap();
    let outcome = sweep_stopped_after(&mut service, trigger, Duration::from_secs(3)).await;
    assert!(
        matches!(
            outcome,
            Err(AppError::Pipeline(PipelineError::Undelivered { .. }))
        ),
        "{outcome:?}"
    );
    assert!(
        service.counters().sink_failures >= 2,
        "the sink was retried"
    );
    assert!(
        service.store().seen_ids().unwrap().is_empty(),
        "alerts were committed without an ack"
    );
    assert_eq!(service.store().cursor().unwrap(), 0);
    drop(service);

    // The sink is back: everything goes out.
    edit_config(&path, "path = \"/dev/full\"", "path = \"alerts.ndjson\"");
    run_ok(&["once"], &path).await;
    assert_delivered_all(dir.path(), &sim, &watch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_alerts_are_emitted_again_with_policy_emit() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 30, 0).await;
    let path = write_config(dir.path(), &sim, &watch, "[updates]\npolicy = \"emit\"\n");
    assert!(run(&["once"], &path).await.status.success());
    let first = events(&dir.path().join("alerts.ndjson")).len();

    let later = 10 * 3600;
    sim.advance(Duration::from_secs(later));
    assert!(run(&["once"], &path).await.status.success());
    let all = events(&dir.path().join("alerts.ndjson"));
    let updated: BTreeSet<String> = all[first..]
        .iter()
        .filter(|e| e["event"]["action"] == "alert-updated")
        .map(|e| e["event"]["id"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = sim
        .universe()
        .alerts
        .iter()
        .filter(|a| {
            a.user.is_some_and(|u| u <= 30)
                && a.appear_at == 0
                && a.change_at.is_some_and(|c| c <= later)
        })
        .map(|a| a.id.clone())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(updated, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_daemon_cleanly_with_everything_committed() {
    let Fixture { sim, watch, dir } = Fixture::start(universe(), fast_limits(), 15, 15).await;
    let path = write_config(dir.path(), &sim, &watch, EVERY_TWO_SECONDS);
    let output_file = dir.path().join("alerts.ndjson");
    let daemon = spawn(&["run"], &path, "warn");
    let expected = sim.expected_ids(&watch.users, &watch.files);
    written_within_a_minute(&output_file, &expected).await;
    sigterm(&daemon);
    stopped_cleanly(daemon).await;

    let before = std::fs::read(&output_file).unwrap();
    run_ok(&["once"], &path).await;
    assert_eq!(
        std::fs::read(&output_file).unwrap(),
        before,
        "everything written had been committed"
    );
}
