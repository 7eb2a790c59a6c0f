//! The emulator's HTTP side (axum).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::serve::ListenerExt;
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::faults::{Fault, Faults};
use super::stats::{CallLog, SimStats};
use super::universe::{mix, Universe};
use super::SimConfig;
use super::{feed, graph};

const ODATA_CONTEXT: &str = "https://api.securitycenter.microsoft.com/api/$metadata#Alerts";
const ODATA_CONTENT_TYPE: &str =
    "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8";

struct Clock {
    started: Instant,
    offset_secs: f64,
}

struct SimState {
    config: SimConfig,
    universe: Universe,
    clock: Mutex<Clock>,
    faults: Mutex<Faults>,
    draws: Mutex<u64>,
    /// Each token: when it dies, and which API it was issued for.
    tokens: Mutex<HashMap<String, (Instant, Audience)>>,
    accepted: Mutex<VecDeque<Instant>>,
    log: Mutex<CallLog>,
    /// Whole response bodies by (collection, entity), with the virtual second they render: an
    /// entity asked again while nothing of it changed is served without building its page
    /// again, so a benchmark's server is not its bottleneck even with 100 MB answers.
    pages: Mutex<HashMap<(Collection, String), (u64, Bytes)>>,
    /// Where this emulator answers (`@odata.nextLink` points there).
    base_url: String,
}

/// Which API a token is good for: a Graph token opens only Graph's route, a Defender token
/// only Defender's, as the real audiences do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    Defender,
    Graph,
}

