//! What the receivers of one run saw: deliveries, duplicates, announced
//! losses, and latency from the *scheduled* send time to receipt.
//!
//! Latency is open-loop. Message `seq` is due at `start + seq / rate`,
//! whether or not earlier ones have been delivered, and its latency is
//! measured from that due time, not from when the sender got around to it.
//! So a server that stalls the senders too is charged for the stall
//! instead of hiding it (coordinated omission). The sequence number travels
//! in the message text, so any receiver can compute its due time.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Digits of the sequence number at the start of every message text.
pub const SEQ_DIGITS: usize = 12;

/// Histograms are sharded by receiver so thousands of receivers do not
/// queue on one lock; each record holds its shard's lock for a few ns.
const SHARDS: usize = 32;

/// The send schedule of a run: `total` messages at `rate` per second, the
/// first `warmup` of which are not measured.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub start: Instant,
    pub rate: f64,
    pub warmup: u64,
    pub total: u64,
}

impl Schedule {
    pub fn due(&self, seq: u64) -> Instant {
        self.start + Duration::from_secs_f64(seq as f64 / self.rate)
    }

    pub fn is_measured(&self, seq: u64) -> bool {
        seq >= self.warmup && seq < self.total
    }
}

/// A message text of exactly `size` bytes that starts with `seq`.
pub fn text_for(seq: u64, size: usize) -> String {
    let mut text = format!("{seq:0SEQ_DIGITS$}");
    text.extend(std::iter::repeat_n('x', size.saturating_sub(SEQ_DIGITS)));
    text
}

pub fn seq_of(text: &str) -> Option<u64> {
    text.get(..SEQ_DIGITS)?.parse().ok()
}

/// Counters and latencies shared by every receiver and sender of a run.
#[derive(Debug)]
pub struct Tally {
    pub schedule: Schedule,
    latency_us: Vec<Mutex<Histogram<u64>>>,
    /// Measured messages the server accepted (201).
    pub sent: AtomicU64,
    /// Their ids, as the server answered them: what a receiver still has
    /// ahead of its cursor at the end is queued, not lost ([`Tally::queued`]).
    sent_ids: Mutex<Vec<u64>>,
    pub send_errors: AtomicU64,
    /// Measured messages received, first time only.
    pub delivered: AtomicU64,
    /// A message id at or below one this receiver already had.
    pub duplicates: AtomicU64,
    /// `gap` and `reset` events: a loss the server announced.
    pub announced_losses: AtomicU64,
    /// Receivers whose stream failed or closed during the run.
    pub receiver_errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    pub fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            latency_us: (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
            sent: AtomicU64::new(0),
            sent_ids: Mutex::new(Vec::new()),
            send_errors: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            announced_losses: AtomicU64::new(0),
            receiver_errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }

    /// Records one chat message arriving at receiver `receiver`, whose
    /// previous message id was `last_id`.
    pub fn receipt(&self, receiver: usize, id: u64, text: &str, last_id: &mut u64, now: Instant) {
        if id <= *last_id {
            self.duplicates.fetch_add(1, Relaxed);
            return;
        }
        *last_id = id;
        let Some(seq) = seq_of(text).filter(|&s| self.schedule.is_measured(s)) else {
            return;
        };
        self.delivered.fetch_add(1, Relaxed);
        let micros = now
            .saturating_duration_since(self.schedule.due(seq))
            .as_micros();
        let micros = u64::try_from(micros).unwrap_or(u64::MAX).max(1);
        // A poisoned shard only means another receiver panicked mid-record;
        // its counts are still sound.
        lock(&self.latency_us[receiver % SHARDS]).saturating_record(micros);
    }

    /// Records a measured message the server accepted as `id`.
    pub fn sent(&self, id: u64) {
        self.sent.fetch_add(1, Relaxed);
        lock(&self.sent_ids).push(id);
    }

    /// Deliveries still ahead of the receivers: for each receiver's
    /// cursor (the last id it got; `None` for one no longer receiving),
    /// the measured messages with a larger id. Receipts come in id order,
    /// so these are exactly the ones it has not had yet, and the server
    /// still holds them for it: it was behind, not losing.
    pub fn queued(&self, cursors: impl IntoIterator<Item = Option<u64>>) -> u64 {
        let mut ids = lock(&self.sent_ids).clone();
        ids.sort_unstable();
        cursors
            .into_iter()
            .flatten()
            .map(|cursor| (ids.len() - ids.partition_point(|&id| id <= cursor)) as u64)
            .sum()
    }

    /// Remembers the first error of a kind worth showing to the user.
    pub fn error(&self, what: String) {
        lock(&self.first_error).get_or_insert(what);
    }

    pub fn first_error(&self) -> Option<String> {
        lock(&self.first_error).clone()
    }

    /// All shards merged.
    pub fn latencies(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for shard in &self.latency_us {
            // Same bounds on both sides, so adding cannot fail.
            let _ = all.add(&*lock(shard));
        }
        all
    }
}

/// A std Mutex held for a few instructions, never across an await (so not
/// tokio's); a poisoned one only means another task panicked mid-record,
/// and the counts it holds are still sound.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// 1 µs to 10 minutes at 3 significant digits; larger values are clamped.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_its_sequence_number() {
        let text = text_for(42, 100);
        assert_eq!(text.len(), 100);
        assert_eq!(seq_of(&text), Some(42));
        assert_eq!(seq_of("hello"), None);
        assert_eq!(text_for(7, 3).len(), SEQ_DIGITS);
    }

    #[test]
    fn counts_first_receipts_and_duplicates_by_id() {
        let start = Instant::now();
        let tally = Tally::new(Schedule {
            start,
            rate: 1000.0,
            warmup: 2,
            total: 10,
        });
        let mut last = 0;
        let later = start + Duration::from_millis(50);
        tally.receipt(0, 1, &text_for(0, 20), &mut last, later); // warmup
        tally.receipt(0, 5, &text_for(4, 20), &mut last, later);
        tally.receipt(0, 5, &text_for(4, 20), &mut last, later); // again
        assert_eq!(tally.delivered.load(Relaxed), 1);
        assert_eq!(tally.duplicates.load(Relaxed), 1);
        let latencies = tally.latencies();
        assert_eq!(latencies.len(), 1);
        // Due 4 ms after start, received 50 ms after: 46 ms.
        assert!((45_000..=47_000).contains(&latencies.max()));
    }

    #[test]
    fn what_is_ahead_of_a_cursor_is_queued() {
        let tally = Tally::new(Schedule {
            start: Instant::now(),
            rate: 10.0,
            warmup: 0,
            total: 3,
        });
        // Two senders: the server's ids need not come in schedule order.
        for id in [12, 10, 11] {
            tally.sent(id);
        }
        assert_eq!(tally.sent.load(Relaxed), 3);
        // Caught up, one behind, none received yet, no longer receiving.
        let cursors = [Some(12), Some(11), Some(0), None];
        assert_eq!(tally.queued(cursors), 1 + 3);
    }
}
