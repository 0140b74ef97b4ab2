//! A source polled only after its own waker fired.
//!
//! A WebSocket session waits on two things in one task: its room's next
//! delivery and its socket's next frame. Under load the task wakes for
//! deliveries thousands of times a second, and a plain `select!` polls
//! every branch on every wake-up, so each delivery would also poll the
//! socket's read half, which then has nothing: the split socket's lock, a
//! readiness check, and tungstenite zero-filling its read buffer before
//! it asks (`results/profile/ws-1000x40.md`: 6% of the server's CPU at
//! 1,000 clients x 40 msg/s), and the shutdown token's lock besides.
//!
//! A [`Gate`] gives its source a waker of its own. The source is polled
//! when that waker has fired since its last `Pending` (or when it last
//! returned `Ready`, since it may have more); otherwise polling it is one
//! atomic swap. This is what `FuturesUnordered` does per future, and what
//! a reader in a task of its own gets from the scheduler, without a second
//! task or a channel per socket.

use futures_util::task::AtomicWaker;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

/// The gate of one source: whether its waker fired, and whom to wake.
#[derive(Debug)]
pub struct Gate {
    signal: Arc<Signal>,
    /// The waker handed to the source: built once, cloned by the source
    /// only when it registers for a new event.
    waker: Waker,
}

#[derive(Debug)]
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Default for Gate {
    fn default() -> Self {
        // Open at first: the source has never been polled.
        let signal = Arc::new(Signal {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(Arc::clone(&signal));
        Self { signal, waker }
    }
}

impl Gate {
    /// Whether the source must be polled now: `Some` with the waker to
    /// poll it with if its waker fired (or it was last `Ready`), `None`
    /// otherwise, at the cost of one atomic swap. Either way the calling
    /// task is the one woken next. After a `Ready` from the source, call
    /// [`Gate::reopen`].
    pub fn open(&self, cx: &Context<'_>) -> Option<Waker> {
        self.signal.task.register(cx.waker());
        self.signal
            .woken
            .swap(false, Ordering::AcqRel)
            .then(|| self.waker.clone())
    }

    /// The source returned `Ready` and may have more: no waker will say
    /// so, so the next poll must look.
    pub fn reopen(&self) {
        self.signal.woken.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Poll;

    /// Counts its polls; `Pending` until `ready` is set, then wakes nobody.
    struct Source {
        polls: AtomicUsize,
        ready: AtomicBool,
        waker: std::sync::Mutex<Option<Waker>>,
    }

    impl Source {
        fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if self.ready.load(Ordering::Relaxed) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }

        fn polls(&self) -> usize {
            self.polls.load(Ordering::Relaxed)
        }
    }

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Polls `source` through the gate, as `Link::next` does.
    fn poll_through(gate: &Gate, cx: &Context<'_>, source: &Source) -> Poll<()> {
        let Some(waker) = gate.open(cx) else {
            return Poll::Pending;
        };
        let result = source.poll(&mut Context::from_waker(&waker));
        if result.is_ready() {
            gate.reopen();
        }
        result
    }

    #[test]
    fn a_source_is_polled_again_only_after_its_own_wake() {
        let gate = Gate::default();
        let source = Source {
            polls: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
            waker: Default::default(),
        };
        let task = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&task));
        let cx = Context::from_waker(&waker);

        assert!(poll_through(&gate, &cx, &source).is_pending());
        assert_eq!(source.polls(), 1, "the first poll goes through");
        // Woken for something else (a delivery): the source is not asked.
        for _ in 0..5 {
            assert!(poll_through(&gate, &cx, &source).is_pending());
        }
        assert_eq!(source.polls(), 1);

        // The source's event: its waker wakes the task, and the next poll
        // reaches it.
        source.ready.store(true, Ordering::Relaxed);
        source.waker.lock().unwrap().take().unwrap().wake();
        assert_eq!(task.0.load(Ordering::Relaxed), 1, "the task was woken");
        assert!(poll_through(&gate, &cx, &source).is_ready());
        // Ready may mean more is waiting: the next poll asks again.
        assert!(poll_through(&gate, &cx, &source).is_ready());
        assert_eq!(source.polls(), 3);
    }
}
