//! The chat room: post, subscribe from a cursor, read history, presence.
//!
//! This is the whole behaviour every transport shares, and it knows nothing
//! of HTTP. Transports turn a request into a [`Resume`], ask for a
//! [`Subscription`] (or a one-off [`Catchup`] for polling) and write out what
//! they are handed.
//!
//! Resume without loss or duplicates, without a lock shared with posters:
//! subscribe to the live feed *first*, then read the log after the cursor,
//! then drop any live message whose id the replay already covered. A message
//! posted in between is in both places and delivered once; none can fall in
//! the crack between the two reads.
//!
//! The feed is trusted to carry a room life's ids consecutively. When it
//! does not (a Redis reader that fell behind the stream's retention) or it
//! announces a new life (Redis lost its data), the subscription resyncs from
//! the log, which turns the loss into a `gap` or `reset` event.
//!
//! A subscription joins the feed only when it first has to wait for it
//! (a short poll never does), and then reads the log once more after its
//! cursor, the same resync as above: joining first and reading after is what
//! loses nothing, whenever it happens. So a room that short polls touch
//! never allocates its feed (see `backbone/feed.rs`).
//!
//! Rooms are bounded ([`Rooms`]): at most `max_rooms` live at once, each
//! removed, history included, once nobody holds it and nothing was posted
//! or read in it for `idle_after`. A client that comes back to a removed
//! room finds a new life there, and its old cursor earns it a `reset`.

use crate::backbone::feed::Feed;
use crate::backbone::{Backbone, BackboneError, LogRead, RoomEvent, RoomLog};
use crate::message::{Control, Draft, DraftError, Online, Posted, Resume, Transport};
use crate::pollers::{Change, HeldPoll, PollerKind, Pollers};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Room settings that come from the server's options.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub max_text_bytes: usize,
    /// Capacity of each room's live feed. A subscriber that falls further
    /// behind than this is resynced from the log (see [`Subscription::next`]).
    pub feed_capacity: usize,
    /// How long a poller counts as online after its last request.
    pub poller_ttl: Duration,
    /// The most pollers one room remembers for presence; past it the least
    /// recently seen is forgotten (see `pollers.rs`).
    pub max_pollers: usize,
    /// The most retained messages one resume replays; the older ones it
    /// asked for become a gap.
    pub max_replay: usize,
    /// Rooms alive at once; a request that would create one more is
    /// refused ([`RoomError::Full`]).
    pub max_rooms: usize,
    /// A room nobody holds (no subscriber, no request in progress) and
    /// nobody posted to or read for this long is removed, history included.
    pub idle_after: Duration,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            max_text_bytes: 4096,
            feed_capacity: 256,
            poller_ttl: Duration::from_secs(35),
            max_pollers: 100_000,
            max_replay: 1000,
            max_rooms: 10_000,
            idle_after: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomError {
    BadName,
    Invalid(DraftError),
    Backbone(BackboneError),
    /// Creating the room would pass the server's cap on live rooms.
    Full {
        max: usize,
    },
    /// The caller may not create another room now (its address is over
    /// its room-creation rate).
    CreationRefused(String),
}

impl RoomError {
    /// A refusal of a new room by one of the room caps (the room itself
    /// is fine; try later), as opposed to a bad request or a store fault.
    pub fn is_room_cap(&self) -> bool {
        matches!(self, Self::Full { .. } | Self::CreationRefused(_))
    }
}

