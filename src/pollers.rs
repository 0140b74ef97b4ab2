//! Who is polling a room: presence for clients that hold no connection.
//!
//! A poller is online for a while after each request, so presence has to
//! remember when each one last asked. Done naively (a map of last-seen
//! instants, counted on every answer) that is a scan of every poller and a
//! clock read per poller for each poll answered: O(pollers) per answer,
//! O(pollers²) per message at the fan-out. Here it is O(1) per request:
//!
//! - the counts per kind of poller are kept as pollers come, change kind
//!   and go, so reading them is two atomic loads;
//! - time is a coarse clock (`now`, milliseconds) that the room's presence
//!   tick advances about once a second: a request stamps its entry with the
//!   clock's value, an atomic load, never a clock read;
//! - each shard keeps its pollers in least-recently-seen order (an LRU
//!   list), so expiry on the tick pops from the old end and stops at the
//!   first poller still fresh: it touches only the pollers that expire;
//! - the keys are spread over a few shards, each behind its own short lock,
//!   so concurrent polls rarely wait on one another.
//!
//! The same entry holds the poller's held long poll, if any: one held poll
//! per poller, a newer one supersedes it (see `transport/poll.rs` for why),
//! registered under the same shard lock, so a held poll costs no lock that
//! every poll of the server contends on and no allocation of its key.
//!
//! The table is bounded: past `max` pollers the least recently seen is
//! forgotten, so a client inventing a new `client=` key per request cannot
//! grow it without limit.

use lru::LruCache;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Independent locks; a power of two above the core count, so two polls
/// rarely meet on one.
const SHARDS: usize = 8;

/// The two kinds of poller presence counts apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollerKind {
    Long,
    Short,
}

#[derive(Debug)]
struct Seen {
    kind: PollerKind,
    /// The coarse clock's value at the poller's last request.
    at: u64,
    /// The poller's held poll: its ticket, and the token that tells it a
    /// newer one took its place.
    held: Option<(u64, CancellationToken)>,
}

type Shard = LruCache<Arc<str>, Seen>;

/// The pollers of one room, with their counts.
#[derive(Debug)]
pub struct Pollers {
    shards: [Mutex<Shard>; SHARDS],
    hasher: std::collections::hash_map::RandomState,
    long: AtomicU64,
    short: AtomicU64,
    held: AtomicU64,
    next_ticket: AtomicU64,
    ttl_ms: u64,
    max_per_shard: usize,
}

/// What a request or a tick did to the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Same,
    Changed,
}

impl Pollers {
    /// A poller counts as online for `ttl` after its last request; at most
    /// `max` pollers are remembered.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(LruCache::unbounded())),
            hasher: Default::default(),
            long: AtomicU64::new(0),
            short: AtomicU64::new(0),
            held: AtomicU64::new(0),
            next_ticket: AtomicU64::new(0),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            max_per_shard: max.div_ceil(SHARDS).max(1),
        }
    }

    /// Pollers online now: (long, short).
    pub fn counts(&self) -> (u64, u64) {
        (self.long.load(Relaxed), self.short.load(Relaxed))
    }

    /// Records a request from the poller `key` at coarse time `now`.
    /// A known key is found by `&str`: no allocation unless it is new.
    pub fn saw(&self, key: &str, kind: PollerKind, now: u64) -> Change {
        let mut shard = self.shard(key);
        // `get_mut` also moves the entry to the recently-seen end.
        if let Some(seen) = shard.get_mut(key) {
            let before = seen.kind;
            (seen.kind, seen.at) = (kind, now);
            if before == kind {
                return Change::Same;
            }
            self.count(before).fetch_sub(1, Relaxed);
            self.count(kind).fetch_add(1, Relaxed);
            return Change::Changed;
        }
        if shard.len() >= self.max_per_shard {
            if let Some((_, oldest)) = shard.pop_lru() {
                self.forget(oldest);
            }
        }
        let seen = Seen {
            kind,
            at: now,
            held: None,
        };
        shard.push(key.into(), seen);
        self.count(kind).fetch_add(1, Relaxed);
        Change::Changed
    }

    /// Registers a held poll of the poller `key` (seen just before, by
    /// [`Pollers::saw`]), superseding the one it had held: that one's token
    /// is cancelled. The returned guard ends the registration when dropped.
    pub fn hold(self: &Arc<Self>, key: &str) -> HeldPoll {
        let ticket = self.next_ticket.fetch_add(1, Relaxed);
        let superseded = CancellationToken::new();
        let mut shard = self.shard(key);
        let held = Some((ticket, superseded.clone()));
        let key = match shard.get_key_value_mut(key) {
            Some((key, seen)) => {
                match std::mem::replace(&mut seen.held, held) {
                    Some((_, older)) => older.cancel(),
                    None => {
                        self.held.fetch_add(1, Relaxed);
                    }
                }
                Arc::clone(key)
            }
            // Forgotten since it was seen (the table was full): remember it.
            None => {
                let key: Arc<str> = key.into();
                let seen = Seen {
                    kind: PollerKind::Long,
                    at: 0,
                    held,
                };
                shard.push(Arc::clone(&key), seen);
                self.long.fetch_add(1, Relaxed);
                self.held.fetch_add(1, Relaxed);
                key
            }
        };
        HeldPoll {
            pollers: Arc::clone(self),
            key,
            ticket,
            superseded,
        }
    }

    /// Polls held right now.
    pub fn held(&self) -> u64 {
        self.held.load(Relaxed)
    }

    /// Forgets the pollers not seen for longer than the ttl at coarse time
    /// `now`. Touches only those, and one fresh entry per shard.
    pub fn expire(&self, now: u64) -> Change {
        let mut change = Change::Same;
        for shard in &self.shards {
            let mut shard = lock(shard);
            while let Some((_, seen)) = shard.peek_lru() {
                if now.saturating_sub(seen.at) <= self.ttl_ms {
                    break;
                }
                if let Some((_, seen)) = shard.pop_lru() {
                    self.forget(seen);
                }
                change = Change::Changed;
            }
        }
        change
    }

    /// Uncounts an entry that left the table.
    fn forget(&self, seen: Seen) {
        self.count(seen.kind).fetch_sub(1, Relaxed);
        if seen.held.is_some() {
            self.held.fetch_sub(1, Relaxed);
        }
    }

    fn count(&self, kind: PollerKind) -> &AtomicU64 {
        match kind {
            PollerKind::Long => &self.long,
            PollerKind::Short => &self.short,
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let index = self.hasher.hash_one(key) as usize % SHARDS;
        lock(&self.shards[index])
    }
}