impl Audience {
    fn of(value: &str) -> Audience {
        if value.contains("graph.microsoft") {
            Audience::Graph
        } else {
            Audience::Defender
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimState {
    fn virtual_now_secs(&self) -> u64 {
        let clock = lock(&self.clock);
        (clock.offset_secs + clock.started.elapsed().as_secs_f64() * self.config.speed).max(0.0)
            as u64
    }

    fn draw(&self) -> f64 {
        let mut state = lock(&self.draws);
        *state = mix(*state);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fresh_id(&self) -> String {
        let a = mix(self.draw().to_bits());
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            a as u32,
            (a >> 32) as u16,
            (a >> 48) & 0xfff,
            (a >> 20) & 0xfff,
            mix(a) & 0xffff_ffff_ffff
        )
    }

    /// Admits a call under the per-app limits, or says how long to wait.
    fn admit(&self, now: Instant) -> Result<(), Duration> {
        let mut accepted = lock(&self.accepted);
        let longest = self
            .config
            .limits
            .iter()
            .map(|w| w.per)
            .max()
            .unwrap_or_default();
        while accepted.front().is_some_and(|&t| t + longest <= now) {
            accepted.pop_front();
        }
        for window in &self.config.limits {
            let inside: Vec<&Instant> =
                accepted.iter().filter(|&&t| t + window.per > now).collect();
            if inside.len() >= window.calls as usize {
                let frees_at = *inside[inside.len() - window.calls as usize] + window.per;
                return Err(frees_at.saturating_duration_since(now));
            }
        }
        accepted.push_back(now);
        Ok(())
    }
}

/// Every answer's `Date` is the emulator's virtual clock, the one its alerts' times are on, as
/// Microsoft's servers date their answers on the clock their alerts carry.
async fn virtual_date(State(state): State<Arc<SimState>>, mut response: Response) -> Response {
    let now = super::universe::epoch()
        + chrono::Duration::seconds(i64::try_from(state.virtual_now_secs()).unwrap_or(0));
    let date = now.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(value) = HeaderValue::from_str(&date) {
        response.headers_mut().insert(header::DATE, value);
    }
    response
}

/// A running emulator. Dropping it stops the server.
pub struct SimHandle {
    pub addr: SocketAddr,
    state: Arc<SimState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, or `https://` when the emulator serves TLS.
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    pub fn stats(&self) -> SimStats {
        lock(&self.state.log).stats(&self.state.config.limits)
    }

    /// When each alert-endpoint call arrived, accepted or not, counted from the first.
    pub fn call_times(&self) -> Vec<Duration> {
        let log = lock(&self.state.log);
        let Some(&first) = log.arrivals.first() else {
            return Vec::new();
        };
        log.arrivals.iter().map(|&at| at - first).collect()
    }

    /// Every alert-endpoint call so far, in arrival order: `user:<id>` or `file:<sha1>`.
    pub fn entity_calls(&self) -> Vec<String> {
        lock(&self.state.log).entity_calls.clone()
    }

    /// The `$filter` of every feed call so far, in arrival order (empty: the whole feed).
    pub fn feed_filters(&self) -> Vec<String> {
        lock(&self.state.log).feed_filters.clone()
    }

    pub fn universe(&self) -> &Universe {
        &self.state.universe
    }

    pub fn config(&self) -> &SimConfig {
        &self.state.config
    }

    /// Moves virtual time forward: alerts due in that time appear, changes happen.
    pub fn advance(&self, by: Duration) {
        lock(&self.state.clock).offset_secs += by.as_secs_f64();
    }

    pub fn virtual_now_secs(&self) -> u64 {
        self.state.virtual_now_secs()
    }

    /// Renders every alert visible now, so that timing runs measure mde-watch, not the emulator.
    pub fn warm(&self) {
        let now = self.state.virtual_now_secs();
        for index in 0..self.state.universe.alerts.len() {
            let _ = self.state.universe.render_json(index, now);
        }
    }

    /// Renders every user's page ahead (time frozen), so that serving is a copy of bytes:
    /// benchmarks measure the client, not the server.
    pub fn warm_user_pages(&self) {
        let now = self.state.virtual_now_secs();
        let universe = &self.state.universe;
        let mut pages = lock(&self.state.pages);
        for user in 1..=universe.spec.users {
            let name = Universe::user_name(user);
            let body = page(universe, universe.alerts_of_user(&name), now);
            pages.insert((Collection::Users, name), (now, body));
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.state.faults) = faults;
    }

    /// The ids the API holds now for these users and files: what mde-watch should ship.
    pub fn expected_ids(&self, users: &[String], files: &[String]) -> BTreeSet<String> {
        let now = self.state.virtual_now_secs();
        let universe = &self.state.universe;
        users
            .iter()
            .flat_map(|u| universe.alerts_of_user(u).iter())
            .chain(files.iter().flat_map(|f| universe.alerts_of_file(f).iter()))
            .filter(|&&i| universe.alerts[i].appear_at <= now)
            .map(|&i| universe.alerts[i].id.clone())
            .collect()
    }

    /// What the Graph route serves about these entries: the Defender alerts of
    /// [`SimHandle::expected_ids`] and the Office 365 alerts of the watched users.
    pub fn expected_graph_ids(&self, users: &[String], files: &[String]) -> BTreeSet<String> {
        let mut ids = self.expected_ids(users, files);
        for user in 1..=self.state.universe.spec.users {
            let name = Universe::user_name(user);
            if graph::has_office_alert(user) && users.contains(&name) {
                ids.insert(graph::office_alert_id(user));
            }
        }
        ids
    }

    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts the emulator on `config.listen` (port 0 picks a free one).
pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let state = Arc::new(SimState {
        universe: Universe::new(config.universe.clone()),
        clock: Mutex::new(Clock {
            started: Instant::now(),
            offset_secs: 0.0,
        }),
        faults: Mutex::new(config.faults.clone()),
        draws: Mutex::new(config.universe.seed ^ 0xfa17),
        tokens: Mutex::new(HashMap::new()),
        accepted: Mutex::new(VecDeque::new()),
        log: Mutex::new(CallLog::default()),
        pages: Mutex::new(HashMap::new()),
        base_url: format!("{scheme}://{addr}"),
        config,
    });
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_v2))
        .route("/{tenant}/oauth2/token", post(token_v1))
        .route("/api/users/{id}/alerts", get(user_alerts))
        .route("/api/files/{id}/alerts", get(file_alerts))
        .route("/api/alerts", get(feed_alerts))
        .route("/v1.0/security/alerts_v2", get(graph_alerts))
        .route("/sim/stats", get(stats))
        .route("/sim/universe", get(universe_listing))
        .route("/sim/advance", post(advance))
        .route("/sim/faults", put(set_faults))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            virtual_date,
        ))
        .with_state(state.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let task = match &state.config.tls {
        Some(tls) => {
            let listener = super::tls::TlsListener::new(listener, tls)?;
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await;
            })
        }
        None => {
            // Small responses must not wait for Nagle's algorithm (measured: ~5 ms per call without).
            let listener = listener.tap_io(|stream| {
                let _ = stream.set_nodelay(true);
            });
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await;
            })
        }
    };
    Ok(SimHandle {
        addr,
        state,
        stop: Some(stop),
        task: Some(task),
    })
}

