//! `/metrics` and `/healthz` on the loopback endpoint, against the emulator: the figures the
//! issue names are there and move, and health turns degraded when the API fails for two
//! cadences, then recovers.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::certs::TestCa;
use common::*;
use mde_watch::sim::{Faults, SimHandle, SimTls, TlsListener, UniverseSpec};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

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

/// The value of one sample line, e.g. `mdewatch_alerts_total{decision="new"}`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
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

/// The request bodies a stand-in collector received, with their paths.
type Bodies = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A stand-in OTLP/HTTP collector on `port` (0: any free one), HTTPS with `tls`: keeps every
/// request body by path.
async fn otlp_receiver(
    port: u16,
    tls: Option<&SimTls>,
) -> (String, Bodies, tokio::task::JoinHandle<()>) {
    use axum::extract::State;
    let seen: Bodies = Default::default();
    async fn keep(State(seen): State<Bodies>, uri: axum::http::Uri, body: String) -> &'static str {
        seen.lock().unwrap().push((uri.path().to_string(), body));
        "{}"
    }
    let app = axum::Router::new()
        .route("/v1/metrics", axum::routing::post(keep))
        .route("/v1/traces", axum::routing::post(keep))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let (url, server) = match tls {
        Some(tls) => {
            let listener = TlsListener::new(listener, tls).unwrap();
            let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            (format!("https://{address}"), server)
        }
        None => {
            let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            (format!("http://{address}"), server)
        }
    };
    (url, seen, server)
}

