//! WebSocket: the two routes (the chat socket in `chat.rs`, the echo in
//! `echo.rs`), and, in this file, what both share: the socket's limits, the heartbeat, the inbound frame
//! budget, writes bounded by the write timeout, and how a session ends.
//!
//! - Limits: `configure` applies `config.ws` to every upgrade, so the echo
//!   route that Autobahn tests is the chat socket's twin: small read and
//!   write buffers, a bounded write buffer (the socket's send queue), and a
//!   64 KiB cap on messages and frames. tungstenite checks a frame's length
//!   in its header before reserving anything, so a header claiming 2^63
//!   bytes costs nothing.
//! - Heartbeat: a ping every interval; no pong within the timeout and the
//!   peer is gone (1008). One timer per socket, moved, never rebuilt.
//! - Waiting: [`Link::next`] keeps its timer and its shutdown wait across
//!   calls, and polls them and the read half only after their waker fired
//!   (`gate.rs`): a session woken a thousand times a second
//!   for deliveries does not re-read an idle socket each time.
//! - Inbound budget: every frame a peer sends (message, ping, pong) takes a
//!   token; a peer flooding past the rate and burst is closed (1008).
//! - Slow readers: a write that cannot finish within the write timeout
//!   means the send queue is full and the peer is not reading; the socket
//!   is closed, and its buffers freed.
//! - Errors the peer caused get the RFC 6455 close code that fits: 1009 for
//!   a message or frame over the limit, 1007 for invalid UTF-8 in a text
//!   message, 1002 for other protocol violations.
//! - Refusals: a close with 1008, 1009 or 1013 is logged at debug with the
//!   peer and the room, on the budget of `refusals.rs`.
//! - Close: after a close frame is received or sent, keep reading until the
//!   stream ends, so tungstenite can complete the close handshake. Except
//!   after an oversized frame: tungstenite would buffer the rest of it, so
//!   we send our close and stop reading.

pub mod chat;
pub mod echo;
mod gate;

use crate::config::WsConfig;
use crate::conn::ConnInfo;
use crate::message::Transport;
use crate::ratelimit::{allow, TokenBucket};
use crate::state::AppState;
use crate::stats::Limit;
use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use gate::Gate;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::{sleep_until, timeout, Instant, Sleep};
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_util::sync::WaitForCancellationFutureOwned;

/// How long to wait for the peer's side of a closing handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub type Sink = SplitSink<WebSocket, Message>;

/// Applies the socket limits of `config.ws` to an upgrade.
pub fn configure(upgrade: WebSocketUpgrade, settings: &WsConfig) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(settings.read_buffer)
        .write_buffer_size(settings.write_buffer)
        .max_write_buffer_size(settings.effective_max_write_buffer())
        .max_message_size(settings.max_message)
        .max_frame_size(settings.max_message)
}

/// Answers the handshake and runs `session` on the socket, as a task the
/// server's shutdown waits for. The socket's bytes are charged to
/// `transport`; per-address limits apply unless the peer is exempt.
/// `room` names the socket's room in the log of refusals.
pub fn accept<F, Fut>(
    upgrade: WebSocketUpgrade,
    state: &AppState,
    conn: Option<ConnInfo>,
    room: Option<Arc<str>>,
    transport: Transport,
    session: F,
) -> Response
where
    F: FnOnce(Link) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tracked = state.tasks.token();
    let limited = conn
        .as_ref()
        .is_some_and(|c| state.admission.limits_apply_to(c.peer.ip()));
    let state = state.clone();
    let over_h2 = conn.as_ref().is_some_and(|c| c.wire.is_h2());
    let who = Who {
        peer: conn.as_ref().map(|c| c.peer),
        room,
    };
    configure(upgrade, &state.config.ws)
        .on_upgrade(move |socket| async move {
            let _tracked = tracked;
            if let Some(conn) = conn {
                conn.wire.upgraded_to_websocket(transport);
            }
            session(Link::new(socket, state, limited, who, over_h2)).await;
        })
        .into_response()
}

/// Why a session ended, and what is still owed to the peer.
#[derive(Debug)]
pub enum End {
    /// Send this close frame, then read on until the peer's reply.
    Close(CloseFrame),
    /// Send this close frame and read nothing more.
    Fail(CloseFrame),
    /// The peer sent a close frame; reading on sends tungstenite's reply.
    PeerClosed,
    /// The peer is gone: nothing to send.
    Drop,
}

/// What a session must act on next.
#[derive(Debug)]
pub enum Event {
    /// A text or binary message from the peer.
    Message(Message),
    /// Time to ping the peer: call [`Link::ping`].
    PingDue,
}

