//! The axum-example shape: a chat server written the way axum's own chat
//! example is, to measure ours against the code a reader would start from.
//!
//! Its shape, on purpose: one `tokio::sync::broadcast` channel per room
//! (in a map behind a std Mutex) carrying each message as a `String`, so
//! every receiver gets its own copy; a WebSocket split into a sink and a
//! stream, one task writing and one reading, the first to end aborting
//! the other; tungstenite's default buffers; one write and flush per
//! message; axum's `Sse` with an `Event` built per receiver; a receiver
//! that falls behind the channel is dropped, as the example's
//! `while let Ok(msg) = rx.recv().await` does. No history, resume,
//! presence, limits or wire accounting.
//!
//! It speaks only what loadgen's WebSocket and SSE clients need: `POST
//! /rooms/{room}/messages` (ids per room, the contract's message JSON
//! encoded once per post), `hello` first on a stream, the messages after
//! it, and a `/stats` that counts deliveries (one relaxed add each, the
//! figure loadgen divides CPU by). No polling: the example has none.
//!
//! `loadgen axum-shape` serves it; `loadgen --axum-shape` runs every
//! WebSocket and SSE workload against it too and reports the server's CPU
//! per delivery over its.

use super::floor::Delivered;
use crate::message::{now_millis, Control, Draft};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{SinkExt, Stream, StreamExt};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Messages a room's channel holds for a slow receiver. The example's 100
/// would drop a receiver at 400 msg/s after a quarter of a second behind;
/// this is the floor's ring size, so the two lose receivers alike.
const CHANNEL: usize = 1024;

/// A message as the example broadcasts it: owned, cloned per receiver.
#[derive(Clone)]
struct Posted {
    id: u64,
    json: String,
}

struct Room {
    tx: broadcast::Sender<Posted>,
    latest: u64,
}

struct AppState {
    // A std Mutex: held to look up or create a room and to number and
    // send one message, never across an await.
    rooms: Mutex<HashMap<String, Room>>,
    delivered: Delivered,
}

type Shared = Arc<AppState>;

/// A room exists as soon as it is used.
fn room_in<'a>(rooms: &'a mut HashMap<String, Room>, name: &str) -> &'a mut Room {
    rooms.entry(name.to_owned()).or_insert_with(|| Room {
        tx: broadcast::channel(CHANNEL).0,
        latest: 0,
    })
}

impl AppState {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Room>> {
        // A panic elsewhere cannot leave the map torn: every change is one
        // insert or one counter step.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The room's channel, subscribed, and the `hello` that opens a stream.
    fn join(&self, room: &str) -> (broadcast::Receiver<Posted>, String) {
        let mut rooms = self.rooms();
        let entry = room_in(&mut rooms, room);
        let hello = Control::Hello {
            room: room.to_owned(),
            epoch: "axum-shape".into(),
            latest: entry.latest,
        };
        let hello = String::from_utf8_lossy(&hello.to_json()).into_owned();
        (entry.tx.subscribe(), hello)
    }
}

/// The routes, axum-example style: state in an `Arc` behind `State`.
pub fn app() -> Router {
    let state = Arc::new(AppState {
        rooms: Mutex::new(HashMap::new()),
        delivered: Delivered::default(),
    });
    Router::new()
        .route("/rooms/{room}/messages", post(post_message))
        .route("/rooms/{room}/ws", get(ws_handler))
        .route("/rooms/{room}/sse", get(sse_handler))
        .route("/stats", get(stats))
        .with_state(state)
}

async fn post_message(
    State(state): State<Shared>,
    Path(room): Path<String>,
    Json(draft): Json<Draft>,
) -> Response {
    let mut rooms = state.rooms();
    let entry = room_in(&mut rooms, &room);
    entry.latest += 1;
    let id = entry.latest;
    let message = draft.into_message(&room, id, now_millis());
    let json = serde_json::to_string(&message).expect("a chat message always serialises");
    // Sent under the lock, so receivers see ids in order; no receiver is
    // not an error.
    let _ = entry.tx.send(Posted { id, json });
    drop(rooms);
    (StatusCode::CREATED, Json(serde_json::json!({ "id": id }))).into_response()
}

async fn ws_handler(
    State(state): State<Shared>,
    Path(room): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| ws_session(socket, state, room))
}

/// Split, one task per direction, the first to finish ends the other.
async fn ws_session(socket: WebSocket, state: Shared, room: String) {
    let (mut sender, mut receiver) = socket.split();
    let (mut rx, hello) = state.join(&room);
    if sender.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    let mut send_task = tokio::spawn(async move {
        while let Ok(posted) = rx.recv().await {
            if sender
                .send(Message::Text(posted.json.into()))
                .await
                .is_err()
            {
                break;
            }
            state.delivered.ws.fetch_add(1, Relaxed);
        }
    });
    // loadgen's receivers only listen; reading keeps pings answered and
    // sees the close.
    let mut recv_task = tokio::spawn(async move {
        while let Some(Ok(message)) = receiver.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    });
    tokio::select! {
        _ = &mut send_task => recv_task.abort(),
        _ = &mut recv_task => send_task.abort(),
    }
}

async fn sse_handler(
    State(state): State<Shared>,
    Path(room): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (rx, hello) = state.join(&room);
    let hello = Event::default().event("hello").data(hello);
    let messages = futures_util::stream::unfold((rx, state), |(mut rx, state)| async move {
        let posted = rx.recv().await.ok()?;
        state.delivered.sse.fetch_add(1, Relaxed);
        let event = Event::default().id(posted.id.to_string()).data(posted.json);
        Some((event, (rx, state)))
    });
    let events = futures_util::stream::once(async { hello }).chain(messages);
    Sse::new(events.map(Ok)).keep_alive(KeepAlive::default())
}

async fn stats(State(state): State<Shared>) -> Response {
    state.delivered.stats()
}
