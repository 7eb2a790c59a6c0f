//! What a test reads from the daemon's telemetry endpoint: a GET, one sample of `/metrics`,
//! and waiting for a series to reach a value.

use std::time::Duration;

/// The status and body `url` answers with, or None when it does not answer.
pub async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// The value of one sample line, e.g. `mdewatch_alerts_total{decision="new"}`.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// Waits until `series` on the daemon's `/metrics` at `base` reaches `at_least`.
pub async fn until_at_least(base: &str, series: &str, at_least: f64) {
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
