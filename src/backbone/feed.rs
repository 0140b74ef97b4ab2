//! A room's live feed, allocated on its first subscriber.
//!
//! A `tokio::sync::broadcast` channel reserves its whole ring (256 slots)
//! when it is made. Most rooms a hostile or merely curious client names are
//! read once by a short poll and never subscribed to for long, so a ring per
//! room name would make "one request per room" cost about 17 KB each. Here
//! the ring is made by the first `subscribe`; until then a send is dropped,
//! exactly as a broadcast channel with no receivers drops it.
//!
//! Why that loses nothing: a subscriber makes the ring *before* it reads the
//! log (see `room.rs`), and a log hands a message to the feed under the same
//! lock it stores it with. Either the log's lock comes first, and the
//! subscriber's read finds the message stored, or the subscriber's ring was
//! made first, and the lock orders it before the send, which then sees it.

use std::sync::OnceLock;
use tokio::sync::broadcast;

#[derive(Debug)]
pub struct Feed<T> {
    capacity: usize,
    sender: OnceLock<broadcast::Sender<T>>,
}

impl<T: Clone> Feed<T> {
    /// A feed whose ring, once made, holds `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            sender: OnceLock::new(),
        }
    }

    /// Hands `event` to every receiver; dropped when there is none.
    pub fn send(&self, event: T) {
        if let Some(sender) = self.sender.get() {
            // No receiver right now is not an error worth reporting.
            let _ = sender.send(event);
        }
    }

    /// A new receiver, making the ring if this is the first.
    pub fn subscribe(&self) -> broadcast::Receiver<T> {
        self.sender
            .get_or_init(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    pub fn receiver_count(&self) -> usize {
        self.sender
            .get()
            .map_or(0, broadcast::Sender::receiver_count)
    }

    /// Whether the ring has been made (a subscriber came at some point).
    pub fn is_allocated(&self) -> bool {
        self.sender.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_comes_with_the_first_subscriber() {
        let feed = Feed::new(4);
        feed.send(1);
        assert!(!feed.is_allocated());
        assert_eq!(feed.receiver_count(), 0);
        let mut rx = feed.subscribe();
        assert!(feed.is_allocated());
        feed.send(2);
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(feed.receiver_count(), 1);
    }
}
