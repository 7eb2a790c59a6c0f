//! The feed routes, Defender's `GET /api/alerts` and Graph's `alerts_v2`: the query read by
//! `feed.rs`, the alerts it admits in an order that is not by time, a page at a time with
//! `@odata.nextLink` while more remain.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;

use super::answer::{admit_call, api_error, page_answer, wire_for, ODATA_CONTEXT};
use super::state::{lock, Audience, SimState};
use super::universe::Universe;
use super::wire::Wire;
use super::{feed, graph};

/// `GET /api/alerts` (Defender's names) and `GET /v1.0/security/alerts_v2` (Graph's shape,
/// with the Office 365 alerts only Graph serves), the route saying which: every alert of the
/// tenant the query admits, in an order that is not by time, a page at a time with
/// `@odata.nextLink` while more remain.
pub(super) async fn feed_alerts(
    State(state): State<Arc<SimState>>,
    Extension(dialect): Extension<feed::Dialect>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    serve_feed(&state, &params, &headers, dialect).await
}

/// One alert a feed can serve.
#[derive(Debug, Clone, Copy)]
enum FeedItem {
    Universe(usize),
    /// The Office 365 alert of this user (Graph only).
    Office(usize),
}

/// The alerts (and, for Graph, other products' alerts) the query admits, in feed order.
fn admitted_items(
    universe: &Universe,
    query: &feed::FeedQuery,
    dialect: feed::Dialect,
    now: u64,
) -> Vec<(u64, FeedItem)> {
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
    admitted
}

/// One item of the page, as the dialect renders it.
fn write_item(
    universe: &Universe,
    query: &feed::FeedQuery,
    dialect: feed::Dialect,
    item: FeedItem,
    now: u64,
    body: &mut Vec<u8>,
) {
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
    let admitted = admitted_items(universe, &query, dialect, now);
    let mut body = format!("{{\"@odata.context\":\"{ODATA_CONTEXT}\",\"value\":[").into_bytes();
    for (n, &(_, item)) in admitted.iter().skip(query.skip).take(query.top).enumerate() {
        if n > 0 {
            body.push(b',');
        }
        write_item(universe, &query, dialect, item, now, &mut body);
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
    lock(&state.clock).offset_secs += state.config.advance_per_feed_call;
    // Defender deflates its answers (§4); what Graph does is not recorded, so it answers plain.
    let wire = match dialect {
        feed::Dialect::Defender => wire_for(state, headers),
        feed::Dialect::Graph => Wire::Plain,
    };
    page_answer(wire.encode(Bytes::from(body)), wire, fault)
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
