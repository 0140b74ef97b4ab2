//! `AppState`, the server's state that every handler reaches, and the
//! extractors every adapter shares (the room in the path, the connection).
//!
//! It sits below the transports and the router: an adapter takes what it
//! needs from here, and `app.rs` only wires routes to adapters.

use crate::admission::Admission;
use crate::backbone::redis::RedisConfig;
use crate::backbone::{Backbone, BackboneError};
use crate::config::{Config, RateLimit};
use crate::conn::ConnInfo;
use crate::message::Transport;
use crate::network::Network;
use crate::origin::OriginPolicy;
use crate::ratelimit::PerAddress;
use crate::room::{Room, RoomConfig, RoomError, Rooms};
use crate::stats::{Limit, Stats};
use crate::wire_view::{RoomTap, WireTaps};
use axum::extract::{ConnectInfo, FromRequestParts, Path};
use axum::http::request::Parts;
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
    /// Which pages may use the rooms (RFC 6455 section 10.2).
    pub origins: Arc<OriginPolicy>,
    /// The network in between, when the server opened one (`/network`).
    pub network: Option<Arc<Network>>,
    /// Whether the listener is bound to a loopback address (set by
    /// `server::run`), where `Host` is checked against DNS rebinding.
    pub on_loopback: bool,
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
            origins: Arc::new(OriginPolicy::new(&config.allowed_origins)),
            stats,
            config: Arc::new(config),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            taps: Arc::default(),
            network: None,
            on_loopback: false,
        }
    }

    /// This state with a network in between, which `/network` controls.
    pub fn with_network(mut self, network: Arc<Network>) -> Self {
        self.network = Some(network);
        self
    }

    /// Whether requests must name a loopback host (`host.rs`): on a
    /// loopback listener, unless the network in between listens beyond
    /// loopback, whose clients reach this server through it by other
    /// names. The proxy notes its address before it accepts anything, so
    /// a request through it always finds the address here.
    pub fn checks_host(&self) -> bool {
        self.on_loopback
            && self
                .network
                .as_ref()
                .and_then(|n| n.addr())
                .is_none_or(|addr| addr.ip().is_loopback())
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
        oldest: Option<std::time::Instant>,
    ) -> Option<Arc<RoomTap>> {
        self.stats
            .delivered(room.counters(), transport, messages, payload, oldest);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_host_is_checked_only_behind_a_loopback_listener() {
        // `server::run` sets `on_loopback` from the address it serves; a
        // server on 0.0.0.0 or a real interface checks no Host.
        let mut state = AppState::in_memory(Config::default());
        assert!(!state.checks_host());
        state.on_loopback = true;
        assert!(state.checks_host());
    }
}
