//! Keepalive and liveness: a WebSocket peer that stops answering pings is
//! closed; a quiet SSE stream carries comment keepalives.

mod common;

use common::*;
use skyrocket::Config;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    tcp.write_all(b"GET /rooms/quiet/sse HTTP/1.1\r\nHost: t\r\n\r\n")
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
