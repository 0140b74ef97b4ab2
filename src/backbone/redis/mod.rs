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
//! # One reader per room per instance
//! An instance does not read Redis per client. The first subscriber of a
//! room on an instance starts one reader task ([`reader`]) that blocks in
//! `XREAD BLOCK` on the room's stream from the last id it delivered, and
//! pushes every entry into the room's local broadcast feed, which the
//! room's WebSocket, SSE and poll clients already read. The reader stops
//! once the room has had no subscriber for a whole block period.
//!
//! Every delivery comes through the reader, the sender's own included:
//! the send path only appends. So a message is never delivered twice (once
//! locally, once from the stream) and every instance delivers in stream
//! order. The price: a local receiver waits for Redis too. Redis wakes the
//! blocked `XREAD` in the same turn as it answers the send's script, so on
//! loopback a local receiver has the message about 0.01 ms after the
//! sender's `201`, and about 0.13 ms later than with the memory backbone at
//! the median (`examples/redis_latency.rs`, `results/redis-latency.md`).
//!
//! # History and resume, answered locally
//! The reader also keeps the room's recent messages in a local window
//! ([`crate::backbone::history::History`], `history` messages, filled from
//! the stream when the reader starts). A resume, a poll or a resync whose
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
//! reader checks the life when it reconnects and every 5 s (a Redis flushed
//! under a live connection), and on a change sends a `reset` into the feed,
//! so every client drops its old cursor and reads the new life from its
//! start (CONTRACT.md, "Restarts: epochs"). If Redis comes back with *older* data in the same
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
//! reader retries with a backoff of 100 ms doubling to 2 s and resumes from
//! the last id it delivered, and reads the window meanwhile. `/healthz`
//! pings Redis and answers `503 {"status":"degraded","backbone":"redis
//! unreachable: ..."}` while it does not answer.
//!
//! # Presence
//! See [`presence`]: each instance writes its own counts per room into a
//! hash on the presence tick, and adds the others' fresh entries.

mod log;
mod presence;
mod reader;
pub mod scripts;

pub use log::RedisLog;

use super::feed::Feed;
use super::{BackboneError, RoomEvent};
use crate::message::Online;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::AsyncConnectionConfig;
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
        let instance = format!("{}-{}", std::process::id(), super::new_epoch());
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                commands,
                config,
                instance,
            }),
        })
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

impl Inner {
    /// A connection of the reader's own: `XREAD BLOCK` holds its connection
    /// until it returns, so it cannot share the pipelined one.
    async fn blocking_connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(reader::BLOCK + RESPONSE_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}
