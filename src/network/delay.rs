//! Latency without a sleep per chunk in series: each chunk is stamped with
//! its release time when it arrives, and a writer releases chunks in order
//! at their stamps.
//!
//! A chunk that arrives at `t` with a one-way delay `d` and a jitter
//! sample `j` is due at `t + d + j`. Chunks behind it wait for their own
//! stamps, not for it to be written first, so ten chunks arriving 1 ms
//! apart on a 100 ms link leave 100 ms later, 1 ms apart (a pipe, as a
//! real link is), not one second later. Jitter could make a later chunk
//! due before an earlier one; TCP never reorders bytes, so a stamp is
//! clamped to be no earlier than the one before it.

use std::time::Duration;
use tokio::time::Instant;

/// One direction's stamps.
#[derive(Debug, Default)]
pub struct DelayLine {
    last: Option<Instant>,
}

impl DelayLine {
    /// When a chunk that arrived at `arrival` may leave: `arrival + delay`
    /// moved by `jitter` (which may be negative, but never before the
    /// arrival), and never before the previous chunk's release.
    pub fn release(&mut self, arrival: Instant, delay: Duration, jitter: i64) -> Instant {
        let shifted = if jitter >= 0 {
            delay + Duration::from_millis(jitter as u64)
        } else {
            delay.saturating_sub(Duration::from_millis(jitter.unsigned_abs()))
        };
        let due = arrival + shifted;
        let due = self.last.map_or(due, |last| due.max(last));
        self.last = Some(due);
        due
    }
}

/// A jitter sample in milliseconds, uniform in `-max..=max`.
pub fn jitter_sample(max: Duration) -> i64 {
    let max = max.as_millis() as i64;
    if max == 0 {
        0
    } else {
        fastrand::i64(-max..=max)
    }
}

/// How long `bytes` take at `per_second`: the pause a bandwidth cap puts
/// after writing them.
pub fn transmit_time(bytes: usize, per_second: u64) -> Duration {
    if per_second == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(bytes as f64 / per_second as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn chunks_are_due_their_own_delay_after_arrival_not_after_each_other() {
        let t0 = Instant::now();
        let mut line = DelayLine::default();
        let stamps: Vec<_> = (0..10)
            .map(|i| line.release(t0 + MS * i, MS * 100, 0))
            .collect();
        // 100 ms after each arrival: the last is due at 109 ms, not 1 s.
        for (i, stamp) in stamps.iter().enumerate() {
            assert_eq!(*stamp - t0, MS * (100 + i as u32));
        }
    }

    #[test]
    fn jitter_never_reorders() {
        let t0 = Instant::now();
        let mut line = DelayLine::default();
        // The second chunk draws a shorter delay than the first: it is
        // held until the first has left.
        let first = line.release(t0, MS * 50, 20);
        let second = line.release(t0 + MS, MS * 50, -20);
        assert_eq!(first - t0, MS * 70);
        assert_eq!(second, first);
        // A third, with no jitter, is due at its own time again.
        let third = line.release(t0 + MS * 100, MS * 50, 0);
        assert_eq!(third - t0, MS * 150);
    }

    #[test]
    fn negative_jitter_never_releases_before_arrival() {
        let t0 = Instant::now();
        let mut line = DelayLine::default();
        assert_eq!(line.release(t0, MS * 5, -20), t0);
    }

    #[test]
    fn jitter_samples_stay_within_the_bound() {
        for _ in 0..1000 {
            assert!(jitter_sample(MS * 7).abs() <= 7);
        }
        assert_eq!(jitter_sample(Duration::ZERO), 0);
    }

    #[test]
    fn transmit_time_follows_the_rate() {
        assert_eq!(transmit_time(1024, 1024), Duration::from_secs(1));
        assert_eq!(transmit_time(512, 0), Duration::ZERO);
    }
}
