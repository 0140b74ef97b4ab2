//! The live path: one Redis pub/sub connection per instance, however many
//! rooms it reads.
//!
//! The append script publishes every message on its room's channel
//! (`skyrocket:{room}:live`) as `<id> <epoch> <json>`, in the same atomic
//! step that stores it in the stream. This task holds the instance's one
//! pub/sub connection: a room is subscribed when its first subscriber on this
//! instance attaches, unsubscribed once it has had none for a sweep period,
//! and each message heard is handed to its room's window and feed
//! ([`super::log`]). So the instance's Redis clients are two (commands and
//! pub/sub) whether it reads one room or ten thousand; the streams stay the
//! room's history, read with `XRANGE` on start, on resume and to fill a hole.
//!
//! Pub/sub delivers at most once: a message published while the connection
//! was down is never heard. The stream has it, so nothing is lost: after a
//! reconnect every room catches up from the stream after the last id it
//! delivered, and a room that hears an id past the next one (a message it
//! missed) reads the hole from the stream before going on. The epoch in
//! every message tells a room at once that Redis started a new life.

use super::log::{Heard, Shared};
use super::{Inner, CONNECT_TIMEOUT};
use crate::message::Posted;
use futures_util::StreamExt;
use redis::aio::PubSubSink;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often rooms nobody here subscribes to any more are unsubscribed.
pub const SWEEP: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Channels per SUBSCRIBE when a reconnect subscribes every room again.
const CHUNK: usize = 1000;

/// The instance's live path, shared by its rooms and its task.
#[derive(Debug, Default)]
pub(super) struct Live {
    /// The rooms this instance reads, by channel.
    rooms: Mutex<HashMap<String, Arc<Shared>>>,
    /// The subscribing side of the connection, while it is up.
    sink: Mutex<Option<PubSubSink>>,
    /// Orders SUBSCRIBE and UNSUBSCRIBE commands: a room starting while the
    /// sweep drops it (or a reconnect subscribes all) must end subscribed.
    subscribing: tokio::sync::Mutex<()>,
    /// Bumped on every connect: a room whose start straddled a reconnect
    /// may have missed messages, and catches up.
    generation: AtomicU64,
    /// Ends the task when the backbone is dropped.
    pub stop: CancellationToken,
}

impl Live {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Shared>>> {
        // Only `Arc`s inside: a panic elsewhere cannot leave it torn.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sink(&self) -> Option<PubSubSink> {
        self.sink.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_sink(&self, sink: Option<PubSubSink>) {
        *self.sink.lock().unwrap_or_else(|p| p.into_inner()) = sink;
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// Rooms this instance reads now (tests and `/metrics`).
    pub fn rooms_read(&self) -> usize {
        self.rooms().len()
    }

    /// Subscribes `shared`'s room: registered first, so a reconnect that
    /// happens meanwhile subscribes it too. Returns once Redis confirmed.
    pub async fn subscribe(&self, shared: &Arc<Shared>) -> redis::RedisResult<()> {
        let _order = self.subscribing.lock().await;
        let channel = shared.keys.live.clone();
        self.rooms().insert(channel.clone(), Arc::clone(shared));
        let Some(mut sink) = self.sink() else {
            self.forget(shared);
            return Err(down());
        };
        let subscribed = sink.subscribe(&channel).await;
        if subscribed.is_err() {
            self.forget(shared);
        }
        subscribed
    }

    /// Drops `shared` from the rooms read, unless another life of the same
    /// room (a room removed and created again) took its channel.
    pub fn forget(&self, shared: &Arc<Shared>) {
        let mut rooms = self.rooms();
        if rooms
            .get(&shared.keys.live)
            .is_some_and(|r| Arc::ptr_eq(r, shared))
        {
            rooms.remove(&shared.keys.live);
        }
    }

    /// Stops reading every room nobody here subscribes to any more.
    async fn sweep(&self) {
        let _order = self.subscribing.lock().await;
        let unwanted: Vec<String> = {
            let mut rooms = self.rooms();
            let mut unwanted = Vec::new();
            rooms.retain(|channel, shared| {
                let stop = shared.stop_if_unwanted();
                if stop {
                    unwanted.push(channel.clone());
                }
                !stop
            });
            unwanted
        };
        if unwanted.is_empty() {
            return;
        }
        tracing::debug!(
            rooms = unwanted.len(),
            "stopped reading rooms without subscribers"
        );
        if let Some(mut sink) = self.sink() {
            for chunk in unwanted.chunks(CHUNK) {
                // A failure means the connection is gone, and with it every
                // subscription: nothing left to undo.
                let _ = sink.unsubscribe(chunk).await;
            }
        }
    }
}

fn down() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Io,
        "the pub/sub connection is down; reconnecting",
    ))
}