fn token_error(
    status: StatusCode,
    error: &str,
    description: &str,
    state: &SimState,
) -> Box<Response> {
    let body = json!({
        "error": error,
        "error_description": format!("{description}\r\nTrace ID: {}\r\nCorrelation ID: {}", state.fresh_id(), state.fresh_id()),
        "error_codes": [description.trim_start_matches("AADSTS").split(':').next().unwrap_or("0").parse::<u64>().unwrap_or(0)],
        "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string(),
        "trace_id": state.fresh_id(),
        "correlation_id": state.fresh_id(),
    });
    Box::new((status, Json(body)).into_response())
}

/// Checks a client assertion as Entra ID does: the certificate it names (`x5t`) is the one
/// registered and still valid, the signature is its key's, and the claims are for this app and
/// this endpoint, now. The error is the AADSTS description.
fn check_assertion(
    config: &SimConfig,
    form: &HashMap<String, String>,
    jwt: &str,
    token_url: &str,
) -> Result<(), String> {
    use crate::defender::certificate::{parse_assertion, Certificate};
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return Err("AADSTS50027: client_assertion_type is missing or not jwt-bearer.".into());
    }
    let Some(certificate) = config
        .certificate_pem
        .as_deref()
        .and_then(|pem| Certificate::from_pem(pem).ok())
    else {
        return Err("AADSTS700027: No certificate is registered on the application.".into());
    };
    let Some(parsed) = parse_assertion(jwt) else {
        return Err("AADSTS50027: Invalid JWT token. The token is malformed.".into());
    };
    let x5t = parsed.header["x5t"].as_str();
    let x5t_s256 = parsed.header["x5t#S256"].as_str();
    if x5t != Some(certificate.x5t.as_str()) && x5t_s256 != Some(certificate.x5t_s256.as_str()) {
        return Err(format!(
            "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}']",
            x5t.or(x5t_s256).unwrap_or("none")
        ));
    }
    let Some(algorithm) = parsed.header["alg"]
        .as_str()
        .and_then(crate::defender::certificate::Algorithm::parse)
    else {
        return Err(
            "AADSTS5002730: Invalid JWT token. Unsupported key for the signing algorithm.".into(),
        );
    };
    if !certificate.verifies(algorithm, parsed.signed.as_bytes(), &parsed.signature) {
        return Err("AADSTS700027: Client assertion contains an invalid signature.".into());
    }
    let now = chrono::Utc::now();
    if certificate.not_after <= now {
        return Err("AADSTS700027: Client assertion failed signature validation. The certificate has expired.".into());
    }
    let claim = |name: &str| parsed.claims[name].as_str().map(str::to_owned);
    if claim("aud").as_deref() != Some(token_url) {
        return Err(format!(
            "AADSTS700016: The audience of the client assertion is not '{token_url}'."
        ));
    }
    if claim("iss") != Some(config.client_id.clone())
        || claim("sub") != Some(config.client_id.clone())
    {
        return Err(
            "AADSTS700023: Client assertion audience claim does not match Realm issuer.".into(),
        );
    }
    let time = |name: &str| parsed.claims[name].as_i64().unwrap_or(0);
    let skew = 300;
    if time("exp") <= now.timestamp() || time("nbf") > now.timestamp() + skew {
        return Err("AADSTS700024: Client assertion is not within its valid time range.".into());
    }
    Ok(())
}

/// Checks a token request; on success returns the lifetime to advertise.
fn issue(
    state: &SimState,
    tenant: &str,
    form: &HashMap<String, String>,
    audience_field: &str,
) -> Result<String, Box<Response>> {
    lock(&state.log).token_calls += 1;
    let config = &state.config;
    if tenant != config.tenant_id {
        return Err(token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
            state,
        ));
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Err(token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
            state,
        ));
    }
    if form.get("client_id") != Some(&config.client_id) {
        return Err(token_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "AADSTS700016: Application was not found in the directory.",
            state,
        ));
    }
    match form.get("client_assertion") {
        Some(jwt) => {
            let token_url = format!("{}/{tenant}/oauth2/v2.0/token", state.base_url);
            if let Err(description) = check_assertion(config, form, jwt, &token_url) {
                return Err(token_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    &description,
                    state,
                ));
            }
        }
        None if form.get("client_secret") != Some(&config.client_secret) => {
            return Err(token_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided.",
                state,
            ));
        }
        None => {}
    }
    let audience_ok = form.get(audience_field).is_some_and(|value| {
        let value = value.trim_end_matches("/.default");
        audience_field == "resource"
            || form.get("scope").is_some_and(|s| s.ends_with("/.default")) && !value.is_empty()
    });
    if !audience_ok {
        return Err(token_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS1002012: The provided value for scope or resource is not valid.",
            state,
        ));
    }
    let token = format!("sim.{}.{}", state.fresh_id(), state.fresh_id());
    let lifetime = lock(&state.faults)
        .token_dies_after_ms
        .map(Duration::from_millis)
        .unwrap_or(config.token_ttl);
    let audience = Audience::of(form.get(audience_field).map_or("", String::as_str));
    lock(&state.tokens).insert(token.clone(), (Instant::now() + lifetime, audience));
    Ok(token)
}

