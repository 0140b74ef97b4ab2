//! Giving memory back after a wave of connections has gone.
//!
//! Every connection's buffers are freed when it closes, but glibc's
//! allocator keeps freed memory in its per-thread arenas for reuse rather
//! than returning it to the system, so after a hundred stuck clients are
//! dropped the process would go on holding their megabytes (measured in
//! `tests/hostile.rs`: without this, none of it came back). When the number
//! of open connections has fallen by [`WAVE`] or more from its peak and has
//! stopped falling, this asks the allocator to return what it holds free
//! (`malloc_trim`, which takes a few milliseconds). Steady churn never
//! triggers it; a wave does, once, after it is over.

use crate::admission::Admission;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many connections must have closed, net, before memory is trimmed.
pub const WAVE: usize = 32;
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Watches the open connections until shutdown, trimming after each wave.
pub async fn release_after_waves(admission: Arc<Admission>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut peak, mut last) = (0, 0);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let open = admission.open();
        peak = peak.max(open);
        let still_falling = open < last;
        if !still_falling && peak - open >= WAVE {
            release_free_memory();
            peak = open;
        }
        last = open;
    }
}

static TRIMS: AtomicU64 = AtomicU64::new(0);

/// How many times this process has handed memory back (in `/stats`).
pub fn trims() -> u64 {
    TRIMS.load(Relaxed)
}

/// Returns the allocator's free memory to the system, where it can.
pub fn release_free_memory() {
    TRIMS.fetch_add(1, Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
