//! The metrics port (`--metrics-port`): Prometheus text at `/metrics`, and the live ring page
//! at `/` with the JSON it polls: `/api/ring` (servers, points, migration),
//! `/api/route?key=K` (where a key goes) and `/api/preview?op=add|remove&server=H:P&weight=W`
//! (what a change would move; nothing changes). The page is one static file compiled into
//! the binary: no build step, no CDN.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::preview::Change;
use crate::Proxy;

/// The page: HTML, CSS and JS in one file, drawn as SVG.
const INDEX: &str = include_str!("web/index.html");

/// The routes of the metrics port.
pub fn router(proxy: Arc<Proxy>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/api/ring", get(ring))
        .route("/api/route", get(route))
        .route("/api/preview", get(preview))
        .with_state(proxy)
}

async fn index() -> Html<&'static str> {
    Html(INDEX)
}

async fn metrics(State(proxy): State<Arc<Proxy>>) -> Response {
    let text = crate::metrics::render(crate::metrics::snapshot(&proxy, false).await);
    ([(header::CONTENT_TYPE, service::metrics::CONTENT_TYPE)], text).into_response()
}

async fn ring(State(proxy): State<Arc<Proxy>>) -> Json<crate::metrics::Snapshot> {
    Json(crate::metrics::snapshot(&proxy, true).await)
}

/// Where one key routes.
#[derive(Debug, Serialize)]
struct KeyRoute {
    key: String,
    hash: u32,
    point: u32,
    owner: String,
    serving: String,
    preference: Vec<String>,
    replicas: Vec<String>,
}

fn error(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": text.into() }))).into_response()
}

async fn route(State(proxy): State<Arc<Proxy>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let Some(key) = query.get("key") else { return error(StatusCode::BAD_REQUEST, "give ?key=") };
    let topology = proxy.cluster.snapshot();
    let routing = topology.hash_tag.routing_key(key.as_bytes());
    let Some(found) = topology.ring.route(routing) else { return error(StatusCode::CONFLICT, "no servers available") };
    let name = |id| topology.ring.server(id).to_string();
    let serving = topology.primary(key.as_bytes()).map_or_else(|| name(found.server), name);
    Json(KeyRoute {
        key: key.clone(),
        hash: found.hash,
        point: found.point,
        owner: name(found.server),
        serving,
        preference: topology.ring.preference(routing).map(name).collect(),
        replicas: topology.replicas(key.as_bytes()).into_iter().map(name).collect(),
    })
    .into_response()
}

async fn preview(State(proxy): State<Arc<Proxy>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let server = query.get("server").cloned().unwrap_or_default();
    let change = match query.get("op").map(|op| op.to_ascii_lowercase()).as_deref() {
        Some("add") => match query.get("weight").map(|w| w.parse::<u32>()) {
            None => Change::Add(server, 1),
            Some(Ok(weight)) if weight >= 1 => Change::Add(server, weight),
            Some(_) => return error(StatusCode::BAD_REQUEST, "weight: a positive integer"),
        },
        Some("remove") => Change::Remove(server),
        _ => return error(StatusCode::BAD_REQUEST, "op: add or remove"),
    };
    match crate::preview::preview(&proxy, &change).await {
        Ok(preview) => Json(preview).into_response(),
        Err(text) => error(StatusCode::BAD_REQUEST, text.strip_prefix("ERR ").unwrap_or(&text)),
    }
}
