//! Shutdown ends every long-lived connection: WebSockets get a 1001 close,
//! SSE streams end, held polls answer; and the real binary exits cleanly on
//! SIGTERM with clients of every transport attached.

mod common;

use common::*;
use futures_util::StreamExt;
use skyrocket::client::{poll::PollClient, sse::SseClient, ws::WsClient, ClientError, Target};
use skyrocket::message::Resume;
use skyrocket::message::{Control, Event};
use std::process::Command;
use tokio_tungstenite::tungstenite::Message;

/// Attaches one client of each long-lived kind and returns a future that
/// checks each one ends the way the contract says.
async fn attach_all(target: &Target) -> impl std::future::Future<Output = ()> {
    let mut ws = WsClient::connect(target, &Resume::default()).await.unwrap();
    let mut sse = SseClient::connect(target, &Resume::default())
        .await
        .unwrap();
    // Wait until each stream is live (its hello arrived).
    ws.next_event().await.unwrap();
    sse.next_event().await.unwrap();
    let mut long_poll = PollClient::new(target, &Resume::default(), 25);
    let held = tokio::spawn(async move { long_poll.poll_once().await });
    // The poll is held once presence counts it (an event, not a guess).
    loop {
        if let Event::Control(Control::Presence { online, .. }) =
            within(PATIENCE, ws.next_event()).await.unwrap()
        {
            if online.longpoll == 1 && online.sse == 1 && online.ws == 1 {
                break;
            }
        }
    }
    async move {
        let close = loop {
            match within(PATIENCE, ws.socket().next()).await {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(close.map(|f| u16::from(f.code)), Some(1001), "going away");
        loop {
            match within(PATIENCE, sse.next_event()).await {
                Err(ClientError::Closed) => break,
                Ok(_) => continue,
                Err(e) => panic!("the SSE stream should end cleanly: {e}"),
            }
        }
        let body = within(PATIENCE, held).await.unwrap().unwrap();
        assert!(body.messages.is_empty(), "a held poll answers, empty");
    }
}

#[tokio::test]
async fn shutdown_ends_streams_sockets_and_held_polls() {
    let mut server = TestServer::start().await;
    let ended = attach_all(&server.target("lobby")).await;
    let checks = tokio::spawn(ended);
    server.shutdown().await;
    within(PATIENCE, checks).await.unwrap();
}

#[tokio::test]
async fn the_binary_exits_cleanly_on_sigterm_with_clients_attached() {
    let server = ChildServer::start(&[]).await;
    let ended = attach_all(&server.target("lobby")).await;
    let checks = tokio::spawn(ended);

    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    within(PATIENCE, checks).await.unwrap();
    let exit = server.exit_status().await;
    assert!(exit.success(), "exit status {exit:?}");
}
