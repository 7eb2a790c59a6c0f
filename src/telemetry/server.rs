//! The loopback HTTP endpoint (off unless `[telemetry] listen` is set): `/metrics` in
//! Prometheus text, `/healthz` as JSON, 200 when healthy and 503 when degraded.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::metrics::{collect, Sources};
use crate::shutdown::Shutdown;

/// Binds `listen` and serves until `stop`; the error names the address.
/// Binds `listen` and serves in the background; the bind's error is returned.
pub async fn serve(
    listen: SocketAddr,
    sources: Sources,
    stop: Shutdown,
) -> Result<(), std::io::Error> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(sources);
    tracing::info!(%listen, "serving /metrics and /healthz");
    tokio::spawn(async move {
        let mut stop = stop;
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.wait().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "telemetry endpoint stopped");
        }
    });
    Ok(())
}

async fn metrics(State(sources): State<Sources>) -> impl IntoResponse {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let text =
        tokio::task::spawn_blocking(move || super::prometheus::render(&collect(&sources, now_ms)))
            .await
            .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn healthz(State(sources): State<Sources>) -> impl IntoResponse {
    let health = sources.health(chrono::Utc::now().timestamp());
    let status = if health.is_healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(health))
}
