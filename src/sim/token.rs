//! The emulator's token endpoints, v2 (`scope`) and v1 (`resource`, numbers as strings): the
//! client-credentials grant with the app's secret or a client assertion checked as Entra ID
//! checks it, AADSTS errors in Entra ID's body, and tokens bound to the API they were asked for
//! (docs/microsoft-api.md §2 and its AADSTS table).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use serde_json::json;
use tokio::time::Instant;

use super::state::{lock, Audience, SimState};
use super::SimConfig;

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
/// this endpoint, now (`registered`: the app's certificate, PEM, as it stands now). The error is
/// the AADSTS description.
fn check_assertion(
    config: &SimConfig,
    registered: Option<&[u8]>,
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
    let Some(certificate) = registered.and_then(|pem| Certificate::from_pem(pem).ok()) else {
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

/// The secret the app has now: the configured one, unless a test rotated it.
fn current_secret(state: &SimState) -> String {
    lock(&state.faults)
        .client_secret
        .clone()
        .unwrap_or_else(|| state.config.client_secret.clone())
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
            let registered = lock(&state.faults)
                .certificate_pem
                .clone()
                .or_else(|| config.certificate_pem.clone());
            if let Err(description) =
                check_assertion(config, registered.as_deref(), form, jwt, &token_url)
            {
                return Err(token_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    &description,
                    state,
                ));
            }
        }
        None if form.get("client_secret") != Some(&current_secret(state)) => {
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

/// Which token endpoint a request came to.
#[derive(Debug, Clone, Copy)]
pub(super) enum TokenVersion {
    /// `/oauth2/v2.0/token`: the audience in `scope`.
    V2,
    /// `/oauth2/token`: the audience in `resource`; numbers sent as JSON strings
    /// (docs/microsoft-api.md §2).
    V1,
}

/// Both token endpoints (the route says which).
pub(super) async fn token(
    State(state): State<Arc<SimState>>,
    Extension(version): Extension<TokenVersion>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let audience_field = match version {
        TokenVersion::V2 => "scope",
        TokenVersion::V1 => "resource",
    };
    let token = match issue(&state, &tenant, &form, audience_field) {
        Ok(token) => token,
        Err(response) => return *response,
    };
    let ttl = state.config.token_ttl.as_secs();
    let body = match version {
        TokenVersion::V2 => json!({
            "token_type": "Bearer",
            "expires_in": ttl,
            "ext_expires_in": ttl,
            "access_token": token,
        }),
        TokenVersion::V1 => {
            let now = chrono::Utc::now().timestamp();
            json!({
                "token_type": "Bearer",
                "expires_in": ttl.to_string(),
                "ext_expires_in": ttl.to_string(),
                "expires_on": (now + ttl as i64).to_string(),
                "not_before": now.to_string(),
                "resource": form.get("resource").cloned().unwrap_or_default(),
                "access_token": token,
            })
        }
    };
    Json(body).into_response()
}