async fn token_v2(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match issue(&state, &tenant, &form, "scope") {
        Ok(token) => Json(json!({
            "token_type": "Bearer",
            "expires_in": state.config.token_ttl.as_secs(),
            "ext_expires_in": state.config.token_ttl.as_secs(),
            "access_token": token,
        }))
        .into_response(),
        Err(response) => *response,
    }
}

/// v1 sends its numbers as JSON strings (in this repository: docs/defender-api.md, "§2 Authentication").
async fn token_v1(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match issue(&state, &tenant, &form, "resource") {
        Ok(token) => {
            let now = chrono::Utc::now().timestamp();
            let ttl = state.config.token_ttl.as_secs();
            Json(json!({
                "token_type": "Bearer",
                "expires_in": ttl.to_string(),
                "ext_expires_in": ttl.to_string(),
                "expires_on": (now + ttl as i64).to_string(),
                "not_before": now.to_string(),
                "resource": form.get("resource").cloned().unwrap_or_default(),
                "access_token": token,
            }))
            .into_response()
        }
        Err(response) => *response,
    }
}

fn api_error(state: &SimState, status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "target": state.fresh_id()}});
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn throttled(state: &SimState, wait: Duration) -> Response {
    lock(&state.log).served_429 += 1;
    let mut response = api_error(
        state,
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Rate limit reached for this application in this tenant. Wait for the interval given in Retry-After before calling again.",
    );
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    response
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Collection {
    Users,
    Files,
}

async fn user_alerts(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    alerts(state, Collection::Users, id, headers).await
}

async fn file_alerts(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    alerts(state, Collection::Files, id, headers).await
}

/// What every alert call goes through before its answer is built: the call log, injected
/// latency, the bearer token, the 403 switch, the limits (429 + Retry-After) and the injected
/// faults. `Err` is the answer already decided; `Ok` the fault still to apply to the body.
async fn admit_call(
    state: &SimState,
    headers: &HeaderMap,
    audience: Audience,
    record: impl FnOnce(&mut CallLog),
) -> Result<Fault, Response> {
    let arrived = Instant::now();
    {
        let mut log = lock(&state.log);
        record(&mut log);
        log.arrivals.push(arrived);
    }
    let faults = lock(&state.faults).clone();
    if faults.latency_ms > 0 {
        tokio::time::sleep(faults.latency()).await;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let valid = bearer.is_some_and(|token| {
        lock(&state.tokens)
            .get(token)
            .is_some_and(|&(dies, issued_for)| Instant::now() < dies && issued_for == audience)
    });
    if !valid {
        lock(&state.log).served_401 += 1;
        return Err(api_error(
            state,
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The authorization header is missing, invalid or expired.",
        ));
    }
    if faults.forbidden {
        let message = match audience {
            Audience::Defender => "The application does not have any of the required application permissions (Alert.ReadWrite.All, Alert.Read.All) to access the resource.",
            Audience::Graph => "Missing application roles. API required roles: SecurityAlert.Read.All, SecurityAlert.ReadWrite.All.",
        };
        return Err(api_error(
            state,
            StatusCode::FORBIDDEN,
            "Forbidden",
            message,
        ));
    }
    if let Err(wait) = state.admit(arrived) {
        return Err(throttled(state, wait));
    }
    let fault = faults.pick(state.draw());
    if fault != Fault::None {
        lock(&state.log).faults_injected += 1;
    }
    match fault {
        Fault::Throttle => Err(throttled(
            state,
            Duration::from_secs(faults.throttle_retry_after_secs.max(1)),
        )),
        Fault::ServerError => Err(api_error(
            state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "",
        )),
        Fault::Malformed => Err((
            [(header::CONTENT_TYPE, ODATA_CONTENT_TYPE)],
            "{\"@odata.context\":\"x\",\"value\":[{\"id\":\"da1\",,}]}",
        )
            .into_response()),
        Fault::Truncated | Fault::None => Ok(fault),
    }
}

async fn alerts(
    state: Arc<SimState>,
    collection: Collection,
    id: String,
    headers: HeaderMap,
) -> Response {
    let kind = match collection {
        Collection::Users => "user",
        Collection::Files => "file",
    };
    let admitted = admit_call(&state, &headers, Audience::Defender, |log| {
        match collection {
            Collection::Users => log.user_calls += 1,
            Collection::Files => log.file_calls += 1,
        }
        log.entity_calls.push(format!("{kind}:{id}"));
    })
    .await;
    let fault = match admitted {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let indexes: &[usize] = match collection {
        Collection::Users => state.universe.alerts_of_user(&id),
        Collection::Files => {
            if id.len() != 40 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
                return api_error(
                    &state,
                    StatusCode::BAD_REQUEST,
                    "InvalidHashValue",
                    &format!("Hash value {id} is invalid. Only SHA-1 is supported."),
                );
            }
            state.universe.alerts_of_file(&id)
        }
    };
    let now = state.virtual_now_secs();
    let key = (collection, id);
    let cached = lock(&state.pages)
        .get(&key)
        .filter(|(at, _)| *at == now)
        .map(|(_, body)| body.clone());
    let body = match cached {
        Some(body) => body,
        None => {
            let body = page(&state.universe, indexes, now);
            // Frozen time (benchmarks, most tests) serves every entity from here after once.
            if state.config.speed == 0.0 {
                lock(&state.pages).insert(key, (now, body.clone()));
            }
            body
        }
    };
    if fault == Fault::Truncated {
        return truncated(body);
    }
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ODATA_CONTENT_TYPE),
    );
    headers.insert("OData-Version", HeaderValue::from_static("4.0"));
    response
}

