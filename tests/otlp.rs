//! OTLP/HTTP against stand-in collectors: metrics and spans arrive, over https with a private CA
//! (`telemetry.otlp_ca_file`), and an export the collector does not take is said when failures
//! start and when they end, and counted.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::certs::TestCa;
use common::kafka::free_port;
use common::scrape::until_at_least;
use common::*;
use mde_watch::sim::{SimTls, TlsListener};

/// The request bodies a stand-in collector received, with their paths.
type Bodies = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A stand-in OTLP/HTTP collector on `port` (0: any free one), HTTPS with `tls`: keeps every
/// request body by path. With `api_key`, a request without that `x-api-key` is answered 401
/// and not kept.
async fn otlp_receiver(
    port: u16,
    tls: Option<&SimTls>,
    api_key: Option<&'static str>,
) -> (String, Bodies, tokio::task::JoinHandle<()>) {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, Uri};
    let seen: Bodies = Default::default();
    type Kept = (Bodies, Option<&'static str>);
    async fn keep(
        State((seen, api_key)): State<Kept>,
        uri: Uri,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, &'static str) {
        let given = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        if api_key.is_some_and(|key| given != Some(key)) {
            return (StatusCode::UNAUTHORIZED, "{}");
        }
        seen.lock().unwrap().push((uri.path().to_string(), body));
        (StatusCode::OK, "{}")
    }
    let app = axum::Router::new()
        .route("/v1/metrics", axum::routing::post(keep))
        .route("/v1/traces", axum::routing::post(keep))
        .with_state((seen.clone(), api_key));
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

/// Waits (at most 30 s) until the collector has received the metrics; `what` says otherwise.
async fn until_metrics_arrive(seen: &Bodies, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !metric_names(&seen.lock().unwrap()).contains("mdewatch_alerts_total") {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    let (url, seen, server) = otlp_receiver(0, None, None).await;
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

/// The stand-in collector over HTTPS, its certificate from a private CA made in `dir`; the
/// CA's PEM file last.
async fn https_receiver(dir: &Path) -> (String, Bodies, tokio::task::JoinHandle<()>, PathBuf) {
    let ca = TestCa::new(dir);
    let served = ca.server("collector", 2);
    let tls = SimTls {
        certificate_pem: std::fs::read(&served.cert).unwrap(),
        key_pem: std::fs::read(&served.key).unwrap(),
    };
    let (url, seen, server) = otlp_receiver(0, Some(&tls), None).await;
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
    until_metrics_arrive(&seen, "no OTLP metrics over https").await;
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
    let (_, seen, server) = otlp_receiver(collector, None, None).await;
    until_metrics_arrive(&seen, "no OTLP metrics once the collector is up").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_headers_from_a_private_file_reach_the_collector() {
    let Fixture { sim, watch, dir } =
        Fixture::start(universe_of(17, 6, 6), fast_limits(), 3, 3).await;
    let (url, seen, server) = otlp_receiver(0, None, Some("k3y-for-otlp")).await;
    let headers = dir.path().join("otlp-headers");
    write_secret(&headers, "# the collector's key\nx-api-key: k3y-for-otlp\n");
    let path = write_config(
        dir.path(),
        &sim,
        &watch,
        &format!(
            "[telemetry]\notlp_endpoint = \"{url}\"\notlp_interval = \"1s\"\n\
             otlp_headers_file = \"{}\"\n",
            headers.display()
        ),
    );
    let checked = show(&run_ok(&["check", "--connect"], &path).await);
    says(
        &checked,
        &format!("otlp: OK, {url}/v1/metrics took an empty export (200 OK)"),
    );
    says(
        &checked,
        &format!("headers from {} (values not shown)", headers.display()),
    );
    assert!(!checked.contains("k3y-for-otlp"), "{checked}");
    let daemon = spawn(&["run"], &path, "info");
    until_metrics_arrive(&seen, "no OTLP metrics with the key").await;
    sigterm(&daemon);
    let said = show(&stopped_cleanly(daemon).await);
    assert!(!said.contains("OTLP export failed"), "{said}");
    assert!(!said.contains("k3y-for-otlp"), "{said}");

    // A wrong key: refused by the collector, said and counted like any failed export.
    write_secret(&headers, "x-api-key: not-the-key\n");
    let (checked, _) = run_err(&["check", "--connect"], &path).await;
    says(
        &show(&checked),
        &format!("error: OTLP collector {url}/v1/metrics: answered 401 Unauthorized"),
    );
    server.abort();
}
