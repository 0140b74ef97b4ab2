//! The floor: the least a server can do to fan messages out over each
//! transport, so loadgen can say how far above it the real server runs.
//!
//! It speaks just enough of the wire contract for loadgen's own clients
//! (`hello` on connect, messages as the same JSON objects, the same SSE
//! events and poll bodies, `/stats` delivery counts) and writes the same
//! bytes to the same kind of sockets, on the same stack (axum, hyper,
//! tungstenite with the server's buffer sizes), batching ready messages
//! into one write as the server does. What it leaves out is what the
//! comparison is about: no rooms (one feed for every room name), no resume
//! beyond a short ring for polls, no presence, no wire accounting, no
//! limits, and no JSON work per delivery: each message is encoded once, as
//! JSON and as an SSE event, when it is posted.
//!
//! `loadgen floor` serves it; `loadgen --floor` runs every workload against
//! it too and reports the server's CPU per delivery over the floor's.

use crate::config::WsConfig;
use crate::message::CountersSnapshot;
use crate::message::{now_millis, Draft, Posted};
use axum::body::Body;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use serde::Deserialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};

/// Messages kept for pollers to catch up from; the feed's capacity too.
const RING: usize = 1024;
/// Ready messages written in one batch at most, as the server does.
const MAX_BATCH: usize = 64;
const EPOCH: &str = "floor";

/// One posted message, encoded once for every transport.
struct Frame {
    id: u64,
    json: Bytes,
    text: Utf8Bytes,
    sse: Bytes,
}

/// Deliveries per transport: the one figure loadgen reads from a baseline
/// server's `/stats` (its CPU per delivery), shared with `axum_shape.rs`.
#[derive(Default)]
pub(super) struct Delivered {
    pub ws: AtomicU64,
    pub sse: AtomicU64,
    pub longpoll: AtomicU64,
    pub poll: AtomicU64,
}

impl Delivered {
    /// The `/stats` shape loadgen reads, with only `delivered` counted.
    pub fn stats(&self) -> Response {
        let one = |n: &AtomicU64| CountersSnapshot {
            delivered: n.load(Relaxed),
            ..CountersSnapshot::default()
        };
        Json(serde_json::json!({"transports": {
            "ws": one(&self.ws),
            "sse": one(&self.sse),
            "longpoll": one(&self.longpoll),
            "poll": one(&self.poll),
        }}))
        .into_response()
    }
}

struct Floor {
    feed: broadcast::Sender<Arc<Frame>>,
    // Held to append one message or copy a few pointers, never across an
    // await.
    ring: Mutex<VecDeque<Arc<Frame>>>,
    latest: AtomicU64,
    delivered: Delivered,
    ws: WsConfig,
}

type Shared = Arc<Floor>;

/// The floor's routes, one feed for every room name.
pub fn app(ws: WsConfig) -> Router {
    let floor = Arc::new(Floor {
        feed: broadcast::channel(RING).0,
        ring: Mutex::new(VecDeque::with_capacity(RING)),
        latest: AtomicU64::new(0),
        delivered: Delivered::default(),
        ws,
    });
    Router::new()
        .route("/rooms/{room}/messages", post(post_message))
        .route("/rooms/{room}/ws", get(ws_upgrade))
        .route("/rooms/{room}/sse", get(sse))
        .route("/rooms/{room}/poll", get(poll))
        .route("/stats", get(stats))
        .with_state(floor)
}

fn ring(floor: &Floor) -> std::sync::MutexGuard<'_, VecDeque<Arc<Frame>>> {
    // Plain pointers inside: a panic elsewhere cannot leave it torn.
    floor.ring.lock().unwrap_or_else(|p| p.into_inner())
}

async fn post_message(
    State(floor): State<Shared>,
    Path(room): Path<String>,
    Json(draft): Json<Draft>,
) -> Response {
    let mut ring = ring(&floor);
    let id = floor.latest.load(Relaxed) + 1;
    let posted = Posted::new(&draft.into_message(&room, id, now_millis()));
    let mut sse = BytesMut::with_capacity(posted.json.len() + 32);
    sse.extend_from_slice(format!("id: {id}\ndata: ").as_bytes());
    sse.extend_from_slice(&posted.json);
    sse.extend_from_slice(b"\n\n");
    let frame = Arc::new(Frame {
        id,
        text: Utf8Bytes::try_from(posted.json.clone()).expect("JSON is UTF-8"),
        json: posted.json,
        sse: sse.freeze(),
    });
    if ring.len() == RING {
        ring.pop_front();
    }
    ring.push_back(Arc::clone(&frame));
    floor.latest.store(id, Relaxed);
    // Under the lock, so the feed sees ids in order.
    let _ = floor.feed.send(frame);
    drop(ring);
    (StatusCode::CREATED, format!(r#"{{"id":{id}}}"#)).into_response()
}

fn hello(floor: &Floor, room: &str) -> String {
    format!(
        r#"{{"type":"hello","room":"{room}","epoch":"{EPOCH}","latest":{}}}"#,
        floor.latest.load(Relaxed)
    )
}

async fn ws_upgrade(
    State(floor): State<Shared>,
    Path(room): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let settings = &floor.ws;
    let feed = floor.feed.subscribe();
    let hello = hello(&floor, &room);
    upgrade
        .read_buffer_size(settings.read_buffer)
        .write_buffer_size(settings.write_buffer)
        .max_write_buffer_size(settings.effective_max_write_buffer())
        .on_upgrade(move |socket| ws_session(floor, socket, feed, hello))
}

async fn ws_session(
    floor: Shared,
    mut socket: WebSocket,
    mut feed: broadcast::Receiver<Arc<Frame>>,
    hello: String,
) {
    if socket.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            frame = next_frame(&mut feed) => {
                let Some(first) = frame else { return };
                let mut next = Some(first);
                let mut sent = 0u64;
                while let Some(frame) = next {
                    if socket.feed(Message::Text(frame.text.clone())).await.is_err() {
                        return;
                    }
                    sent += 1;
                    next = if sent < MAX_BATCH as u64 { feed.try_recv().ok() } else { None };
                }
                if socket.flush().await.is_err() {
                    return;
                }
                floor.delivered.ws.fetch_add(sent, Relaxed);
            }
        }
    }
}

