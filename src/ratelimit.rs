//! Rate limits as token buckets: a sustained rate plus a burst.
//!
//! A bucket holds up to `burst` tokens and refills at `per_second`; each
//! send (or, on a WebSocket, each inbound frame) takes one. A bucket is two
//! floats and an instant, refilled lazily when a token is asked for: no
//! timer, no task. A WebSocket owns its buckets; HTTP senders have no
//! connection that lasts, so they are keyed by address ([`PerAddress`]).

use crate::config::RateLimit;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket, or `None` when the limit is off.
    pub fn new(limit: RateLimit) -> Option<Self> {
        Self::per(limit, Duration::from_secs(1))
    }

    /// A full bucket that refills `limit.per_second` tokens per `period`
    /// instead of per second (room creations are counted per minute).
    pub fn per(limit: RateLimit, period: Duration) -> Option<Self> {
        (!limit.is_off()).then(|| {
            let burst = f64::from(limit.burst.max(1));
            Self {
                per_second: f64::from(limit.per_second) / period.as_secs_f64().max(1e-3),
                burst,
                tokens: burst,
                last: Instant::now(),
            }
        })
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
    }

    /// Takes a token if there is one.
    pub fn try_take(&mut self) -> bool {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// A bucket back at its burst is the same as a new one, so it can be
    /// forgotten.
    fn is_full(&mut self) -> bool {
        self.refill();
        self.tokens >= self.burst
    }
}

/// Takes one token from `bucket` when there is a bucket; no bucket means no
/// limit.
pub fn allow(bucket: &mut Option<TokenBucket>) -> bool {
    bucket.as_mut().is_none_or(TokenBucket::try_take)
}

/// What a sender over `limit` is told, over HTTP and WebSocket alike.
pub fn refusal(limit: RateLimit) -> String {
    format!(
        "rate limited: at most {} messages a second, {} at once; this one was not sent",
        limit.per_second, limit.burst
    )
}

/// One bucket per address, forgotten once full again, so the map holds
/// only addresses that sent recently.
#[derive(Debug)]
pub struct PerAddress {
    limit: RateLimit,
    /// What `limit.per_second` is counted over: a second, or a minute.
    period: Duration,
    // Held for one lookup and a little arithmetic, never across an await.
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    map: HashMap<IpAddr, TokenBucket>,
    /// Prune when the map grows past this; it doubles with the live set,
    /// so pruning costs O(1) per insert on average.
    prune_at: usize,
}

const MIN_PRUNE_AT: usize = 1024;

impl PerAddress {
    pub fn new(limit: RateLimit) -> Self {
        Self::per(limit, Duration::from_secs(1))
    }

    /// Buckets that refill `limit.per_second` tokens per `period`.
    pub fn per(limit: RateLimit, period: Duration) -> Self {
        Self {
            limit,
            period,
            buckets: Mutex::default(),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes a token from `ip`'s bucket if there is one.
    pub fn try_take(&self, ip: IpAddr) -> bool {
        let Some(fresh) = TokenBucket::per(self.limit, self.period) else {
            return true;
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Buckets { map, prune_at } = &mut *buckets;
        if map.len() >= (*prune_at).max(MIN_PRUNE_AT) {
            map.retain(|_, bucket| !bucket.is_full());
            *prune_at = 2 * map.len();
        }
        map.entry(ip).or_insert(fresh).try_take()
    }

    /// Addresses currently remembered.
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses() {
        let mut bucket = TokenBucket::new(RateLimit {
            per_second: 1,
            burst: 3,
        })
        .unwrap();
        assert!((0..3).all(|_| bucket.try_take()));
        // One token takes a second to come back; this runs in far less.
        assert!(!bucket.try_take());
        assert!(TokenBucket::new(RateLimit::OFF).is_none());
        assert!(allow(&mut None));
    }

    #[test]
    fn addresses_have_their_own_buckets_and_full_ones_are_forgotten() {
        let limit = RateLimit {
            per_second: 1_000_000,
            burst: 1,
        };
        let per_address = PerAddress::new(limit);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(per_address.try_take(a));
        for i in 0..(MIN_PRUNE_AT as u32 + 10) {
            per_address.try_take(IpAddr::from(i.to_be_bytes()));
        }
        // At a million tokens a second every bucket is full again by the
        // time the map is pruned, so it never holds much more than the
        // threshold.
        assert!(per_address.tracked() <= MIN_PRUNE_AT + 11);
    }
}
