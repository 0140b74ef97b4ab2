//! Refusals in the log, on a budget.
//!
//! Every `403`, `429` and `503` the server answers, and every WebSocket it
//! closes with 1008, 1009 or 1013, is logged at `debug` with the peer's
//! address and the room (`RUST_LOG=skyrocket=debug`), so an operator can
//! see who hit which limit. A refusal is what a flood is made of, though,
//! and a log that grows with a flood is a resource a client controls. So
//! at most [`PER_SECOND`] refusal lines are written a second; the rest are
//! counted, and the next line written is preceded by one saying how many
//! were left out. `/stats` and `/metrics` still count every refusal.
//!
//! One budget for the process, as there is one log. With `debug` off (the
//! default), a refusal costs one check of the log level and nothing else:
//! a flood does not contend for the budget's lock.

use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refusal lines written per second at most.
pub const PER_SECOND: u32 = 20;

static BUDGET: LogBudget = LogBudget::new(PER_SECOND);

/// Logs a refusal of `peer` (in `room`, when there is one): `what` says
/// which, for example `403 Forbidden` or `close 1008: too many frames`.
pub fn log(peer: Option<SocketAddr>, room: Option<&str>, what: impl Display) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let Verdict::Write { left_out } = BUDGET.admit(Instant::now()) else {
        return;
    };
    if left_out > 0 {
        tracing::debug!(
            left_out,
            "{left_out} refusals were left out of the log (at most {PER_SECOND} a second)"
        );
    }
    let peer = peer.map_or_else(|| "-".to_owned(), |p| p.to_string());
    tracing::debug!(peer, room = room.unwrap_or("-"), refusal = %what, "refused");
}

/// At most `per_second` lines in any one-second window, counting the rest.
/// The clock is passed in, so tests need no sleep.
#[derive(Debug)]
pub struct LogBudget {
    per_second: u32,
    // Held for a comparison and two additions, never across an await.
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    /// When the current window opened; `None` before the first line.
    start: Option<Instant>,
    written: u32,
    /// Lines refused since the last one written.
    left_out: u64,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Write it, after a line saying `left_out` were left out (if any).
    Write { left_out: u64 },
    /// Leave it out (it is counted).
    Skip,
}

impl LogBudget {
    pub const fn new(per_second: u32) -> Self {
        Self {
            per_second,
            window: Mutex::new(Window {
                start: None,
                written: 0,
                left_out: 0,
            }),
        }
    }

    /// The verdict on a line at `now`.
    pub fn admit(&self, now: Instant) -> Verdict {
        // Only counters inside: a panic elsewhere cannot leave them torn.
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let expired = window
            .start
            .is_none_or(|start| now.saturating_duration_since(start) >= Duration::from_secs(1));
        if expired {
            window.start = Some(now);
            window.written = 0;
        }
        if window.written < self.per_second {
            window.written += 1;
            Verdict::Write {
                left_out: std::mem::take(&mut window.left_out),
            }
        } else {
            window.left_out += 1;
            Verdict::Skip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_writes_its_budget_then_one_line_for_the_rest() {
        let budget = LogBudget::new(3);
        let t0 = Instant::now();
        let verdicts: Vec<_> = (0..10)
            .map(|i| budget.admit(t0 + Duration::from_millis(i * 10)))
            .collect();
        assert_eq!(verdicts[..3], [Verdict::Write { left_out: 0 }; 3]);
        assert!(verdicts[3..].iter().all(|v| *v == Verdict::Skip));
        // Still inside the first second: still refused.
        assert_eq!(budget.admit(t0 + Duration::from_millis(999)), Verdict::Skip);
        // A second later, the next line carries the count of the 8 left out.
        let later = t0 + Duration::from_millis(1_000);
        assert_eq!(budget.admit(later), Verdict::Write { left_out: 8 });
        assert_eq!(budget.admit(later), Verdict::Write { left_out: 0 });
    }

    #[test]
    fn a_quiet_log_writes_every_line() {
        let budget = LogBudget::new(2);
        let t0 = Instant::now();
        for s in 0..5 {
            let at = t0 + Duration::from_secs(s);
            assert_eq!(budget.admit(at), Verdict::Write { left_out: 0 });
        }
    }

    #[test]
    fn a_clock_that_steps_back_does_not_reopen_the_window() {
        let budget = LogBudget::new(1);
        let t0 = Instant::now() + Duration::from_secs(5);
        assert_eq!(budget.admit(t0), Verdict::Write { left_out: 0 });
        assert_eq!(budget.admit(t0 - Duration::from_secs(2)), Verdict::Skip);
    }
}
