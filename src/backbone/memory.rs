//! The in-memory backbone, the default: one process, history in a ring.
//!
//! Each room's state sits behind a `std::sync::Mutex`, not a tokio one: the
//! lock is held for a few hundred nanoseconds (assign an id, encode, push,
//! hand to the broadcast channel) and never across an `.await`, which is
//! exactly the case the tokio docs recommend the std mutex for.

use super::feed::Feed;
use super::history::History;
use super::{new_epoch, LogRead};
use crate::backbone::RoomEvent;
use crate::message::{now_millis, Draft, Posted};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// How many messages each room retains for resume.
    pub history: usize,
}

#[derive(Debug)]
pub struct MemoryLog {
    room: String,
    feed: Arc<Feed<RoomEvent>>,
    history: Mutex<History>,
}

impl MemoryLog {
    pub fn new(room: &str, config: &MemoryConfig, feed: Arc<Feed<RoomEvent>>) -> Self {
        Self {
            room: room.to_owned(),
            feed,
            history: Mutex::new(History::new(new_epoch(), 0, config.history)),
        }
    }

    fn history(&self) -> MutexGuard<'_, History> {
        // A panic while the lock is held cannot leave `History` half-updated
        // (each field is written by one statement), so a poisoned lock is
        // still safe to use.
        self.history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn append(&self, draft: Draft) -> Arc<Posted> {
        let mut history = self.history();
        let id = history.latest() + 1;
        let posted = Arc::new(Posted::new(&draft.into_message(
            &self.room,
            id,
            now_millis(),
        )));
        history.push(Arc::clone(&posted));
        // Sent while the lock is held, so the feed sees ids in order (and a
        // first subscriber either sees it stored or on the feed: feed.rs).
        self.feed.send(RoomEvent::Message(Arc::clone(&posted)));
        posted
    }

    pub fn read_after(&self, cursor: u64) -> LogRead {
        self.history().read_after(cursor)
    }

    pub fn latest(&self) -> (Arc<str>, u64) {
        let history = self.history();
        (Arc::clone(history.epoch()), history.latest())
    }
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
    fn append_numbers_from_one_feeds_in_order_and_keeps_a_bounded_history() {
        let feed = Arc::new(Feed::new(16));
        let mut rx = feed.subscribe();
        let log = MemoryLog::new("r", &MemoryConfig { history: 3 }, feed);
        for i in 1..=5 {
            assert_eq!(log.append(draft(&i.to_string())).id, i);
            match rx.try_recv() {
                Ok(RoomEvent::Message(m)) => assert_eq!(m.id, i),
                other => panic!("expected message {i} on the feed, got {other:?}"),
            }
        }
        let read = log.read_after(0);
        assert_eq!((read.latest, read.oldest, read.messages.len()), (5, 3, 3));
        assert_eq!(log.latest().1, 5);
    }
}
