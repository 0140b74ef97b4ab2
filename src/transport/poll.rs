//! Long and short polling: `GET /rooms/{room}/poll?since=&wait=`.
//!
//! Both are one subscription, drained: whatever is owed is answered at once;
//! with nothing owed, a long poll waits on the room's feed (never a sleep
//! loop), so it wakes the moment a message is posted, and then takes every
//! message already queued into the same body. A short poll (`wait=0`) never
//! waits. The body splices in each message's stored JSON: no message is
//! re-serialised per poller.
//!
//! One held poll per client: a long poll from a client that already has one
//! held in the same room supersedes it. The older one is answered at once,
//! `409` with a JSON error saying why, and the newer one is held. Newest
//! wins because the usual cause is a page that gave up on its poll (a
//! network change, a transport switch) while the server still holds it;
//! refusing the newer poll would leave that page waiting out the old hold.
//! The older poll had nothing to answer yet, so nothing is lost.

use crate::error::ApiError;
use crate::message::Transport;
use crate::room::Delivery;
use crate::state::{AppState, Conn, RoomParam};
use crate::stats::Limit;
use crate::transport::delivery::Batch;
use crate::transport::ReadQuery;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use std::time::Duration;

pub async fn poll(
    State(state): State<AppState>,
    RoomParam(room): RoomParam,
    query: ReadQuery,
    Conn(conn): Conn,
) -> Result<Response, ApiError> {
    let wait = query.wait.unwrap_or(0);
    let max_wait = state.config.max_poll_wait.as_secs();
    if wait > max_wait {
        return Err(ApiError::bad_request(format!(
            "wait must be 0 (short poll) or 1..={max_wait} seconds (long poll)"
        )));
    }
    let transport = if wait == 0 {
        Transport::Poll
    } else {
        Transport::LongPoll
    };
    // Presence needs a stable poller id: the `client` query value when
    // given, else the peer address.
    let peer = conn.as_ref().map(|c| c.peer.to_string());
    let key = query.client.as_deref().or(peer.as_deref()).unwrap_or("");
    room.saw_poller(key, transport);

    // One body is one batch (see `delivery.rs`): the client asks again
    // with the returned `next` for the rest.
    let mut subscription = room.subscribe(&query.resume()).await?;
    let mut body = PollBody::new(&subscription.hello_epoch());
    let mut batch = Batch::new(&state, &mut subscription, None);
    body.drain(&mut batch);
    // Presence events wake the wait too but add nothing to the body, so
    // wait until there is something to answer or the hold is over.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let held = (body.is_empty() && wait > 0).then(|| state.held_polls.hold(room.name(), key));
    while let Some(held) = held.as_ref().filter(|_| body.is_empty()) {
        tokio::select! {
            waited = batch.wait() => {
                waited?;
                body.drain(&mut batch);
            }
            _ = tokio::time::sleep_until(deadline) => break,
            _ = state.shutdown.cancelled() => break,
            _ = held.superseded.cancelled() => {
                state.stats.count(Limit::PollsSuperseded);
                return Err(ApiError::superseded("superseded: this client sent a newer long poll, and only one is held per client",
                ));
            }
        }
    }
    let tap = batch.delivered(&state, transport);
    if let (Some((tap, _)), Some(conn)) = (tap, &conn) {
        conn.wire.capture_exchange(move |request, response| {
            tap.store(transport.name(), Some(request), response)
        });
    }
    Ok(body.finish(subscription.cursor(), room.online()))
}

/// `{"messages":[...],"next":N,"epoch":"..."}`, built by appending bytes.
struct PollBody {
    json: Vec<u8>,
    epoch: String,
    messages: usize,
    reset: bool,
    gap: Option<(u64, u64)>,
}

impl PollBody {
    fn new(epoch: &str) -> Self {
        let mut json = Vec::with_capacity(256);
        json.extend_from_slice(br#"{"messages":["#);
        Self {
            json,
            epoch: epoch.to_owned(),
            messages: 0,
            reset: false,
            gap: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.messages == 0 && !self.reset && self.gap.is_none()
    }

    fn drain(&mut self, batch: &mut Batch) {
        for delivery in batch {
            self.push(delivery);
        }
    }

    fn push(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Message(m) => {
                if self.messages > 0 {
                    self.json.push(b',');
                }
                self.json.extend_from_slice(&m.json);
                self.messages += 1;
            }
            Delivery::Gap { from, to } => {
                let (from, to) = self.gap.map_or((from, to), |(f, _)| (f, to));
                self.gap = Some((from, to));
            }
            Delivery::Reset { epoch, .. } => {
                self.reset = true;
                self.epoch = epoch.to_string();
            }
            // A poll body carries presence as a field, filled in at the end.
            Delivery::Presence(_) => {}
        }
    }

    fn finish(mut self, next: u64, online: crate::message::Online) -> Response {
        let tail = serde_json::json!({
            "next": next,
            "epoch": self.epoch,
            "online": online,
        });
        self.json.extend_from_slice(b"],");
        let tail = serde_json::to_vec(&tail).expect("poll fields serialise");
        // Splice the object's fields after the messages array.
        self.json.extend_from_slice(&tail[1..tail.len() - 1]);
        if self.reset {
            self.json.extend_from_slice(br#","reset":true"#);
        }
        if let Some((from, to)) = self.gap {
            self.json
                .extend_from_slice(format!(r#","gap":{{"from":{from},"to":{to}}}"#).as_bytes());
        }
        self.json.push(b'}');
        (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            self.json,
        )
            .into_response()
    }
}
