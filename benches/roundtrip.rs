//! `roundtrip/{ws,sse,longpoll,poll}`: one client sends a 16-byte chat line
//! and receives it back through the room; the time from send to receipt.
//!
//! Each client sends the way its transport does: the WebSocket client over
//! its own socket (a `send` frame), the others with a `POST` on a
//! keep-alive connection, then receive on their stream or poll. So the
//! WebSocket figure is one socket both ways; the others are two requests or
//! a request and a stream.
//!
//! What the numbers claim: the latency the transport itself adds on
//! loopback, with an idle server, one client, the server in this process
//! (see `benches/common/mod.rs`). Short polling is timed as one poll cycle
//! (the POST, then one poll that finds the message): the floor of its
//! latency. A real short poller waits for its next tick first, about half
//! its interval on average (+500 ms at a 1 s interval), which dwarfs
//! everything measured here.
//!
//! `roundtrip/{ws,sse,longpoll,poll}-h2`: the same over HTTPS with HTTP/2
//! (the WebSocket by RFC 8441 on a stream; the POST and the stream or poll
//! on one connection). The difference to the plain ids is TLS and HTTP/2
//! framing together; the connection is already open in both.
//!
//! What they don't: latency over a real network (loopback has no RTT to
//! speak of, so request counts matter far more on a real link), under load,
//! or with a browser's client stack.

mod common;

use common::{Audience, CHAT_TEXT};
use criterion::{criterion_group, criterion_main, Criterion};
use skyrocket::message::Transport;
use std::sync::Arc;
use std::time::Duration;

fn roundtrip(c: &mut Criterion) {
    let rt = common::runtime();
    let base = common::start_server(&rt);
    let draft = common::draft(CHAT_TEXT);
    let mut group = c.benchmark_group("roundtrip");
    group.measurement_time(Duration::from_secs(3));
    for kind in Transport::RECEIVING {
        let room = format!("roundtrip-{}", kind.name());
        let audience = Arc::new(rt.block_on(Audience::roundtrip(kind, &base, &room)));
        group.bench_function(kind.name(), |b| {
            common::bench_deliveries(b, &rt, &audience, &draft)
        });
    }
    let (base_h2, h2) = common::start_server_h2(&rt);
    for kind in Transport::RECEIVING {
        let room = format!("roundtrip-{}-h2", kind.name());
        let audience = rt.block_on(Audience::roundtrip_with(kind, &base_h2, &room, &h2));
        let audience = Arc::new(audience);
        group.bench_function(format!("{}-h2", kind.name()), |b| {
            common::bench_deliveries(b, &rt, &audience, &draft)
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = roundtrip
}
criterion_main!(benches);
