//! `AppState` and `app(state) -> Router`: every route on one screen.

use crate::admission::Admission;
use crate::backbone::redis::RedisConfig;
use crate::backbone::{Backbone, BackboneError};
use crate::config::Config;
use crate::config::RateLimit;
use crate::error::ApiError;
use crate::origin::{self, OriginPolicy};
use crate::ratelimit::PerAddress;
use crate::room::{Room, RoomConfig, RoomError, Rooms};
use crate::stats::{Limit, Stats, Transport};
use crate::transport::poll::HeldPolls;
use crate::transport::{echo, poll, send, sse, ws};
use crate::wire::{self, ConnInfo};
use crate::wiretap::{RoomTap, WireTaps};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, Query, Request, State};
use axum::http::{header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything a handler can reach. Cloning is a few reference-count bumps.
#[derive(Debug, Clone)]
pub struct AppState {
    pub rooms: Arc<Rooms>,
    pub stats: Arc<Stats>,
    pub config: Arc<Config>,
    /// Cancelled when the server shuts down; every long-lived stream,
    /// socket and held poll selects on it.
    pub shutdown: CancellationToken,
    /// Tracks WebSocket tasks, which outlive their HTTP request, so shutdown
    /// can wait for their close handshakes.
    pub tasks: TaskTracker,
    /// The raw wire view's capture, off until someone opens it.
    pub taps: Arc<WireTaps>,
    /// The connection limits, and the connections admitted under them.
    pub admission: Arc<Admission>,
    /// The send rate of HTTP senders, per address.
    pub http_sends: Arc<PerAddress>,
    /// New rooms per address per minute.
    pub room_creations: Arc<PerAddress>,
    /// Long polls being held, one per client.
    pub held_polls: Arc<HeldPolls>,
    /// Which pages may use the rooms (RFC 6455 section 10.2).
    pub origins: Arc<OriginPolicy>,
}

impl AppState {
    pub fn new(config: Config, backbone: Backbone) -> Self {
        let room_config = RoomConfig {
            max_text_bytes: config.max_text_bytes,
            max_replay: config.max_replay,
            max_rooms: config.rooms.max,
            idle_after: config.rooms.idle_after,
            ..RoomConfig::default()
        };
        let per_minute = config.rooms.creations_per_minute;
        let stats = Arc::<Stats>::default();
        Self {
            rooms: Arc::new(Rooms::new(backbone, room_config)),
            admission: Arc::new(Admission::new(
                config.connections.clone(),
                Arc::clone(&stats),
            )),
            http_sends: Arc::new(PerAddress::new(config.send_rate)),
            room_creations: Arc::new(PerAddress::per(
                RateLimit {
                    per_second: per_minute,
                    burst: per_minute,
                },
                Duration::from_secs(60),
            )),
            held_polls: Arc::default(),
            origins: Arc::new(OriginPolicy::new(&config.allowed_origins)),
            stats,
            config: Arc::new(config),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            taps: Arc::default(),
        }
    }

    /// Counts a delivery of `messages` (`payload` bytes of JSON) to a client
    /// of `room`, and returns the room's wire tap when someone is watching
    /// it and the delivery carried a message worth showing.
    pub fn delivered(
        &self,
        room: &Room,
        transport: Transport,
        messages: u64,
        payload: u64,
    ) -> Option<Arc<RoomTap>> {
        self.stats
            .delivered(room.counters(), transport, messages, payload);
        if messages == 0 {
            return None;
        }
        self.taps.watching(room.name())
    }

    /// The room `name` for a client at `peer`: created if new, under the
    /// server's cap on rooms and the address's room-creation rate (which,
    /// like every per-address limit, spares loopback unless
    /// `limit_loopback`). Refusals are counted.
    pub fn room(&self, name: &str, peer: Option<IpAddr>) -> Result<Arc<Room>, RoomError> {
        let limited = peer.filter(|ip| self.admission.limits_apply_to(*ip));
        let result = self.rooms.get_or_create(name, || match limited {
            Some(ip) if !self.room_creations.try_take(ip) => Err(RoomError::CreationRefused(
                format!(
                    "too many new rooms from your address: at most {} a minute; existing rooms still work",
                    self.config.rooms.creations_per_minute
                ),
            )),
            _ => Ok(()),
        });
        match &result {
            Err(RoomError::Full { .. }) => self.stats.count(Limit::RoomsFull),
            Err(RoomError::CreationRefused(_)) => self.stats.count(Limit::RoomCreationsRateLimited),
            _ => {}
        }
        result
    }

    /// An in-memory server with default settings.
    pub fn in_memory(config: Config) -> Self {
        let backbone = Backbone::memory(config.history);
        Self::new(config, backbone)
    }

    /// The server the config describes: rooms shared over Redis when
    /// `config.redis` names one (connected now), else in memory.
    pub async fn connect(config: Config) -> Result<Self, BackboneError> {
        let Some(url) = config.redis.clone() else {
            return Ok(Self::in_memory(config));
        };
        let backbone = Backbone::redis(RedisConfig {
            url,
            history: config.history,
            // Three ticks: one late tick does not make an instance vanish.
            presence_ttl: (config.presence_interval * 3).max(Duration::from_secs(3)),
        })
        .await?;
        Ok(Self::new(config, backbone))
    }
}

pub fn app(state: AppState) -> Router {
    // What a page on another site could use with the visitor's cookies:
    // checked against the allowed origins (see `origin.rs`).
    let guarded = Router::new()
        .route(
            "/rooms/{room}/messages",
            post(send::post_message).layer(middleware::from_fn_with_state(
                state.clone(),
                send::read_body_in_time,
            )),
        )
        .route("/rooms/{room}/ws", get(ws::upgrade))
        .route("/rooms/{room}/sse", get(sse::stream))
        .route("/rooms/{room}/poll", get(poll::poll))
        .route("/rooms/{room}/wire", get(wire_view))
        .route("/echo/ws", get(echo::upgrade))
        .route_layer(middleware::from_fn_with_state(state.clone(), origin::check));
    Router::new()
        .route("/", get(demo_page))
        .route("/app.js", get(demo_script))
        .route("/style.css", get(demo_style))
        .merge(crate::slides::routes())
        .route("/healthz", get(healthz))
        .route("/stats", get(stats))
        .merge(guarded)
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
            )
        })
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn(account))
        .with_state(state)
}

