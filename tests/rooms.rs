//! Rooms are bounded: a cap on live rooms (503), a per-address cap on new
//! rooms per minute (429), idle rooms removed with their history (a client
//! that comes back gets a `reset`), little memory for a room one request
//! touched, and a `/stats` that lists only the most active rooms.
//!
//! The shape of the attack these bound: one keep-alive connection sending
//! `GET /rooms/r{i}x/poll?wait=0` for ever-new `i`.

mod common;

use common::*;
use futures_util::StreamExt;
use skyrocket::client::poll::PollClient;
use skyrocket::client::Target;
use skyrocket::message::Resume;
use skyrocket::message::Transport;
use skyrocket::message::{Control, Event};
use skyrocket::stats::Limit;
use skyrocket::Config;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A client that keeps one connection open and sends its requests one after
/// another on it, as the attack did.
fn one_connection() -> reqwest::Client {
    skyrocket::client::tls::http_builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

async fn get(client: &reqwest::Client, url: String) -> (u16, serde_json::Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    (status, json)
}

/// A WebSocket to `room` that is refused: the error event it gets, and the
/// close code that follows.
async fn refused_ws(base: &str, room: &str) -> (String, u16) {
    let url = format!("{}/rooms/{room}/ws", base.replace("http://", "ws://"));
    let (mut socket, _) = within(PATIENCE, tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    let first = within(PATIENCE, socket.next()).await.unwrap().unwrap();
    let Message::Text(text) = first else {
        panic!("expected an error event first, got {first:?}");
    };
    let event: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(event["type"], "error", "{event}");
    let close = within(PATIENCE, socket.next()).await.unwrap().unwrap();
    let Message::Close(Some(frame)) = close else {
        panic!("expected a close after the error, got {close:?}");
    };
    (
        event["error"].as_str().unwrap().to_owned(),
        u16::from(frame.code),
    )
}

#[tokio::test]
async fn many_rooms_from_one_connection_stay_bounded_and_the_cap_answers_clearly() {
    const CAP: usize = 2000;
    let cap = CAP.to_string();
    let server = ChildServer::start(&["--max-rooms", &cap]).await;

    // A chat that was going before the flood.
    let lobby = server.target("lobby");
    let mut chat = subscribe(Transport::Ws, &lobby, Resume::default()).await;
    lobby.send(&draft("ada", "before")).await.unwrap();
    assert_eq!(next_message(&mut chat).await.text, "before");

    let client = one_connection();
    let poll = |i: usize| format!("{}/rooms/r{i}x/poll?wait=0", server.base);
    // Warm the allocator and the connection before the baseline.
    for i in 0..50 {
        assert_eq!(get(&client, poll(i)).await.0, 200);
    }
    let before = server.rss_kib();
    let (mut created, mut refused) = (50 + 1, 0);
    for i in 50..CAP + 499 {
        let (status, body) = get(&client, poll(i)).await;
        match status {
            200 => created += 1,
            503 => {
                let error = body["error"].as_str().unwrap();
                assert!(error.contains(&format!("maximum of {CAP} rooms")), "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let grown = server.rss_kib().saturating_sub(before);
    let per_room = grown * 1024 / (CAP as u64 - 51);
    println!(
        "{created} rooms created, {refused} refused; RSS grew {grown} KiB, about {per_room} bytes per room"
    );
    assert_eq!(created, CAP, "rooms up to the cap are created");
    assert_eq!(refused, 500, "every room past the cap is refused");
    // A broadcast ring per room cost about 17 KB; a touched room now costs
    // its name, counters and an empty history. Loose: RSS is coarse.
    assert!(
        per_room < 6 * 1024,
        "{per_room} bytes per room: a room one poll touched should allocate little"
    );

    // Existing rooms keep working, the chat included.
    assert_eq!(get(&client, poll(7)).await.0, 200);
    lobby.send(&draft("ada", "after")).await.unwrap();
    assert_eq!(next_message(&mut chat).await.text, "after");

    // `/stats` stays small at the cap.
    let response = client
        .get(format!("{}/stats", server.base))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(text.len() < 64 * 1024, "/stats is {} bytes", text.len());
    let stats: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stats["room_totals"]["live"], CAP);
    assert_eq!(stats["limits"][Limit::RoomsFull.name()], 500);
    assert!(stats["rooms"].as_object().unwrap().len() <= 20);
}

fn per_address_config() -> Config {
    let mut config = quiet_config();
    // The tests connect from loopback, which per-address limits spare by
    // default.
    config.connections.limit_loopback = true;
    config.rooms.creations_per_minute = 5;
    config
}

#[tokio::test]
async fn an_address_over_its_room_creations_gets_429_and_its_rooms_keep_working() {
    let server = TestServer::with_config(per_address_config()).await;
    let client = one_connection();
    let poll = |room: &str| format!("{}/rooms/{room}/poll?wait=0", server.base());
    for i in 0..5 {
        assert_eq!(get(&client, poll(&format!("mine{i}"))).await.0, 200);
    }
    let (status, body) = get(&client, poll("one-too-many")).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("at most 5 a minute"),
        "{body}"
    );
    // Rooms that exist are not creations: they keep working, for any verb.
    assert_eq!(get(&client, poll("mine0")).await.0, 200);
    let target = server.target("mine1");
    assert_eq!(target.send(&draft("ada", "still here")).await.unwrap(), 1);

    // Over a WebSocket: an error event that says why, then close 1008.
    let (error, code) = refused_ws(&server.base(), "another-new-one").await;
    assert!(error.contains("too many new rooms"), "{error}");
    assert_eq!(code, 1008);
    let stats = server.stats().await;
    assert_eq!(stats["limits"][Limit::RoomCreationsRateLimited.name()], 2);
}

#[tokio::test]
async fn a_full_server_refuses_new_rooms_with_503_and_serves_the_others() {
    let mut config = quiet_config();
    config.rooms.max = 3;
    let server = TestServer::with_config(config).await;
    let mut chat = subscribe(Transport::Ws, &server.target("a"), Resume::default()).await;
    for room in ["b", "c"] {
        server.target(room).send(&draft("ada", "hi")).await.unwrap();
    }
    let client = one_connection();
    let (status, body) = get(&client, format!("{}/rooms/d/poll", server.base())).await;
    assert_eq!(status, 503, "{body}");
    let response = client
        .post(format!("{}/rooms/d/messages", server.base()))
        .json(&serde_json::json!({"user": "ada", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);

    let (error, code) = refused_ws(&server.base(), "d").await;
    assert!(error.contains("maximum of 3 rooms"), "{error}");
    assert_eq!(code, 1013, "try again later");

    server
        .target("a")
        .send(&draft("ada", "fine"))
        .await
        .unwrap();
    assert_eq!(next_message(&mut chat).await.text, "fine");
}

#[tokio::test]
async fn idle_rooms_are_removed_and_a_returning_client_gets_a_reset() {
    let mut config = quiet_config();
    config.rooms.idle_after = Duration::from_millis(100);
    let server = TestServer::with_config(config).await;

    // A chat that stays connected: its room is held, so it stays.
    let lobby = server.target("lobby");
    let mut chat = subscribe(Transport::Ws, &lobby, Resume::default()).await;

    // A room that is used, then left alone.
    let gone = server.target("gone");
    assert_eq!(gone.send(&draft("ada", "one")).await.unwrap(), 1);
    let mut poller = PollClient::connect(&gone, &from_start(), 0).await.unwrap();
    let body = poller.poll_once().await.unwrap();
    assert_eq!((body.messages.len(), body.next), (1, 1));
    let old_epoch = body.epoch;
    let touched: Vec<Target> = (0..20).map(|i| server.target(&format!("t{i}"))).collect();
    for target in &touched {
        PollClient::connect(target, &Resume::default(), 0)
            .await
            .unwrap();
    }

    // Removed once idle: waited on through the counters, not a sleep.
    eventually(|| async {
        let stats = server.stats().await;
        stats["room_totals"]["live"] == 1 && stats["room_totals"]["removed_idle"] == 21
    })
    .await;

    // A poller coming back with its old cursor gets a reset and the new
    // life's (empty) history.
    let body = poller.poll_once().await.unwrap();
    assert!(body.reset, "a reset for a cursor from the removed life");
    assert_ne!(body.epoch, old_epoch);
    assert!(body.messages.is_empty());
    // So does a WebSocket that resumes.
    let resume = Resume {
        since: Some(1),
        epoch: Some(old_epoch),
    };
    let mut socket = subscribe(Transport::Ws, &gone, resume).await;
    match next_significant(&mut socket).await {
        Event::Control(Control::Reset { latest, .. }) => assert_eq!(latest, 0),
        other => panic!("expected a reset, got {other:?}"),
    }

    // The held room was never removed: same socket, same life.
    lobby.send(&draft("ada", "still on")).await.unwrap();
    let message = next_message(&mut chat).await;
    assert_eq!((message.id, message.text.as_str()), (1, "still on"));
}

#[tokio::test]
async fn stats_lists_the_most_active_rooms_only() {
    let server = TestServer::with_config(quiet_config()).await;
    let client = one_connection();
    for i in 0..120 {
        let url = format!("{}/rooms/quiet{i}/poll", server.base());
        assert_eq!(get(&client, url).await.0, 200);
    }
    let busy = server.target("busy");
    for text in ["a", "b", "c"] {
        busy.send(&draft("ada", text)).await.unwrap();
    }
    let mut poller = PollClient::connect(&busy, &from_start(), 0).await.unwrap();
    assert_eq!(poller.poll_once().await.unwrap().messages.len(), 3);

    let rooms = |stats: serde_json::Value| stats["rooms"].as_object().unwrap().clone();
    let default = rooms(server.stats().await);
    assert_eq!(default.len(), 20);
    assert_eq!(default["busy"]["delivered"]["poll"], 3);
    let one = rooms(server.get_json("/stats?rooms=1").await);
    assert_eq!(one.keys().collect::<Vec<_>>(), ["busy"]);
    assert_eq!(
        rooms(server.get_json("/stats?rooms=100000").await).len(),
        100
    );
    let stats = server.stats().await;
    assert_eq!(stats["room_totals"]["live"], 121);
}
