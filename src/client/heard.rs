//! [`LastHeard`]: when something last happened on a connection, written
//! from one task (or a stream callback) and read from another without a
//! lock. The clients' liveness checks use it, and so does the network's
//! idle timer (`network/proxy.rs`): the same clock, written once.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::time::Instant;

/// A time, kept as milliseconds since the value was made.
#[derive(Debug)]
pub struct LastHeard {
    start: Instant,
    millis: AtomicU64,
}

impl LastHeard {
    /// Starts at now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            millis: AtomicU64::new(0),
        }
    }

    /// Something happened now. `fetch_max`, so a late writer never moves
    /// the time back.
    pub fn touch(&self) {
        let millis = self.start.elapsed().as_millis() as u64;
        self.millis.fetch_max(millis, Relaxed);
    }

    /// When something last happened (to the millisecond).
    pub fn at(&self) -> Instant {
        self.start + Duration::from_millis(self.millis.load(Relaxed))
    }
}

impl Default for LastHeard {
    fn default() -> Self {
        Self::new()
    }
}
