//! `GET /echo/ws`: a WebSocket that sends every message back as it came.
//!
//! It exists for protocol conformance (the Autobahn cases run against it,
//! see `.ci/autobahn`) and for benches of the bare transport. It is the
//! chat socket's twin: the same limits, buffers, heartbeat, write timeout,
//! inbound frame budget, origin check and close codes, all from
//! `mod.rs`; only what it does with a message differs. It posts
//! nothing to a room, so the send rate does not apply. It reads the next
//! message only once the echo of the last is written, so a peer that sends
//! faster than it reads is held back by its own socket.

use crate::error::ApiError;
use crate::message::Transport;
use crate::state::{AppState, Conn};
use crate::transport::websocket::{self, End, Event, Link};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::Response;

pub async fn upgrade(
    State(state): State<AppState>,
    Conn(conn): Conn,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade?;
    Ok(websocket::accept(
        upgrade,
        &state,
        conn,
        None,
        Transport::Other,
        |mut link| async move {
            let end = echo(&mut link).await;
            link.finish(end).await;
        },
    ))
}

async fn echo(link: &mut Link) -> End {
    loop {
        let step = match link.next().await {
            Ok(Event::Message(message)) => link.write([message]).await,
            Ok(Event::PingDue) => link.ping().await,
            Err(end) => Err(end),
        };
        if let Err(end) = step {
            return end;
        }
    }
}
