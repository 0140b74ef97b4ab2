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
//! The table is bounded: past `max` pollers the least recently seen is
//! forgotten, so a client inventing a new `client=` key per request cannot
//! grow it without limit.

use lru::LruCache;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Independent locks; a power of two above the core count, so two polls
/// rarely meet on one.
const SHARDS: usize = 8;

/// The two kinds of poller presence counts apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollerKind {
    Long,
    Short,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    kind: PollerKind,
    /// The coarse clock's value at the poller's last request.
    at: u64,
}

/// The pollers of one room, with their counts.
#[derive(Debug)]
pub struct Pollers {
    shards: [Mutex<LruCache<Box<str>, Seen>>; SHARDS],
    hasher: std::collections::hash_map::RandomState,
    long: AtomicU64,
    short: AtomicU64,
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
            *seen = Seen { kind, at: now };
            if before == kind {
                return Change::Same;
            }
            self.count(before).fetch_sub(1, Relaxed);
            self.count(kind).fetch_add(1, Relaxed);
            return Change::Changed;
        }
        if shard.len() >= self.max_per_shard {
            if let Some((_, oldest)) = shard.pop_lru() {
                self.count(oldest.kind).fetch_sub(1, Relaxed);
            }
        }
        shard.push(key.into(), Seen { kind, at: now });
        self.count(kind).fetch_add(1, Relaxed);
        Change::Changed
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
                let kind = seen.kind;
                shard.pop_lru();
                self.count(kind).fetch_sub(1, Relaxed);
                change = Change::Changed;
            }
        }
        change
    }

    fn count(&self, kind: PollerKind) -> &AtomicU64 {
        match kind {
            PollerKind::Long => &self.long,
            PollerKind::Short => &self.short,
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, LruCache<Box<str>, Seen>> {
        let index = self.hasher.hash_one(key) as usize % SHARDS;
        lock(&self.shards[index])
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
