//! One Rust client per transport, shared by the tests, `loadgen` and the
//! benches, so the protocol is written down once on the client side too.
//!
//! Every client yields the same [`Event`]s; [`Subscriber`] wraps the four so
//! a caller can be generic over the transport. Each speaks plain HTTP/1.1,
//! or HTTPS with HTTP/1.1 or HTTP/2 ([`tls::Connect`] on the [`Target`]).
//! [`auto::AutoClient`] reconnects and falls back from one transport to the next.

pub mod auto;
pub mod heard;
pub mod poll;
pub mod sse;
pub mod tls;
pub mod ws;

use crate::message::{CountersSnapshot, Draft, Event, Resume, Transport};
use std::time::Duration;
pub use tls::Connect;

#[derive(Debug)]
pub enum ClientError {
    Http(reqwest::Error),
    Ws(tokio_tungstenite::tungstenite::Error),
    /// Connecting or the TLS handshake failed.
    Io(std::io::Error),
    /// The HTTP/2 connection of a WebSocket (RFC 8441) failed.
    H2(hyper::Error),
    /// The server answered with an error status and body.
    Status(u16, String),
    /// The server sent something the contract does not allow.
    Protocol(String),
    /// The stream ended.
    Closed,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(e) => write!(f, "http: {e}"),
            Self::Ws(e) => write!(f, "websocket: {e}"),
            Self::Io(e) => write!(f, "connect: {e}"),
            Self::H2(e) => write!(f, "http/2: {e}"),
            Self::Status(code, body) => write!(f, "status {code}: {body}"),
            Self::Protocol(what) => write!(f, "protocol: {what}"),
            Self::Closed => f.write_str("stream closed"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        Self::Http(e)
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<hyper::Error> for ClientError {
    fn from(e: hyper::Error) -> Self {
        Self::H2(e)
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for ClientError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        Self::Ws(e)
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// Where a server is, which room to use, and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` or `https://host:port`, no trailing slash.
    pub base: String,
    pub room: String,
    /// Shared by clones: over HTTP/2 their requests share one connection.
    pub http: reqwest::Client,
    pub connect: Connect,
}

impl Target {
    /// A target reached over HTTP/1.1 (plain, or HTTPS trusting nothing).
    pub fn new(base: impl Into<String>, room: impl Into<String>) -> Self {
        Self::with(base, room, Connect::default())
    }

    /// A target reached as `connect` says.
    pub fn with(base: impl Into<String>, room: impl Into<String>, connect: Connect) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            room: room.into(),
            http: connect.http_client(),
            connect,
        }
    }

    /// The same target with a connection pool of its own: a separate
    /// client (a browser of its own), where clones would share an HTTP/2
    /// connection.
    pub fn own_connection(&self) -> Self {
        Self::with(self.base.clone(), self.room.clone(), self.connect.clone())
    }

    /// Whether the base URL is HTTPS.
    pub fn is_https(&self) -> bool {
        self.base.starts_with("https://")
    }

    fn url(&self, endpoint: &str, query: &[(&str, String)]) -> String {
        let mut url = format!("{}/rooms/{}/{endpoint}", self.base, self.room);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(v);
        }
        url
    }

    /// `POST /rooms/{room}/messages`; the id the server assigned.
    pub async fn send(&self, draft: &Draft) -> Result<u64> {
        let body = serde_json::json!({
            "user": draft.user,
            "text": draft.text,
            "client_id": draft.client_id,
        });
        let response = self
            .http
            .post(self.url("messages", &[]))
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if status.as_u16() != 201 {
            return Err(ClientError::Status(status.as_u16(), text));
        }
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ClientError::Protocol(format!("send answer {text:?}: {e}")))?;
        value["id"]
            .as_u64()
            .ok_or_else(|| ClientError::Protocol(format!("send answer without id: {text}")))
    }

    /// One transport's server-wide counters from `GET /stats`.
    pub async fn counters(&self, transport: &str) -> Result<CountersSnapshot> {
        let stats: serde_json::Value = self
            .http
            .get(format!("{}/stats", self.base))
            .send()
            .await?
            .json()
            .await?;
        serde_json::from_value(stats["transports"][transport].clone())
            .map_err(|e| ClientError::Protocol(format!("stats for {transport}: {e}")))
    }
}

fn resume_query(resume: &Resume) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(since) = resume.since {
        query.push(("since", since.to_string()));
    }
    if let Some(epoch) = &resume.epoch {
        query.push(("epoch", epoch.clone()));
    }
    query
}

fn parse_event(data: &str) -> Result<Event> {
    serde_json::from_str(data).map_err(|e| ClientError::Protocol(format!("event {data:?}: {e}")))
}

/// A receiving client on any transport.
#[derive(Debug)]
pub enum Subscriber {
    Ws(ws::WsClient),
    Sse(sse::SseClient),
    Poll(poll::PollClient),
}

impl Subscriber {
    /// Connects over `transport`, resuming at `resume`. Short polling asks
    /// again every `poll_interval` when it got nothing. `Send` and `Other`
    /// receive nothing, and are refused.
    pub async fn connect(
        transport: Transport,
        target: &Target,
        resume: &Resume,
        poll_interval: Duration,
    ) -> Result<Self> {
        Ok(match transport {
            Transport::Ws => Self::Ws(ws::WsClient::connect(target, resume).await?),
            Transport::Sse => Self::Sse(sse::SseClient::connect(target, resume).await?),
            Transport::LongPoll => Self::Poll(poll::PollClient::connect(target, resume, 25).await?),
            Transport::Poll => Self::Poll(
                poll::PollClient::connect(target, resume, 0)
                    .await?
                    .with_interval(poll_interval),
            ),
            Transport::Send | Transport::Other => {
                return Err(ClientError::Protocol(format!(
                    "{} is not a receiving transport",
                    transport.name()
                )))
            }
        })
    }

    /// The next event, in the order the server sent it.
    pub async fn next_event(&mut self) -> Result<Event> {
        match self {
            Self::Ws(c) => c.next_event().await,
            Self::Sse(c) => c.next_event().await,
            Self::Poll(c) => c.next_event().await,
        }
    }

    /// When the server was last heard from on this connection: any frame,
    /// keepalive or answer.
    pub fn heard(&self) -> tokio::time::Instant {
        match self {
            Self::Ws(c) => c.heard(),
            Self::Sse(c) => c.heard(),
            Self::Poll(c) => c.heard(),
        }
    }
}
