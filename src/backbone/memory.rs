//! The in-memory backbone, the default: one process, history in a ring.
//!
//! Each room's state sits behind a `std::sync::Mutex`, not a tokio one: the
//! lock is held for a few hundred nanoseconds (assign an id, encode, push,
//! hand to the broadcast channel) and never across an `.await`, which is
//! exactly the case the tokio docs recommend the std mutex for.

use super::LogRead;
use crate::message::{now_millis, Draft, Posted};
use crate::room::RoomEvent;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// How many messages each room retains for resume.
    pub history: usize,
}

#[derive(Debug)]
pub struct MemoryLog {
    room: String,
    epoch: Arc<str>,
    capacity: usize,
    feed: broadcast::Sender<RoomEvent>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    latest: u64,
    history: VecDeque<Arc<Posted>>,
}

impl MemoryLog {
    pub fn new(room: &str, config: &MemoryConfig, feed: broadcast::Sender<RoomEvent>) -> Self {
        Self {
            room: room.to_owned(),
            epoch: new_epoch(),
            capacity: config.history.max(1),
            feed,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock is held cannot leave `State` half-updated
        // (each field is written by one statement), so a poisoned lock is
        // still safe to use.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn append(&self, draft: Draft) -> Arc<Posted> {
        let mut state = self.state();
        let id = state.latest + 1;
        let posted = Arc::new(Posted::new(&draft.into_message(
            &self.room,
            id,
            now_millis(),
        )));
        state.latest = id;
        if state.history.len() == self.capacity {
            state.history.pop_front();
        }
        state.history.push_back(Arc::clone(&posted));
        // Sent while the lock is held, so the feed sees ids in order. A send
        // with no subscribers is not an error worth reporting.
        let _ = self.feed.send(RoomEvent::Message(Arc::clone(&posted)));
        posted
    }

    pub fn read_after(&self, cursor: u64) -> LogRead {
        let state = self.state();
        let oldest = state.history.front().map_or(state.latest + 1, |m| m.id);
        // Ids in the ring are consecutive, so the start index is arithmetic.
        let skip = cursor
            .saturating_sub(oldest - 1)
            .min(state.history.len() as u64) as usize;
        LogRead {
            epoch: Arc::clone(&self.epoch),
            latest: state.latest,
            oldest,
            messages: state.history.range(skip..).cloned().collect(),
        }
    }

    pub fn latest(&self) -> (Arc<str>, u64) {
        (Arc::clone(&self.epoch), self.state().latest)
    }
}

/// A short opaque epoch, different for each room life in practice: the
/// process start time in milliseconds mixed with a per-process counter.
fn new_epoch() -> Arc<str> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed =
        now_millis().wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let mut text = String::new();
    let mut v = mixed;
    for _ in 0..8 {
        text.push(char::from_digit((v % 36) as u32, 36).expect("digit below 36"));
        v /= 36;
    }
    text.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(text: &str) -> Draft {
        Draft {
            user: "ada".into(),
            text: text.into(),
            client_id: None,
        }
    }

    #[test]
    fn history_is_bounded_and_read_after_is_exact() {
        let (feed, _rx) = broadcast::channel(16);
        let log = MemoryLog::new("r", &MemoryConfig { history: 3 }, feed);
        for i in 0..5 {
            log.append(draft(&i.to_string()));
        }
        let read = log.read_after(0);
        assert_eq!((read.latest, read.oldest), (5, 3));
        let ids: Vec<u64> = read.messages.iter().map(|m| m.id).collect();
        assert_eq!(ids, [3, 4, 5]);
        assert_eq!(log.read_after(4).messages.len(), 1);
        assert!(log.read_after(5).messages.is_empty());
        assert!(log.read_after(9).messages.is_empty());
    }
}
