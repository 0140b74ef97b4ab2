//! `app(state) -> Router`: every route on one screen, and which transport
//! each one's bytes are charged to.

use crate::backbone::BackboneError;
use crate::conn::ConnInfo;
use crate::error::ApiError;
use crate::message::Transport;
use crate::routes::{self, MESSAGES, POLL, SSE, WS};
use crate::state::{AppState, RoomParam};
use crate::stats::Limit;
use crate::transport::websocket::{chat, echo};
use crate::transport::{poll, send, sse};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

pub fn app(state: AppState) -> Router {
    // What a page on another site could use with the visitor's cookies:
    // checked against the allowed origins (see `origin.rs`).
    let guarded = Router::new()
        .route(
            MESSAGES,
            post(send::post_message).layer(middleware::from_fn_with_state(
                state.clone(),
                send::read_body_in_time,
            )),
        )
        // CONNECT too: a WebSocket over HTTP/2 is an extended CONNECT
        // (RFC 8441), which axum's `WebSocketUpgrade` accepts.
        .route(WS, get(chat::upgrade).connect(chat::upgrade))
        .route(SSE, get(sse::stream))
        .route(POLL, get(poll::poll))
        .route("/rooms/{room}/wire", get(wire_view))
        .route("/echo/ws", get(echo::upgrade).connect(echo::upgrade))
        .merge(crate::network::api::routes(state.network.clone()))
        .route_layer(middleware::from_fn_with_state(state.clone(), check_origin));
    Router::new()
        .route("/", get(demo_page))
        .route("/app.js", get(demo_script))
        .route("/style.css", get(demo_style))
        .merge(crate::slides::routes())
        .route("/healthz", get(healthz))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .merge(guarded)
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), check_host))
        .layer(middleware::from_fn(log_refusals))
        .layer(middleware::from_fn(account))
        .with_state(state)
}

/// Tells the connection's byte counter which transport this request serves
/// (see `conn/accounting.rs` for the rule). A layer of the whole router, so
/// it runs once the router has matched the route.
async fn account(request: Request, next: Next) -> Response {
    let conn = request
        .extensions()
        .get::<ConnectInfo<ConnInfo>>()
        .map(|c| Arc::clone(&c.0.wire));
    if let Some(conn) = &conn {
        conn.begin_request(transport_of(&request));
    }
    let response = next.run(request).await;
    if let Some(conn) = &conn {
        conn.end_request();
    }
    response
}

/// The transport of a request the router matched (see `routes.rs`).
fn transport_of(request: &Request) -> Transport {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str());
    routes::transport_of(request.method(), route, request.uri().query())
}

/// Refuses a request from a page whose `Origin` is not allowed (see
/// `origin.rs`), with a 403 and a JSON error.
async fn check_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.origins.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            state.stats.count(Limit::OriginRefused);
            refused.into_response()
        }
    }
}

/// Refuses, on a server bound to loopback, a request for a name that is
/// not loopback's (DNS rebinding, see `host.rs`), with a 403 and a JSON
/// error. Every route, the WebSocket handshakes included.
async fn check_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.checks_host() {
        if let Err(refused) = crate::host::check(&request, &state.config.allowed_hosts) {
            state.stats.count(Limit::HostRefused);
            return refused.into_response();
        }
    }
    next.run(request).await
}

/// Logs each 403, 429 and 503 this router answers, with the peer and the
/// room, on the log's budget (`refusals.rs`). `/healthz`'s 503 reports
/// the server's health, not a refusal, and is left out.
async fn log_refusals(request: Request, next: Next) -> Response {
    // Only a server logging at debug keeps anything of the request: the
    // common case pays one level check, not copies for every request.
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<ConnInfo>>()
        .map(|c| c.0.peer);
    // A reference-counted copy, kept for the rare answer that is logged.
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = next.run(request).await;
    let status = response.status();
    let refused = matches!(status.as_u16(), 403 | 429 | 503);
    if refused && uri.path() != "/healthz" {
        let room = uri
            .path()
            .strip_prefix("/rooms/")
            .and_then(|rest| rest.split('/').next());
        crate::refusals::log(peer, room, format_args!("{status} {method} {}", uri.path()));
    }
    response
}

/// The raw wire view of a room: opening it arms capture for a while.
async fn wire_view(State(state): State<AppState>, RoomParam(room): RoomParam) -> Response {
    let tap = state.taps.watch(room.name());
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(tap.to_json(room.name())),
    )
        .into_response()
}

/// `200 {"status":"ok"}`, or `503 {"status":"degraded","backbone":...}`
/// while the backbone's store cannot be reached: the instance still serves
/// its connected receivers, but cannot accept messages.
async fn healthz(State(state): State<AppState>) -> Response {
    let backbone = state.rooms.backbone();
    match backbone.health().await {
        Ok(()) => {
            Json(serde_json::json!({ "status": "ok", "backbone": backbone.name() })).into_response()
        }
        Err(BackboneError::Unavailable(why)) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "degraded", "backbone": why })),
        )
            .into_response(),
    }
}

/// `GET /stats?rooms=N`: per-room figures for the N most active rooms.
#[derive(Debug, serde::Deserialize)]
struct StatsQuery {
    rooms: Option<usize>,
}

/// Rooms listed in `/stats` by default, and at most.
const STATS_ROOMS: usize = 20;
const STATS_ROOMS_MAX: usize = 100;

async fn stats(
    State(state): State<AppState>,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let top = query.rooms.unwrap_or(STATS_ROOMS).min(STATS_ROOMS_MAX);
    let mut json = state.stats.to_json(&state.rooms, top);
    json["connections"] = serde_json::json!({
        "open": state.admission.open(),
        "max": state.admission.limits().max,
        "memory_trims": crate::reclaim::trims(),
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(json)).into_response())
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        crate::metrics::render(&state),
    )
        .into_response()
}

// The page is compiled into the binary so the server runs from any
// directory, offline, as one file.
async fn demo_page() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../static/index.html"),
    )
}

async fn demo_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../static/app.js"),
    )
}

async fn demo_style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../static/style.css"),
    )
}
