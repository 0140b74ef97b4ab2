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
//!
//! A [`FeedReceiver`] also answers "is anything waiting?" without the
//! ring's lock. A broadcast receiver that finds its ring empty takes the
//! channel's one tail mutex to say so, the same lock every sender and
//! every waiting receiver of the room takes; a writer that batches asks
//! that after each delivery, so 1,000 sockets asking 40 times a second
//! would contend on it for nothing. Instead the feed counts its sends in
//! an atomic and each receiver counts what it took: equal counts mean
//! nothing is waiting, at the cost of one shared load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

#[derive(Debug)]
pub struct Feed<T> {
    capacity: usize,
    sender: OnceLock<broadcast::Sender<T>>,
    /// Events handed to the ring, counted once each send is done.
    sent: Arc<AtomicU64>,
}

/// One reader of a feed (see the module's header).
#[derive(Debug)]
pub struct FeedReceiver<T> {
    receiver: broadcast::Receiver<T>,
    sent: Arc<AtomicU64>,
    /// Events this reader took or skipped, plus the sends counted before
    /// it joined. Never above the events it has really passed, so a
    /// waiting event is never reported absent for long: at worst, between
    /// a send and its count, `try_recv` says empty and the next `recv`
    /// finds it.
    passed: u64,
}

impl<T: Clone> FeedReceiver<T> {
    /// The next event, waiting for one; cancel-safe like the broadcast
    /// receiver's own `recv`.
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        let result = self.receiver.recv().await;
        self.count(result.as_ref().map(|_| ()).map_err(|e| match e {
            RecvError::Lagged(n) => *n,
            RecvError::Closed => 0,
        }));
        result
    }

    /// The next event if one is waiting; `Empty` without touching the
    /// ring's lock when the counts say nothing is.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let sent = self.sent.load(Ordering::Acquire);
        if sent <= self.passed {
            return Err(TryRecvError::Empty);
        }
        let result = self.receiver.try_recv();
        if let Err(TryRecvError::Empty) = result {
            // Every send counted in `sent` had put its event in the ring
            // first, and the ring holds none for us: we passed them all.
            // (Corrects the undercount of a send racing `subscribe`.)
            self.passed = sent;
            return result;
        }
        self.count(result.as_ref().map(|_| ()).map_err(|e| match e {
            TryRecvError::Lagged(n) => *n,
            _ => 0,
        }));
        result
    }

    /// One event taken (`Ok`), or `Err(n)` skipped by a lag.
    fn count(&mut self, outcome: Result<(), u64>) {
        self.passed += match outcome {
            Ok(()) => 1,
            Err(skipped) => skipped,
        };
    }
}

impl<T: Clone> Feed<T> {
    /// A feed whose ring, once made, holds `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            sender: OnceLock::new(),
            sent: Arc::default(),
        }
    }

    /// Hands `event` to every receiver; dropped when there is none.
    pub fn send(&self, event: T) {
        if let Some(sender) = self.sender.get() {
            // No receiver right now is not an error worth reporting.
            if sender.send(event).is_ok() {
                self.sent.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// A new receiver, making the ring if this is the first.
    pub fn subscribe(&self) -> FeedReceiver<T> {
        // Read before joining: every send counted here was done before
        // the receiver existed, so none of them is waiting for it.
        let passed = self.sent.load(Ordering::Acquire);
        let receiver = self
            .sender
            .get_or_init(|| broadcast::channel(self.capacity).0)
            .subscribe();
        FeedReceiver {
            receiver,
            sent: Arc::clone(&self.sent),
            passed,
        }
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

    #[tokio::test]
    async fn counts_say_what_is_waiting_through_sends_and_lags() {
        let feed = Feed::new(2);
        feed.send(0); // no receiver: dropped, and not counted
        let mut early = feed.subscribe();
        feed.send(1);
        let mut late = feed.subscribe();
        assert_eq!(late.try_recv(), Err(TryRecvError::Empty));
        feed.send(2);
        assert_eq!(early.recv().await, Ok(1));
        assert_eq!(early.try_recv(), Ok(2));
        assert_eq!(early.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(late.try_recv(), Ok(2));
        // Three more into a ring of two: `early` lags by one, and after
        // the lag its counts still find the rest.
        for i in 3..6 {
            feed.send(i);
        }
        assert_eq!(early.try_recv(), Err(TryRecvError::Lagged(1)));
        assert_eq!(early.try_recv(), Ok(4));
        assert_eq!(early.recv().await, Ok(5));
        assert_eq!(early.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(early.passed, feed.sent.load(Ordering::Relaxed));
    }
}
