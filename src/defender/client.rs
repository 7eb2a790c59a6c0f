//! The two watchlist endpoints, `GET /api/users/{id}/alerts` and `GET /api/files/{sha1}/alerts`.
//! Every HTTP call waits for the shared rate gate first. Retries: 429 pauses everything for
//! Retry-After; 5xx, timeouts, cut-short and malformed bodies back off with full jitter; 401
//! refreshes the token once; 403 and 400 are reported, not retried; 404 means "no alerts".

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tracing::Instrument;

use super::auth::{without_url, TokenProvider};
use super::errors::{backoff, classify, ApiError, Verdict};
use super::odata::{parse_page, Page};
use super::PolledAlert;
use crate::config::ApiConfig;
use crate::schedule::gate::RateGate;
use crate::shutdown::Shutdown;
use crate::stats::{CallOutcome, Counters};
use crate::watchlist::{Entry, EntryKind};

/// RFC 3986 unreserved characters stay; everything else in a path segment is encoded.
pub const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// A page chain longer than this is treated as a server bug rather than followed forever.
const MAX_PAGES: usize = 200;

/// The alerts one entry returned.
#[derive(Debug, Default)]
pub struct EntryAlerts {
    pub alerts: Vec<PolledAlert>,
    /// Alerts in the response that could not be read.
    pub rejected: Vec<String>,
    /// HTTP calls made, retries included.
    pub calls: u32,
    /// 429 answers received.
    pub throttled: u32,
}

/// The URL of an entry's alert collection.
pub fn alerts_url(api_base: &str, entry: &Entry) -> String {
    let collection = match entry.kind {
        EntryKind::User => "users",
        EntryKind::File => "files",
    };
    format!(
        "{api_base}/api/{collection}/{}/alerts",
        utf8_percent_encode(&entry.value, SEGMENT)
    )
}

pub struct DefenderClient {
    http: reqwest::Client,
    api_base: String,
    auth: TokenProvider,
    gate: Arc<RateGate>,
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    stop: Shutdown,
    counters: Arc<Counters>,
}

/// Builds the HTTP client every part of the program shares (connection reuse, timeouts, proxy).
pub fn http_client(api: &ApiConfig) -> Result<reqwest::Client, ApiError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(super::user_agent())
        .timeout(api.timeout)
        .connect_timeout(api.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(50));
    if let Some(proxy) = &api.proxy {
        let proxy = reqwest::Proxy::all(proxy)
            .map_err(|err| ApiError::Other(format!("api.proxy '{proxy}': {err}")))?;
        builder = builder.proxy(proxy);
    }
    builder
        .build()
        .map_err(|err| ApiError::Other(format!("cannot build the HTTP client: {err}")))
}

impl DefenderClient {
    pub fn new(
        api: &ApiConfig,
        gate: Arc<RateGate>,
        stop: Shutdown,
        counters: Arc<Counters>,
    ) -> Result<DefenderClient, ApiError> {
        let http = http_client(api)?;
        Ok(DefenderClient {
            auth: TokenProvider::new(http.clone(), api),
            http,
            api_base: api.api_base.clone(),
            gate,
            max_retries: api.max_retries,
            backoff_base: api.backoff_base,
            backoff_max: api.backoff_max,
            stop,
            counters,
        })
    }

    pub fn auth(&self) -> &TokenProvider {
        &self.auth
    }

    /// Every alert the API holds for `entry`, following `@odata.nextLink` if it ever appears.
    pub async fn alerts_for(&self, entry: &Entry) -> Result<EntryAlerts, ApiError> {
        let span = tracing::info_span!("poll", kind = entry.kind.as_str(), entry = %entry.value);
        async {
            let mut result = EntryAlerts::default();
            let mut url = alerts_url(&self.api_base, entry);
            let what = format!("{} {}", entry.kind.as_str(), entry.value);
            for _ in 0..MAX_PAGES {
                let file = entry.kind == crate::watchlist::EntryKind::File;
                let Some(page) = self.get_page(&url, &what, file, &mut result).await? else {
                    tracing::debug!("404: no alerts (older API behaviour)");
                    break;
                };
                result.alerts.extend(page.alerts);
                result.rejected.extend(page.rejected);
                match page.next_link {
                    Some(next) if next.starts_with(&self.api_base) => url = next,
                    Some(next) => {
                        tracing::warn!(next_link = %next, "nextLink leaves the API host; not followed");
                        break;
                    }
                    None => break,
                }
            }
            tracing::debug!(alerts = result.alerts.len(), calls = result.calls, "polled");
            Ok(result)
        }
        .instrument(span)
        .await
    }

