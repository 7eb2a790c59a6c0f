//! The two watchlist endpoints, `GET /api/users/{id}/alerts` and `GET /api/files/{sha1}/alerts`.
//! Every HTTP call waits for the shared rate gate first. Retries: 429 pauses everything for
//! Retry-After; 5xx, timeouts, cut-short and malformed bodies back off with full jitter; 401
//! refreshes the token once; 403 and 400 are reported, not retried; 404 means "no alerts".
//!
//! A response is read as it arrives ([`super::stream`]) and never held whole: each alert is parsed
//! when its last byte is in, and with an [`Intake`] (the service's byte budget) the alerts read so
//! far are handed over to be published while the rest of the response still streams in.

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::utf8_percent_encode;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::auth::{without_url, TokenProvider};
use super::cloud::SEGMENT;
use super::errors::{backoff, classify, ApiError, Verdict};
use super::odata::read_alert;
use super::stream::PageReader;
use super::PolledAlert;
use crate::config::{Api, ApiConfig};
use crate::schedule::gate::RateGate;
use crate::shutdown::Shutdown;
use crate::stats::{CallOutcome, Counters, Endpoint};
use crate::watchlist::{Entry, EntryKind};

/// A page chain longer than this is treated as a server bug rather than followed forever.
const MAX_PAGES: usize = 200;

/// The alerts one entry returned, or a piece of them handed over while the response streamed.
#[derive(Debug)]
pub struct EntryAlerts {
    /// Alerts held here (those handed over earlier in pieces are not).
    pub alerts: Vec<PolledAlert>,
    /// Alerts in the response that could not be read.
    pub rejected: Vec<String>,
    /// The id of every alert the entry's response held, handed over or not (complete results).
    pub ids: Vec<String>,
    /// False for a piece handed over while the response was still being read.
    pub complete: bool,
    /// HTTP calls made, retries included.
    pub calls: u32,
    /// 429 answers received.
    pub throttled: u32,
    /// The byte budget the alerts here hold, given back once they are committed.
    pub held: Option<OwnedSemaphorePermit>,
    /// A further page was announced and not followed (feed queries read one page at a time).
    pub more: bool,
    /// The earliest and latest `lastUpdateTime` read (microseconds; feed queries only).
    pub earliest_update: Option<i64>,
    pub latest_update: Option<i64>,
    /// Every `lastUpdateTime` read (feed queries only): where a slice over a page is split.
    pub update_times: Vec<i64>,
    /// The API's clock when it answered the first page (its `Date` header, microseconds):
    /// every alert of the collection up to then has been read. In the API's time, like the
    /// feed's cursor, not this host's.
    pub answered_at: Option<i64>,
}

impl Default for EntryAlerts {
    fn default() -> Self {
        EntryAlerts {
            alerts: Vec::new(),
            rejected: Vec::new(),
            ids: Vec::new(),
            complete: true,
            calls: 0,
            throttled: 0,
            held: None,
            more: false,
            earliest_update: None,
            latest_update: None,
            update_times: Vec::new(),
            answered_at: None,
        }
    }
}

impl EntryAlerts {
    /// Bytes of alert JSON held here.
    pub fn bytes(&self) -> usize {
        self.alerts.iter().map(|a| a.len()).sum()
    }
}

/// Where a poll puts the alerts of a response while it is still being read, so that memory is
/// bounded by a budget and not by the size of the answers. Implemented by the service's poller.
#[async_trait::async_trait]
pub trait Intake: Send + Sync {
    /// Budget for `bytes` more bytes of alerts, if there is room now.
    fn try_take(&self, bytes: usize) -> Option<OwnedSemaphorePermit>;
    /// Waits for budget; called holding none (everything held was handed over first).
    async fn take(&self, bytes: usize) -> OwnedSemaphorePermit;
    /// Waits before a request until the budget has some room.
    async fn before_request(&self);
    /// Hands over alerts of a response still being read (an entity's, or the feed's when
    /// `entry` is None); false when nobody takes them any more.
    async fn hand_over(&self, entry: Option<&Entry>, piece: EntryAlerts) -> bool;
    /// How many bytes of alerts a poll gathers before it hands them over.
    fn piece_bytes(&self) -> usize;
}

