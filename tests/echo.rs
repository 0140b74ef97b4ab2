//! `/echo/ws` sends every message back, and runs under the chat socket's
//! own limits: the same 64 KiB message cap closes both with 1009.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use skyrocket::Config;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(server: &TestServer, path: &str) -> Client {
    let url = format!("ws://{}{path}", server.addr);
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next frame that is not a ping, pong or chat event.
async fn next_reply(socket: &mut Client) -> Message {
    loop {
        match within(PATIENCE, socket.next()).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(message)) => return message,
            other => panic!("the socket ended: {other:?}"),
        }
    }
}

#[tokio::test]
async fn text_and_binary_come_back_as_sent_up_to_the_limit() {
    let server = TestServer::start().await;
    let mut socket = open(&server, "/echo/ws").await;
    let max = Config::default().ws.max_message;
    let messages = [
        Message::text("hello"),
        Message::binary(vec![0u8, 159, 146, 150]),
        // Exactly at the limit: accepted, and the echo fits the bounded
        // write buffer.
        Message::text("x".repeat(max)),
        Message::binary(vec![7u8; max]),
    ];
    for message in messages {
        socket.send(message.clone()).await.unwrap();
        assert_eq!(next_reply(&mut socket).await, message);
    }
}

#[tokio::test]
async fn one_byte_over_the_limit_closes_echo_and_chat_sockets_with_1009() {
    let mut config = Config::default();
    // A small limit shows the echo and the chat socket share it.
    config.ws.max_message = 1000;
    let server = TestServer::with_config(config).await;
    for path in ["/echo/ws", "/rooms/limits/ws"] {
        let mut socket = open(&server, path).await;
        socket.send(Message::text("y".repeat(1001))).await.unwrap();
        let close = loop {
            match next_reply(&mut socket).await {
                Message::Close(frame) => break frame.expect("a close code"),
                _ => continue,
            }
        };
        assert_eq!(close.code, CloseCode::Size, "{path}: {}", close.reason);
        assert!(close.reason.contains("1000 bytes"), "{}", close.reason);
    }
    let stats = server.stats().await;
    assert_eq!(stats["limits"]["ws_too_big_closed"], 2);
}