/// Metric names in the OTLP/JSON bodies received on `/v1/metrics`.
fn metric_names(bodies: &[(String, String)]) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for (_, body) in bodies.iter().filter(|(path, _)| path == "/v1/metrics") {
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        for resource in json["resourceMetrics"].as_array().into_iter().flatten() {
            for scope in resource["scopeMetrics"].as_array().into_iter().flatten() {
                for metric in scope["metrics"].as_array().into_iter().flatten() {
                    names.insert(metric["name"].as_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_receives_the_metrics_and_the_spans() {
    let Fixture { sim, watch, dir } =
        Fixture::start(universe_of(17, 6, 6), fast_limits(), 3, 3).await;
    let (url, seen, server) = otlp_receiver(0, None).await;
    let path = write_config(
        dir.path(),
        &sim,
        &watch,
        &format!(
            "[schedule]\ncron = \"* * * * * *\"\n[telemetry]\notlp_endpoint = \"{url}\"\notlp_interval = \"1s\"\n"
        ),
    );
    let daemon = spawn(&["run"], &path, "info");
    let wanted = [
        "mdewatch_api_calls_total",
        "mdewatch_api_throttled_total",
        "mdewatch_api_retries_total",
        "mdewatch_limiter_wait_seconds_total",
        "mdewatch_budget_used_calls",
        "mdewatch_alerts_total",
        "mdewatch_sink_events_total",
        "mdewatch_sink_queued_events",
        "mdewatch_publish_latency_seconds_count",
        "mdewatch_store_alerts",
        "mdewatch_last_successful_sweep_timestamp_seconds",
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let names = metric_names(&seen.lock().unwrap());
        if wanted.iter().all(|w| names.contains(*w)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "OTLP metrics missing {:?}; got {names:?}",
            wanted
                .iter()
                .filter(|w| !names.contains(**w))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The batched spans go out at the latest when the daemon stops.
    sigterm(&daemon);
    stopped_cleanly(daemon).await;
    let bodies = seen.lock().unwrap().clone();
    let traces: String = bodies
        .iter()
        .filter(|(path, _)| path == "/v1/traces")
        .map(|(_, body)| body.as_str())
        .collect();
    for span in ["\"sweep\"", "\"poll\"", "\"publish\""] {
        assert!(
            traces.contains(span),
            "no {span} span in {} bytes of traces",
            traces.len()
        );
    }
    server.abort();
}

/// Waits until `series` on the daemon's `/metrics` at `base` reaches `at_least`.
async fn until_at_least(base: &str, series: &str, at_least: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, text)) = get(&format!("{base}/metrics")).await {
            if sample(&text, series) >= at_least {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} never reached {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The stand-in collector over HTTPS, its certificate from a private CA made in `dir`; the
/// CA's PEM file last.
async fn https_receiver(dir: &Path) -> (String, Bodies, tokio::task::JoinHandle<()>, PathBuf) {
    let ca = TestCa::new(dir);
    let served = ca.server("collector", 2);
    let tls = SimTls {
        certificate_pem: std::fs::read(&served.cert).unwrap(),
        key_pem: std::fs::read(&served.key).unwrap(),
    };
    let (url, seen, server) = otlp_receiver(0, Some(&tls)).await;
    (url, seen, server, ca.pem)
}

/// The only line of `said` that reports failed metrics exports.
fn the_one_refusal(said: &str) -> &str {
    let refusals = said
        .lines()
        .filter(|line| line.contains("OTLP export failed;") && line.contains("signal=\"metrics\""))
        .collect::<Vec<_>>();
    assert_eq!(refusals.len(), 1, "{said}");
    refusals[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_over_https_trusts_otlp_ca_file_and_a_refused_export_is_said_and_counted() {
    let Fixture { sim, watch, dir } =
        Fixture::start(universe_of(17, 6, 6), fast_limits(), 3, 3).await;
    let (url, seen, server, ca_pem) = https_receiver(dir.path()).await;
    let port = free_port();
    let config = |ca_line: &str| {
        format!(
            "[schedule]\ncron = \"* * * * * *\"\n[telemetry]\nlisten = \"127.0.0.1:{port}\"\n\
             otlp_endpoint = \"{url}\"\notlp_interval = \"1s\"\n{ca_line}"
        )
    };

    // Without the private CA the collector's certificate is refused: said once when the
    // exports start failing, with the reason, and every failure counted.
    let path = write_config(dir.path(), &sim, &watch, &config(""));
    let (checked, _) = run_err(&["check", "--connect"], &path).await;
    says(
        &show(&checked),
        &format!("error: OTLP collector {url}/v1/metrics: no answer: the server's certificate is not signed by a CA mde-watch trusts"),
    );
    let daemon = spawn(&["run"], &path, "info");
    let base = format!("http://127.0.0.1:{port}");
    let failed = "mdewatch_otlp_export_failures_total{signal=\"metrics\"}";
    until_at_least(&base, failed, 2.0).await;
    sigterm(&daemon);
    let said = show(&stopped_cleanly(daemon).await);
    let refusal = the_one_refusal(&said);
    says(
        refusal,
        "not signed by a CA mde-watch trusts (the Mozilla roots built in, and telemetry.otlp_ca_file",
    );
    says(refusal, &format!("url=\"{url}/v1/metrics\""));
    assert!(seen.lock().unwrap().is_empty(), "nothing gets through");

    // With it, metrics and spans arrive (the spans even with the log quieted to warnings),
    // and nothing is said about exports.
    let ca_line = format!("otlp_ca_file = \"{}\"\n", ca_pem.display());
    let path = write_config(dir.path(), &sim, &watch, &config(&ca_line));
    let checked = run_ok(&["check", "--connect"], &path).await;
    says(
        &show(&checked),
        &format!("otlp: OK, {url}/v1/metrics took an empty export (200 OK)"),
    );
    says(
        &show(&checked),
        &format!(
            "OTLP: {url} over TLS, certificate verified against the Mozilla roots and {} (telemetry.otlp_ca_file)",
            ca_pem.display()
        ),
    );
    assert!(seen.lock().unwrap().iter().any(|(_, body)| body == "{}"));
    let daemon = spawn(&["run"], &path, "warn");
    // A sweep for its spans, and metrics exported after it.
    until_at_least(&base, "mdewatch_sweeps_total", 1.0).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !metric_names(&seen.lock().unwrap()).contains("mdewatch_alerts_total") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no OTLP metrics over https"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sigterm(&daemon);
    let said = show(&stopped_cleanly(daemon).await);
    assert!(!said.contains("OTLP export failed"), "{said}");
    let bodies = seen.lock().unwrap().clone();
    assert!(
        bodies
            .iter()
            .any(|(path, body)| path == "/v1/traces" && body.contains("\"sweep\"")),
        "no sweep span over https"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otlp_outage_is_said_when_it_starts_and_when_it_ends() {
    let Fixture { sim, watch, dir } =
        Fixture::start(universe_of(17, 6, 6), fast_limits(), 3, 3).await;
    // The collector's port is chosen now and served later: until then every export fails.
    let collector = free_port();
    let port = free_port();
    let path = write_config(
        dir.path(),
        &sim,
        &watch,
        &format!(
            "[schedule]\ncron = \"* * * * * *\"\n[telemetry]\nlisten = \"127.0.0.1:{port}\"\n\
             otlp_endpoint = \"http://127.0.0.1:{collector}\"\notlp_interval = \"1s\"\n"
        ),
    );
    let daemon = spawn(&["run"], &path, "info");
    let failed = "mdewatch_otlp_export_failures_total{signal=\"metrics\"}";
    until_at_least(&format!("http://127.0.0.1:{port}"), failed, 2.0).await;
    let (_, seen, server) = otlp_receiver(collector, None).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !metric_names(&seen.lock().unwrap()).contains("mdewatch_alerts_total") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no OTLP metrics once the collector is up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sigterm(&daemon);
    let said = show(&stopped_cleanly(daemon).await);
    // Said once when it started (however many exports failed), once when it ended.
    let refusal = the_one_refusal(&said);
    says(refusal, "url=\"http://127.0.0.1:");
    let back = said
        .lines()
        .filter(|line| {
            line.contains("OTLP export works again") && line.contains("signal=\"metrics\"")
        })
        .collect::<Vec<_>>();
    assert_eq!(back.len(), 1, "{said}");
    assert!(said.find(refusal) < said.find(back[0]), "{said}");
    server.abort();
}