/// A held poll's registration; dropping it ends the registration.
#[derive(Debug)]
pub struct HeldPoll {
    pollers: Arc<Pollers>,
    key: Arc<str>,
    ticket: u64,
    /// Cancelled when the same poller holds a newer poll.
    pub superseded: CancellationToken,
}

impl Drop for HeldPoll {
    fn drop(&mut self) {
        let mut shard = self.pollers.shard(&self.key);
        // `peek_mut`: ending a poll is not a sighting, the order stays.
        let Some(seen) = shard.peek_mut(&*self.key) else {
            return;
        };
        // A newer poll may have taken the slot; leave it alone.
        if seen.held.as_ref().is_some_and(|(t, _)| *t == self.ticket) {
            seen.held = None;
            self.pollers.held.fetch_sub(1, Relaxed);
        }
    }
}

// Held for one map operation, never across an await; a panic cannot leave
// the map torn, so a poisoned lock is still sound.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use PollerKind::{Long, Short};

    fn pollers() -> Pollers {
        Pollers::new(Duration::from_millis(1000), 100)
    }

    #[test]
    fn counts_each_poller_once_and_follows_a_change_of_kind() {
        let p = pollers();
        assert_eq!(p.saw("a", Long, 0), Change::Changed);
        assert_eq!(p.saw("b", Long, 0), Change::Changed);
        assert_eq!(p.saw("c", Short, 0), Change::Changed);
        assert_eq!(p.saw("a", Long, 10), Change::Same);
        assert_eq!(p.counts(), (2, 1));
        assert_eq!(p.saw("a", Short, 20), Change::Changed);
        assert_eq!(p.counts(), (1, 2));
    }

    #[test]
    fn expires_only_pollers_past_the_ttl() {
        let p = pollers();
        p.saw("old", Long, 0);
        p.saw("short", Short, 0);
        p.saw("fresh", Long, 0);
        p.saw("fresh", Long, 600);
        assert_eq!(p.expire(1000), Change::Same, "nobody is past 1 s yet");
        assert_eq!(p.counts(), (2, 1));
        assert_eq!(p.expire(1001), Change::Changed);
        assert_eq!(p.counts(), (1, 0), "only `fresh` asked within the ttl");
        assert_eq!(p.expire(1600), Change::Same);
        assert_eq!(p.expire(1601), Change::Changed);
        assert_eq!(p.counts(), (0, 0));
        // A poller that comes back after expiring counts again.
        p.saw("old", Long, 2000);
        assert_eq!(p.counts(), (1, 0));
    }

    #[test]
    fn a_newer_held_poll_supersedes_the_older_and_each_ends_its_own() {
        let p = Arc::new(pollers());
        p.saw("a", Long, 0);
        let first = p.hold("a");
        assert_eq!(p.held(), 1);
        let second = p.hold("a");
        assert!(first.superseded.is_cancelled());
        assert!(!second.superseded.is_cancelled());
        assert_eq!(p.held(), 1, "one held poll per poller");
        drop(first);
        assert_eq!(p.held(), 1, "the older poll leaves the newer registered");
        let other = p.hold("b");
        assert_eq!((p.held(), p.counts()), (2, (2, 0)));
        drop(second);
        drop(other);
        assert_eq!(p.held(), 0);
    }

    #[test]
    fn the_table_is_bounded_and_the_counts_stay_right() {
        let p = Pollers::new(Duration::from_secs(60), 64);
        for i in 0..10_000 {
            p.saw(&format!("k{i}"), if i % 2 == 0 { Long } else { Short }, i);
        }
        let held: usize = p.shards.iter().map(|s| lock(s).len()).sum();
        assert!(held <= 64, "{held} pollers remembered, bound 64");
        let (long, short) = p.counts();
        assert_eq!((long + short) as usize, held);
        // Everything left expires, and the counts come back to zero.
        p.expire(u64::MAX);
        assert_eq!(p.counts(), (0, 0));
    }
}
