//! What the Redis hop costs one message: send -> receive latency with the
//! memory backbone, and over Redis with the receiver on the sending
//! instance or on another one.
//!
//! `cargo run --release --example redis_latency -- redis://127.0.0.1:6379 [MESSAGES]`
//!
//! `... -- redis://127.0.0.1:6379 MESSAGES 1,100,2000` asks instead how the
//! hop scales with the number of active rooms: for each count N, N rooms
//! each hold a WebSocket receiver on the receiving instance (so an instance
//! on Redis reads N rooms' live feeds), 100 messages a second in all go to
//! the N - 1 other rooms, and one room is measured as above, in memory and
//! over Redis with the receiver on the other instance. It prints the
//! provenance lines first, ready for `results/redis/`.
//!
//! Starts three servers in this process on 127.0.0.1:0: one in memory and
//! two on the given Redis. For each case a WebSocket receiver waits in a
//! fresh room; messages are POSTed one at a time, the next only once the
//! receiver has the last, so this is the latency of an idle system, not of
//! one under load (that is loadgen's job). It prints, per case, the POST's
//! round trip (until `201`) and the time until the receiver has the message,
//! both from the start of the POST. Client and servers share this process
//! and its cores, so the figures include their scheduling; compare the
//! rows with each other rather than with another machine's.

use skyrocket::client::{ws::WsClient, Target};
use skyrocket::message::Resume;
use skyrocket::message::{now_millis, Draft, Event};
use skyrocket::{AppState, Config};
use std::time::{Duration, Instant};

/// Messages discarded first (connections, scripts and caches warming up).
const WARMUP: usize = 20;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: redis_latency REDIS_URL [MESSAGES]")?;
    let messages: usize = args.next().map_or(Ok(500), |n| n.parse())?;
    let counts = args.next();

    let memory = start(Config::default()).await?;
    let redis_config = Config {
        redis: Some(url.clone()),
        ..Config::default()
    };
    let a = start(redis_config.clone()).await?;
    let b = start(redis_config).await?;
    if let Some(counts) = counts {
        let counts = counts
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<usize>, _>>()?;
        return scaling(&url, [&memory, &a, &b], messages, &counts).await;
    }

    // A room name of this run's own, so an earlier run's history in Redis
    // does not matter.
    let room = format!("latency-{}", now_millis());
    let cases = [
        ("memory, one instance", &memory, &memory),
        ("redis, receiver on the sending instance", &a, &a),
        ("redis, receiver on the other instance", &a, &b),
    ];
    println!("{messages} messages per case, one at a time, after {WARMUP} warm-up messages\n");
    println!("| case | POST round trip p50 / p99 | send -> receive p50 / p90 / p99 / max |");
    println!("| --- | ---: | ---: |");
    for (name, sender, receiver) in cases {
        let (post, delivery) = measure(
            &Target::new(sender, &room),
            &Target::new(receiver, &room),
            messages,
        )
        .await?;
        println!(
            "| {name} | {} / {} | {} / {} / {} / {} |",
            ms(&post, 0.5),
            ms(&post, 0.99),
            ms(&delivery, 0.5),
            ms(&delivery, 0.9),
            ms(&delivery, 0.99),
            ms(&delivery, 1.0),
        );
    }
    Ok(())
}

/// Background messages a second, over the rooms not measured.
const BACKGROUND_RATE: u64 = 100;

/// The hop's latency with N active rooms, for each N in `counts`.
async fn scaling(
    url: &str,
    [memory, a, b]: [&String; 3],
    messages: usize,
    counts: &[usize],
) -> Result<(), Box<dyn std::error::Error>> {
    let command = format!(
        "cargo run --release --example redis_latency -- {url} {messages} {}",
        counts
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    print!(
        "{}",
        skyrocket::provenance::Provenance::here(&command).to_markdown()
    );
    println!("\n{messages} messages per case, one at a time, after {WARMUP} warm-up messages;");
    println!("{BACKGROUND_RATE} background messages a second over the other active rooms\n");
    println!("| active rooms | case | send -> receive p50 / p90 / p99 / max |");
    println!("| ---: | --- | ---: |");
    for &n in counts {
        for (name, sender, receiver) in [
            ("memory, one instance", memory, memory),
            ("redis, receiver on the other instance", a, b),
        ] {
            let run = format!("scale{n}-{}", now_millis());
            let room = |i: usize| format!("{run}-{i}");
            let mut others = tokio::task::JoinSet::new();
            for i in 1..n.max(1) {
                let mut socket =
                    WsClient::connect(&Target::new(receiver, room(i)), &Resume::default()).await?;
                others.spawn(async move { while socket.next_event().await.is_ok() {} });
            }
            let background = tokio::spawn({
                let (sender, rooms) = (sender.clone(), n.max(1) - 1);
                let run = run.clone();
                async move {
                    // One client, so the sends share keep-alive connections.
                    let http = skyrocket::client::tls::http_builder().build().unwrap();
                    let mut tick =
                        tokio::time::interval(Duration::from_micros(1_000_000 / BACKGROUND_RATE));
                    for k in 0.. {
                        tick.tick().await;
                        if rooms == 0 {
                            continue;
                        }
                        let url = format!("{sender}/rooms/{run}-{}/messages", 1 + k % rooms);
                        let body = serde_json::json!({"user": "background", "text": k.to_string()});
                        let _ = http.post(url).json(&body).send().await;
                    }
                }
            });
            let (_, delivery) = measure(
                &Target::new(sender, room(0)),
                &Target::new(receiver, room(0)),
                messages,
            )
            .await?;
            background.abort();
            others.abort_all();
            println!(
                "| {n} | {name} | {} / {} / {} / {} |",
                ms(&delivery, 0.5),
                ms(&delivery, 0.9),
                ms(&delivery, 0.99),
                ms(&delivery, 1.0),
            );
        }
    }
    Ok(())
}

/// A server on 127.0.0.1:0 for the rest of the process; its base URL.
async fn start(config: Config) -> Result<String, Box<dyn std::error::Error>> {
    let state = AppState::connect(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(skyrocket::run(listener, state, std::future::pending()));
    Ok(base)
}

/// Sorted POST round trips and send -> receive times.
async fn measure(
    sender: &Target,
    receiver: &Target,
    messages: usize,
) -> Result<(Vec<Duration>, Vec<Duration>), Box<dyn std::error::Error>> {
    let mut socket = WsClient::connect(receiver, &Resume::default()).await?;
    let (mut post, mut delivery) = (Vec::new(), Vec::new());
    for i in 0..WARMUP + messages {
        let draft = Draft {
            user: "bench".into(),
            text: format!("message {i}"),
            client_id: None,
        };
        let start = Instant::now();
        let id = sender.send(&draft).await?;
        let posted = start.elapsed();
        loop {
            match socket.next_event().await? {
                Event::Message(m) if m.id == id => break,
                _ => continue,
            }
        }
        if i >= WARMUP {
            post.push(posted);
            delivery.push(start.elapsed());
        }
    }
    post.sort();
    delivery.sort();
    Ok((post, delivery))
}

/// The `q` quantile of sorted durations, in milliseconds.
fn ms(sorted: &[Duration], q: f64) -> String {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted
        .get(i)
        .map_or("-".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
}
