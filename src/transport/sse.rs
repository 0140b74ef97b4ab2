//! Server-Sent Events: `GET /rooms/{room}/sse`, a `text/event-stream` body.
//!
//! The stream opens with a `retry:` hint and a `hello` event (no `id:`, so it
//! does not move the browser's `Last-Event-ID`), then one event per message:
//! `id: <id>` and `data: <message JSON>`. A browser that reconnects sends the
//! last id it saw in `Last-Event-ID`, which wins over `since`: that is the
//! whole resume protocol, and `EventSource` does it without any page code.
//!
//! A comment line (`:`) goes out whenever the stream has been quiet for the
//! keepalive interval, so proxies and idle timers see traffic. The stream
//! ends on server shutdown: hyper's graceful shutdown would otherwise wait
//! for it forever.

use crate::error::ApiError;
use crate::message::Posted;
use crate::message::Transport;
use crate::room::{Delivery, PresenceGuard, Subscription};
use crate::state::{AppState, RoomParam};
use crate::transport::delivery::Batch;
use crate::transport::ReadQuery;
use crate::wire_view::http_chunk;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Version};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use std::convert::Infallible;
use tokio::time::sleep;

pub async fn stream(
    State(state): State<AppState>,
    RoomParam(room): RoomParam,
    mut query: ReadQuery,
    version: Version,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(last) = headers.get("last-event-id") {
        let last = last
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a message id"))?;
        query.since = Some(last);
    }
    let subscription = room.subscribe(&query.resume()).await?;
    let presence = room.join(Transport::Sse);

    let mut opening = BytesMut::new();
    let retry_ms = state.config.sse.retry.as_millis();
    opening.put_slice(format!("retry: {retry_ms}\n\n").as_bytes());
    put_event(
        &mut opening,
        Some("hello"),
        None,
        &subscription.hello().to_json(),
    );

    let stream = EventStream {
        state,
        subscription,
        _presence: presence,
        opening: Some(opening.freeze()),
        http1: version < Version::HTTP_2,
    };
    let body = Body::from_stream(futures_util::stream::unfold(
        stream,
        EventStream::next_chunk,
    ));
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Ask nginx-style proxies not to buffer the stream.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response())
}

struct EventStream {
    state: AppState,
    subscription: Subscription,
    _presence: PresenceGuard,
    opening: Option<Bytes>,
    /// The wire view gets this stream's chunks rebuilt as HTTP/1.1 frames
    /// them; over HTTP/2 the connection captures its DATA frames instead.
    http1: bool,
}

impl EventStream {
    /// The next chunk of the body: the opening, a batch of events, or a
    /// keepalive; `None` ends the body (shutdown or a closed room).
    async fn next_chunk(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        if let Some(opening) = self.opening.take() {
            return Some((Ok(opening), self));
        }
        let first = tokio::select! {
            delivery = self.subscription.next() => delivery.ok()?,
            _ = sleep(self.state.config.sse.keepalive) => return Some((Ok(Bytes::from_static(b":\n\n")), self)),
            _ = self.state.shutdown.cancelled() => return None,
        };
        let mut batch = Batch::new(&self.state, &mut self.subscription, Some(first));
        let first = batch.next()?;
        let chunk = match (first, batch.next()) {
            // The common case when the stream keeps up: one message, whose
            // shared SSE encoding is handed to hyper as is, with no copy.
            (Delivery::Message(m), None) => m.sse_frame(message_frame),
            // Several deliveries (or a control event): one chunk.
            (first, second) => {
                let mut chunk = BytesMut::new();
                encode(&mut chunk, &first);
                for delivery in second
                    .into_iter()
                    .chain(std::iter::from_fn(|| batch.next()))
                {
                    encode(&mut chunk, &delivery);
                }
                chunk.freeze()
            }
        };
        let tap = batch.delivered(&self.state, Transport::Sse);
        if let Some((tap, _)) = tap.filter(|_| self.http1) {
            tap.store_delivery(Transport::Sse, http_chunk(&chunk));
        }
        Some((Ok(chunk), self))
    }
}

fn encode(chunk: &mut BytesMut, delivery: &Delivery) {
    match delivery {
        // Encoded once per message, then shared by every SSE receiver.
        Delivery::Message(m) => chunk.put_slice(&m.sse_frame(message_frame)),
        Delivery::Presence(json) => put_event(chunk, Some("presence"), None, json),
        // A gap carries the id it skips to, so a reconnect after it resumes
        // past the hole instead of being told of it again.
        Delivery::Gap { to, .. } => {
            put_event(chunk, Some("gap"), Some(*to), &delivery_json(delivery))
        }
        Delivery::Reset { .. } => put_event(chunk, Some("reset"), None, &delivery_json(delivery)),
    }
}

fn delivery_json(delivery: &Delivery) -> Bytes {
    delivery.control_json().unwrap_or_default()
}

fn message_frame(m: &Posted) -> Bytes {
    let mut frame = BytesMut::with_capacity(m.json.len() + 32);
    put_event(&mut frame, None, Some(m.id), &m.json);
    frame.freeze()
}

/// One event. The JSON we send never contains a raw newline (serde escapes
/// it), so a single `data:` line carries it.
fn put_event(out: &mut BytesMut, event: Option<&str>, id: Option<u64>, data: &[u8]) {
    if let Some(event) = event {
        out.put_slice(b"event: ");
        out.put_slice(event.as_bytes());
        out.put_u8(b'\n');
    }
    if let Some(id) = id {
        out.put_slice(format!("id: {id}\n").as_bytes());
    }
    out.put_slice(b"data: ");
    out.put_slice(data);
    out.put_slice(b"\n\n");
}