    /// One page, retried as its answers require. `None` is a 404.
    async fn get_page(
        &self,
        url: &str,
        what: &str,
        file: bool,
        tally: &mut EntryAlerts,
    ) -> Result<Option<Page>, ApiError> {
        let mut failures = 0u32;
        let mut throttles = 0u32;
        let mut refreshed = false;
        let cancelled = || ApiError::Cancelled {
            what: what.to_string(),
        };
        loop {
            if self.stop.is_triggered() {
                return Err(cancelled());
            }
            let mut stop = self.stop.clone();
            let waiting = std::time::Instant::now();
            tokio::select! {
                _ = self.gate.acquire() => {}
                _ = stop.wait() => return Err(cancelled()),
            }
            self.counters.add(
                &self.counters.limiter_wait_ms,
                waiting.elapsed().as_millis() as u64,
            );
            let token = self.auth.bearer().await?;
            tally.calls += 1;
            self.counters.add(&self.counters.calls, 1);
            let outcome = self.call(url, &token, what, file).await;
            let problem = match outcome {
                Answer::Page(page) => return Ok(Some(page)),
                Answer::Fatal(err) => return Err(err),
                Answer::NoAlerts => return Ok(None),
                Answer::RefreshToken if !refreshed => {
                    tracing::info!("401: refreshing the access token once");
                    self.auth.invalidate(&token).await;
                    refreshed = true;
                    self.counters.add(&self.counters.retries, 1);
                    continue;
                }
                Answer::RefreshToken => {
                    return Err(ApiError::Unauthorized {
                        message: format!("{what}: rejected twice"),
                    })
                }
                Answer::Throttled(retry_after) => {
                    tally.throttled += 1;
                    self.counters.add(&self.counters.throttled, 1);
                    throttles += 1;
                    let wait = retry_after.unwrap_or_else(|| {
                        backoff(
                            throttles,
                            self.backoff_base,
                            self.backoff_max,
                            rand::random(),
                        )
                    });
                    tracing::warn!(
                        retry_after_ms = wait.as_millis() as u64,
                        "429: pausing every call"
                    );
                    self.gate.pause_for(wait);
                    self.counters.add(&self.counters.retries, 1);
                    if throttles > self.max_retries * 5 {
                        return Err(ApiError::RetriesExhausted {
                            what: what.to_string(),
                            attempts: tally.calls,
                            last: "429 Too Many Requests".into(),
                        });
                    }
                    continue;
                }
                Answer::Transient(reason) => reason,
            };
            failures += 1;
            if failures > self.max_retries {
                return Err(ApiError::RetriesExhausted {
                    what: what.to_string(),
                    attempts: failures,
                    last: problem,
                });
            }
            let wait = backoff(
                failures,
                self.backoff_base,
                self.backoff_max,
                rand::random(),
            );
            tracing::warn!(attempt = failures, wait_ms = wait.as_millis() as u64, error = %problem, "transient failure; retrying");
            self.counters.add(&self.counters.retries, 1);
            if !self.stop.sleep(wait).await {
                return Err(cancelled());
            }
        }
    }

    /// Makes one call and says what its answer means.
    async fn call(&self, url: &str, token: &str, what: &str, file: bool) -> Answer {
        let sent = self
            .http
            .get(url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                self.counters.call(file, CallOutcome::TransportError);
                return Answer::Transient(format!("request failed: {}", without_url(&err)));
            }
        };
        let status = response.status().as_u16();
        self.counters.call(file, CallOutcome::of_status(status));
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(err) => {
                return Answer::Transient(format!("response body cut short: {}", without_url(&err)))
            }
        };
        match classify(status, retry_after.as_deref(), &body, what) {
            Verdict::Success => match parse_page(&body) {
                Ok(page) => Answer::Page(page),
                // Truncated or malformed bodies are transient: the next try usually succeeds.
                Err(reason) => Answer::Transient(reason),
            },
            Verdict::NoAlerts => Answer::NoAlerts,
            Verdict::Throttled(retry_after) => Answer::Throttled(retry_after),
            Verdict::Transient(reason) => Answer::Transient(reason),
            Verdict::RefreshToken => Answer::RefreshToken,
            Verdict::Fatal(err) => Answer::Fatal(err),
        }
    }
}

/// One call's answer, with a successful body already parsed.
enum Answer {
    Page(Page),
    NoAlerts,
    Throttled(Option<Duration>),
    Transient(String),
    RefreshToken,
    Fatal(ApiError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watchlist::Origin;

    fn entry(kind: EntryKind, value: &str) -> Entry {
        Entry {
            kind,
            value: value.into(),
            original: None,
            origin: Origin::ConfigKey { key: "t".into() },
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        let base = "https://api.security.microsoft.com";
        assert_eq!(
            alerts_url(base, &entry(EntryKind::User, "john smith")),
            "https://api.security.microsoft.com/api/users/john%20smith/alerts"
        );
        assert_eq!(
            alerts_url(base, &entry(EntryKind::File, "470454e35ea71dd971c2b0cbb29e0225cd0526cb")),
            "https://api.security.microsoft.com/api/files/470454e35ea71dd971c2b0cbb29e0225cd0526cb/alerts"
        );
        assert_eq!(
            alerts_url(base, &entry(EntryKind::User, "a.b_c-d~e")),
            format!("{base}/api/users/a.b_c-d~e/alerts")
        );
    }
}
