//! `room/post/{1,10,100,1000}` and `room/deliver/{1,10,100,1000}`: the room
//! core with no network at all (no HTTP, no sockets, no JSON parsing on a
//! client), so the transport benches can be read against it.
//!
//! - `post/N`: `Room::post` of a 16-byte chat line with N subscriptions
//!   open: validate, assign an id, encode the JSON once, keep it in the
//!   history and hand it to the broadcast feed. The subscriptions drain the
//!   feed between iterations, outside the timing.
//! - `deliver/N`: the same post, then every one of the N subscriptions
//!   takes the message (`Subscription::next`), one after the other on one
//!   thread: the room's share of `fanout/*/N`.
//!
//! What the numbers claim: the in-memory backbone's cost per message and
//! per subscriber, on one thread of a current-thread runtime. Compare
//! `deliver/1000` with `fanout/*/1000`: the difference is the transports,
//! the sockets and the clients.
//!
//! What they don't: contention between threads (one thread here), or a
//! Redis backbone.

mod common;

use criterion::{
    criterion_group, criterion_main, AxisScale, BenchmarkId, Criterion, PlotConfiguration,
};
use skyrocket::backbone::Backbone;
use skyrocket::message::Resume;
use skyrocket::room::{Delivery, Room, RoomConfig, Rooms, Subscription};
use std::hint::black_box;
use std::time::{Duration, Instant};

const SUBSCRIBERS: [usize; 4] = [1, 10, 100, 1000];

/// Takes the next delivery, which must be a message (nothing else is sent
/// in these rooms).
async fn take_message(subscription: &mut Subscription) {
    match subscription.next().await {
        Ok(Delivery::Message(m)) => {
            black_box(m);
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

/// What a `room` benchmark puts on the clock.
#[derive(Clone, Copy)]
enum Timed {
    /// The post alone; the subscriptions take it after, off the clock.
    Post,
    /// The post and every subscription taking it.
    Delivery,
}

impl Timed {
    fn name(self) -> &'static str {
        match self {
            Self::Post => "post",
            Self::Delivery => "deliver",
        }
    }
}

/// `iters` posts, each taken by every subscription; the time of what
/// `timed` says.
async fn post_and_take(
    room: &Room,
    subscriptions: &mut [Subscription],
    iters: u64,
    timed: Timed,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let draft = common::draft(common::CHAT_TEXT);
        let start = Instant::now();
        black_box(room.post(draft).await.expect("post"));
        let posted = start.elapsed();
        for s in subscriptions.iter_mut() {
            take_message(s).await;
        }
        total += match timed {
            Timed::Post => posted,
            Timed::Delivery => start.elapsed(),
        };
    }
    total
}

fn room(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let rooms = Rooms::new(Backbone::memory(1000), RoomConfig::default());
    let mut group = c.benchmark_group("room");
    // The parameter spans orders of magnitude: log axes in criterion's
    // comparison chart, or the small values collapse onto the axis.
    group.plot_config(PlotConfiguration::default().summary_scale(AxisScale::Logarithmic));
    group.measurement_time(Duration::from_millis(1500));
    for n in SUBSCRIBERS {
        let room = rooms.get(&format!("room-{n}")).expect("a valid room name");
        let mut subscriptions: Vec<Subscription> = (0..n)
            .map(|_| rt.block_on(room.subscribe(&Resume::default())))
            .collect::<Result<_, _>>()
            .expect("subscribe");

        for timed in [Timed::Post, Timed::Delivery] {
            let id = BenchmarkId::new(timed.name(), n);
            group.bench_with_input(id, &n, |b, _| {
                b.iter_custom(|iters| {
                    rt.block_on(post_and_take(&room, &mut subscriptions, iters, timed))
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = room
}
criterion_main!(benches);
