//! The two watchlist endpoints, `GET /api/users/{id}/alerts` and `GET /api/files/{sha1}/alerts`.
//! Every HTTP call waits for the shared rate gate first. Retries: 429 pauses everything for
//! Retry-After; 5xx, timeouts, cut-short and malformed bodies back off with full jitter; 401
//! refreshes the token once; 403 and 400 are reported, not retried; 404 means "no alerts".
//!
//! A response is read as it arrives (`page.rs`, over [`super::stream`]) and never held whole:
//! each alert is parsed when its last byte is in, and with an [`Intake`] (the service's byte
//! budget) the alerts read so far are handed over to be published while the rest still streams.

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::utf8_percent_encode;
use tracing::Instrument;

use super::auth::TokenProvider;
use super::cloud::SEGMENT;
use super::errors::{backoff, classify, ApiError, SetupCause, Transient, Verdict};
use super::page::{hand_over, read_capped, read_page, server_date, EntryAlerts, Intake, PageRead};
use crate::config::{Api, ApiConfig};
use crate::errors::Chain;
use crate::schedule::gate::RateGate;
use crate::shutdown::Shutdown;
use crate::stats::{CallOutcome, Counters, Endpoint};
use crate::watchlist::{Entry, EntryKind};

/// A page chain longer than this is treated as a server bug rather than followed forever.
const MAX_PAGES: usize = 200;

/// One collection to read: an entity's alerts, or a query of the feed.
struct Fetch<'a> {
    url: String,
    what: String,
    endpoint: Endpoint,
    /// The entity the alerts are about; None for the feed (whose alerts carry their times).
    entry: Option<&'a Entry>,
    /// Follow `@odata.nextLink`; when false, the result only says more remain.
    follow_next: bool,
}

/// The field a feed's time slices filter on.
pub fn update_field(api: Api) -> &'static str {
    match api {
        Api::Defender => "lastUpdateTime",
        Api::Graph => "lastUpdateDateTime",
    }
}

/// The URL of one feed query: `$filter` (omitted when empty), `$top`, and the evidence
/// (Defender leaves it out unless expanded; Graph always sends it).
pub fn feed_url(api: Api, api_base: &str, filter: &str, top: usize) -> String {
    let mut url = match api {
        Api::Defender => format!("{api_base}/api/alerts?$top={top}&$expand=evidence"),
        Api::Graph => format!("{api_base}/v1.0/security/alerts_v2?$top={top}"),
    };
    if !filter.is_empty() {
        url.push_str("&$filter=");
        url.extend(utf8_percent_encode(filter, SEGMENT));
    }
    url
}

/// The URL of an entry's alert collection.
pub fn alerts_url(api_base: &str, entry: &Entry) -> String {
    let collection = match entry.kind() {
        EntryKind::User => "users",
        EntryKind::File => "files",
    };
    format!(
        "{api_base}/api/{collection}/{}/alerts",
        utf8_percent_encode(entry.value(), SEGMENT)
    )
}

pub struct DefenderClient {
    api: Api,
    http: reqwest::Client,
    /// Until the answer's headers, and then between reads of its body.
    timeout: Duration,
    api_base: String,
    auth: TokenProvider,
    gate: Arc<RateGate>,
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    stop: Shutdown,
    counters: Arc<Counters>,
}

/// Builds the HTTP client for small exchanges (the token): `api.timeout` bounds the whole call.
pub fn http_client(api: &ApiConfig) -> Result<reqwest::Client, ApiError> {
    client_builder(api, reqwest::Client::builder().timeout(api.timeout))
}

/// The client for alert calls: `api.timeout` bounds each wait for bytes (the headers in `call`,
/// then every read of the body in `read_page`), not the whole body, which streams for as long
/// as publishing it takes. Not reqwest's `read_timeout`: it sets a timer for every chunk, and
/// a deflated answer comes 4 KiB a chunk, each timer a wake-up of the runtime (11,600 in a
/// 200x500 sweep); ours is set only when a read has to wait.
fn streaming_http_client(api: &ApiConfig) -> Result<reqwest::Client, ApiError> {
    client_builder(api, reqwest::Client::builder())
}

