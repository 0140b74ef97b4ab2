//! `connect/{ws,sse,longpoll,poll}`: from nothing to the first message
//! received, handshake included. Each iteration opens a new TCP connection
//! (a fresh HTTP client, built before the clock starts), does the
//! transport's handshake (WebSocket upgrade, SSE response head, or the first
//! poll request), and waits for a message already in the room, asked for
//! with `since` so it is delivered at once. Closing is not timed.
//!
//! What the numbers claim: the cost of (re)connecting on loopback, in one
//! process with the server: what a client pays once per page load, and
//! again on every reconnect. Long and short polling do the same work here
//! (one request that finds a message waiting), so their figures should
//! match; polling pays this cost per request, not once.
//!
//! What they don't: TLS (none here), DNS, or a real network's round trips
//! (a WebSocket or SSE connection costs one request before the first
//! message; TCP's own handshake comes on top on a real link).
//!
//! Each iteration leaves a socket in TIME_WAIT; the short measurement keeps
//! the count (a few thousand per transport) far from the ~28,000 ephemeral
//! ports of one source address.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use skyrocket::client::{Subscriber, Target};
use skyrocket::message::Event;
use skyrocket::message::Resume;
use skyrocket::message::Transport;
use std::time::{Duration, Instant};

fn connect(c: &mut Criterion) {
    let rt = common::runtime();
    let base = common::start_server(&rt);
    let mut group = c.benchmark_group("connect");
    group.sample_size(30);
    for kind in Transport::RECEIVING {
        let room = format!("connect-{}", kind.name());
        let id = rt
            .block_on(Target::new(&base, &room).send(&common::draft(common::CHAT_TEXT)))
            .expect("POST the message every client will receive");
        let resume = Resume {
            since: Some(id - 1),
            epoch: None,
        };
        group.bench_function(kind.name(), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (base, room, resume) = (base.clone(), room.clone(), resume.clone());
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // A new reqwest client has an empty connection pool.
                        let fresh = Target::new(&base, &room);
                        let start = Instant::now();
                        let mut subscriber =
                            Subscriber::connect(kind, &fresh, &resume, Duration::ZERO)
                                .await
                                .expect("connect");
                        loop {
                            let event = subscriber.next_event().await.expect("first message");
                            if let Event::Message(m) = event {
                                std::hint::black_box(m);
                                break;
                            }
                        }
                        total += start.elapsed();
                    }
                    total
                }
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = connect
}
criterion_main!(benches);
