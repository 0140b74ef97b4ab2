//! Where rooms keep their messages and learn of new ones.
//!
//! A backbone gives each room a log: it assigns ids, keeps a bounded history,
//! and pushes every accepted message, in id order, into the room's local feed
//! (a `tokio::sync::broadcast` channel that the room's subscribers read).
//! Transports never see this module: they talk to the room (`room.rs`), so a
//! second backbone is one more enum variant here and nothing else.
//!
//! An enum rather than a trait object: async methods on a `dyn Trait` need
//! boxing or a macro crate, and the set of backbones is closed and small.
//!
//! - [`memory`]: one process, the default;
//! - [`redis`]: rooms shared by several server instances over Redis Streams
//!   (`--redis URL`); its module header gives the design;
//! - [`history`]: the bounded window of recent messages both keep locally;
//! - [`feed`]: a room's live feed, whose ring is made by its first subscriber.

pub mod feed;
pub mod history;
pub mod memory;
pub mod redis;

use crate::message::{now_millis, Draft, Online, Posted};
use bytes::Bytes;
use feed::Feed;
use std::sync::Arc;

/// What travels on a room's live feed, which the backbone fills and the
/// room's subscribers read. Cloning is a reference-count bump.
#[derive(Debug, Clone)]
pub enum RoomEvent {
    Message(Arc<Posted>),
    /// A presence event, already encoded as JSON.
    Presence(Bytes),
    /// The room started a new life (its store lost its data): cursors from
    /// the old one mean nothing now.
    Reset {
        epoch: Arc<str>,
        latest: u64,
    },
}

/// Why a backbone could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackboneError {
    /// The store behind the backbone cannot be reached; nothing was accepted.
    Unavailable(String),
}

impl std::fmt::Display for BackboneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(why) => write!(f, "message store unavailable: {why}"),
        }
    }
}

impl std::error::Error for BackboneError {}

/// A consistent read of a room's log: everything after a cursor, and the
/// bounds of what is retained, taken at one instant.
#[derive(Debug, Clone)]
pub struct LogRead {
    pub epoch: Arc<str>,
    /// The largest id ever assigned in this life of the room (0: none yet).
    pub latest: u64,
    /// The smallest id still retained (`latest + 1` when nothing is).
    pub oldest: u64,
    /// Retained messages with an id above the cursor, oldest first.
    pub messages: Vec<Arc<Posted>>,
}

/// Which backbone the server runs on.
#[derive(Debug, Clone)]
pub enum Backbone {
    Memory(memory::MemoryConfig),
    Redis(redis::RedisBackbone),
}

impl Backbone {
    pub fn memory(history: usize) -> Self {
        Self::Memory(memory::MemoryConfig { history })
    }

    /// Connects to Redis; fails when it cannot be reached now.
    pub async fn redis(config: redis::RedisConfig) -> Result<Self, BackboneError> {
        Ok(Self::Redis(redis::RedisBackbone::connect(config).await?))
    }

    /// Opens the log of one room. Every accepted message goes to `feed`.
    pub fn open(&self, room: &str, feed: Arc<Feed<RoomEvent>>) -> RoomLog {
        match self {
            Self::Memory(config) => RoomLog::Memory(memory::MemoryLog::new(room, config, feed)),
            Self::Redis(backbone) => RoomLog::Redis(backbone.open(room, feed)),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
        }
    }

    /// Whether the store can be reached right now (`/healthz`).
    pub async fn health(&self) -> Result<(), BackboneError> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(backbone) => backbone.ping().await,
        }
    }

    /// Shares this instance's presence counts, `(room, online here)`, with
    /// the other instances, and returns the others' counts for each room in
    /// the same order. `None`: nothing shared (one process, in memory).
    pub async fn share_presence(&self, local: &[(&str, Online)]) -> Option<Vec<Online>> {
        match self {
            Self::Memory(_) => None,
            Self::Redis(backbone) => Some(backbone.share_presence(local).await),
        }
    }
}

/// One room's log on whichever backbone the server runs.
#[derive(Debug)]
pub enum RoomLog {
    Memory(memory::MemoryLog),
    Redis(redis::RedisLog),
}

impl RoomLog {
    /// Assigns the next id, stores the message and hands it to the feed.
    pub async fn append(&self, draft: Draft) -> Result<Arc<Posted>, BackboneError> {
        match self {
            Self::Memory(log) => Ok(log.append(draft)),
            Self::Redis(log) => log.append(draft).await,
        }
    }

    /// Retained messages with an id above `cursor`, with the log's bounds.
    pub async fn read_after(&self, cursor: u64) -> Result<LogRead, BackboneError> {
        match self {
            Self::Memory(log) => Ok(log.read_after(cursor)),
            Self::Redis(log) => log.read_after(cursor).await,
        }
    }

    /// The largest id assigned so far, and the epoch it belongs to.
    pub async fn latest(&self) -> Result<(Arc<str>, u64), BackboneError> {
        match self {
            Self::Memory(log) => Ok(log.latest()),
            Self::Redis(log) => log.latest().await,
        }
    }

    /// Makes sure the feed is being filled, before a subscriber reads the
    /// log: the memory log fills it on append; a Redis log starts this
    /// instance's reader of the room's stream if it is not running.
    pub async fn attach(&self) -> Result<(), BackboneError> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(log) => log.attach().await,
        }
    }
}

/// A short opaque epoch, different for each room life in practice: the time
/// in milliseconds mixed with a per-process random key and a counter, so two
/// instances creating a life in the same millisecond still differ.
pub(crate) fn new_epoch() -> Arc<str> {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // std seeds `RandomState` randomly per process: a random key without a
    // random-number crate.
    static PROCESS_KEY: OnceLock<u64> = OnceLock::new();
    let key = *PROCESS_KEY.get_or_init(|| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed = now_millis().wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ n.wrapping_mul(0xBF58_476D_1CE4_E5B9)
        ^ key;
    let mut text = String::new();
    let mut v = mixed;
    for _ in 0..8 {
        text.push(char::from_digit((v % 36) as u32, 36).expect("digit below 36"));
        v /= 36;
    }
    text.into()
}
