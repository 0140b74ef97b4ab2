//! A bounded window of a room's most recent messages, ids consecutive.
//!
//! The memory backbone keeps its whole retained history in one; the Redis
//! backbone keeps one per active room on each instance, a local copy of the
//! stream's tail, so resumes and polls are answered without a Redis read.
//! Because the ids in the window are consecutive, finding where a cursor
//! starts is arithmetic, not a search.

use super::LogRead;
use crate::message::Posted;
use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Debug)]
pub struct History {
    epoch: Arc<str>,
    /// The largest id known in this life (0: none yet), retained or not.
    latest: u64,
    capacity: usize,
    ring: VecDeque<Arc<Posted>>,
}

impl History {
    /// An empty window that knows every id up to `latest` exists, but holds
    /// none of them (yet).
    pub fn new(epoch: Arc<str>, latest: u64, capacity: usize) -> Self {
        Self {
            epoch,
            latest,
            capacity: capacity.max(1),
            ring: VecDeque::new(),
        }
    }

    pub fn epoch(&self) -> &Arc<str> {
        &self.epoch
    }

    pub fn latest(&self) -> u64 {
        self.latest
    }

    /// The smallest id held (`latest + 1` when none is).
    pub fn oldest(&self) -> u64 {
        self.ring.front().map_or(self.latest + 1, |m| m.id)
    }

    /// Adds the next message. An id that does not follow `latest` (a reader
    /// that fell behind the store's retention) restarts the window there,
    /// so it never claims ids it did not see.
    pub fn push(&mut self, posted: Arc<Posted>) {
        if posted.id != self.latest + 1 {
            self.ring.clear();
        }
        self.latest = posted.id;
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(posted);
    }

    /// Whether this window alone can answer "everything after `cursor`":
    /// the cursor is neither older than the window nor newer than its end.
    pub fn covers(&self, cursor: u64) -> bool {
        cursor + 1 >= self.oldest() && cursor <= self.latest
    }

    /// Held messages with an id above `cursor`, with the window's bounds.
    pub fn read_after(&self, cursor: u64) -> LogRead {
        let oldest = self.oldest();
        let skip = cursor
            .saturating_sub(oldest - 1)
            .min(self.ring.len() as u64) as usize;
        LogRead {
            epoch: Arc::clone(&self.epoch),
            latest: self.latest,
            oldest,
            messages: self.ring.range(skip..).cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn posted(id: u64) -> Arc<Posted> {
        Arc::new(Posted::from_json(id, Bytes::from(id.to_string())))
    }

    fn ids(read: &LogRead) -> Vec<u64> {
        read.messages.iter().map(|m| m.id).collect()
    }

    #[test]
    fn bounded_and_exact() {
        let mut history = History::new("e".into(), 0, 3);
        for id in 1..=5 {
            history.push(posted(id));
        }
        let read = history.read_after(0);
        assert_eq!((read.latest, read.oldest), (5, 3));
        assert_eq!(ids(&read), [3, 4, 5]);
        assert_eq!(ids(&history.read_after(4)), [5]);
        assert!(history.read_after(5).messages.is_empty());
        assert!(history.read_after(9).messages.is_empty());
        assert!(history.covers(2) && history.covers(5));
        assert!(!history.covers(1) && !history.covers(6));
    }

    #[test]
    fn a_jump_in_ids_restarts_the_window() {
        let mut history = History::new("e".into(), 10, 5);
        assert!(history.covers(10) && !history.covers(9));
        history.push(posted(11));
        history.push(posted(20));
        assert_eq!(ids(&history.read_after(0)), [20]);
        assert_eq!(history.oldest(), 20);
        assert!(!history.covers(11));
    }
}
