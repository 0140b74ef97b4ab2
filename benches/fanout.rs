//! `fanout/{ws,sse,longpoll,poll}/{1,10,100,1000}`: one 16-byte message
//! POSTed to a room with N receivers on one transport, timed until the last
//! receiver has it. The receivers connect once per benchmark, before it is
//! timed; each iteration is one message to all of them.
//!
//! What the numbers claim: how delivery time grows with the audience, per
//! transport, on loopback, with the server, the N receivers and the sender
//! in this one process on the same cores (see `benches/common/mod.rs`), so
//! a figure includes the receivers' own parsing and, for long polling, the
//! N new requests each delivery triggers. Criterion's throughput for this
//! group is deliveries (receivers) per second. Short pollers are timed as
//! one poll cycle each (told to poll as soon as the POST is answered, all
//! N at once): the floor of short polling, before the interval a real
//! poller waits (half of it on average).
//!
//! What they don't: the cost of receivers on other machines, of idle
//! connections between messages (see `loadgen`), or of a busy room (one
//! message at a time here, so a long poll or SSE stream never carries two
//! messages in one response or chunk).

mod common;

use common::{Audience, CHAT_TEXT};
use criterion::{
    criterion_group, criterion_main, AxisScale, BenchmarkId, Criterion, PlotConfiguration,
    SamplingMode, Throughput,
};
use skyrocket::message::Transport;
use std::sync::Arc;
use std::time::Duration;

const AUDIENCES: [usize; 4] = [1, 10, 100, 1000];

fn fanout(c: &mut Criterion) {
    let rt = common::runtime();
    let base = common::start_server(&rt);
    let draft = common::draft(CHAT_TEXT);
    let mut group = c.benchmark_group("fanout");
    // A delivery to 1000 receivers takes tens of milliseconds: flat
    // sampling runs as few iterations as 10 samples need, where linear
    // sampling would run 55 times that many.
    // The parameter spans orders of magnitude: log axes in criterion's
    // comparison chart, or the small values collapse onto the axis.
    group.plot_config(PlotConfiguration::default().summary_scale(AxisScale::Logarithmic));
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for kind in Transport::RECEIVING {
        for n in AUDIENCES {
            let room = format!("fanout-{}-{n}", kind.name());
            let audience = Arc::new(rt.block_on(Audience::join(kind, &base, &room, n)));
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(kind.name(), n), &n, |b, _| {
                common::bench_deliveries(b, &rt, &audience, &draft)
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = fanout
}
criterion_main!(benches);
