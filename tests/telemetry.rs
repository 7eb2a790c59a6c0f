//! `/metrics` and `/healthz` on the loopback endpoint, against the emulator: the figures the
//! issue names are there and move, and health turns degraded when the API fails for two
//! cadences, then recovers.

mod common;

use std::path::Path;
use std::time::Duration;

use common::kafka::free_port;
use common::scrape::{get, sample};
use common::*;
use mde_watch::sim::{Faults, SimHandle, UniverseSpec};

/// Waits until `url` answers with `status`; the last body.
async fn until_status(url: &str, status: u16, what: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answer = get(url).await;
        if let Some((got, body)) = &answer {
            if *got == status {
                return body.clone();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {url} never answered {status}; last {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The daemon sweeping every second with its telemetry on a free port (and `extra` in its
/// config); returns it and the telemetry's base URL.
fn serving(
    dir: &Path,
    sim: &SimHandle,
    watch: &Watch,
    extra: &str,
) -> (tokio::process::Child, String) {
    let port = free_port();
    let telemetry = format!(
        "[schedule]\ncron = \"* * * * * *\"\n{extra}[telemetry]\nlisten = \"127.0.0.1:{port}\"\n"
    );
    let path = write_config(dir, sim, watch, &telemetry);
    (
        spawn(&["run"], &path, "error"),
        format!("http://127.0.0.1:{port}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_and_health_follows_the_api() {
    let Fixture { sim, watch, dir } =
        Fixture::start(universe_of(13, 10, 10), fast_limits(), 5, 5).await;
    let (daemon, base) = serving(dir.path(), &sim, &watch, "");

    let health = until_status(&format!("{base}/healthz"), 200, "first sweep").await;
    says(&health, "\"status\":\"ok\"");
    let expected = sim.expected_ids(&watch.users, &watch.files).len() as f64;
    let metrics = metrics_once_published(&base, expected).await;
    assert_sweep_figures(&metrics, expected);

    // Every call fails with a 5xx: after two cadences without a successful sweep, degraded.
    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let degraded = until_status(&format!("{base}/healthz"), 503, "API failing").await;
    says(&degraded, "no sweep succeeded");
    let (_, metrics) = get(&format!("{base}/metrics")).await.unwrap();
    assert!(
        sample(
            &metrics,
            "mdewatch_api_calls_total{endpoint=\"users\",status=\"5xx\"}"
        ) > 0.0
    );
    assert!(sample(&metrics, "mdewatch_api_retries_total") > 0.0);

    sim.set_faults(Faults::default());
    until_status(&format!("{base}/healthz"), 200, "API back").await;

    sigterm(&daemon);
    stopped_cleanly(daemon).await;
}

/// /metrics once it says `expected` alerts were published (within 30 s).
async fn metrics_once_published(base: &str, expected: f64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = get(&format!("{base}/metrics")).await.unwrap();
        if sample(&text, "mdewatch_alerts_published_total") >= expected {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all published:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What /metrics says after a sweep of 5 users and 5 files that published `expected` alerts.
fn assert_sweep_figures(metrics: &str, expected: f64) {
    assert!(
        sample(
            metrics,
            "mdewatch_api_calls_total{endpoint=\"users\",status=\"2xx\"}"
        ) >= 5.0
    );
    assert!(
        sample(
            metrics,
            "mdewatch_api_calls_total{endpoint=\"files\",status=\"2xx\"}"
        ) >= 5.0
    );
    assert_eq!(
        sample(metrics, "mdewatch_alerts_total{decision=\"new\"}"),
        expected
    );
    assert!(sample(metrics, "mdewatch_alerts_total{decision=\"unchanged\"}") >= 0.0);
    assert_eq!(
        sample(
            metrics,
            "mdewatch_sink_events_total{sink=\"file-0\",outcome=\"acked\"}"
        ),
        expected
    );
    assert_eq!(
        sample(metrics, "mdewatch_sink_failing{sink=\"file-0\"}"),
        0.0
    );
    assert!(sample(metrics, "mdewatch_publish_latency_seconds_count") >= 1.0);
    assert_eq!(sample(metrics, "mdewatch_store_alerts"), expected);
    assert!(sample(metrics, "mdewatch_last_successful_sweep_timestamp_seconds") > 1.7e9);
    for name in [
        "mdewatch_api_throttled_total",
        "mdewatch_api_retries_total",
        "mdewatch_limiter_wait_seconds_total",
        "mdewatch_budget_used_calls{window=",
        "mdewatch_sink_queued_events{sink=\"file-0\"}",
        "mdewatch_store_disk_bytes",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
}

/// In feed mode the figures follow the feed, and health follows its cursor: degraded once it
/// has not moved for two cadences while every poll fails, ok again when polls succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_mode_health_follows_the_cursor() {
    let Fixture { sim, watch, dir } =
        Fixture::start(universe_of(17, 10, 10), fast_limits(), 5, 5).await;
    let (daemon, base) = serving(dir.path(), &sim, &watch, "[source]\nmode = \"feed\"\n");

    let expected = sim.expected_ids(&watch.users, &watch.files).len() as f64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        if let Some((_, text)) = get(&format!("{base}/metrics")).await {
            if sample(&text, "mdewatch_alerts_published_total") >= expected {
                break text;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "not all published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(sample(&metrics, "mdewatch_feed_queries_total") >= 1.0);
    assert_eq!(
        sample(&metrics, "mdewatch_feed_alerts_total{matched=\"yes\"}"),
        expected
    );
    assert!(sample(&metrics, "mdewatch_feed_alerts_total{matched=\"no\"}") > 0.0);
    assert!(sample(&metrics, "mdewatch_feed_cursor_advanced_timestamp_seconds") > 1.7e9);
    let health = until_status(&format!("{base}/healthz"), 200, "feed polls").await;
    says(&health, "\"status\":\"ok\"");

    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let degraded = until_status(&format!("{base}/healthz"), 503, "feed failing").await;
    says(&degraded, "the feed cursor has not advanced");

    sim.set_faults(Faults::default());
    until_status(&format!("{base}/healthz"), 200, "feed back").await;

    sigterm(&daemon);
    stopped_cleanly(daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_listen_address_is_refused_by_name() {
    let sim = start_sim(UniverseSpec::default(), fast_limits()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &sim,
        &Watch::first(&sim, 1, 0),
        "[telemetry]\nlisten = \"0.0.0.0:9464\"\n",
    );
    let output = run(&["check"], &path).await;
    assert!(!output.status.success());
    let said = show(&output);
    says(
        &said,
        "telemetry.listen: '0.0.0.0:9464' is not a loopback address",
    );
}