fn client_builder(
    api: &ApiConfig,
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::Client, ApiError> {
    let mut builder = builder
        .user_agent(super::user_agent())
        .connect_timeout(api.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(50));
    if let Some(ca_file) = &api.ca_file {
        builder = super::tls::trust_ca_file(builder, ca_file)?;
    }
    if let Some(proxy) = &api.proxy {
        let proxy = reqwest::Proxy::all(proxy.expose()).map_err(|err| ApiError::Setup {
            // The proxy's URL may carry its credentials: never shown.
            what: "api.proxy is not a proxy URL reqwest accepts".into(),
            cause: SetupCause::Http(err.without_url()),
        })?;
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(|err| ApiError::Setup {
        what: "cannot build the HTTP client".into(),
        cause: SetupCause::Http(err),
    })
}

impl DefenderClient {
    pub fn new(
        api: &ApiConfig,
        gate: Arc<RateGate>,
        stop: Shutdown,
        counters: Arc<Counters>,
    ) -> Result<DefenderClient, ApiError> {
        Ok(DefenderClient {
            api: api.api,
            auth: TokenProvider::new(http_client(api)?, api),
            http: streaming_http_client(api)?,
            timeout: api.timeout,
            api_base: api.api_base.clone(),
            gate,
            max_retries: api.max_retries,
            backoff_base: api.backoff_base,
            backoff_max: api.backoff_max,
            stop,
            counters,
        })
    }

    pub fn api(&self) -> Api {
        self.api
    }

    pub fn auth(&self) -> &TokenProvider {
        &self.auth
    }

    /// Every alert the API holds for `entry`, following `@odata.nextLink` if it ever appears,
    /// all held in the result (for `check --connect` and tests; the service uses an [`Intake`]).
    pub async fn alerts_for(&self, entry: &Entry) -> Result<EntryAlerts, ApiError> {
        self.alerts_into(entry, None).await
    }

    /// Every alert the API holds for `entry`; with an `intake`, alerts are handed over in pieces
    /// as the response streams in, within its budget, and the result holds the rest.
    pub async fn alerts_into(
        &self,
        entry: &Entry,
        intake: Option<&dyn Intake>,
    ) -> Result<EntryAlerts, ApiError> {
        let span =
            tracing::info_span!("poll", kind = entry.kind().as_str(), entry = %entry.value());
        let fetch = Fetch {
            url: alerts_url(&self.api_base, entry),
            what: format!("{} {}", entry.kind().as_str(), entry.value()),
            endpoint: match entry.kind() {
                EntryKind::User => Endpoint::Users,
                EntryKind::File => Endpoint::Files,
            },
            entry: Some(entry),
            follow_next: true,
        };
        self.fetch(fetch, intake).instrument(span).await
    }

    /// One page of the tenant's alert feed, `GET /api/alerts` with `$filter` (a time slice),
    /// `$top` and `$expand=evidence`; `more` says whether the API announced another page.
    /// With `follow_next`, every page is read instead.
    pub async fn feed_into(
        &self,
        filter: &str,
        top: usize,
        follow_next: bool,
        intake: Option<&dyn Intake>,
    ) -> Result<EntryAlerts, ApiError> {
        let span = tracing::info_span!("feed_query", filter = %filter, top);
        let fetch = Fetch {
            url: feed_url(self.api, &self.api_base, filter, top),
            what: "the alerts feed".into(),
            endpoint: Endpoint::Feed,
            entry: None,
            follow_next,
        };
        self.fetch(fetch, intake).instrument(span).await
    }

    async fn fetch(
        &self,
        fetch: Fetch<'_>,
        intake: Option<&dyn Intake>,
    ) -> Result<EntryAlerts, ApiError> {
        let mut result = EntryAlerts::default();
        let mut url = fetch.url.clone();
        for _ in 0..MAX_PAGES {
            let Some(page) = self.get_page(&url, &fetch, &mut result, intake).await? else {
                tracing::debug!("404: no alerts (older API behaviour)");
                break;
            };
            result.absorb(page.found);
            match page.next_link {
                Some(_) if !fetch.follow_next => {
                    result.more = true;
                    break;
                }
                Some(next) if next.starts_with(&self.api_base) => {
                    // Before the next request waits for room in the budget, what this query
                    // holds goes out: waiting while holding some could wait for itself.
                    if let Some(intake) = intake {
                        if !result.alerts.is_empty()
                            && !hand_over(intake, fetch.entry, &mut result).await
                        {
                            return Err(ApiError::Cancelled { what: fetch.what });
                        }
                    }
                    url = next;
                }
                Some(next) => {
                    tracing::warn!(next_link = %next, "nextLink leaves the API host; not followed");
                    break;
                }
                None => break,
            }
        }
        tracing::debug!(alerts = result.read, calls = result.calls, "polled");
        Ok(result)
    }

    /// One page, retried as its answers require. `None` is a 404.
    async fn get_page(
        &self,
        url: &str,
        fetch: &Fetch<'_>,
        tally: &mut EntryAlerts,
        intake: Option<&dyn Intake>,
    ) -> Result<Option<PageRead>, ApiError> {
        let what = fetch.what.as_str();
        let mut failures = 0u32;
        let mut throttles = 0u32;
        let mut refreshed = false;
        let cancelled = || ApiError::Cancelled {
            what: what.to_string(),
        };
        loop {
            self.wait_turn(intake).await.ok_or_else(cancelled)?;
            let token = self.auth.bearer().await?;
            tally.calls += 1;
            self.counters.add(&self.counters.calls, 1);
            let outcome = self.call(url, &token, fetch, intake).await;
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
                    throttles += 1;
                    self.pause_all(retry_after, throttles);
                    if throttles > self.max_retries * 5 {
                        return Err(ApiError::RetriesExhausted {
                            what: what.to_string(),
                            attempts: tally.calls,
                            last: Transient::Throttled,
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
            tracing::warn!(attempt = failures, wait_ms = wait.as_millis() as u64, error = %Chain(&problem), "transient failure; retrying");
            self.counters.add(&self.counters.retries, 1);
            if !self.stop.sleep(wait).await {
                return Err(cancelled());
            }
        }
    }

    /// Waits for this call's turn: room in the byte budget (when polling into one), then the
    /// rate gate. None when the service stops meanwhile.
    async fn wait_turn(&self, intake: Option<&dyn Intake>) -> Option<()> {
        if self.stop.is_triggered() {
            return None;
        }
        let mut stop = self.stop.clone();
        if let Some(intake) = intake {
            tokio::select! {
                () = intake.before_request() => {}
                _ = stop.wait() => return None,
            }
        }
        let waiting = std::time::Instant::now();
        tokio::select! {
            _ = self.gate.acquire() => {}
            _ = stop.wait() => return None,
        }
        self.counters.add(
            &self.counters.limiter_wait_ms,
            waiting.elapsed().as_millis() as u64,
        );
        Some(())
    }

    /// A 429 pauses every call, for its Retry-After or else a backoff grown by `throttles`.
    fn pause_all(&self, retry_after: Option<Duration>, throttles: u32) {
        self.counters.add(&self.counters.throttled, 1);
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
    }

    /// Makes one call and says what its answer means.
    async fn call(
        &self,
        url: &str,
        token: &str,
        fetch: &Fetch<'_>,
        intake: Option<&dyn Intake>,
    ) -> Answer {
        let (what, endpoint) = (fetch.what.as_str(), fetch.endpoint);
        let sent = self
            .http
            .get(url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send();
        let response = match tokio::time::timeout(self.timeout, sent).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                self.counters.call(endpoint, CallOutcome::TransportError);
                if let Some(why) = super::tls::refused_certificate(&err) {
                    return Answer::Fatal(ApiError::CertificateRefused {
                        why,
                        cause: err.without_url(),
                    });
                }
                return Answer::Transient(Transient::Request(err.without_url()));
            }
            Err(_) => {
                self.counters.call(endpoint, CallOutcome::TransportError);
                return Answer::Transient(Transient::TimedOut(crate::units::format_duration(
                    self.timeout,
                )));
            }
        };
        let status = response.status().as_u16();
        self.counters.call(endpoint, CallOutcome::of_status(status));
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if (200..300).contains(&status) {
            let answered_at = server_date(response.headers());
            return match read_page(response, fetch.entry, intake, self.timeout).await {
                Ok(mut page) => {
                    page.found.answered_at = answered_at;
                    Answer::Page(page)
                }
                // Truncated or malformed bodies are transient: the next try usually succeeds.
                Err(err) => Answer::Transient(Transient::Page(err)),
            };
        }
        // Error bodies are small JSON documents; more than this is not read.
        let body = match tokio::time::timeout(self.timeout, read_capped(response, 64 << 10)).await {
            Ok(Ok(body)) => body,
            Ok(Err(err)) => return Answer::Transient(Transient::BodyCut(err.without_url())),
            Err(_) => {
                return Answer::Transient(Transient::TimedOut(crate::units::format_duration(
                    self.timeout,
                )))
            }
        };
        match classify(status, retry_after.as_deref(), &body, what, self.api) {
            // A 2xx was read above and never reaches here; were it to, it is retried.
            Verdict::Success => Answer::Transient(Transient::Status {
                status,
                code: "a success read as an error".into(),
            }),
            Verdict::NoAlerts => Answer::NoAlerts,
            Verdict::Throttled(retry_after) => Answer::Throttled(retry_after),
            Verdict::Transient(reason) => Answer::Transient(reason),
            Verdict::RefreshToken => Answer::RefreshToken,
            Verdict::Fatal(err) => Answer::Fatal(err),
        }
    }
}

/// One call's answer, with a successful body already read.
enum Answer {
    Page(PageRead),
    NoAlerts,
    Throttled(Option<Duration>),
    Transient(Transient),
    RefreshToken,
    Fatal(ApiError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: EntryKind, value: &str) -> Entry {
        Entry::for_test(kind, value)
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
