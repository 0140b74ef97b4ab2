//! Keepalive and liveness: a WebSocket peer that stops answering pings is
//! closed within the ping interval plus the pong timeout, one that answers
//! stays; a quiet SSE stream carries comment keepalives and a retry hint.

mod common;

use common::raw_ws::{self, RawWs};
use common::*;
use futures_util::StreamExt;
use skyrocket::client::ws::WsClient;
use skyrocket::message::{Control, Event};
use skyrocket::Config;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_websocket_peer_that_never_answers_pings_is_closed() {
    let mut config = Config::default();
    config.ws.ping_interval = Duration::from_millis(100);
    config.ws.pong_timeout = Duration::from_millis(100);
    let server = TestServer::with_config(config).await;
    // A client that completes the handshake, then never reads, so it never
    // answers a ping.
    let url = format!("ws://{}/rooms/quiet/ws", server.addr);
    let (_silent, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    eventually(|| async { server.stats().await["transports"]["ws"]["connections_open"] == 0 })
        .await;
}

#[tokio::test]
async fn a_quiet_sse_stream_carries_keepalive_comments() {
    let mut config = Config::default();
    config.sse.keepalive = Duration::from_millis(50);
    let server = TestServer::with_config(config).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /rooms/quiet/sse HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    // A comment line is a chunk holding just ":\n\n".
    while !seen.windows(7).any(|w| w == b"3\r\n:\n\n\r") {
        let n = within(PATIENCE, tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "the stream ended");
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("retry: 2000"), "{text}");
    assert!(
        text.to_lowercase().contains("x-accel-buffering: no"),
        "{text}"
    );
}

#[tokio::test]
async fn a_peer_that_reads_but_never_answers_pings_is_closed_with_1008() {
    let mut config = Config::default();
    config.ws.ping_interval = Duration::from_millis(200);
    config.ws.pong_timeout = Duration::from_millis(300);
    let server = TestServer::with_config(config).await;
    let connected = Instant::now();
    // A frame-level peer: it sees the pings and never answers one.
    let mut peer = RawWs::connect(server.addr, "/rooms/quiet/ws").await;
    let mut first_ping = None;
    let close = loop {
        let frame = peer.read_frame().await.expect("a close frame first");
        match frame.opcode {
            raw_ws::PING => {
                first_ping.get_or_insert_with(Instant::now);
            }
            raw_ws::CLOSE => break frame.close().expect("a close code"),
            _ => {}
        }
    };
    let closed = connected.elapsed();
    let first_ping = first_ping.expect("pinged before being closed") - connected;
    assert_eq!(close.0, 1008, "{close:?}");
    assert!(close.1.contains("no pong"), "{close:?}");
    println!(
        "liveness: first ping {first_ping:?} after connecting, closed after {closed:?} \
         (interval 200 ms + pong timeout 300 ms)"
    );
    let stats = server.stats().await;
    assert_eq!(stats["limits"]["ws_no_pong_closed"], 1);
}

#[tokio::test]
async fn a_peer_that_answers_pings_stays_open() {
    let mut config = Config::default();
    config.ws.ping_interval = Duration::from_millis(50);
    // Generous, so a loaded machine cannot make a prompt answer late: what
    // is tested is that answering keeps the socket, not how fast.
    config.ws.pong_timeout = PATIENCE;
    let server = TestServer::with_config(config).await;
    let target = server.target("alive");
    let mut client = WsClient::connect(&target, &Default::default())
        .await
        .unwrap();
    // tungstenite answers each ping as it reads.
    let mut pings = 0;
    while pings < 10 {
        match within(PATIENCE, client.socket().next()).await {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(_)) => {}
            other => panic!("closed after {pings} pings: {other:?}"),
        }
    }
    client.send(&draft("ada", "still here")).await.unwrap();
    loop {
        if let Event::Control(Control::Ack { .. }) =
            within(PATIENCE, client.next_event()).await.unwrap()
        {
            break;
        }
    }
}
