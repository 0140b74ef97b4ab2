//! What HTTP/2 changes in what a message costs: each receiving transport
//! over HTTP/1.1+TLS and over HTTP/2, measured with the real clients
//! against an in-process server's own byte accounting, not estimated.
//!
//! One receiver at a time, in a room of its own, on a server with nobody
//! else connected, so the `connection` line of the counters (TLS records
//! and handshake, HTTP/2's connection-level frames) is that receiver's.
//! What is counted:
//! - connect: from the TCP connect to the first answer (a stream's
//!   `hello`, a poller's first, empty, body): the TLS handshake, HTTP/2's
//!   preface and SETTINGS, the request and the response head;
//! - per delivered message, in rounds of `batch` messages: the server
//!   posts them straight into the room (a sender on the wire would add its
//!   own TLS bytes to the `connection` line), then a poller asks once and
//!   gets them all in one body, and a stream reads until it has them all.
//!   So with `batch` 10 a poll answers ten messages, exactly, whatever the
//!   timing: the figures do not depend on load.
//!
//! Bytes are "out" (server to client) and "in", each the transport's line
//! (HTTP/1.1 text, or that stream's HTTP/2 frames with their 9-byte
//! headers) plus the `connection` line. Not measured: round trips (they
//! follow from the protocols; see `results/http2/`), and a long poll held
//! open before its message arrives (it costs the same bytes, answered
//! later).

use crate::client::poll::PollClient;
use crate::client::{Connect, Subscriber, Target};
use crate::message::{Control, Draft, Event, Resume, Transport};
use crate::AppState;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// One transport over one HTTP version, with `batch` messages a round.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProtocolCost {
    pub transport: &'static str,
    /// "http/1.1+tls" or "h2".
    pub http: &'static str,
    pub batch: u64,
    pub delivered: u64,
    /// Bytes of the message JSON delivered, per message.
    pub payload: f64,
    pub out_per_message: f64,
    pub in_per_message: f64,
    /// The part of `out_per_message` on the `connection` line.
    pub connection_out_per_message: f64,
    pub requests_per_message: f64,
    pub connect_out: u64,
    pub connect_in: u64,
}

/// Bytes in and out so far: one transport's line plus the `connection`
/// line, and that transport's delivered, payload and requests counters.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    bytes_in: u64,
    bytes_out: u64,
    connection_out: u64,
    delivered: u64,
    payload: u64,
    requests: u64,
}

fn tally(state: &AppState, kind: Transport) -> Tally {
    let line = state.stats.of(kind).snapshot();
    let connection = state.stats.connection.snapshot();
    Tally {
        bytes_in: line.wire_bytes_in + connection.wire_bytes_in,
        bytes_out: line.wire_bytes_out + connection.wire_bytes_out,
        connection_out: connection.wire_bytes_out,
        delivered: line.delivered,
        payload: line.payload_bytes,
        requests: line.requests,
    }
}

/// A receiver of either kind, as this measurement drives it.
enum Receiver {
    /// WebSocket or SSE: reads events.
    Stream(Subscriber),
    /// Long or short poll: one request per round.
    Poll(PollClient),
}

impl Receiver {
    /// Connects and waits for the first answer.
    async fn open(kind: Transport, target: &Target) -> crate::client::Result<Self> {
        let from_start = Resume {
            since: Some(0),
            epoch: None,
        };
        match kind {
            Transport::Ws | Transport::Sse => {
                let mut s = Subscriber::connect(kind, target, &from_start, Duration::ZERO).await?;
                while !matches!(s.next_event().await?, Event::Control(Control::Hello { .. })) {}
                Ok(Self::Stream(s))
            }
            _ => {
                // The messages are in the room before each poll, so a long
                // poll is answered at once, as a short one is.
                let wait = if kind == Transport::LongPoll { 25 } else { 0 };
                let mut poller = PollClient::new(target, &from_start, wait);
                poller.poll_once().await?;
                Ok(Self::Poll(poller))
            }
        }
    }

    /// Receives the `count` messages just posted.
    async fn receive(&mut self, count: u64) -> crate::client::Result<()> {
        let mut got = 0;
        while got < count {
            got += match self {
                Self::Stream(s) => u64::from(matches!(s.next_event().await?, Event::Message(_))),
                Self::Poll(p) => p.poll_once().await?.messages.len() as u64,
            };
        }
        Ok(())
    }
}

/// Measures `kind` over `connect` on the server at `base` whose state is
/// `state`: `rounds` rounds of `batch` messages of `text_bytes` of text.
pub async fn measure(
    state: &AppState,
    base: &str,
    connect: &Connect,
    kind: Transport,
    batch: u64,
    rounds: u64,
    text_bytes: usize,
) -> crate::client::Result<ProtocolCost> {
    let http = if connect.http2 { "h2" } else { "http/1.1+tls" };
    let tag = if connect.http2 { "h2" } else { "h1" };
    // Names of equal length over both versions: the room's name is in
    // every message, so the payloads are the same size.
    let room_name = format!("cost-{}-{tag}-{batch}", kind.name());
    let target = Target::with(base, room_name.as_str(), connect.clone());
    let room = state
        .rooms
        .get_or_create(&room_name, || Ok(()))
        .map_err(|e| crate::client::ClientError::Protocol(format!("room: {e:?}")))?;

    let before_connect = tally(state, kind);
    let mut receiver = Receiver::open(kind, &target).await?;
    let connected = tally(state, kind);
    for round in 0..rounds {
        for i in 0..batch {
            let draft = Draft {
                user: "ada".into(),
                text: format!("{:0>width$}", round * batch + i, width = text_bytes),
                client_id: None,
            };
            room.post(draft)
                .await
                .map_err(|e| crate::client::ClientError::Protocol(format!("post: {e:?}")))?;
        }
        receiver.receive(batch).await?;
    }
    let after = tally(state, kind);
    drop(receiver);
    drop(target);
    wait_for_no_connection(state).await;

    let delivered = after.delivered - connected.delivered;
    let per = |a: u64, b: u64| (a - b) as f64 / delivered.max(1) as f64;
    Ok(ProtocolCost {
        transport: kind.name(),
        http,
        batch,
        delivered,
        payload: per(after.payload, connected.payload),
        out_per_message: per(after.bytes_out, connected.bytes_out),
        in_per_message: per(after.bytes_in, connected.bytes_in),
        connection_out_per_message: per(after.connection_out, connected.connection_out),
        requests_per_message: per(after.requests, connected.requests),
        connect_out: connected.bytes_out - before_connect.bytes_out,
        connect_in: connected.bytes_in - before_connect.bytes_in,
    })
}

/// Waits until the server has seen the last receiver's connection close,
/// so its closing bytes are not counted against the next one. A tool's
/// bounded wait: it gives up after 5 s (the figures then say so by their
/// size, not silently: the close is a few dozen bytes).
async fn wait_for_no_connection(state: &AppState) {
    for _ in 0..500 {
        if state.stats.connection.connections_open.load(Relaxed) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The table of `costs`, in Markdown.
pub fn markdown(costs: &[ProtocolCost]) -> String {
    let mut out = String::from(
        "| transport | HTTP | msgs/poll | delivered | payload B/msg | out B/msg | of which TLS+conn. frames | in B/msg | requests/msg | connect out B | connect in B |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for c in costs {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {} | {} |\n",
            c.transport,
            c.http,
            c.batch,
            c.delivered,
            c.payload,
            c.out_per_message,
            c.connection_out_per_message,
            c.in_per_message,
            c.requests_per_message,
            c.connect_out,
            c.connect_in
        ));
    }
    out
}