/// `GET /api/alerts`: every alert of the tenant the query admits, in an order that is not by
/// time, a page at a time with `@odata.nextLink` while more remain.
async fn feed_alerts(
    State(state): State<Arc<SimState>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    serve_feed(&state, &params, &headers, feed::Dialect::Defender).await
}

/// `GET /v1.0/security/alerts_v2`: the same alerts in Graph's shape, and the Office 365 alerts
/// only Graph serves, under the same query rules.
async fn graph_alerts(
    State(state): State<Arc<SimState>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    serve_feed(&state, &params, &headers, feed::Dialect::Graph).await
}

/// One alert a feed can serve.
#[derive(Debug, Clone, Copy)]
enum FeedItem {
    Universe(usize),
    /// The Office 365 alert of this user (Graph only).
    Office(usize),
}

async fn serve_feed(
    state: &SimState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    dialect: feed::Dialect,
) -> Response {
    let audience = match dialect {
        feed::Dialect::Defender => Audience::Defender,
        feed::Dialect::Graph => Audience::Graph,
    };
    let admitted = admit_call(state, headers, audience, |log| {
        log.feed_calls += 1;
        log.entity_calls.push("feed".into());
        log.feed_filters
            .push(params.get("$filter").cloned().unwrap_or_default());
    })
    .await;
    let fault = match admitted {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let query = match feed::parse(params, dialect) {
        Ok(query) => query,
        Err(message) => return api_error(state, StatusCode::BAD_REQUEST, "BadRequest", &message),
    };
    let now = state.virtual_now_secs();
    let universe = &state.universe;
    let mut admitted: Vec<(u64, FeedItem)> = (0..universe.alerts.len())
        .filter(|&i| {
            universe
                .times(i, now)
                .is_some_and(|(created, updated)| query.admits(created, updated))
        })
        .map(|i| (universe.feed_position(i, now), FeedItem::Universe(i)))
        .collect();
    if dialect == feed::Dialect::Graph {
        for user in (1..=universe.spec.users).filter(|&u| graph::has_office_alert(u)) {
            let at = graph::office_alert_micros(user);
            if query.admits(at, at) {
                let position = (user as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                admitted.push((position, FeedItem::Office(user)));
            }
        }
    }
    admitted.sort_by_key(|(position, _)| *position);
    let mut body = format!("{{\"@odata.context\":\"{ODATA_CONTEXT}\",\"value\":[").into_bytes();
    for (n, &(_, item)) in admitted.iter().skip(query.skip).take(query.top).enumerate() {
        if n > 0 {
            body.push(b',');
        }
        match (dialect, item) {
            (feed::Dialect::Graph, FeedItem::Universe(index)) => {
                if let Some(value) = universe.render(index, now) {
                    body.extend_from_slice(graph::to_graph(&value).to_string().as_bytes());
                }
            }
            (_, FeedItem::Office(user)) => body.extend_from_slice(
                graph::office_alert(user, graph::office_alert_secs(user))
                    .to_string()
                    .as_bytes(),
            ),
            (feed::Dialect::Defender, FeedItem::Universe(index)) => {
                match universe.render_json(index, now) {
                    Some(alert) if query.evidence => body.extend_from_slice(alert.as_bytes()),
                    Some(_) => {
                        // Without $expand=evidence the API leaves the evidence out.
                        let mut value = universe.render(index, now).unwrap_or_default();
                        if let Some(object) = value.as_object_mut() {
                            object.remove("evidence");
                        }
                        body.extend_from_slice(value.to_string().as_bytes());
                    }
                    None => {}
                }
            }
        }
    }
    body.push(b']');
    let next = query.skip + query.top;
    if next < admitted.len() {
        let route = match dialect {
            feed::Dialect::Defender => "/api/alerts",
            feed::Dialect::Graph => "/v1.0/security/alerts_v2",
        };
        let mut link = url_with_skip(&format!("{}{route}", state.base_url), params, next);
        link.insert(0, '"');
        link.push('"');
        body.extend_from_slice(b",\"@odata.nextLink\":");
        body.extend_from_slice(link.as_bytes());
    }
    body.push(b'}');
    let body = Bytes::from(body);
    lock(&state.clock).offset_secs += state.config.advance_per_feed_call;
    if fault == Fault::Truncated {
        return truncated(body);
    }
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ODATA_CONTENT_TYPE),
    );
    response
}