/// Whom a socket serves, for the log of refusals.
struct Who {
    peer: Option<SocketAddr>,
    room: Option<Arc<str>>,
}

/// One WebSocket, with its heartbeat and inbound budget.
pub struct Link {
    sink: Sink,
    stream: SplitStream<WebSocket>,
    /// The server's shutdown, awaited across calls to `next`.
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Opens when the read half, the shutdown or the timer woke the task:
    /// only then are they polled.
    gate: Gate,
    state: AppState,
    next_ping: Instant,
    pong_due: Option<Instant>,
    /// Fires at the next ping or the pong deadline, whichever is first.
    timer: Pin<Box<Sleep>>,
    /// Whether per-address limits apply to this peer.
    limited: bool,
    inbound: Option<TokenBucket>,
    who: Who,
    /// A stream of an HTTP/2 connection (RFC 8441), whose frames the
    /// connection itself captures for the wire view.
    over_h2: bool,
}

impl Link {
    fn new(socket: WebSocket, state: AppState, limited: bool, who: Who, over_h2: bool) -> Self {
        let (sink, stream) = socket.split();
        let settings = &state.config.ws;
        let inbound = limited
            .then(|| TokenBucket::new(settings.inbound_rate))
            .flatten();
        let next_ping = Instant::now() + settings.ping_interval;
        Self {
            sink,
            stream,
            shutdown: Box::pin(state.shutdown.clone().cancelled_owned()),
            gate: Gate::default(),
            next_ping,
            pong_due: None,
            timer: Box::pin(sleep_until(next_ping)),
            limited,
            inbound,
            state,
            who,
            over_h2,
        }
    }

    /// Whether this WebSocket runs on an HTTP/2 stream (RFC 8441).
    pub fn over_h2(&self) -> bool {
        self.over_h2
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Whether per-address limits (send and frame rates) apply to the peer.
    pub fn limited(&self) -> bool {
        self.limited
    }

    /// The next message or ping time; `Err` when the session must end.
    /// Cancel-safe: nothing is lost if the future is dropped, so a session
    /// can select on it beside its other work. The read half, the
    /// shutdown and the timer are polled only once their waker has fired
    /// (`gate.rs`), so a session woken for a delivery pays next to nothing
    /// here.
    pub async fn next(&mut self) -> Result<Event, End> {
        std::future::poll_fn(|cx| self.poll_next_event(cx)).await
    }

    fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, End>> {
        let Some(waker) = self.gate.open(cx) else {
            return Poll::Pending;
        };
        let mut cx = Context::from_waker(&waker);
        let mut outcome = self.poll_inbound(&mut cx);
        if outcome.is_pending() {
            outcome = self.poll_timer(&mut cx);
        }
        if outcome.is_ready() {
            self.gate.reopen();
        }
        outcome
    }

    /// The shutdown, then the peer's frames: control frames are handled
    /// here, a message or the end of the session is returned.
    fn poll_inbound(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, End>> {
        if self.shutdown.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(End::Close(close(
                close_code::AWAY,
                "server shutting down",
            ))));
        }
        loop {
            let message = match ready!(self.stream.poll_next_unpin(cx)) {
                Some(Ok(message)) => message,
                Some(Err(e)) => return Poll::Ready(Err(self.read_failed(e))),
                None => return Poll::Ready(Err(End::Drop)),
            };
            if matches!(message, Message::Close(_)) {
                return Poll::Ready(Err(End::PeerClosed));
            }
            if !allow(&mut self.inbound) {
                self.state.stats.count(Limit::WsFloodClosed);
                return Poll::Ready(Err(End::Close(close(
                    close_code::POLICY,
                    "too many frames: slow down",
                ))));
            }
            match message {
                Message::Pong(_) => self.pong_due = None,
                // tungstenite has queued the pong; it goes out with the
                // next read or write.
                Message::Ping(_) => {}
                message => return Poll::Ready(Ok(Event::Message(message))),
            }
        }
    }

