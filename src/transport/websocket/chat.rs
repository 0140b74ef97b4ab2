//! WebSocket: `GET /rooms/{room}/ws`, upgrade -> split -> `select!`.
//!
//! One task per socket waits on the room's next delivery and on the
//! socket's next event (a message, a ping due, shutdown; see
//! `mod.rs`, which this shares with the echo route). A wake-up for a
//! delivery does not touch the socket's read half: it is polled only when
//! its own waker fired (`gate.rs`).
//! - Sending: a `{"type":"send",...}` text frame is posted to the room and
//!   answered with an `ack` (the message itself comes back like any other).
//!   Bad input, and sends over the send rate, get an `error` frame and the
//!   socket stays open.
//! - Batching: when several deliveries are ready, they are queued into
//!   tungstenite's write buffer and flushed together, one syscall for many
//!   frames under load, one per frame when idle.
//! - Slow readers: a flush that cannot finish within the write timeout means
//!   the peer stopped reading; the socket is closed. Until then the room
//!   never waits for it (see `Subscription::next`).

use crate::conn::ConnInfo;
use crate::error::ApiError;
use crate::message::Transport;
use crate::message::{Control, Draft};
use crate::ratelimit::{self, allow, TokenBucket};
use crate::room::{Delivery, Room, RoomError, Subscription};
use crate::state::{AppState, Conn, RoomParam};
use crate::stats::Limit;
use crate::transport::delivery::Batch;
use crate::transport::websocket::{self, close, within_write_timeout, End, Event, Link};
use crate::transport::ReadQuery;
use crate::wire_view::ws_text_frame;
use axum::extract::rejection::PathRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use futures_util::SinkExt;
use serde::Deserialize;
use std::sync::Arc;

pub async fn upgrade(
    State(state): State<AppState>,
    // The name as sent, for the log of a refused room.
    name: Result<Path<String>, PathRejection>,
    room: Result<RoomParam, RoomError>,
    query: ReadQuery,
    Conn(conn): Conn,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade?;
    let room = match room {
        Ok(RoomParam(room)) => room,
        // A page cannot read the status of a refused handshake, so a room
        // cap is explained over the socket: an error event, then a close.
        Err(e) if e.is_room_cap() => {
            let name = name.map(|Path(name)| name).unwrap_or_default();
            return Ok(refuse(upgrade, &state, conn, &name, e));
        }
        Err(e) => return Err(e.into()),
    };
    // Subscribe before answering the handshake: nothing posted between the
    // 101 and the task's first poll is missed.
    let subscription = room.subscribe(&query.resume()).await?;
    if let (Some(tap), Some(conn)) = (state.taps.watching(room.name()), &conn) {
        conn.wire.capture_exchange(move |request, response| {
            tap.store("handshake", Some(request), response)
        });
    }
    Ok(websocket::accept(
        upgrade,
        &state,
        conn,
        Some(room.name().into()),
        Transport::Ws,
        |link| async move {
            Session::new(link.state(), room, subscription, link.limited())
                .run(link)
                .await
        },
    ))
}

/// Opens the socket only to say why the room was refused, and closes it:
/// 1013 (try again later) when the server holds its maximum of rooms, 1008
/// (policy) when the address is over its room-creation rate.
fn refuse(
    upgrade: WebSocketUpgrade,
    state: &AppState,
    conn: Option<ConnInfo>,
    room: &str,
    e: RoomError,
) -> Response {
    let code = match e {
        RoomError::Full { .. } => close_code::AGAIN,
        _ => close_code::POLICY,
    };
    let reason = error(&e.to_string()).to_json();
    websocket::accept(
        upgrade,
        state,
        conn,
        Some(room.into()),
        Transport::Ws,
        move |mut link| async move {
            let end = match link.write([text(reason)]).await {
                Ok(()) => End::Close(close(code, "room refused: see the error event")),
                Err(end) => end,
            };
            link.finish(end).await;
        },
    )
}

/// What a client may send in a text frame.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Command {
    Send(Draft),
}

struct Session {
    state: AppState,
    room: Arc<Room>,
    subscription: Subscription,
    /// The send rate, for a peer the per-address limits apply to.
    sends: Option<TokenBucket>,
}

impl Session {
    fn new(state: &AppState, room: Arc<Room>, subscription: Subscription, limited: bool) -> Self {
        let sends = limited
            .then(|| TokenBucket::new(state.config.send_rate))
            .flatten();
        Self {
            state: state.clone(),
            room,
            subscription,
            sends,
        }
    }

    async fn run(mut self, mut link: Link) {
        let _presence = self.room.join(Transport::Ws);
        let end = self.serve(&mut link).await;
        link.finish(end).await;
    }

    async fn serve(&mut self, link: &mut Link) -> End {
        let hello = text(self.subscription.hello().to_json());
        if let Err(end) = link.write([hello]).await {
            return end;
        }
        loop {
            let step = tokio::select! {
                event = link.next() => match event {
                    Ok(Event::Message(Message::Text(frame))) => {
                        let reply = self.handle_text(&frame).await;
                        link.write([text(reply.to_json())]).await
                    }
                    Ok(Event::Message(_)) => {
                        let reply = error("binary frames are not supported: send JSON text frames");
                        link.write([text(reply.to_json())]).await
                    }
                    Ok(Event::PingDue) => link.ping().await,
                    Err(end) => Err(end),
                },
                delivery = self.subscription.next() => match delivery {
                    Ok(first) => self.write_batch(link, first).await,
                    Err(_) => Err(End::Close(close(close_code::AGAIN, "message store unavailable"))),
                },
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn handle_text(&mut self, frame: &str) -> Control {
        let command = match serde_json::from_str::<Command>(frame) {
            Ok(command) => command,
            Err(e) => return error(&format!("bad command: {e}")),
        };
        match command {
            Command::Send(_) if !allow(&mut self.sends) => {
                self.state.stats.count(Limit::SendsRateLimited);
                error(&ratelimit::refusal(self.state.config.send_rate))
            }
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

    /// Queues `first` and every delivery already waiting (see
    /// `delivery.rs`), then flushes once. Frames go straight into
    /// tungstenite's write buffer: nothing is allocated per delivery here.
    async fn write_batch(&mut self, link: &mut Link, first: Delivery) -> Result<(), End> {
        let mut batch = Batch::new(&self.state, &mut self.subscription, Some(first));
        let sink = link.sink();
        let feed_all = async {
            for delivery in batch.by_ref() {
                let json = match delivery {
                    Delivery::Message(m) => m.json.clone(),
                    other => other.control_json().unwrap_or_default(),
                };
                sink.feed(text(json)).await?;
            }
            sink.flush().await
        };
        within_write_timeout(&self.state, feed_all).await?;
        let tap = batch
            .delivered(&self.state, Transport::Ws)
            .filter(|_| !link.over_h2());
        if let Some((tap, Some(last))) = tap {
            tap.store_delivery(Transport::Ws, ws_text_frame(&last.json));
        }
        Ok(())
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
