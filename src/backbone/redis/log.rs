//! One room's log on Redis: append through the script, read through the
//! local window when it covers the cursor, and start the room's reader.
//!
//! The reader's state sits behind a `std::sync::Mutex`: it is held to look
//! at the window or to push one batch of entries into it and the feed, never
//! across an `.await`. Pushing into the window and the feed under the same
//! lock is what lets a subscriber (which subscribes to the feed, then reads
//! the window) miss nothing and see nothing twice, as with the memory log.

use super::scripts::{self, Keys, LifeQuery, Template};
use super::{reader, Inner};
use crate::backbone::feed::Feed;
use crate::backbone::history::History;
use crate::backbone::RoomEvent;
use crate::backbone::{BackboneError, LogRead};
use crate::message::{now_millis, Draft, Posted};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

#[derive(Debug)]
pub struct RedisLog {
    shared: Arc<Shared>,
}

/// What the log and its reader task share.
#[derive(Debug)]
pub(super) struct Shared {
    pub backbone: Arc<Inner>,
    pub room: String,
    pub keys: Keys,
    pub feed: Arc<Feed<RoomEvent>>,
    state: Mutex<ReaderState>,
    /// Wakes subscribers waiting for a reader that is starting.
    started: Notify,
}

#[derive(Debug)]
struct ReaderState {
    phase: Phase,
    /// A subscriber attached since the reader last looked: keep running.
    wanted: bool,
}

#[derive(Debug)]
enum Phase {
    Stopped,
    Starting,
    /// The reader task is running; the window holds what it delivered.
    Running(History),
}

impl RedisLog {
    pub(super) fn new(backbone: Arc<Inner>, room: &str, feed: Arc<Feed<RoomEvent>>) -> Self {
        Self {
            shared: Arc::new(Shared {
                backbone,
                room: room.to_owned(),
                keys: Keys::new(room),
                feed,
                state: Mutex::new(ReaderState {
                    phase: Phase::Stopped,
                    wanted: false,
                }),
                started: Notify::new(),
            }),
        }
    }

    /// Stores the message under the next id. It reaches this instance's
    /// subscribers, like every other instance's, through the reader.
    pub async fn append(&self, draft: Draft) -> Result<Arc<Posted>, BackboneError> {
        let zero = Posted::new(&draft.into_message(&self.shared.room, 0, now_millis()));
        let template = Template::new(zero.json.to_vec());
        let mut conn = self.shared.backbone.commands.clone();
        let history = self.shared.backbone.config.history;
        let id = scripts::append(&mut conn, &self.shared.keys, &template, history)
            .await
            .map_err(scripts::unavailable)?;
        Ok(Arc::new(Posted::from_json(id, template.with_id(id))))
    }

    pub async fn read_after(&self, cursor: u64) -> Result<LogRead, BackboneError> {
        let local = self.shared.with_window(|window| {
            window
                .filter(|w| w.covers(cursor))
                .map(|w| w.read_after(cursor))
        });
        match local {
            Some(read) => Ok(read),
            None => self.shared.read(Some(cursor)).await,
        }
    }

    pub async fn latest(&self) -> Result<(Arc<str>, u64), BackboneError> {
        let local = self
            .shared
            .with_window(|window| window.map(|w| (Arc::clone(w.epoch()), w.latest())));
        match local {
            Some(latest) => Ok(latest),
            None => self.shared.read(None).await.map(|r| (r.epoch, r.latest)),
        }
    }

    /// Returns once this instance's reader of the room runs, starting it if
    /// need be. A subscriber calls this after subscribing to the feed and
    /// before reading the log, so the reader's starting point is never
    /// after what the subscriber reads.
    pub async fn attach(&self) -> Result<(), BackboneError> {
        loop {
            let started = self.shared.started.notified();
            tokio::pin!(started);
            // Registered before looking at the phase, so a start that ends
            // between the look and the wait still wakes us.
            started.as_mut().enable();
            let start_here = {
                let mut state = self.shared.state();
                state.wanted = true;
                match state.phase {
                    Phase::Running(_) => return Ok(()),
                    Phase::Starting => false,
                    Phase::Stopped => {
                        state.phase = Phase::Starting;
                        true
                    }
                }
            };
            if start_here {
                // A task of its own, so a subscriber that goes away mid-start
                // cannot leave the phase at `Starting`.
                let start = tokio::spawn(Shared::start(Arc::clone(&self.shared)));
                return start.await.unwrap_or_else(|e| {
                    Err(BackboneError::Unavailable(format!(
                        "reader start failed: {e}"
                    )))
                });
            }
            started.await;
        }
    }
}

