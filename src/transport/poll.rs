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
//! The older poll had nothing to answer yet, so nothing is lost. The hold
//! is registered in the poller's presence entry (`pollers.rs`): one short
//! shard lock, no server-wide map.

use crate::error::ApiError;
use crate::message::{Online, Transport};
use crate::room::Delivery;
use crate::state::{AppState, Conn, RoomParam};
use crate::stats::Limit;
use crate::transport::delivery::Batch;
use crate::transport::ReadQuery;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// Messages one poll body carries at most. A poll pays a request and a
/// response head per body, so a client catching up takes a backlog in few
/// bodies (the streams write [`MAX_BATCH`](crate::transport::delivery::MAX_BATCH)
/// at a time, since their writes cost no request).
const POLL_BODY_MAX: usize = 1000;

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
    // given, else the peer address (formatted only then).
    let peer = match (&query.client, &conn) {
        (None, Some(c)) => Some(c.peer.to_string()),
        _ => None,
    };
    let key = query.client.as_deref().or(peer.as_deref()).unwrap_or("");
    room.saw_poller(key, transport);

    // One body is one batch (see `delivery.rs`) of up to POLL_BODY_MAX
    // messages: the client asks again with the returned `next` for the rest.
    let mut subscription = room.subscribe(&query.resume()).await?;
    let mut body = PollBody::new(subscription.hello_epoch());
    let mut batch = Batch::new(&state, &mut subscription, None).up_to(POLL_BODY_MAX);
    body.drain(&mut batch);
    // Presence events wake the wait too but add nothing to the body, so
    // wait until there is something to answer or the hold is over.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let held = (body.is_empty() && wait > 0).then(|| room.hold_poll(key));
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

/// `{"messages":[...],"next":N,"epoch":"...","online":{...}}`, built by
/// appending bytes: the messages' stored JSON spliced in, the few numbers
/// written in place, no JSON value built per poll.
struct PollBody {
    json: Vec<u8>,
    epoch: Arc<str>,
    messages: usize,
    reset: bool,
    gap: Option<(u64, u64)>,
}

impl PollBody {
    fn new(epoch: Arc<str>) -> Self {
        let mut json = Vec::with_capacity(256);
        json.extend_from_slice(br#"{"messages":["#);
        Self {
            json,
            epoch,
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
                self.epoch = epoch;
            }
            // A poll body carries presence as a field, filled in at the end.
            Delivery::Presence(_) => {}
        }
    }

    fn finish(mut self, next: u64, online: Online) -> Response {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let Online {
            ws,
            sse,
            longpoll,
            poll,
        } = online;
        let _ = write!(self.json, r#"],"next":{next},"epoch":"#);
        let _ = serde_json::to_writer(&mut self.json, &*self.epoch);
        let _ = write!(
            self.json,
            r#","online":{{"ws":{ws},"sse":{sse},"longpoll":{longpoll},"poll":{poll}}}"#
        );
        if self.reset {
            self.json.extend_from_slice(br#","reset":true"#);
        }
        if let Some((from, to)) = self.gap {
            let _ = write!(self.json, r#","gap":{{"from":{from},"to":{to}}}"#);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_body_is_the_json_of_the_contract() {
        let mut body = PollBody::new("e1".into());
        body.push(Delivery::Gap { from: 1, to: 3 });
        let online = Online {
            ws: 1,
            sse: 2,
            longpoll: 3,
            poll: 4,
        };
        let response = body.finish(3, online);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "messages": [], "next": 3, "epoch": "e1",
                "online": {"ws": 1, "sse": 2, "longpoll": 3, "poll": 4},
                "gap": {"from": 1, "to": 3},
            })
        );
    }
}
