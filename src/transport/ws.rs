//! WebSocket: `GET /rooms/{room}/ws`, upgrade -> split -> `select!`.
//!
//! One task per socket waits on four things at once: the room's next
//! delivery, the client's next frame, the ping timer, and server shutdown.
//! - Sending: a `{"type":"send",...}` text frame is posted to the room and
//!   answered with an `ack` (the message itself comes back like any other).
//!   Bad input gets an `error` frame and the socket stays open.
//! - Batching: when several deliveries are ready, they are queued into
//!   tungstenite's write buffer and flushed together, one syscall for many
//!   frames under load, one per frame when idle.
//! - Slow readers: a flush that cannot finish within the write timeout means
//!   the peer stopped reading; the socket is dropped. Until then the room
//!   never waits for it (see `Subscription::next`).
//! - Liveness: a ping every interval; no pong within the timeout and the
//!   peer is gone.
//! - Close: after a close frame is received or sent, keep reading until the
//!   stream ends, so tungstenite can complete the close handshake.

use crate::app::{AppState, Conn, RoomParam};
use crate::error::ApiError;
use crate::message::{Control, Draft};
use crate::room::{Delivery, Room, Subscription, Via};
use crate::stats::Transport;
use crate::transport::ReadQuery;
use crate::wiretap::ws_text_frame;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep_until, timeout, Instant};

/// Deliveries queued into one flush at most.
const MAX_BATCH: usize = 64;
/// How long to wait for the peer's reply to our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub async fn upgrade(
    State(state): State<AppState>,
    RoomParam(room): RoomParam,
    query: ReadQuery,
    conn: Conn,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    // Subscribe before answering the handshake: nothing posted between the
    // 101 and the task's first poll is missed.
    let subscription = room.subscribe(&query.resume()).await?;
    if let (Some(tap), Some(conn)) = (state.taps.watching(room.name()), &conn.0) {
        conn.wire.capture_exchange(move |request, response| {
            tap.store("handshake", Some(request), response)
        });
    }
    let settings = &state.config.ws;
    let tracked = state.tasks.token();
    Ok(upgrade
        .read_buffer_size(settings.read_buffer)
        .write_buffer_size(settings.write_buffer)
        .max_write_buffer_size(settings.max_write_buffer)
        .max_message_size(settings.max_message)
        .max_frame_size(settings.max_message)
        .on_upgrade(move |socket| async move {
            let _tracked = tracked;
            if let Some(conn) = conn.0 {
                conn.wire.charge_reads_to(Transport::Ws);
            }
            Session::new(state, room, subscription).run(socket).await;
        })
        .into_response())
}

/// What a client may send in a text frame.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Command {
    Send(Draft),
}

/// Why the session loop stopped.
enum End {
    /// Close the socket with this frame, then wait for the peer's reply.
    Close(CloseFrame),
    /// The peer is gone, closed, or broke the protocol: nothing to send.
    Drop,
}

struct Session {
    state: AppState,
    room: Arc<Room>,
    subscription: Subscription,
}

type Sink = SplitSink<WebSocket, Message>;