/// What one response page held, read as it streamed.
struct PageRead {
    alerts: Vec<PolledAlert>,
    rejected: Vec<String>,
    ids: Vec<String>,
    held: Option<OwnedSemaphorePermit>,
    next_link: Option<String>,
    earliest_update: Option<i64>,
    latest_update: Option<i64>,
    update_times: Vec<i64>,
    answered_at: Option<i64>,
}

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

fn earlier(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.into_iter().chain(b).min()
}

fn later(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.into_iter().chain(b).max()
}

fn keep(held: &mut Option<OwnedSemaphorePermit>, more: OwnedSemaphorePermit) {
    match held {
        Some(held) => held.merge(more),
        None => *held = Some(more),
    }
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

/// The client for alert calls: `api.timeout` bounds each wait for bytes (the headers, then every
/// read), not the whole body, which streams for as long as publishing it takes.
fn streaming_http_client(api: &ApiConfig) -> Result<reqwest::Client, ApiError> {
    client_builder(api, reqwest::Client::builder().read_timeout(api.timeout))
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
        let span = tracing::info_span!("poll", kind = entry.kind.as_str(), entry = %entry.value);
        let fetch = Fetch {
            url: alerts_url(&self.api_base, entry),
            what: format!("{} {}", entry.kind.as_str(), entry.value),
            endpoint: match entry.kind {
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
            result.alerts.extend(page.alerts);
            result.rejected.extend(page.rejected);
            result.ids.extend(page.ids);
            result.earliest_update = earlier(result.earliest_update, page.earliest_update);
            result.latest_update = later(result.latest_update, page.latest_update);
            result.update_times.extend(page.update_times);
            result.answered_at = earlier(result.answered_at, page.answered_at);
            if let Some(held) = page.held {
                keep(&mut result.held, held);
            }
            match page.next_link {
                Some(_) if !fetch.follow_next => {
                    result.more = true;
                    break;
                }
                Some(next) if next.starts_with(&self.api_base) => url = next,
                Some(next) => {
                    tracing::warn!(next_link = %next, "nextLink leaves the API host; not followed");
                    break;
                }
                None => break,
            }
        }
        tracing::debug!(alerts = result.ids.len(), calls = result.calls, "polled");
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
            if self.stop.is_triggered() {
                return Err(cancelled());
            }
            let mut stop = self.stop.clone();
            if let Some(intake) = intake {
                tokio::select! {
                    () = intake.before_request() => {}
                    _ = stop.wait() => return Err(cancelled()),
                }
            }
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
                    return Answer::Fatal(ApiError::CertificateRefused(why));
                }
                return Answer::Transient(format!("request failed: {}", without_url(&err)));
            }
            Err(_) => {
                self.counters.call(endpoint, CallOutcome::TransportError);
                return Answer::Transient(format!(
                    "no answer within {}",
                    crate::units::format_duration(self.timeout)
                ));
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
            return match read_page(response, fetch.entry, intake).await {
                Ok(page) => Answer::Page(PageRead {
                    answered_at,
                    ..page
                }),
                // Truncated or malformed bodies are transient: the next try usually succeeds.
                Err(reason) => Answer::Transient(reason),
            };
        }
        // Error bodies are small JSON documents; more than this is not read.
        let body = match read_capped(response, 64 << 10).await {
            Ok(body) => body,
            Err(err) => {
                return Answer::Transient(format!("response body cut short: {}", without_url(&err)))
            }
        };
        match classify(status, retry_after.as_deref(), &body, what, self.api) {
            Verdict::Success => Answer::Transient("unreachable: success read as an error".into()),
            Verdict::NoAlerts => Answer::NoAlerts,
            Verdict::Throttled(retry_after) => Answer::Throttled(retry_after),
            Verdict::Transient(reason) => Answer::Transient(reason),
            Verdict::RefreshToken => Answer::RefreshToken,
            Verdict::Fatal(err) => Answer::Fatal(err),
        }
    }
}

