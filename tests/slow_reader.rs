//! A WebSocket client that stops reading neither holds up the room nor
//! loses messages: the room never waits for it, and once it reads again it
//! is resynced from history, every id once and in order.

mod common;

use common::*;
use futures_util::StreamExt;
use skyrocket::message::Event;
use skyrocket::message::Transport;
use skyrocket::Config;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const MESSAGES: u64 = 1500;

#[tokio::test]
async fn a_reader_that_stops_reading_does_not_hold_up_the_room() {
    let mut config = Config {
        history: 2 * MESSAGES as usize,
        ..Config::default()
    };
    // So long that, if the room waited on the stalled socket, the healthy
    // reader below could never finish within the test's patience.
    config.ws.write_timeout = Duration::from_secs(3600);
    let server = TestServer::with_config(config).await;
    let target = server.target("slow");

    // The stalled client: a tiny receive buffer, and it does not read.
    let mut stalled = tiny_buffer_socket(server.addr, "/rooms/slow/ws?since=0").await;

    let mut healthy = subscribe(Transport::Ws, &target, from_start()).await;
    let text = "x".repeat(4000);
    let sender = {
        let target = target.clone();
        tokio::spawn(async move {
            for _ in 0..MESSAGES {
                target.send(&draft("ada", &text)).await.unwrap();
            }
        })
    };
    for expected in 1..=MESSAGES {
        assert_eq!(next_message(&mut healthy).await.id, expected);
    }
    within(PATIENCE, sender).await.unwrap();

    // The stalled client was still connected all along...
    let stats = server.stats().await;
    assert_eq!(stats["transports"]["ws"]["connections_open"], 2);

    // ...and loses nothing once it reads again.
    let mut next = 1;
    while next <= MESSAGES {
        let frame = within(PATIENCE, stalled.next()).await.unwrap().unwrap();
        if let Message::Text(text) = frame {
            if let Event::Message(m) = serde_json::from_str::<Event>(&text).unwrap() {
                assert_eq!(m.id, next, "every id once, in order");
                next += 1;
            }
        }
    }
}

#[tokio::test]
async fn a_reader_that_never_reads_is_disconnected_after_the_write_timeout() {
    let mut config = Config::default();
    config.ws.write_timeout = Duration::from_millis(300);
    let server = TestServer::with_config(config).await;
    let target = server.target("stuck");

    let _stuck = tiny_buffer_socket(server.addr, "/rooms/stuck/ws").await;
    let mut healthy = subscribe(Transport::Sse, &target, Default::default()).await;

    let text = "y".repeat(4000);
    let mut sent = 0;
    // Keep sending until the server gives up on the stuck socket: its
    // memory for that client is released with it.
    eventually(|| {
        let target = target.clone();
        let text = text.clone();
        let stats = server.stats();
        sent += 1;
        async move {
            target.send(&draft("ada", &text)).await.unwrap();
            stats.await["transports"]["ws"]["connections_open"] == 0
        }
    })
    .await;
    // The healthy reader got everything meanwhile.
    for expected in 1..=sent {
        assert_eq!(next_message(&mut healthy).await.id, expected);
    }
}
