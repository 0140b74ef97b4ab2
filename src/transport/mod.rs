//! One adapter per transport, all the same shape: parse the request into a
//! [`Resume`], get a [`crate::room::Subscription`] from the room, and write
//! what it hands out in the transport's own framing.
//!
//! - `websocket/chat.rs`: WebSocket, a task per socket that selects over
//!   room, socket, pings and shutdown;
//! - `sse.rs`: Server-Sent Events, a streamed response body;
//! - `poll.rs`: long and short polling, one JSON body per request;
//! - `send.rs`: `POST /rooms/{room}/messages`;
//! - `delivery.rs`: the delivery loop the reading transports share (what
//!   one write carries, counting it, the wire tap);
//! - `websocket/mod.rs`: what the WebSocket routes share (limits,
//!   heartbeat, close codes); `websocket/echo.rs`: `/echo/ws`, the socket
//!   Autobahn tests.

pub mod delivery;
pub mod poll;
pub mod send;
pub mod sse;
pub mod websocket;

use crate::error::ApiError;
use crate::message::Resume;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::Deserialize;

/// The query every reading transport accepts.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReadQuery {
    pub since: Option<u64>,
    pub epoch: Option<String>,
    /// Long-poll hold in seconds; 0 or absent is a short poll.
    pub wait: Option<u64>,
    /// A poller's stable id, so presence can count it between requests.
    pub client: Option<String>,
}

impl ReadQuery {
    pub fn resume(&self) -> Resume {
        Resume {
            since: self.since,
            epoch: self.epoch.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ReadQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(query) = Query::<ReadQuery>::from_request_parts(parts, state).await?;
        Ok(query)
    }
}
