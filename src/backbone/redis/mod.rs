//! The Redis Streams backbone: several server instances share rooms.
//!
//! `--redis redis://127.0.0.1:6379` selects it. Each room is a stream plus
//! a counter and an epoch (key names in [`scripts`]).
//!
//! # One source of ids
//! A send runs one Lua script that increments the room's counter and adds
//! the entry with that number as its explicit id (`<n>-0`), atomically, so
//! every instance numbers from the same counter, ids strictly increase, and
//! two instances sending at once can neither swap nor skip an id. The
//! sender encodes the message JSON once around a placeholder and the script
//! splices the id in: every instance hands out the same bytes.
//!
//! # Live: one pub/sub connection per instance, streams for history
//! An instance does not read Redis per client, nor per room. The append
//! script also publishes each message, with its id and epoch, on the room's
//! channel, and each instance holds one pub/sub connection ([`live`]) on
//! which it subscribes the rooms it has subscribers for, and hands what it
//! hears to each room's window and local broadcast feed, which the room's
//! WebSocket, SSE and poll clients already read. A room is unsubscribed once
//! it has had no subscriber there for a sweep period (5 s). So an instance
//! holds two Redis connections (commands and pub/sub) however many rooms
//! are active: the earlier design, one task and one connection blocking in
//! `XREAD BLOCK` per active room, held 302 Redis clients for 300 rooms and
//! ran into Redis's `maxclients`.
//!
//! Why pub/sub rather than one `XREAD BLOCK` over many streams: that command
//! names every stream on each call, so each wake-up re-sends and re-registers
//! all of an instance's rooms (O(rooms) work per batch, on both sides), and
//! adding a room means interrupting the blocked read. A subscription is
//! added or dropped without disturbing the others, and a message costs one
//! publish however many rooms are read. Pub/sub is at most once, so the
//! stream stays the source of truth: a room catches up from it after a
//! reconnect, and fills from it any hole it hears (an id past the next).
//! This is how Centrifugo splits it too. Measured in
//! `results/redis/shared-reader.md`.
//!
//! Every delivery comes through the channel, the sender's own included:
//! the send path only appends. So a message is never delivered twice (once
//! locally, once from Redis) and every instance delivers in id order. The
//! price: a local receiver waits for Redis too, which publishes in the same
//! turn as it answers the send's script (`examples/redis_latency.rs`,
//! `results/redis-latency.md`).
//!
//! # History and resume, answered locally
//! Each room read live keeps its recent messages in a local window
//! ([`crate::backbone::history::History`], `history` messages, filled from
//! the stream when its reading starts). A resume, a poll or a resync whose
//! cursor the window covers is answered from it without a Redis read; an
//! older cursor, or one newer than the window (a client that heard of a
//! newer id on another instance) reads the stream with `XRANGE`. The stream
//! itself keeps about `history` messages (`XADD ... MAXLEN ~`), so `since`,
//! `Last-Event-ID` and `gap` behave as with the memory backbone. A
//! subscriber that sees the feed skip ids (its reader fell behind the
//! stream's retention) resyncs from the log and gets the `gap` event.
//!
//! # Epochs, and loss that is never silent
//! The epoch of a room life is stored in Redis and created by whichever
//! script finds it missing. If Redis loses its data (it ran without
//! persistence and restarted), the next script creates a new epoch; each
//! room checks the life when the pub/sub connection comes back, and every
//! published message names its life (so a Redis flushed under a live
//! connection is noticed with the next message), and on a change sends a
//! `reset` into the feed, so every client drops its old cursor and reads the
//! new life from its start (CONTRACT.md, "Restarts: epochs"). If Redis comes back with *older* data in the same
//! epoch (the counter is below what the reader already delivered), the
//! script starts a new life too: ids clients hold would otherwise be reused.
//!
//! # Faults
//! Commands go through a `ConnectionManager` that reconnects on its own,
//! with one retry and a one-second connect timeout, so a send while Redis is
//! down fails within about a second as `503 {"error": ...}` rather than
//! hanging: nothing is accepted and then lost. (A send whose reply was lost
//! in flight is in doubt; a client that retries with the same `client_id`
//! can recognise its own message.) Connected receivers stay connected: the
//! pub/sub connection retries with a backoff of 100 ms doubling to 2 s, and
//! every room then catches up from the last id it delivered; polls read the
//! window meanwhile. A new subscriber while it is down gets the 503. `/healthz`
//! pings Redis and answers `503 {"status":"degraded","backbone":"redis
//! unreachable: ..."}` while it does not answer.
//!
//! # Presence
//! See [`presence`]: each instance writes its own counts per room into a
//! hash on the presence tick, and adds the others' fresh entries.