    /// The next ping, or the pong deadline.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, End>> {
        // One timer for whichever comes first, the next ping or the pong
        // deadline; a pong that arrives in time leaves it alone, and it
        // is moved on when it fires.
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if self.pong_due.is_some_and(|due| due <= now) {
                self.state.stats.count(Limit::WsNoPongClosed);
                return Poll::Ready(Err(End::Close(close(
                    close_code::POLICY,
                    "no pong within the timeout",
                ))));
            }
            if self.next_ping <= now {
                return Poll::Ready(Ok(Event::PingDue));
            }
            let next = self
                .pong_due
                .map_or(self.next_ping, |due| due.min(self.next_ping));
            self.timer.as_mut().reset(next);
        }
        Poll::Pending
    }

    /// Sends a ping and starts the pong deadline (unless one is running).
    pub async fn ping(&mut self) -> Result<(), End> {
        let settings = &self.state.config.ws;
        let now = Instant::now();
        self.next_ping = now + settings.ping_interval;
        let pong_due = *self.pong_due.get_or_insert(now + settings.pong_timeout);
        self.timer.as_mut().reset(pong_due.min(self.next_ping));
        // The moved timer must be polled to register its waker again.
        self.gate.reopen();
        self.write([Message::Ping(Default::default())]).await
    }

    /// Queues the frames and flushes them, within the write timeout.
    pub async fn write(&mut self, frames: impl IntoIterator<Item = Message>) -> Result<(), End> {
        let sink = &mut self.sink;
        let write = async {
            for frame in frames {
                sink.feed(frame).await?;
            }
            sink.flush().await
        };
        within_write_timeout(&self.state, write).await
    }

    /// The sending half, for a session that batches its own writes (wrap
    /// them in [`within_write_timeout`]).
    pub fn sink(&mut self) -> &mut Sink {
        &mut self.sink
    }

    /// Does what `end` still owes the peer, within the close grace.
    pub async fn finish(mut self, end: End) {
        let (frame, read_on) = match end {
            End::Close(frame) => (Some(frame), true),
            End::Fail(frame) => (Some(frame), false),
            End::PeerClosed => (None, true),
            End::Drop => return,
        };
        if let Some(frame) = &frame {
            if matches!(
                frame.code,
                close_code::POLICY | close_code::SIZE | close_code::AGAIN
            ) {
                let Who { peer, room } = &self.who;
                let reason = &frame.reason;
                let what = format_args!("close {}: {}", frame.code, reason.as_str());
                crate::refusals::log(*peer, room.as_deref(), what);
            }
        }
        let _ = timeout(CLOSE_GRACE, async {
            if let Some(frame) = frame {
                if self.sink.send(Message::Close(Some(frame))).await.is_err() {
                    return;
                }
            }
            if read_on {
                // Read until the stream ends: tungstenite sends its close
                // reply, or sees the peer's, as it reads.
                while let Some(Ok(_)) = self.stream.next().await {}
            }
        })
        .await;
    }

    /// The close that fits what the peer did wrong.
    fn read_failed(&self, error: axum::Error) -> End {
        let error = error.into_inner();
        let Some(error) = error.downcast_ref::<WsError>() else {
            return End::Drop;
        };
        let stats = &self.state.stats;
        match error {
            WsError::Capacity(_) => {
                stats.count(Limit::WsTooBigClosed);
                let max = self.state.config.ws.max_message;
                // The rest of the oversized frame may still be arriving,
                // and tungstenite would buffer it: read no more.
                End::Fail(close_owned(
                    close_code::SIZE,
                    format!("message too big: the limit is {max} bytes"),
                ))
            }
            WsError::Utf8(_) => {
                stats.count(Limit::WsProtocolClosed);
                End::Close(close(
                    close_code::INVALID,
                    "invalid UTF-8 in a text message",
                ))
            }
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Drop,
            WsError::Protocol(violation) => {
                stats.count(Limit::WsProtocolClosed);
                End::Close(close_owned(
                    close_code::PROTOCOL,
                    format!("protocol error: {violation}"),
                ))
            }
            _ => End::Drop,
        }
    }
}

/// Runs `write`, bounded by the write timeout. A write that cannot finish
/// in time means the socket's send queue is full and the peer is not
/// reading: the session ends with a best-effort 1008 (a peer that does not
/// read may never see it; the server logs and counts it).
pub async fn within_write_timeout(
    state: &AppState,
    write: impl Future<Output = Result<(), axum::Error>>,
) -> Result<(), End> {
    match timeout(state.config.ws.write_timeout, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Drop),
        Err(_) => {
            // Logged with the close, in `Link::finish`.
            state.stats.count(Limit::WsSlowClosed);
            Err(End::Fail(close(
                close_code::POLICY,
                "send queue full: the client is not reading",
            )))
        }
    }
}

pub fn close(code: u16, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }
}

/// A close frame with a reason built at run time, cut to the 123 bytes a
/// close frame can carry.
fn close_owned(code: u16, mut reason: String) -> CloseFrame {
    if reason.len() > 123 {
        let mut cut = 123;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }
}
