//! Resume: a client that comes back gets what it missed, once, in order; a
//! gap when history has moved past it; a reset when its cursor is from
//! another room life.

mod common;

use common::*;
use skyrocket::client::{sse::SseClient, Subscriber};
use skyrocket::message::Resume;
use skyrocket::message::Transport;
use skyrocket::message::{Control, Event};
use skyrocket::Config;

fn since(id: u64) -> Resume {
    Resume {
        since: Some(id),
        epoch: None,
    }
}

async fn every_transport_resumes_without_loss_or_duplicates(wire: Wire) {
    let server = TestServer::over(wire, Config::default()).await;
    wire.assert_spoken(&server.target("any")).await;
    for kind in Transport::RECEIVING {
        let target = server.target(&format!("resume-{}", kind.name()));
        let mut client = subscribe(kind, &target, from_start()).await;
        let first = target.send(&draft("ada", "before")).await.unwrap();
        assert_eq!(next_message(&mut client).await.id, first);
        drop(client);

        let missed = [
            target.send(&draft("ada", "while away 1")).await.unwrap(),
            target.send(&draft("ada", "while away 2")).await.unwrap(),
        ];
        let mut client = subscribe(kind, &target, since(first)).await;
        let after = target.send(&draft("ada", "after")).await.unwrap();
        let got = [
            next_message(&mut client).await.id,
            next_message(&mut client).await.id,
            next_message(&mut client).await.id,
        ];
        assert_eq!(got, [missed[0], missed[1], after], "{}", kind.name());
    }
}

async fn sse_last_event_id_wins_over_since(wire: Wire) {
    let server = TestServer::over(wire, Config::default()).await;
    let target = server.target("lastid");
    for i in 0..4 {
        target.send(&draft("ada", &format!("m{i}"))).await.unwrap();
    }
    // A browser reconnecting keeps its original URL (since=0) and adds the
    // header; the header must win.
    let mut client = Subscriber::Sse(
        SseClient::connect_with(&target, &from_start(), Some(3))
            .await
            .unwrap(),
    );
    assert_eq!(next_message(&mut client).await.id, 4);
    if let Subscriber::Sse(sse) = &client {
        assert_eq!(sse.last_event_id(), Some("4"));
    }
}

async fn a_client_behind_the_history_is_told_of_the_gap(wire: Wire) {
    let server = TestServer::over(
        wire,
        Config {
            history: 3,
            ..Config::default()
        },
    )
    .await;
    let target = server.target("gap");
    for i in 1..=10 {
        target.send(&draft("ada", &format!("m{i}"))).await.unwrap();
    }
    for kind in Transport::RECEIVING {
        let mut client = subscribe(kind, &target, since(1)).await;
        assert_eq!(
            next_significant(&mut client).await,
            Event::Control(Control::Gap { from: 2, to: 7 }),
            "{}",
            kind.name()
        );
        let ids = [
            next_message(&mut client).await.id,
            next_message(&mut client).await.id,
            next_message(&mut client).await.id,
        ];
        assert_eq!(ids, [8, 9, 10], "{}", kind.name());
    }
}

async fn a_cursor_from_another_life_gets_a_reset_and_the_history(wire: Wire) {
    let server = TestServer::over(wire, Config::default()).await;
    let target = server.target("reset");
    target.send(&draft("ada", "one")).await.unwrap();
    target.send(&draft("ada", "two")).await.unwrap();
    let stale_epoch = Resume {
        since: Some(1),
        epoch: Some("not-this-life".into()),
    };
    // `since` beyond the latest id (an SSE reconnect after a restart carries
    // only Last-Event-ID) is another life too.
    let beyond_latest = since(50);
    for resume in [stale_epoch, beyond_latest] {
        for kind in Transport::RECEIVING {
            let mut client = subscribe(kind, &target, resume.clone()).await;
            match next_significant(&mut client).await {
                Event::Control(Control::Reset { .. }) => {}
                other => panic!("{}: expected a reset, got {other:?}", kind.name()),
            }
            assert_eq!(next_message(&mut client).await.id, 1, "{}", kind.name());
            assert_eq!(next_message(&mut client).await.id, 2, "{}", kind.name());
        }
    }
}

async fn hello_names_the_epoch_a_resume_must_quote(wire: Wire) {
    let server = TestServer::over(wire, Config::default()).await;
    let target = server.target("epoch");
    target.send(&draft("ada", "one")).await.unwrap();
    let mut client = subscribe(Transport::Ws, &target, Resume::default()).await;
    let Event::Control(Control::Hello {
        epoch,
        latest,
        room,
    }) = within(PATIENCE, client.next_event()).await.unwrap()
    else {
        panic!("the first event is hello");
    };
    assert_eq!((latest, room.as_str()), (1, "epoch"));
    // Quoting the right epoch resumes normally: no reset, straight to id 1.
    for kind in Transport::RECEIVING {
        let resume = Resume {
            since: Some(0),
            epoch: Some(epoch.clone()),
        };
        let mut again = subscribe(kind, &target, resume).await;
        match next_significant(&mut again).await {
            Event::Message(m) => assert_eq!(m.id, 1, "{}", kind.name()),
            other => panic!("{}: expected message 1, got {other:?}", kind.name()),
        }
    }
}

over_each_wire!(
    every_transport_resumes_without_loss_or_duplicates,
    sse_last_event_id_wins_over_since,
    a_client_behind_the_history_is_told_of_the_gap,
    a_cursor_from_another_life_gets_a_reset_and_the_history,
    hello_names_the_epoch_a_resume_must_quote,
);
