//! `payload/{ws,sse,longpoll,poll}/{16B,1KiB,64KiB}`: the round trip of
//! `roundtrip/*` (one client sends and receives its own message) with 16
//! bytes, 1 KiB and 64 KiB of text in the message.
//!
//! The server's text limit is 4096 bytes by default; these benches raise it
//! (and the POST body and WebSocket message limits) in their own server
//! config to allow 64 KiB, see `bench_config` in `benches/common/mod.rs`.
//! Criterion's throughput for this group is text bytes per second.
//!
//! What the numbers claim: how the time of one send-and-receive grows with
//! the message, per transport, on loopback, in one process. Every transport
//! carries the same JSON: the WebSocket one frame, SSE one `data:` line,
//! a poll one response body. Short polling is one poll cycle, as in
//! `roundtrip`. Bytes on the wire at each size are in `wire_bytes`.
//!
//! `payload/{ws,sse,longpoll,poll}-h2/*`: the same over HTTPS with HTTP/2.
//!
//! What they don't: a real network's bandwidth and RTT, where 64 KiB takes
//! several round trips of TCP's congestion window and the difference
//! between transports shrinks next to the transfer itself.

mod common;

use common::{Audience, PAYLOADS};
use criterion::{
    criterion_group, criterion_main, AxisScale, BenchmarkId, Criterion, PlotConfiguration,
    Throughput,
};
use skyrocket::client::Connect;
use skyrocket::message::Transport;
use std::sync::Arc;
use std::time::Duration;

fn payload(c: &mut Criterion) {
    let rt = common::runtime();
    let base = common::start_server(&rt);
    let mut group = c.benchmark_group("payload");
    // The parameter spans orders of magnitude: log axes in criterion's
    // comparison chart, or the small values collapse onto the axis.
    group.plot_config(PlotConfiguration::default().summary_scale(AxisScale::Logarithmic));
    group.measurement_time(Duration::from_secs(2));
    let (base_h2, h2) = common::start_server_h2(&rt);
    let variants = [
        (base.as_str(), Connect::default(), ""),
        (base_h2.as_str(), h2, "-h2"),
    ];
    for (base, connect, suffix) in &variants {
        for kind in Transport::RECEIVING {
            let room = format!("payload-{}{suffix}", kind.name());
            let audience = rt.block_on(Audience::roundtrip_with(kind, base, &room, connect));
            let audience = Arc::new(audience);
            let id = format!("{}{suffix}", kind.name());
            for (bytes, name) in PAYLOADS {
                let draft = common::draft(bytes);
                group.throughput(Throughput::Bytes(bytes as u64));
                group.bench_with_input(BenchmarkId::new(&id, name), &bytes, |b, _| {
                    common::bench_deliveries(b, &rt, &audience, &draft)
                });
            }
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = payload
}
criterion_main!(benches);