impl Shared {
    /// Fills the window from the stream and spawns the reader from there.
    async fn start(self: Arc<Self>) -> Result<(), BackboneError> {
        let opened = async {
            let conn = self.backbone.blocking_connection().await?;
            let read = self.read_raw(Some(0)).await?;
            Ok::<_, redis::RedisError>((conn, read))
        }
        .await;
        let result = {
            let mut state = self.state();
            match opened {
                Ok((conn, read)) => {
                    let mut window = History::new(
                        Arc::clone(&read.epoch),
                        read.oldest - 1,
                        self.backbone.config.history,
                    );
                    for posted in read.messages {
                        window.push(posted);
                    }
                    let cursor = window.latest();
                    state.phase = Phase::Running(window);
                    tokio::spawn(reader::run(Arc::clone(&self), conn, read.epoch, cursor));
                    Ok(())
                }
                Err(e) => {
                    state.phase = Phase::Stopped;
                    Err(scripts::unavailable(e))
                }
            }
        };
        self.started.notify_waiters();
        result
    }

    fn state(&self) -> MutexGuard<'_, ReaderState> {
        // Every change to the state is a single assignment or a push into
        // the window, so a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the window, if a reader is running.
    fn with_window<T>(&self, f: impl FnOnce(Option<&History>) -> T) -> T {
        let state = self.state();
        match &state.phase {
            Phase::Running(window) => f(Some(window)),
            _ => f(None),
        }
    }

    /// Reads the room's life from Redis, and the messages after `cursor`.
    async fn read(&self, cursor: Option<u64>) -> Result<LogRead, BackboneError> {
        self.read_raw(cursor).await.map_err(scripts::unavailable)
    }

    async fn read_raw(&self, cursor: Option<u64>) -> redis::RedisResult<LogRead> {
        super::retry_if_dropped(&self.backbone.commands, |mut conn| async move {
            let query = LifeQuery {
                known: None,
                messages_after: cursor,
            };
            scripts::life(&mut conn, &self.keys, query).await
        })
        .await
    }

    /// The reader's side: pushes delivered messages into the window and the
    /// feed, under one lock, in id order.
    pub fn deliver(&self, messages: impl IntoIterator<Item = Arc<Posted>>) {
        let mut state = self.state();
        // Only the reader task ends the running phase, and it is the caller.
        let Phase::Running(window) = &mut state.phase else {
            return;
        };
        for posted in messages {
            window.push(Arc::clone(&posted));
            self.feed.send(RoomEvent::Message(posted));
        }
    }

    /// The reader's side: the room started a new life. The window restarts
    /// empty in it, and subscribers are told to drop their cursors.
    pub fn new_life(&self, epoch: Arc<str>, latest: u64) {
        let mut state = self.state();
        if let Phase::Running(window) = &mut state.phase {
            *window = History::new(Arc::clone(&epoch), 0, self.backbone.config.history);
        }
        self.feed.send(RoomEvent::Reset { epoch, latest });
    }

    /// The reader's side, when its block timed out or it cannot reach
    /// Redis: stops the reader (returns true) if nobody subscribed to the
    /// room since it last asked and nobody is subscribed now.
    pub fn stop_if_unwanted(&self) -> bool {
        let mut state = self.state();
        // Checked under the lock a new subscriber's `attach` takes, after
        // that subscriber joined the feed: either we see it here, or it
        // sees `Stopped` and starts a new reader.
        if state.wanted || self.feed.receiver_count() > 0 {
            state.wanted = false;
            return false;
        }
        state.phase = Phase::Stopped;
        true
    }
}
