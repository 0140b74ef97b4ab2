//! The delivery loop every reading transport shares: what one write to a
//! client carries, and what it costs to count.
//!
//! A write starts with one delivery (the one the adapter waited for) and
//! takes every further delivery already waiting, up to [`MAX_BATCH`] in all:
//! one syscall for many messages under load, one per message when idle.
//! Messages and their payload bytes are counted as they are taken, and once
//! the write is done [`Batch::delivered`] charges them to the transport
//! (`/stats`, the room's figures, and the delivery-delay histogram of
//! `/metrics`: one clock read per write) and hands back the room's wire tap
//! when someone is watching. The adapters (`websocket/chat.rs`, `sse.rs`,
//! `poll.rs`) keep only their framing.

use crate::message::{Posted, Transport};
use crate::room::{Delivery, RoomError, Subscription};
use crate::state::AppState;
use crate::wire_view::RoomTap;
use std::sync::Arc;
use std::time::Instant;

/// Deliveries one write (a WebSocket flush, an SSE chunk, a poll body)
/// carries at most. Enough to make a backlog cheap, small enough that one
/// write stays small (a resume of a long history goes out in several).
pub const MAX_BATCH: usize = 64;

/// The deliveries of one write, taken from a subscription and counted.
pub struct Batch<'a> {
    subscription: &'a mut Subscription,
    /// Someone may be watching the wire view: keep the last message for
    /// it. Off, a batch takes no extra reference to a message, whose count
    /// every receiver of the room shares (a contended atomic).
    watching: bool,
    first: Option<Delivery>,
    /// How many deliveries this write may carry: [`MAX_BATCH`] unless the
    /// adapter says otherwise ([`Batch::up_to`]).
    cap: usize,
    taken: usize,
    messages: u64,
    payload: u64,
    last_message: Option<Arc<Posted>>,
    /// When the first (oldest) message taken was accepted.
    oldest: Option<Instant>,
}

impl<'a> Batch<'a> {
    /// A batch that starts with `first`, or, without one, with whatever
    /// the subscription has ready.
    pub fn new(
        state: &AppState,
        subscription: &'a mut Subscription,
        first: Option<Delivery>,
    ) -> Self {
        Self {
            subscription,
            watching: state.taps.armed(),
            first,
            cap: MAX_BATCH,
            taken: 0,
            messages: 0,
            payload: 0,
            last_message: None,
            oldest: None,
        }
    }

    /// The same batch, carrying up to `cap` deliveries instead of
    /// [`MAX_BATCH`]: a poll pays a whole request per write, so its body
    /// takes more of a backlog at once than a stream's write does.
    pub fn up_to(mut self, cap: usize) -> Self {
        self.cap = cap.max(1);
        self
    }

    /// Waits for the subscription's next delivery and makes it the next
    /// one this batch hands out, past the cap if need be. Cancel-safe, like
    /// [`Subscription::next`]: it can sit in a `select!`.
    pub async fn wait(&mut self) -> Result<(), RoomError> {
        if self.first.is_none() {
            self.first = Some(self.subscription.next().await?);
        }
        Ok(())
    }

    /// Counts what this batch handed out as delivered over `transport`,
    /// once it is written. When someone watches the room's wire view and
    /// the batch carried a message, returns the room's tap, with the last
    /// message when the view was already watched as the batch began, for
    /// the adapter to store in its own framing.
    pub fn delivered(
        self,
        state: &AppState,
        transport: Transport,
    ) -> Option<(Arc<RoomTap>, Option<Arc<Posted>>)> {
        let room = self.subscription.room();
        let tap = state.delivered(room, transport, self.messages, self.payload, self.oldest)?;
        Some((tap, self.last_message))
    }
}

/// The deliveries of one write, in order.
impl Iterator for Batch<'_> {
    type Item = Delivery;

    /// The next delivery of this write: the first, then whatever is ready,
    /// while fewer than the cap have been taken. Every delivery taken
    /// from the subscription is handed out (so none is lost).
    fn next(&mut self) -> Option<Delivery> {
        let delivery = match self.first.take() {
            Some(first) => first,
            None if self.taken < self.cap => self.subscription.try_next()?,
            None => return None,
        };
        self.taken += 1;
        if let Delivery::Message(m) = &delivery {
            self.messages += 1;
            self.payload += m.json.len() as u64;
            self.oldest.get_or_insert(m.accepted);
            if self.watching {
                self.last_message = Some(Arc::clone(m));
            }
        }
        Some(delivery)
    }
}
