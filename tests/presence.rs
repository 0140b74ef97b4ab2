//! Presence over real sockets: streams counted while connected, pollers
//! counted once each while they keep asking, and forgotten after the ttl.
//!
//! Expiry runs on the rooms' coarse clock, which the test drives itself
//! (`Rooms::tick_at`) on a server whose own presence tick never fires in
//! the test's lifetime: no waiting out a ttl, no timing to get right.

mod common;

use common::*;
use skyrocket::client::poll::PollClient;
use skyrocket::client::Subscriber;
use skyrocket::message::Resume;
use skyrocket::message::Transport;
use skyrocket::message::{Control, Event, Online};

/// Reads presence events until one says exactly `want`.
async fn wait_for(watcher: &mut Subscriber, want: Online) {
    within(PATIENCE, async {
        loop {
            if let Event::Control(Control::Presence { online, total, .. }) =
                watcher.next_event().await.unwrap()
            {
                if online == want {
                    assert_eq!(total, want.total());
                    return;
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn counts_every_transport_and_expires_pollers_after_the_ttl() {
    let server = TestServer::with_config(quiet_config()).await;
    let target = server.target("presence");
    let rooms = &server.state.rooms;
    let ttl = rooms.config().poller_ttl.as_millis() as u64;

    let mut watcher = subscribe(Transport::Ws, &target, Resume::default()).await;
    let _sse = subscribe(Transport::Sse, &target, Resume::default()).await;
    // One short poller, seen at 1 s on the coarse clock, asking twice: it
    // counts once.
    rooms.tick_at(1_000);
    let mut short = PollClient::new(&target, &Resume::default(), 0);
    within(PATIENCE, short.poll_once()).await.unwrap();
    within(PATIENCE, short.poll_once()).await.unwrap();
    rooms.tick_at(2_000);
    let mut want = Online {
        ws: 1,
        sse: 1,
        longpoll: 0,
        poll: 1,
    };
    wait_for(&mut watcher, want).await;

    // Two long pollers, seen later on the coarse clock, held now.
    rooms.tick_at(ttl);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut long = PollClient::new(&target, &Resume::default(), 25);
        held.push(tokio::spawn(async move { long.poll_once().await }));
    }
    eventually(|| async { server.state.rooms.held_polls() == 2 }).await;
    rooms.tick_at(ttl + 500);
    want.longpoll = 2;
    wait_for(&mut watcher, want).await;

    // Past the short poller's ttl, not the long pollers': only it expires.
    rooms.tick_at(1_000 + ttl + 1);
    want.poll = 0;
    wait_for(&mut watcher, want).await;

    // A poller that comes back counts again, as a long poller now.
    let mut back = PollClient::new(&target, &Resume::default(), 1);
    drop(within(PATIENCE, back.poll_once()).await);
    rooms.tick_at(2 * ttl);
    want.longpoll = 3;
    wait_for(&mut watcher, want).await;

    // Past everyone's ttl: the streams alone are left.
    rooms.tick_at(3 * ttl + 1);
    want.longpoll = 0;
    wait_for(&mut watcher, want).await;
    for poll in held {
        poll.abort();
    }
}

#[tokio::test]
async fn a_poller_switching_between_long_and_short_polls_counts_once() {
    let server = TestServer::with_config(quiet_config()).await;
    let target = server.target("switch");
    let room = server.state.rooms.get("switch").unwrap();
    let mut poller = PollClient::new(&target, &Resume::default(), 0);
    within(PATIENCE, poller.poll_once()).await.unwrap();
    let online = room.local_online();
    assert_eq!((online.longpoll, online.poll), (0, 1));
    // The same client (its `client=` key) long-polls now: moved, not added.
    let mut long = PollClient::new(&target, &Resume::default(), 1);
    long.set_client(poller.client());
    within(PATIENCE, long.poll_once()).await.unwrap();
    let online = room.local_online();
    assert_eq!((online.longpoll, online.poll), (1, 0));
}