impl Session {
    fn new(state: AppState, room: Arc<Room>, subscription: Subscription) -> Self {
        Self {
            state,
            room,
            subscription,
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let (mut sink, mut stream) = socket.split();
        let _presence = self.room.join(Via::Ws);
        let end = self.serve(&mut sink, &mut stream).await;
        if let End::Close(frame) = end {
            let _ = timeout(CLOSE_GRACE, async {
                if sink.send(Message::Close(Some(frame))).await.is_ok() {
                    // Read until the peer's close reply ends the stream.
                    while let Some(Ok(_)) = stream.next().await {}
                }
            })
            .await;
        }
    }

    async fn serve(&mut self, sink: &mut Sink, stream: &mut SplitStream<WebSocket>) -> End {
        let settings = self.state.config.ws.clone();
        let hello = text(self.subscription.hello().to_json());
        if self.write(sink, [hello]).await.is_err() {
            return End::Drop;
        }
        let mut next_ping = Instant::now() + settings.ping_interval;
        let mut pong_due: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = self.state.shutdown.cancelled() => {
                    return End::Close(close(close_code::AWAY, "server shutting down"));
                }
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(frame))) => {
                        let reply = self.handle_text(&frame).await;
                        if self.write(sink, [text(reply.to_json())]).await.is_err() {
                            return End::Drop;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let reply = error("binary frames are not supported: send JSON text frames");
                        if self.write(sink, [text(reply.to_json())]).await.is_err() {
                            return End::Drop;
                        }
                    }
                    Some(Ok(Message::Pong(_))) => pong_due = None,
                    // tungstenite queues the pong itself; it goes out with
                    // the next write or flush.
                    Some(Ok(Message::Ping(_))) => {}
                    // tungstenite has queued the close reply; reading on
                    // until the stream ends sends it.
                    Some(Ok(Message::Close(_))) => {
                        let _ = timeout(CLOSE_GRACE, async {
                            while let Some(Ok(_)) = stream.next().await {}
                        })
                        .await;
                        return End::Drop;
                    }
                    None | Some(Err(_)) => return End::Drop,
                },
                delivery = self.subscription.next() => {
                    let Ok(first) = delivery else {
                        return End::Close(close(close_code::AGAIN, "message store unavailable"));
                    };
                    if self.write_batch(sink, first).await.is_err() {
                        return End::Drop;
                    }
                }
                _ = sleep_until(next_ping) => {
                    next_ping += settings.ping_interval;
                    pong_due.get_or_insert(Instant::now() + settings.pong_timeout);
                    if self.write(sink, [Message::Ping(Default::default())]).await.is_err() {
                        return End::Drop;
                    }
                }
                _ = sleep_until(pong_due.unwrap_or_else(far_future)), if pong_due.is_some() => {
                    return End::Close(close(close_code::POLICY, "no pong within the timeout"));
                }
            }
        }
    }

    async fn handle_text(&self, frame: &str) -> Control {
        let command = match serde_json::from_str::<Command>(frame) {
            Ok(command) => command,
            Err(e) => return error(&format!("bad command: {e}")),
        };
        match command {
            Command::Send(draft) => {
                let client_id = draft.client_id.clone();
                match self.room.post(draft).await {
                    Ok(posted) => Control::Ack {
                        id: posted.id,
                        client_id,
                    },
                    Err(e) => error(&e.to_string()),
                }
            }
        }
    }

    /// Queues `first` and every delivery already waiting, then flushes once.
    /// Frames go straight into tungstenite's write buffer: nothing is
    /// allocated per delivery on this path.
    async fn write_batch(&mut self, sink: &mut Sink, first: Delivery) -> Result<(), ()> {
        let (mut messages, mut payload) = (0u64, 0u64);
        let mut last_message = None;
        let subscription = &mut self.subscription;
        let feed_all = async {
            let mut next = Some(first);
            let mut fed = 0;
            while let Some(delivery) = next {
                let json = match delivery {
                    Delivery::Message(m) => {
                        messages += 1;
                        payload += m.json.len() as u64;
                        let json = m.json.clone();
                        last_message = Some(m);
                        json
                    }
                    other => other.control_json().unwrap_or_default(),
                };
                sink.feed(text(json)).await?;
                fed += 1;
                next = if fed < MAX_BATCH {
                    subscription.try_next()
                } else {
                    None
                };
            }
            sink.flush().await
        };
        within_write_timeout(self.state.config.ws.write_timeout, feed_all).await?;
        let tap = (self.state).delivered(&self.room, Transport::Ws, messages, payload);
        if let (Some(tap), Some(m)) = (tap, last_message) {
            tap.store_delivery(Transport::Ws, ws_text_frame(&m.json));
        }
        Ok(())
    }

    /// Feeds the frames and flushes them, within the write timeout.
    async fn write(
        &self,
        sink: &mut Sink,
        frames: impl IntoIterator<Item = Message>,
    ) -> Result<(), ()> {
        let write = async {
            for frame in frames {
                sink.feed(frame).await?;
            }
            sink.flush().await
        };
        within_write_timeout(self.state.config.ws.write_timeout, write).await
    }
}

/// A write that cannot finish in time means the peer stopped reading; the
/// caller drops the socket either way, so the error itself is not needed.
async fn within_write_timeout(
    limit: Duration,
    write: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Result<(), ()> {
    match timeout(limit, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(()),
    }
}

fn text(json: bytes::Bytes) -> Message {
    // serde_json only produces UTF-8, so this check cannot fail; it is a
    // linear scan of the frame, far cheaper than the syscall that sends it.
    Message::Text(Utf8Bytes::try_from(json).expect("JSON is UTF-8"))
}

fn error(message: &str) -> Control {
    Control::Error {
        error: message.to_owned(),
    }
}

fn close(code: u16, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}