/// Tells the connection's byte counter which transport this request serves
/// (see `wire.rs` for the rule).
async fn account(request: Request, next: Next) -> Response {
    let conn = request
        .extensions()
        .get::<ConnectInfo<ConnInfo>>()
        .map(|c| Arc::clone(&c.0.wire));
    if let Some(conn) = &conn {
        let uri = request.uri();
        conn.begin_request(wire::classify(request.method(), uri.path(), uri.query()));
    }
    let response = next.run(request).await;
    if let Some(conn) = &conn {
        conn.end_request();
    }
    response
}

/// The room named in the path, created on first use (see
/// [`AppState::room`]); a bad name is a 404, a room over a cap 503 or 429.
/// The WebSocket route takes it as a `Result`, to refuse over the socket.
pub struct RoomParam(pub Arc<Room>);

impl FromRequestParts<AppState> for RoomParam {
    type Rejection = RoomError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, RoomError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| RoomError::BadName)?;
        let peer = parts
            .extensions
            .get::<ConnectInfo<ConnInfo>>()
            .map(|c| c.0.peer.ip());
        Ok(Self(state.room(&name, peer)?))
    }
}

/// The connection this request came on (its peer and byte accounting),
/// when served through `server::run`; `None` under a plain listener.
pub struct Conn(pub Option<ConnInfo>);

impl<S: Send + Sync> FromRequestParts<S> for Conn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<ConnInfo>>()
                .map(|c| c.0.clone()),
        ))
    }
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
        "memory_trims": crate::memory::trims(),
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(json)).into_response())
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
