//! One room's log on Redis: append through the script, read through the
//! local window when it covers the cursor, and read the room live through
//! the instance's pub/sub connection ([`super::live`]).
//!
//! The room's state sits behind a `std::sync::Mutex`: it is held to look at
//! the window or to push one message (or one read) into it and the feed,
//! never across an `.await`. Pushing into the window and the feed under the
//! same lock is what lets a subscriber (which joins the feed, then reads the
//! window) miss nothing and see nothing twice, as with the memory log.
//!
//! Starting to read a room: subscribe its channel first, then read the
//! stream, and keep what the channel brings meanwhile; once the read is in
//! the window, the kept messages follow it, those the read already had
//! dropped by id. Nothing falls between the two, the room's own resume rule.

use super::scripts::{self, Keys, LifeQuery, Template};
use super::Inner;
use crate::backbone::feed::Feed;
use crate::backbone::history::History;
use crate::backbone::RoomEvent;
use crate::backbone::{BackboneError, LogRead};
use crate::message::{now_millis, Draft, Posted};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// Messages kept while a room's start or catch-up reads the stream; past
/// this the oldest go (a hole the catch-up or a subscriber's resync fills
/// from the stream, or reports as a gap).
const MAX_KEPT: usize = 10_000;
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct RedisLog {
    shared: Arc<Shared>,
}

/// A message heard on the room's channel, with the life it belongs to.
#[derive(Debug, Clone)]
pub(super) struct Heard {
    pub epoch: Arc<str>,
    pub posted: Arc<Posted>,
}

/// What the log, the live task and catch-ups share.
#[derive(Debug)]
pub(super) struct Shared {
    pub backbone: Arc<Inner>,
    pub room: String,
    pub keys: Keys,
    pub feed: Arc<Feed<RoomEvent>>,
    state: Mutex<ReaderState>,
    /// Wakes subscribers waiting for a start in progress.
    started: Notify,
}

#[derive(Debug)]
struct ReaderState {
    phase: Phase,
    /// A subscriber attached since the sweep last looked: keep reading.
    wanted: bool,
}

#[derive(Debug)]
enum Phase {
    Stopped,
    /// Subscribed, reading the stream; messages heard meanwhile are kept.
    Starting(Vec<Heard>),
    /// Reading live; the window holds what was delivered. `catching_up`
    /// holds what was heard while a read fills a hole (after a reconnect,
    /// or an id heard past the next one).
    Running {
        window: History,
        catching_up: Option<Vec<Heard>>,
    },
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
    /// subscribers, like every other instance's, through the channel.
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

