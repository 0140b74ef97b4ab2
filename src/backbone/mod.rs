//! Where rooms keep their messages and learn of new ones.
//!
//! A backbone gives each room a log: it assigns ids, keeps a bounded history,
//! and pushes every accepted message, in id order, into the room's local feed
//! (a `tokio::sync::broadcast` channel that the room's subscribers read).
//! Transports never see this module: they talk to [`crate::room::Room`], so a
//! second backbone is one more enum variant here and nothing else.
//!
//! An enum rather than a trait object: async methods on a `dyn Trait` need
//! boxing or a macro crate, and the set of backbones is closed and small.

pub mod memory;

use crate::message::{Draft, Posted};
use crate::room::RoomEvent;
use std::sync::Arc;
use tokio::sync::broadcast;

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
}

impl Backbone {
    pub fn memory(history: usize) -> Self {
        Self::Memory(memory::MemoryConfig { history })
    }

    /// Opens the log of one room. Every accepted message goes to `feed`.
    pub fn open(&self, room: &str, feed: broadcast::Sender<RoomEvent>) -> RoomLog {
        match self {
            Self::Memory(config) => RoomLog::Memory(memory::MemoryLog::new(room, config, feed)),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
        }
    }
}

/// One room's log on whichever backbone the server runs.
#[derive(Debug)]
pub enum RoomLog {
    Memory(memory::MemoryLog),
}

impl RoomLog {
    /// Assigns the next id, stores the message and hands it to the feed.
    pub async fn append(&self, draft: Draft) -> Result<Arc<Posted>, BackboneError> {
        match self {
            Self::Memory(log) => Ok(log.append(draft)),
        }
    }

    /// Retained messages with an id above `cursor`, with the log's bounds.
    pub async fn read_after(&self, cursor: u64) -> Result<LogRead, BackboneError> {
        match self {
            Self::Memory(log) => Ok(log.read_after(cursor)),
        }
    }

    /// The largest id assigned so far, and the epoch it belongs to.
    pub async fn latest(&self) -> Result<(Arc<str>, u64), BackboneError> {
        match self {
            Self::Memory(log) => Ok(log.latest()),
        }
    }
}