impl std::fmt::Display for RoomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadName => {
                f.write_str("room names are 1-64 characters of A-Z, a-z, 0-9, _ and -")
            }
            Self::Invalid(e) => e.fmt(f),
            Self::Backbone(e) => e.fmt(f),
            Self::Full { max } => write!(
                f,
                "the server holds its maximum of {max} rooms; existing rooms still work, try a new one later"
            ),
            Self::CreationRefused(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for RoomError {}

impl From<BackboneError> for RoomError {
    fn from(e: BackboneError) -> Self {
        Self::Backbone(e)
    }
}

pub fn valid_room_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Every room of this server, created on first use, removed when idle.
#[derive(Debug)]
pub struct Rooms {
    backbone: Backbone,
    config: RoomConfig,
    // Read-mostly: every request looks a room up, a new room is rare.
    rooms: RwLock<HashMap<Arc<str>, Arc<Room>>>,
    /// The coarse clock pollers are stamped with: milliseconds since
    /// `started`, advanced by the presence tick, read with one atomic load.
    clock: Arc<AtomicU64>,
    started: Instant,
    created: AtomicU64,
    removed: AtomicU64,
    /// `rooms.len()`, readable without the lock (`/stats`, `/metrics`).
    live: AtomicUsize,
}

/// How many rooms there are and have been (`/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RoomTotals {
    pub live: usize,
    pub max: usize,
    pub created: u64,
    pub removed_idle: u64,
    pub idle_after_secs: u64,
}

impl Rooms {
    pub fn new(backbone: Backbone, config: RoomConfig) -> Self {
        Self {
            backbone,
            config,
            rooms: RwLock::default(),
            clock: Arc::default(),
            started: Instant::now(),
            created: AtomicU64::new(0),
            removed: AtomicU64::new(0),
            live: AtomicUsize::new(0),
        }
    }

    pub fn totals(&self) -> RoomTotals {
        RoomTotals {
            live: self.live.load(Ordering::Relaxed),
            max: self.config.max_rooms,
            created: self.created.load(Ordering::Relaxed),
            removed_idle: self.removed.load(Ordering::Relaxed),
            idle_after_secs: self.config.idle_after.as_secs(),
        }
    }

    /// Milliseconds since this registry started, read precisely (one
    /// `Instant` read, no syscall): the clock of each room's `last_active`.
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    /// The room with this name, created if it is new and under the cap.
    pub fn get(&self, name: &str) -> Result<Arc<Room>, RoomError> {
        self.get_or_create(name, || Ok(()))
    }

    /// The room with this name. A new one is created only if it fits under
    /// the cap and `may_create` agrees (a per-caller policy, such as the
    /// room-creation rate of the caller's address); it is asked only when
    /// the room does not exist, so existing rooms keep working.
    pub fn get_or_create(
        &self,
        name: &str,
        may_create: impl FnOnce() -> Result<(), RoomError>,
    ) -> Result<Arc<Room>, RoomError> {
        if !valid_room_name(name) {
            return Err(RoomError::BadName);
        }
        let now = self.now();
        if let Some(room) = self.read_map().get(name) {
            room.last_active.store(now, Ordering::Relaxed);
            return Ok(Arc::clone(room));
        }
        let mut rooms = self.rooms.write().unwrap_or_else(|p| p.into_inner());
        if let Some(room) = rooms.get(name) {
            room.last_active.store(now, Ordering::Relaxed);
            return Ok(Arc::clone(room));
        }
        if rooms.len() >= self.config.max_rooms {
            return Err(RoomError::Full {
                max: self.config.max_rooms,
            });
        }
        may_create()?;
        // A new room costs its name, counters and an empty history; its
        // feed's ring comes with its first subscriber (backbone/feed.rs).
        let feed = Arc::new(Feed::new(self.config.feed_capacity));
        let room = Arc::new(Room {
            name: name.to_owned(),
            config: self.config.clone(),
            log: self.backbone.open(name, Arc::clone(&feed)),
            feed,
            presence: Presence::new(&self.config, Arc::clone(&self.clock)),
            counters: RoomCounters::default(),
            last_active: AtomicU64::new(now),
        });
        rooms.insert(Arc::from(name), Arc::clone(&room));
        self.live.store(rooms.len(), Ordering::Relaxed);
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(room)
    }