    /// Returns once this instance reads the room live, starting that if
    /// need be. A subscriber calls this after joining the feed and before
    /// reading the log, so the live path never starts after what the
    /// subscriber reads.
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
                    Phase::Running { .. } => return Ok(()),
                    Phase::Starting(_) => false,
                    Phase::Stopped => {
                        state.phase = Phase::Starting(Vec::new());
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
    /// Subscribes the room's channel, reads the stream into the window, and
    /// delivers what was heard meanwhile.
    async fn start(self: Arc<Self>) -> Result<(), BackboneError> {
        let live = &self.backbone.live;
        let generation = live.generation();
        let opened = async {
            live.subscribe(&self).await?;
            self.read_raw(Some(0)).await
        }
        .await;
        let result = match opened {
            Ok(read) => {
                let mut state = self.state();
                let Phase::Starting(kept) = std::mem::replace(&mut state.phase, Phase::Stopped)
                else {
                    unreachable!("only a start leaves the starting phase");
                };
                let mut window = History::new(
                    Arc::clone(&read.epoch),
                    read.oldest - 1,
                    self.backbone.config.history,
                );
                for posted in read.messages {
                    window.push(posted);
                }
                self.follow(&mut window, kept);
                // A reconnect during the start may have lost messages the
                // read did not see: catch up as after any reconnect.
                let missed = live.generation() != generation;
                state.phase = Phase::Running {
                    window,
                    catching_up: missed.then(Vec::new),
                };
                if missed {
                    tokio::spawn(Shared::catch_up(Arc::clone(&self)));
                }
                Ok(())
            }
            Err(e) => {
                self.state().phase = Phase::Stopped;
                live.forget(&self);
                Err(scripts::unavailable(e))
            }
        };
        self.started.notify_waiters();
        result
    }

    /// Delivers messages heard while a read was in flight, after it: those
    /// the read already had are dropped by id, and those of another life
    /// than the read's are dropped too (heard before a flush the read saw;
    /// a message of the new life heard after it reappears as a hole that
    /// the next message exposes and a catch-up fills).
    fn follow(&self, window: &mut History, kept: Vec<Heard>) {
        for heard in kept {
            if heard.epoch == *window.epoch() && heard.posted.id > window.latest() {
                self.deliver(window, heard.posted);
            }
        }
    }

    fn deliver(&self, window: &mut History, posted: Arc<Posted>) {
        window.push(Arc::clone(&posted));
        self.feed.send(RoomEvent::Message(posted));
    }

    /// The live task's side: one message heard on the channel. Returns true
    /// when it shows a hole (an id past the next one): the caller then runs
    /// [`Shared::catch_up`], and messages heard until it ends are kept.
    pub fn hear(&self, heard: Heard) -> bool {
        let mut state = self.state();
        match &mut state.phase {
            Phase::Stopped => false,
            Phase::Starting(kept)
            | Phase::Running {
                catching_up: Some(kept),
                ..
            } => {
                if kept.len() == MAX_KEPT {
                    kept.remove(0);
                }
                kept.push(heard);
                false
            }
            Phase::Running {
                window,
                catching_up,
            } => {
                if heard.epoch != *window.epoch() {
                    // Redis lost the room's data and a new life began: the
                    // window restarts in it and subscribers drop cursors.
                    tracing::warn!(room = %self.room, new = %heard.epoch, "the room's data in redis was lost: new life, clients are sent a reset");
                    self.new_life(window, Arc::clone(&heard.epoch), heard.posted.id);
                }
                let id = heard.posted.id;
                if id <= window.latest() {
                    false
                } else if id == window.latest() + 1 {
                    self.deliver(window, heard.posted);
                    false
                } else {
                    *catching_up = Some(vec![heard]);
                    true
                }
            }
        }
    }

    fn new_life(&self, window: &mut History, epoch: Arc<str>, latest: u64) {
        *window = History::new(Arc::clone(&epoch), 0, self.backbone.config.history);
        self.feed.send(RoomEvent::Reset { epoch, latest });
    }

    /// Marks the room as catching up after a reconnect; false when it is not
    /// running or a catch-up is already under way.
    pub fn begin_catch_up(&self) -> bool {
        match &mut self.state().phase {
            Phase::Running {
                catching_up: catching_up @ None,
                ..
            } => {
                *catching_up = Some(Vec::new());
                true
            }
            _ => false,
        }
    }

    /// Reads the stream after the window's last id (asking Redis whether the
    /// room is still in the same life, with nothing lost behind it) and
    /// delivers it, then what was heard meanwhile. Retries with a backoff
    /// while Redis cannot be reached and the room is still read.
    pub async fn catch_up(self: Arc<Self>) {
        let mut backoff = RETRY_MIN;
        loop {
            let known = match &self.state().phase {
                Phase::Running { window, .. } => (Arc::clone(window.epoch()), window.latest()),
                _ => return,
            };
            match self.read_since(&known).await {
                Ok(read) => return self.caught_up(read),
                Err(e) => {
                    tracing::debug!(room = %self.room, error = %e, ?backoff, "catch-up cannot reach redis");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// The stream after `known`'s id; in a new life, the new life whole.
    async fn read_since(&self, known: &(Arc<str>, u64)) -> redis::RedisResult<LogRead> {
        let (epoch, cursor) = known;
        let read = super::retry_if_dropped(&self.backbone.commands, |mut conn| async move {
            let query = LifeQuery {
                known: Some((epoch, *cursor)),
                messages_after: Some(*cursor),
            };
            scripts::life(&mut conn, &self.keys, query).await
        })
        .await?;
        if read.epoch == *epoch {
            return Ok(read);
        }
        self.read_raw(Some(0)).await
    }

    fn caught_up(&self, read: LogRead) {
        let mut state = self.state();
        let Phase::Running {
            window,
            catching_up,
        } = &mut state.phase
        else {
            return;
        };
        if read.epoch != *window.epoch() {
            tracing::warn!(room = %self.room, new = %read.epoch, "the room's data in redis was lost: new life, clients are sent a reset");
            self.new_life(window, Arc::clone(&read.epoch), read.latest);
        }
        for posted in read.messages {
            if posted.id > window.latest() {
                self.deliver(window, posted);
            }
        }
        let kept = catching_up.take().unwrap_or_default();
        self.follow(window, kept);
    }

    fn state(&self) -> MutexGuard<'_, ReaderState> {
        // Every change to the state is a single assignment or a push into
        // the window, so a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the window, if the room is read live.
    fn with_window<T>(&self, f: impl FnOnce(Option<&History>) -> T) -> T {
        let state = self.state();
        match &state.phase {
            Phase::Running { window, .. } => f(Some(window)),
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

    /// The sweep's side: stops reading the room (returns true) if nobody
    /// subscribed to it since the last sweep and nobody is subscribed now.
    pub fn stop_if_unwanted(&self) -> bool {
        let mut state = self.state();
        // Checked under the lock a new subscriber's `attach` takes, after
        // that subscriber joined the feed: either we see it here, or it
        // sees `Stopped` and starts again.
        if state.wanted
            || self.feed.receiver_count() > 0
            || matches!(state.phase, Phase::Starting(_))
        {
            state.wanted = false;
            return false;
        }
        state.phase = Phase::Stopped;
        true
    }
}