mod live;
mod log;
mod presence;
pub mod scripts;

pub use log::RedisLog;

use super::feed::Feed;
use super::{BackboneError, RoomEvent};
use crate::message::Online;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a command may wait for its reply (a script is microseconds;
/// this bounds a Redis that hangs without closing the socket).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port[/db]`.
    pub url: String,
    /// Messages each room's stream retains (`MAXLEN ~`) and each instance's
    /// window holds.
    pub history: usize,
    /// A presence entry older than this is ignored: its instance is gone.
    pub presence_ttl: Duration,
}

/// A connected Redis backbone. Cloning shares the connections.
#[derive(Debug, Clone)]
pub struct RedisBackbone {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    /// Shared by sends, reads, presence and health checks: it pipelines
    /// concurrent commands on one connection and reconnects by itself.
    commands: ConnectionManager,
    config: RedisConfig,
    /// This instance's field in the presence hashes.
    instance: String,
    /// The pub/sub connection and the rooms read through it.
    live: live::Live,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The live task holds the backbone weakly; this ends it now rather
        // than at its next message.
        self.live.stop.cancel();
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("instance", &self.instance)
            .field("history", &self.config.history)
            .finish_non_exhaustive()
    }
}

impl RedisBackbone {
    /// Connects now, so a wrong URL or a Redis that is not running is an
    /// error at startup rather than a server that answers 503 to everything.
    pub async fn connect(config: RedisConfig) -> Result<Self, BackboneError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| BackboneError::Unavailable(format!("bad redis URL: {e}")))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let commands = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(scripts::unavailable)?;
        let pubsub = live::connect(&client).await.map_err(scripts::unavailable)?;
        let instance = format!("{}-{}", std::process::id(), super::new_epoch());
        let inner = Arc::new(Inner {
            client,
            commands,
            config,
            instance,
            live: live::Live::default(),
        });
        tokio::spawn(live::run(Arc::downgrade(&inner), pubsub));
        Ok(Self { inner })
    }

    /// Rooms this instance reads live now.
    pub fn rooms_read(&self) -> usize {
        self.inner.live.rooms_read()
    }

    pub fn open(&self, room: &str, feed: Arc<Feed<RoomEvent>>) -> RedisLog {
        RedisLog::new(Arc::clone(&self.inner), room, feed)
    }

    pub async fn ping(&self) -> Result<(), BackboneError> {
        retry_if_dropped(&self.inner.commands, |mut conn| async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(drop)
        .map_err(scripts::unavailable)
    }

    pub async fn share_presence(&self, local: &[(&str, Online)]) -> Vec<Online> {
        presence::share(&self.inner, local).await
    }
}

/// Runs a command that is safe to repeat, and repeats it once if the shared
/// connection turns out to have died while idle (Redis restarted and this
/// was the first command to notice): the manager reconnects on that error,
/// and the second attempt waits for the new connection. Sends are never
/// repeated: one may have been stored before its reply was lost, and a
/// retry would store it twice.
async fn retry_if_dropped<T, F, Fut>(
    commands: &ConnectionManager,
    command: F,
) -> redis::RedisResult<T>
where
    F: Fn(ConnectionManager) -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    match command(commands.clone()).await {
        Err(e) if e.is_io_error() || e.is_connection_dropped() => command(commands.clone()).await,
        result => result,
    }
}