    /// Removes every room that nobody holds and nobody used for
    /// `idle_after`, and returns how many went. A room is held while a
    /// subscription, a presence guard or a request in progress has it: the
    /// registry's own `Arc` is then not the only one. Held rooms are marked
    /// active now, so a room's idle time starts when its last client left.
    ///
    /// Called on a timer; one pass over the map under the write lock, which
    /// for 10,000 rooms is well under a millisecond.
    pub fn remove_idle(&self) -> usize {
        let now = self.now();
        let idle_ms = self.config.idle_after.as_millis() as u64;
        let mut rooms = self.rooms.write().unwrap_or_else(|p| p.into_inner());
        let before = rooms.len();
        rooms.retain(|_, room| {
            // `get` clones under the read lock, which this write lock
            // excludes, so the count cannot grow while we look.
            if Arc::strong_count(room) > 1 {
                room.last_active.store(now, Ordering::Relaxed);
                return true;
            }
            now.saturating_sub(room.last_active.load(Ordering::Relaxed)) < idle_ms
        });
        let removed = before - rooms.len();
        self.live.store(rooms.len(), Ordering::Relaxed);
        self.removed.fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    // The map holds only `Arc`s; a panic elsewhere cannot corrupt it.
    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Arc<Room>>> {
        self.rooms.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Long polls held right now, in every room.
    pub fn held_polls(&self) -> u64 {
        self.read_map()
            .values()
            .map(|room| room.presence.pollers.held())
            .sum()
    }

    /// Every room, in no particular order.
    pub fn all(&self) -> Vec<Arc<Room>> {
        self.read_map().values().cloned().collect()
    }

    /// Publishes a presence event in each room whose presence changed since
    /// the last call. Called on a timer, so a burst of thousands of
    /// connections costs one presence event per room per tick, not one per
    /// connection (which would be quadratic in the room size).
    ///
    /// The tick is also the coarse clock of poller presence: one clock read
    /// here per tick, none per poll; pollers past their ttl expire now.
    pub fn publish_presence(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.tick_at(now);
    }

    /// [`Rooms::publish_presence`] at coarse time `now` (milliseconds since
    /// this `Rooms` started), so tests can drive expiry without waiting.
    pub fn tick_at(&self, now: u64) {
        self.clock.fetch_max(now, Ordering::Relaxed);
        let now = self.clock.load(Ordering::Relaxed);
        for room in self.all() {
            room.publish_presence_if_changed(now);
        }
    }

    /// Shares presence with the other instances of the backbone, if any,
    /// before [`Rooms::publish_presence`] publishes the sums.
    pub async fn share_presence(&self) {
        let rooms = self.all();
        let local: Vec<_> = rooms.iter().map(|r| (r.name(), r.local_online())).collect();
        if let Some(remote) = self.backbone.share_presence(&local).await {
            for (room, online) in rooms.iter().zip(remote) {
                room.set_remote_online(online);
            }
        }
    }
}

/// One chat room on this server.
#[derive(Debug)]
pub struct Room {
    name: String,
    config: RoomConfig,
    log: RoomLog,
    feed: Arc<Feed<RoomEvent>>,
    presence: Presence,
    counters: RoomCounters,
    /// When a request last looked the room up, on the registry's clock.
    last_active: AtomicU64,
}

/// What a client is owed before live messages: the answer to a [`Resume`].
#[derive(Debug, Clone)]
pub struct Catchup {
    pub epoch: Arc<str>,
    pub latest: u64,
    /// The client's cursor belonged to another room life.
    pub reset: bool,
    /// Ids the client asked for that are no longer retained.
    pub gap: Option<(u64, u64)>,
    pub messages: Vec<Arc<Posted>>,
}

impl Catchup {
    /// The cursor after this catch-up: the id a poller asks `since` next.
    pub fn next_cursor(&self) -> u64 {
        self.messages.last().map_or(self.start_cursor(), |m| m.id)
    }

    /// The cursor before this catch-up is delivered.
    fn start_cursor(&self) -> u64 {
        match (&self.gap, self.messages.first()) {
            (_, Some(first)) => first.id - 1,
            (Some((_, to)), None) => *to,
            (None, None) => self.latest,
        }
    }
}

impl Room {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What this room delivered, per transport (reported by `stats.rs`).
    pub fn counters(&self) -> &RoomCounters {
        &self.counters
    }

    pub async fn post(&self, draft: Draft) -> Result<Arc<Posted>, RoomError> {
        let draft = draft
            .validate(self.config.max_text_bytes)
            .map_err(RoomError::Invalid)?;
        Ok(self.log.append(draft).await?)
    }

    /// Everything the client missed, resolved against the room's epoch:
    /// a reset when the cursor is from another life, a gap when history has
    /// moved past it.
    pub async fn catch_up(&self, resume: &Resume) -> Result<Catchup, RoomError> {
        let Some(since) = resume.since else {
            let (epoch, latest) = self.log.latest().await?;
            return Ok(Catchup {
                epoch,
                latest,
                reset: false,
                gap: None,
                messages: Vec::new(),
            });
        };
        let read = self.log.read_after(since).await?;
        let other_life = resume.epoch.as_deref().is_some_and(|e| e != &*read.epoch);
        let (read, since, reset) = if other_life || since > read.latest {
            (self.log.read_after(0).await?, 0, true)
        } else {
            (read, since, false)
        };
        Ok(catchup_from(
            cap_replay(read, self.config.max_replay),
            since,
            reset,
        ))
    }

    /// A live subscription starting at `resume`.
    pub async fn subscribe(self: &Arc<Self>, resume: &Resume) -> Result<Subscription, RoomError> {
        // The feed is joined on the first wait, and the log read again
        // then: see the module header.
        self.log.attach().await?;
        let catchup = self.catch_up(resume).await?;
        let mut pending = VecDeque::with_capacity(catchup.messages.len() + 2);
        if catchup.reset {
            pending.push_back(Delivery::Reset {
                epoch: Arc::clone(&catchup.epoch),
                latest: catchup.latest,
            });
        }
        if let Some((from, to)) = catchup.gap {
            pending.push_back(Delivery::Gap { from, to });
        }
        let cursor = catchup.start_cursor();
        pending.extend(catchup.messages.iter().cloned().map(Delivery::Message));
        Ok(Subscription {
            room: Arc::clone(self),
            epoch: catchup.epoch,
            latest: catchup.latest,
            pending,
            live: None,
            cursor,
            lagged: false,
        })
    }

    /// Counts a connection as online until the returned guard is dropped.
    pub fn join(self: &Arc<Self>, transport: Transport) -> PresenceGuard {
        self.presence
            .counter(transport)
            .fetch_add(1, Ordering::Relaxed);
        self.presence.changed.store(true, Ordering::Relaxed);
        PresenceGuard {
            room: Arc::clone(self),
            transport,
        }
    }

    /// Records that a poller identified by `key` asked just now: O(1), an
    /// atomic load of the coarse clock and one short shard lock.
    pub fn saw_poller(&self, key: &str, transport: Transport) {
        let kind = match transport {
            Transport::LongPoll => PollerKind::Long,
            _ => PollerKind::Short,
        };
        let p = &self.presence;
        let now = p.clock.load(Ordering::Relaxed);
        if p.pollers.saw(key, kind, now) == Change::Changed {
            p.changed.store(true, Ordering::Relaxed);
        }
    }

    /// Registers a held long poll of the poller `key`; a newer one from the
    /// same poller supersedes it (its `superseded` token is cancelled).
    pub fn hold_poll(&self, key: &str) -> HeldPoll {
        self.presence.pollers.hold(key)
    }

    /// Everyone online in this room, on every instance of the backbone.
    pub fn online(&self) -> Online {
        self.local_online() + self.presence.remote()
    }

    /// Who is online through this server instance: four atomic loads.
    pub fn local_online(&self) -> Online {
        let p = &self.presence;
        let (longpoll, poll) = p.pollers.counts();
        Online {
            ws: p.ws.load(Ordering::Relaxed),
            sse: p.sse.load(Ordering::Relaxed),
            longpoll,
            poll,
        }
    }

    /// Records who is online through the other instances; a change is
    /// published on the next presence tick.
    pub fn set_remote_online(&self, online: Online) {
        // Only the presence task writes these, so load-compare-store
        // cannot race another writer.
        let p = &self.presence;
        if p.remote() != online {
            let [ws, sse, longpoll, poll] = &p.remote;
            for (cell, value) in [ws, sse, longpoll, poll].into_iter().zip([
                online.ws,
                online.sse,
                online.longpoll,
                online.poll,
            ]) {
                cell.store(value, Ordering::Relaxed);
            }
            p.changed.store(true, Ordering::Relaxed);
        }
    }

    pub fn presence_json(&self) -> Bytes {
        let online = self.online();
        Control::Presence {
            room: self.name.clone(),
            online,
            total: online.total(),
        }
        .to_json()
    }

    fn publish_presence_if_changed(&self, now: u64) {
        let expired = self.presence.pollers.expire(now) == Change::Changed;
        let changed = self.presence.changed.swap(false, Ordering::Relaxed);
        if (changed || expired) && self.feed.receiver_count() > 0 {
            self.feed.send(RoomEvent::Presence(self.presence_json()));
        }
    }
}

/// Keeps the newest `max` messages of a read; the gap before them then
/// covers the rest, as if history had moved past them.
fn cap_replay(mut read: LogRead, max: usize) -> LogRead {
    if read.messages.len() > max {
        read.messages.drain(..read.messages.len() - max);
        read.oldest = read.messages.first().map_or(read.latest + 1, |m| m.id);
    }
    read
}

fn catchup_from(read: LogRead, cursor: u64, reset: bool) -> Catchup {
    let gap = (cursor + 1 < read.oldest).then(|| (cursor + 1, read.oldest - 1));
    Catchup {
        epoch: read.epoch,
        latest: read.latest,
        reset,
        gap,
        messages: read.messages,
    }
}

#[derive(Debug)]
struct Presence {
    ws: AtomicU64,
    sse: AtomicU64,
    /// Pollers have no connection to count, so each is remembered with the
    /// coarse time of its last request and counts as online for
    /// `poller_ttl` (see `pollers.rs`).
    pollers: Arc<Pollers>,
    /// The rooms' shared coarse clock (see [`Rooms::publish_presence`]).
    clock: Arc<AtomicU64>,
    /// The other instances' counts (ws, sse, longpoll, poll), when a
    /// backbone shares presence: atomics, as every poll answer reads them.
    remote: [AtomicU64; 4],
    changed: AtomicBool,
}

impl Presence {
    fn new(config: &RoomConfig, clock: Arc<AtomicU64>) -> Self {
        Self {
            ws: AtomicU64::default(),
            sse: AtomicU64::default(),
            pollers: Arc::new(Pollers::new(config.poller_ttl, config.max_pollers)),
            clock,
            remote: Default::default(),
            changed: AtomicBool::default(),
        }
    }

    fn counter(&self, transport: Transport) -> &AtomicU64 {
        match transport {
            Transport::Ws => &self.ws,
            // Pollers do not hold connections; only streams use guards.
            _ => &self.sse,
        }
    }

    fn remote(&self) -> Online {
        let [ws, sse, longpoll, poll] = self.remote.each_ref().map(|c| c.load(Ordering::Relaxed));
        Online {
            ws,
            sse,
            longpoll,
            poll,
        }
    }
}

/// What one room delivered, per receiving transport: messages and payload
/// bytes. Wire bytes are per connection, and a connection is not tied to
/// one room, so they are counted per transport only (`stats.rs`).
#[derive(Debug, Default)]
pub struct RoomCounters {
    delivered: [AtomicU64; 4],
    payload_bytes: [AtomicU64; 4],
}

impl RoomCounters {
    /// Records `messages` delivered over `transport`, `payload` bytes of
    /// JSON in all; `Send` and `Other` deliver nothing and are ignored.
    pub fn delivered(&self, transport: Transport, messages: u64, payload: u64) {
        if let Some(i) = Transport::RECEIVING.iter().position(|&t| t == transport) {
            self.delivered[i].fetch_add(messages, Ordering::Relaxed);
            self.payload_bytes[i].fetch_add(payload, Ordering::Relaxed);
        }
    }

    /// Messages delivered to this room's clients on every transport.
    pub fn delivered_total(&self) -> u64 {
        self.delivered
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// `(messages, payload bytes)` delivered over `transport` so far.
    pub fn of(&self, transport: Transport) -> (u64, u64) {
        Transport::RECEIVING
            .iter()
            .position(|&t| t == transport)
            .map_or((0, 0), |i| {
                (
                    self.delivered[i].load(Ordering::Relaxed),
                    self.payload_bytes[i].load(Ordering::Relaxed),
                )
            })
    }
}

/// Keeps a streaming connection counted as online; uncounts it on drop.
#[derive(Debug)]
pub struct PresenceGuard {
    room: Arc<Room>,
    transport: Transport,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        let p = &self.room.presence;
        p.counter(self.transport).fetch_sub(1, Ordering::Relaxed);
        p.changed.store(true, Ordering::Relaxed);
    }
}

/// What a subscriber is handed next.
#[derive(Debug, Clone)]
pub enum Delivery {
    Message(Arc<Posted>),
    Presence(Bytes),
    Gap { from: u64, to: u64 },
    Reset { epoch: Arc<str>, latest: u64 },
}

impl Delivery {
    /// The JSON of a control delivery (messages carry their own bytes).
    pub fn control_json(&self) -> Option<Bytes> {
        match self {
            Self::Message(_) => None,
            Self::Presence(json) => Some(json.clone()),
            Self::Gap { from, to } => Some(
                Control::Gap {
                    from: *from,
                    to: *to,
                }
                .to_json(),
            ),
            Self::Reset { epoch, latest } => Some(
                Control::Reset {
                    epoch: epoch.to_string(),
                    latest: *latest,
                }
                .to_json(),
            ),
        }
    }
}

/// A live reader of one room: first the catch-up, then the feed, each message
/// exactly once and in id order.
#[derive(Debug)]
pub struct Subscription {
    room: Arc<Room>,
    epoch: Arc<str>,
    latest: u64,
    pending: VecDeque<Delivery>,
    /// The room's feed, joined on the first wait.
    live: Option<broadcast::Receiver<RoomEvent>>,
    /// The id of the last message handed out (or skipped over by a gap).
    cursor: u64,
    /// The feed overtook this reader; resync from the log before reading on.
    lagged: bool,
}

impl Subscription {
    pub fn room(&self) -> &Arc<Room> {
        &self.room
    }

    /// The room life this subscription reads.
    pub fn hello_epoch(&self) -> Arc<str> {
        Arc::clone(&self.epoch)
    }

    /// The id of the last message handed out: a poller's next `since`.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The epoch and latest id when the subscription started (the `hello`).
    pub fn hello(&self) -> Control {
        Control::Hello {
            room: self.room.name.clone(),
            epoch: self.epoch.to_string(),
            latest: self.latest,
        }
    }

    /// The next delivery, waiting for one if need be. Cancel-safe: dropping
    /// the future loses nothing, so it can sit in a `select!`.
    ///
    /// A reader the feed has overtaken (its socket could not keep up) is not
    /// disconnected: it is resynced from the log, the same path a reconnect
    /// takes, and told of a gap only if the log has moved past it too. Its
    /// memory stays bounded, because the feed is a fixed ring shared by all.
    pub async fn next(&mut self) -> Result<Delivery, RoomError> {
        loop {
            if self.lagged {
                self.resync().await?;
            }
            if let Some(delivery) = self.pending.pop_front() {
                return Ok(self.advance(delivery));
            }
            let Some(live) = self.live.as_mut() else {
                // The first wait: join the feed, then read the log after
                // the cursor again, so nothing posted since the catch-up
                // falls between the two.
                self.live = Some(self.room.feed.subscribe());
                self.lagged = true;
                // Now that it listens, make sure the feed is filled (a Redis
                // room may have stopped being read since `subscribe`).
                self.room.log.attach().await?;
                continue;
            };
            match live.recv().await {
                Ok(event) => {
                    if let Some(delivery) = self.accept(event) {
                        return Ok(delivery);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.lagged = true,
                // The room is never dropped while a subscription holds it.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }

    /// The next delivery if one is ready now, for batching several into one
    /// socket write.
    pub fn try_next(&mut self) -> Option<Delivery> {
        if self.lagged {
            return None;
        }
        if let Some(delivery) = self.pending.pop_front() {
            return Some(self.advance(delivery));
        }
        loop {
            // Not joined yet: nothing can be waiting there.
            let live = self.live.as_mut()?;
            match live.try_recv() {
                Ok(event) => {
                    if let Some(delivery) = self.accept(event) {
                        return Some(delivery);
                    }
                    if self.lagged {
                        return None;
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.lagged = true;
                    return None;
                }
                Err(_) => return None,
            }
        }
    }

    /// Filters a live event: messages the catch-up already delivered are
    /// dropped here. A message past the next id, or a new life, sends the
    /// reader back to the log (`lagged`), which fills the hole or says why not.
    fn accept(&mut self, event: RoomEvent) -> Option<Delivery> {
        match event {
            RoomEvent::Message(m) if m.id <= self.cursor => None,
            RoomEvent::Message(m) if m.id > self.cursor + 1 => {
                self.lagged = true;
                None
            }
            RoomEvent::Message(m) => Some(self.advance(Delivery::Message(m))),
            RoomEvent::Presence(json) => Some(Delivery::Presence(json)),
            RoomEvent::Reset { epoch, .. } if epoch == self.epoch => None,
            RoomEvent::Reset { epoch, latest } => {
                self.epoch = Arc::clone(&epoch);
                self.lagged = true;
                Some(self.advance(Delivery::Reset { epoch, latest }))
            }
        }
    }

    fn advance(&mut self, delivery: Delivery) -> Delivery {
        match &delivery {
            Delivery::Message(m) => self.cursor = m.id,
            Delivery::Gap { to, .. } => self.cursor = self.cursor.max(*to),
            Delivery::Reset { .. } => self.cursor = 0,
            Delivery::Presence(_) => {}
        }
        delivery
    }

    async fn resync(&mut self) -> Result<(), RoomError> {
        let mut read = self.room.log.read_after(self.cursor).await?;
        if read.epoch != self.epoch {
            // A new life this reader missed on the feed: same as a reset.
            read = self.room.log.read_after(0).await?;
            self.epoch = Arc::clone(&read.epoch);
            self.cursor = 0;
            self.pending.push_back(Delivery::Reset {
                epoch: Arc::clone(&read.epoch),
                latest: read.latest,
            });
        }
        let catchup = catchup_from(read, self.cursor, false);
        if let Some((from, to)) = catchup.gap {
            self.pending.push_back(Delivery::Gap { from, to });
        }
        self.pending
            .extend(catchup.messages.into_iter().map(Delivery::Message));
        self.lagged = false;
        Ok(())
    }
}
