//! Every message reaches every transport, with the same id and JSON, in
//! order, exactly once, even with concurrent senders.

mod common;

use common::*;
use skyrocket::client::ws::WsClient;
use skyrocket::message::Transport;
use skyrocket::message::{Control, Event};
use skyrocket::Config;
use std::collections::HashSet;

async fn a_message_sent_on_any_transport_reaches_all_four(wire: Wire) {
    let server = TestServer::over(wire, Config::default()).await;
    wire.assert_spoken(&server.target("any")).await;
    let target = server.target("lobby");
    let mut subscribers = Vec::new();
    for kind in Transport::RECEIVING {
        subscribers.push((kind, subscribe(kind, &target, from_start()).await));
    }

    // One message over HTTP POST, one over a WebSocket `send` frame.
    let id_post = target.send(&draft("ada", "over POST")).await.unwrap();
    let mut sender = WsClient::connect(&target, &Default::default())
        .await
        .unwrap();
    let mut with_id = draft("grace", "over a socket");
    with_id.client_id = Some("c-42".into());
    sender.send(&with_id).await.unwrap();
    let ack = loop {
        match within(PATIENCE, sender.next_event()).await.unwrap() {
            Event::Control(Control::Ack { id, client_id }) => break (id, client_id),
            _ => continue,
        }
    };
    assert_eq!(ack.0, id_post + 1, "ids are consecutive in a room");
    assert_eq!(
        ack.1.as_deref(),
        Some("c-42"),
        "client_id is echoed in the ack"
    );

    let mut seen = Vec::new();
    for (kind, subscriber) in &mut subscribers {
        let first = next_message(subscriber).await;
        let second = next_message(subscriber).await;
        assert_eq!((first.id, second.id), (id_post, ack.0), "{}", kind.name());
        seen.push((first, second));
    }
    // The same JSON object on every transport, field for field.
    for (first, second) in &seen[1..] {
        assert_eq!(first, &seen[0].0);
        assert_eq!(second, &seen[0].1);
    }
    assert_eq!(seen[0].0.text, "over POST");
    assert_eq!(seen[0].1.client_id.as_deref(), Some("c-42"));
    assert_eq!(seen[0].1.room, "lobby");
}

async fn concurrent_senders_give_every_subscriber_all_ids_in_order(wire: Wire) {
    const SENDERS: usize = 8;
    const EACH: usize = 200;
    let total = SENDERS * EACH;
    let server = TestServer::over(
        wire,
        Config {
            history: total * 2,
            ..Config::default()
        },
    )
    .await;
    let target = server.target("busy");
    let mut subscribers = Vec::new();
    for kind in Transport::RECEIVING {
        subscribers.push((kind, subscribe(kind, &target, from_start()).await));
    }
    let receivers: Vec<_> = subscribers
        .into_iter()
        .map(|(kind, mut subscriber)| {
            tokio::spawn(async move {
                let mut ids = Vec::with_capacity(total);
                while ids.len() < total {
                    ids.push(next_message(&mut subscriber).await.id);
                }
                (kind, ids)
            })
        })
        .collect();

    // Half the senders POST, half use WebSocket `send` frames.
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let target = target.clone();
        senders.push(tokio::spawn(async move {
            let user = format!("sender{s}");
            if s % 2 == 0 {
                for i in 0..EACH {
                    target.send(&draft(&user, &format!("m{i}"))).await.unwrap();
                }
            } else {
                let mut socket = WsClient::connect(&target, &Default::default())
                    .await
                    .unwrap();
                for i in 0..EACH {
                    socket.send(&draft(&user, &format!("m{i}"))).await.unwrap();
                }
                let mut acks = 0;
                while acks < EACH {
                    if let Event::Control(Control::Ack { .. }) = socket.next_event().await.unwrap()
                    {
                        acks += 1;
                    }
                }
            }
        }));
    }
    for sender in senders {
        within(PATIENCE, sender).await.unwrap();
    }
    for receiver in receivers {
        let (kind, ids) = within(PATIENCE, receiver).await.unwrap();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{}: ids strictly increase",
            kind.name()
        );
        let distinct: HashSet<u64> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), total, "{}: every id once", kind.name());
        assert_eq!(ids.first(), Some(&1));
        assert_eq!(ids.last(), Some(&(total as u64)));
    }
}

async fn subscribers_in_other_rooms_see_nothing(wire: Wire) {
    let server = TestServer::over(wire, Config::default()).await;
    let mut other = subscribe(Transport::Ws, &server.target("other"), from_start()).await;
    server
        .target("lobby")
        .send(&draft("ada", "lobby only"))
        .await
        .unwrap();
    let marker = server
        .target("other")
        .send(&draft("ada", "other"))
        .await
        .unwrap();
    let got = next_message(&mut other).await;
    assert_eq!((got.id, got.text.as_str()), (marker, "other"));
    assert_eq!(marker, 1, "rooms number their messages independently");
}

async fn websocket_clients_see_presence(wire: Wire) {
    let server = TestServer::over(wire, Config::default()).await;
    let target = server.target("lobby");
    let mut watcher = subscribe(Transport::Ws, &target, Default::default()).await;
    let _second = subscribe(Transport::Sse, &target, Default::default()).await;
    loop {
        if let Event::Control(Control::Presence { online, total, .. }) =
            within(PATIENCE, watcher.next_event()).await.unwrap()
        {
            if online.ws == 1 && online.sse == 1 {
                assert_eq!(total, 2);
                break;
            }
        }
    }
}

over_each_wire!(
    a_message_sent_on_any_transport_reaches_all_four,
    concurrent_senders_give_every_subscriber_all_ids_in_order,
    subscribers_in_other_rooms_see_nothing,
    websocket_clients_see_presence,
);
