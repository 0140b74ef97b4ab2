//! 1,000 forced reconnects across the four transports while the room is
//! busy: each reader drops its connection every few messages, messages
//! already on their way to it are lost with the connection, and it resumes
//! from the last id it read (`since`, or SSE's `Last-Event-ID`). Every
//! reader must end with every id exactly once, in order.

mod common;

use common::*;
use skyrocket::client::sse::SseClient;
use skyrocket::client::{Subscriber, Target};
use skyrocket::message::Resume;
use skyrocket::message::Transport;
use skyrocket::Config;
use std::time::{Duration, Instant};

const MESSAGES: u64 = 2000;
const RECONNECTS_PER_TRANSPORT: u64 = 250;
/// Messages read on each connection before it is dropped.
const READ_PER_CONNECTION: u64 = 7;

/// Connects over `kind` resuming after `last`, the way each client does it:
/// a browser's EventSource keeps its URL and sends `Last-Event-ID`.
async fn reconnect(kind: Transport, target: &Target, last: u64) -> Subscriber {
    if kind == Transport::Sse && last > 0 {
        let sse = within(
            PATIENCE,
            SseClient::connect_with(target, &from_start(), Some(last)),
        )
        .await
        .unwrap();
        return Subscriber::Sse(sse);
    }
    let resume = Resume {
        since: Some(last),
        epoch: None,
    };
    within(
        PATIENCE,
        Subscriber::connect(kind, target, &resume, Duration::from_millis(20)),
    )
    .await
    .unwrap()
}

/// Reads every id from 1 to MESSAGES, dropping the connection every few
/// messages; returns how many times it reconnected.
async fn read_all_with_reconnects(kind: Transport, base: String) -> u64 {
    let mut last = 0;
    let mut reconnects = 0;
    while last < MESSAGES {
        // A fresh client each time: a new TCP connection on every transport.
        let target = Target::new(base.clone(), "storm");
        let mut subscriber = reconnect(kind, &target, last).await;
        let mut read_here = 0;
        while last < MESSAGES {
            let message = next_message(&mut subscriber).await;
            assert_eq!(
                message.id,
                last + 1,
                "{}: after {last} came {} (lost or duplicated)",
                kind.name(),
                message.id
            );
            last = message.id;
            read_here += 1;
            if read_here == READ_PER_CONNECTION && reconnects < RECONNECTS_PER_TRANSPORT {
                break;
            }
        }
        if last < MESSAGES {
            reconnects += 1;
        }
    }
    reconnects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_forced_reconnects_lose_nothing_and_repeat_nothing() {
    let server = TestServer::with_config(Config {
        history: MESSAGES as usize,
        max_replay: MESSAGES as usize,
        ..Config::default()
    })
    .await;
    let started = Instant::now();
    let readers: Vec<_> = Transport::RECEIVING
        .into_iter()
        .map(|kind| tokio::spawn(read_all_with_reconnects(kind, server.base())))
        .collect();
    let target = server.target("storm");
    for i in 1..=MESSAGES {
        assert_eq!(
            target.send(&draft("ada", &format!("m{i}"))).await.unwrap(),
            i
        );
    }
    let mut total = 0;
    for (kind, reader) in Transport::RECEIVING.into_iter().zip(readers) {
        let reconnects = within(PATIENCE * 3, reader).await.unwrap();
        assert_eq!(reconnects, RECONNECTS_PER_TRANSPORT, "{}", kind.name());
        total += reconnects;
    }
    println!(
        "reconnect storm: {total} forced reconnects ({RECONNECTS_PER_TRANSPORT} per transport) \
         while {MESSAGES} messages were sent; {} deliveries checked: 0 lost, 0 duplicated, \
         order kept; {:.1} s",
        MESSAGES * 4,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(total, 1000);
}
