//! The emulator's HTTP side (axum).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::serve::ListenerExt;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::answer::{admit_call, api_error, page_answer, wire_for, ODATA_CONTEXT};
use super::faults::Faults;
use super::feed::Dialect;
use super::feed_route::feed_alerts;
use super::graph;
use super::state::{lock, Audience, Clock, Collection, SimState};
use super::stats::{CallLog, SimStats};
use super::token::{token, TokenVersion};
use super::universe::Universe;
use super::wire::Wire;
use super::SimConfig;

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

    /// Renders (and deflates, when it answers deflated) every user's page ahead (time frozen),
    /// so that serving is a copy of bytes: benchmarks measure the client, not the server.
    pub fn warm_user_pages(&self) {
        let now = self.state.virtual_now_secs();
        let universe = &self.state.universe;
        let wire = match self.state.config.deflate {
            true => Wire::Deflate,
            false => Wire::Plain,
        };
        let mut pages = lock(&self.state.pages);
        for user in 1..=universe.spec.users {
            let name = Universe::user_name(user);
            let body = wire.encode(page(universe, universe.alerts_of_user(&name), now));
            pages.insert((Collection::Users, name, wire), (now, body));
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
    let app = api_routes()
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

/// The API's routes: the Extension on each tells its handler which variant it serves.
#[rustfmt::skip]
fn api_routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token).layer(Extension(TokenVersion::V2)))
        .route("/{tenant}/oauth2/token", post(token).layer(Extension(TokenVersion::V1)))
        .route("/api/users/{id}/alerts", get(alerts).layer(Extension(Collection::Users)))
        .route("/api/files/{id}/alerts", get(alerts).layer(Extension(Collection::Files)))
        .route("/api/alerts", get(feed_alerts).layer(Extension(Dialect::Defender)))
        .route("/v1.0/security/alerts_v2", get(feed_alerts).layer(Extension(Dialect::Graph)))
}

/// `GET /api/users/{id}/alerts` and `GET /api/files/{id}/alerts` (the route says which).
async fn alerts(
    State(state): State<Arc<SimState>>,
    Extension(collection): Extension<Collection>,
    Path(id): Path<String>,
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
    let wire = wire_for(&state, &headers);
    let key = (collection, id, wire);
    let cached = lock(&state.pages)
        .get(&key)
        .filter(|(at, _)| *at == now)
        .map(|(_, body)| body.clone());
    let body = match cached {
        Some(body) => body,
        None => {
            let body = wire.encode(page(&state.universe, indexes, now));
            // Frozen time (benchmarks, most tests) serves every entity from here after once.
            if state.config.speed == 0.0 {
                lock(&state.pages).insert(key, (now, body.clone()));
            }
            body
        }
    };
    page_answer(body, wire, fault)
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
