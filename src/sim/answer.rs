//! What every alert route answers with besides its page: the call's admission (token, limits,
//! injected faults), the API's error body, the 429 with Retry-After, a body cut mid-way, and a
//! page's answer, deflated as Defender sends it to a client that accepts it.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio::time::Instant;

use super::faults::Fault;
use super::state::{lock, Audience, SimState};
use super::stats::CallLog;
use super::wire::Wire;

pub(super) const ODATA_CONTEXT: &str =
    "https://api.securitycenter.microsoft.com/api/$metadata#Alerts";
pub(super) const ODATA_CONTENT_TYPE: &str =
    "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8";

pub(super) fn api_error(
    state: &SimState,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    let body = json!({"error": {"code": code, "message": message, "target": state.fresh_id()}});
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

pub(super) fn throttled(state: &SimState, wait: Duration) -> Response {
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

/// What every alert call goes through before its answer is built: the call log, injected
/// latency, the bearer token, the 403 switch, the limits (429 + Retry-After) and the injected
/// faults. `Err` is the answer already decided; `Ok` the fault still to apply to the body.
pub(super) async fn admit_call(
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

/// How this answer goes on the wire: deflated when the emulator deflates and the request
/// accepts it (counted), else plain.
pub(super) fn wire_for(state: &SimState, headers: &HeaderMap) -> Wire {
    if state.config.deflate && Wire::accepted(headers) {
        lock(&state.log).served_deflated += 1;
        Wire::Deflate
    } else {
        Wire::Plain
    }
}

/// A page's answer: the OData headers and `body` (already as `wire` says), half of it then a
/// broken connection when `fault` is [`Fault::Truncated`].
pub(super) fn page_answer(body: Bytes, wire: Wire, fault: Fault) -> Response {
    let mut response = if fault == Fault::Truncated {
        truncated(body)
    } else {
        Response::new(Body::from(body))
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ODATA_CONTENT_TYPE),
    );
    headers.insert("OData-Version", HeaderValue::from_static("4.0"));
    if wire == Wire::Deflate {
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static("deflate"),
        );
    }
    response
}

/// Sends half the body, then breaks the connection: what a reset mid-response looks like.
fn truncated(body: Bytes) -> Response {
    let half = body.slice(..body.len() / 2);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::other("emulated connection reset")),
    ];
    Response::new(Body::from_stream(futures_util::stream::iter(chunks)))
}