/// This query's URL (`route_url`) with `$skip` set to `skip`, as the API writes
/// `@odata.nextLink`.
fn url_with_skip(route_url: &str, params: &HashMap<String, String>, skip: usize) -> String {
    let mut pairs: Vec<(&str, String)> = params
        .iter()
        .filter(|(name, _)| name.as_str() != "$skip")
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    pairs.sort();
    pairs.push(("$skip", skip.to_string()));
    let query: Vec<String> = pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{name}={}",
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect();
    format!("{route_url}?{}", query.join("&"))
}

/// An entity's collection page at virtual time `now`.
fn page(universe: &Universe, indexes: &[usize], now: u64) -> Bytes {
    let mut body = format!("{{\"@odata.context\":\"{ODATA_CONTEXT}\",\"value\":[").into_bytes();
    for (n, alert) in indexes
        .iter()
        .filter_map(|&i| universe.render_json(i, now))
        .enumerate()
    {
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(alert.as_bytes());
    }
    body.extend_from_slice(b"]}");
    Bytes::from(body)
}

/// Sends half the body, then breaks the connection: what a reset mid-response looks like.
fn truncated(body: Bytes) -> Response {
    let half = Bytes::from(body[..body.len() / 2].to_vec());
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::other("emulated connection reset")),
    ];
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ODATA_CONTENT_TYPE),
    );
    response
}

async fn universe_listing(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(state.universe.listing(state.virtual_now_secs()))
}

async fn stats(State(state): State<Arc<SimState>>) -> Json<SimStats> {
    Json(lock(&state.log).stats(&state.config.limits))
}

#[derive(serde::Deserialize)]
struct AdvanceQuery {
    seconds: f64,
}

async fn advance(
    State(state): State<Arc<SimState>>,
    Query(query): Query<AdvanceQuery>,
) -> Json<Value> {
    lock(&state.clock).offset_secs += query.seconds.max(0.0);
    Json(json!({"virtual_now_secs": state.virtual_now_secs()}))
}

async fn set_faults(State(state): State<Arc<SimState>>, Json(faults): Json<Faults>) -> StatusCode {
    *lock(&state.faults) = faults;
    StatusCode::NO_CONTENT
}