/// The next frame from the feed; a reader that fell behind skips ahead
/// (the floor keeps no resume), a closed feed ends the reader. Cancel-safe.
async fn next_frame(feed: &mut broadcast::Receiver<Arc<Frame>>) -> Option<Arc<Frame>> {
    loop {
        match feed.recv().await {
            Ok(frame) => return Some(frame),
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return None,
        }
    }
}

async fn sse(State(floor): State<Shared>, Path(room): Path<String>) -> Response {
    let feed = floor.feed.subscribe();
    let opening = Bytes::from(format!("event: hello\ndata: {}\n\n", hello(&floor, &room)));
    let state = (floor, feed, Some(opening));
    let body = Body::from_stream(futures_util::stream::unfold(
        state,
        |(floor, mut feed, opening)| async move {
            if let Some(opening) = opening {
                return Some((
                    Ok::<_, std::convert::Infallible>(opening),
                    (floor, feed, None),
                ));
            }
            let first = next_frame(&mut feed).await?;
            let chunk = match feed.try_recv() {
                // One message: its shared encoding as is, no copy.
                Err(_) => {
                    floor.delivered.sse.fetch_add(1, Relaxed);
                    first.sse.clone()
                }
                Ok(second) => {
                    let mut chunk = BytesMut::new();
                    chunk.extend_from_slice(&first.sse);
                    chunk.extend_from_slice(&second.sse);
                    let mut sent = 2u64;
                    while sent < MAX_BATCH as u64 {
                        let Ok(frame) = feed.try_recv() else { break };
                        chunk.extend_from_slice(&frame.sse);
                        sent += 1;
                    }
                    floor.delivered.sse.fetch_add(sent, Relaxed);
                    chunk.freeze()
                }
            };
            Some((Ok(chunk), (floor, feed, None)))
        },
    ));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct PollQuery {
    since: Option<u64>,
    #[serde(default)]
    wait: u64,
}

async fn poll(State(floor): State<Shared>, Query(query): Query<PollQuery>) -> Response {
    let Some(since) = query.since else {
        return poll_body(&floor, query.wait, &[], floor.latest.load(Relaxed));
    };
    // Subscribe before reading the ring, so nothing falls between the two.
    let mut feed = (query.wait > 0).then(|| floor.feed.subscribe());
    let mut owed = after(&floor, since);
    if let (true, Some(feed)) = (owed.is_empty(), feed.as_mut()) {
        let hold = Duration::from_secs(query.wait.min(30));
        if tokio::time::timeout(hold, feed.recv()).await.is_ok() {
            owed = after(&floor, since);
        }
    }
    let next = owed.last().map_or(since, |f| f.id);
    poll_body(&floor, query.wait, &owed, next)
}

/// Ring frames with an id above `since`.
fn after(floor: &Floor, since: u64) -> Vec<Arc<Frame>> {
    let ring = ring(floor);
    let skip = ring.partition_point(|f| f.id <= since);
    ring.range(skip..).take(1000).cloned().collect()
}

fn poll_body(floor: &Floor, wait: u64, owed: &[Arc<Frame>], next: u64) -> Response {
    let mut body = Vec::with_capacity(64 + owed.iter().map(|f| f.json.len() + 1).sum::<usize>());
    body.extend_from_slice(br#"{"messages":["#);
    for (i, frame) in owed.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&frame.json);
    }
    body.extend_from_slice(format!(r#"],"next":{next},"epoch":"{EPOCH}"}}"#).as_bytes());
    let counter = if wait > 0 {
        &floor.delivered.longpoll
    } else {
        &floor.delivered.poll
    };
    counter.fetch_add(owed.len() as u64, Relaxed);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn stats(State(floor): State<Shared>) -> Response {
    floor.delivered.stats()
}