async fn read_capped(mut response: reqwest::Response, cap: usize) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    Ok(body)
}

/// Reads a collection as it streams: each alert parsed when its last byte is in, budget taken
/// for the alerts kept, and pieces handed to `intake` (when there is one) once they reach its
/// piece size or when the budget has no room, before waiting for it.
async fn read_page(
    mut response: reqwest::Response,
    entry: Option<&Entry>,
    intake: Option<&dyn Intake>,
) -> Result<PageRead, String> {
    let mut reader = PageReader::new();
    let mut page = PageRead {
        alerts: Vec::new(),
        rejected: Vec::new(),
        ids: Vec::new(),
        held: None,
        next_link: None,
        earliest_update: None,
        latest_update: None,
        update_times: Vec::new(),
        answered_at: None,
    };
    let mut index = 0usize;
    let mut fresh: Vec<PolledAlert> = Vec::new();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(err) => return Err(format!("response body cut short: {}", without_url(&err))),
        };
        let mut malformed = None;
        reader
            .feed(&chunk, &mut |bytes| {
                match read_alert(index, bytes) {
                    Ok(Ok(alert)) => fresh.push(alert),
                    Ok(Err(reason)) => page.rejected.push(reason),
                    Err(reason) => {
                        malformed.get_or_insert(reason);
                    }
                }
                index += 1;
            })
            .map_err(|err| err.to_string())?;
        if let Some(reason) = malformed {
            return Err(reason);
        }
        if fresh.is_empty() {
            continue;
        }
        let bytes: usize = fresh.iter().map(|a| a.len()).sum();
        if let Some(intake) = intake {
            let taken = match intake.try_take(bytes) {
                Some(taken) => taken,
                None => {
                    // No room: what this poll holds goes out first, then it waits holding none.
                    if !page.alerts.is_empty() && !hand_over(intake, entry, &mut page).await {
                        return Err("stopping: nobody takes the alerts any more".into());
                    }
                    intake.take(bytes).await
                }
            };
            keep(&mut page.held, taken);
        }
        page.ids
            .extend(fresh.iter().map(|a| a.alert().id.to_string()));
        if entry.is_none() {
            // The feed's slices are bounded by the times the API returned, never the clock's.
            for alert in &fresh {
                let updated = alert
                    .alert()
                    .last_update_time
                    .as_deref()
                    .and_then(super::time::parse)
                    .map(super::time::to_micros);
                page.earliest_update = earlier(page.earliest_update, updated);
                page.latest_update = later(page.latest_update, updated);
                page.update_times.extend(updated);
            }
        }
        page.alerts.append(&mut fresh);
        if let Some(intake) = intake {
            let held = page.held.as_ref().map_or(0, |h| h.num_permits());
            if held >= intake.piece_bytes() && !hand_over(intake, entry, &mut page).await {
                return Err("stopping: nobody takes the alerts any more".into());
            }
        }
    }
    page.next_link = reader.finish().map_err(|err| err.to_string())?.next_link;
    Ok(page)
}

/// The `Date` header (RFC 9110's IMF-fixdate, which RFC 2822 parsing reads), in microseconds.
fn server_date(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    let text = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let date = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    Some(date.timestamp_micros())
}

/// Hands the alerts `page` holds over as a piece, with the budget they hold.
async fn hand_over(intake: &dyn Intake, entry: Option<&Entry>, page: &mut PageRead) -> bool {
    let piece = EntryAlerts {
        alerts: std::mem::take(&mut page.alerts),
        rejected: std::mem::take(&mut page.rejected),
        complete: false,
        held: page.held.take(),
        ..EntryAlerts::default()
    };
    intake.hand_over(entry, piece).await
}

/// One call's answer, with a successful body already read.
enum Answer {
    Page(PageRead),
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