/// Opens the pub/sub connection, so a Redis that cannot be reached is an
/// error at startup.
pub(super) async fn connect(client: &redis::Client) -> redis::RedisResult<redis::aio::PubSub> {
    tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .unwrap_or_else(|_| Err(down()))
}

/// The task: hears messages and hands them to their rooms, sweeps unwanted
/// rooms, and reconnects (then catches every room up) when the connection
/// fails. Holds the backbone weakly: it ends when the backbone is dropped.
pub(super) async fn run(inner: Weak<Inner>, first: redis::aio::PubSub) {
    let mut connection = Some(first);
    let mut backoff = BACKOFF_MIN;
    let mut reconnected = false;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let stop = strong.live.stop.clone();
        let pubsub = match connection.take() {
            Some(pubsub) => pubsub,
            None => match connect(&strong.client).await {
                Ok(pubsub) => pubsub,
                Err(e) => {
                    tracing::debug!(error = %e, ?backoff, "pub/sub cannot reach redis");
                    drop(strong);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            },
        };
        let (sink, mut stream) = pubsub.split();
        if let Err(e) = resubscribe(&strong, sink).await {
            tracing::warn!(error = %e, "pub/sub lost redis while subscribing; retrying");
            continue;
        }
        backoff = BACKOFF_MIN;
        if reconnected {
            tracing::info!(
                rooms = strong.live.rooms_read(),
                "pub/sub reconnected to redis; rooms catch up from their streams"
            );
            let rooms: Vec<_> = strong.live.rooms().values().cloned().collect();
            for shared in rooms {
                if shared.begin_catch_up() {
                    tokio::spawn(Shared::catch_up(shared));
                }
            }
        }
        reconnected = true;
        drop(strong);
        let mut sweep = tokio::time::interval_at(tokio::time::Instant::now() + SWEEP, SWEEP);
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { break };
                    let Some(strong) = inner.upgrade() else { return };
                    dispatch(&strong, &message);
                }
                _ = sweep.tick() => {
                    let Some(strong) = inner.upgrade() else { return };
                    strong.live.sweep().await;
                }
                _ = stop.cancelled() => return,
            }
        }
        if let Some(strong) = inner.upgrade() {
            strong.live.set_sink(None);
        }
        tracing::warn!("pub/sub lost redis; reconnecting");
    }
}

/// Subscribes every room read on the new connection, then makes it the one
/// rooms subscribe through.
async fn resubscribe(inner: &Inner, mut sink: PubSubSink) -> redis::RedisResult<()> {
    let _order = inner.live.subscribing.lock().await;
    let channels: Vec<String> = inner.live.rooms().keys().cloned().collect();
    for chunk in channels.chunks(CHUNK) {
        sink.subscribe(chunk).await?;
    }
    inner.live.set_sink(Some(sink));
    inner.live.generation.fetch_add(1, Relaxed);
    Ok(())
}

/// Hands one published message to its room.
fn dispatch(inner: &Inner, message: &redis::Msg) {
    let Some(shared) = inner.live.rooms().get(message.get_channel_name()).cloned() else {
        // Unsubscribed a moment ago: the room has no subscriber here.
        return;
    };
    let Some(heard) = parse(message.get_payload_bytes()) else {
        tracing::warn!(
            channel = message.get_channel_name(),
            "skipped a message that is not ours"
        );
        return;
    };
    if shared.hear(heard) {
        tokio::spawn(Shared::catch_up(shared));
    }
}

/// `<id> <epoch> <json>`, as the append script publishes it.
fn parse(payload: &[u8]) -> Option<Heard> {
    let mut parts = payload.splitn(3, |b| *b == b' ');
    let id = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let epoch = std::str::from_utf8(parts.next()?).ok()?;
    let json = parts.next()?;
    Some(Heard {
        epoch: epoch.into(),
        posted: Arc::new(Posted::from_json(id, bytes::Bytes::copy_from_slice(json))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_message_parses() {
        let heard = parse(br#"17 k3x9 {"type":"message","id":17}"#).unwrap();
        assert_eq!((heard.posted.id, &*heard.epoch), (17, "k3x9"));
        assert_eq!(&heard.posted.json[..], br#"{"type":"message","id":17}"#);
        assert!(parse(b"x k3x9 {}").is_none());
        assert!(parse(b"17").is_none());
    }
}
