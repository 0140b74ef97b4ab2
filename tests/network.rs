//! The network in between, over real sockets: each fault does what a real
//! network would, every transport gets through it with nothing lost or
//! doubled, and automatic fallback lands on a transport that works.
//!
//! Times here are conditions of the network (a delay, an idle timeout),
//! not expectations of speed: the only time asserts are lower bounds a
//! delay cannot undercut, and waits have the generous `PATIENCE`.

mod common;

use common::network::NetServer;
use common::*;
use futures_util::FutureExt;
use skyrocket::client::auto::{AutoClient, AutoConfig};
use skyrocket::client::sse::SseClient;
use skyrocket::client::ws::WsClient;
use skyrocket::client::ClientError;
use skyrocket::config::NEVER;
use skyrocket::message::{Control, Event, Resume, Transport};
use skyrocket::network::Conditions;
use skyrocket::Config;
use std::time::{Duration, Instant};

/// Fallback and retry settings that keep the tests short.
fn quick(order: &[Transport]) -> AutoConfig {
    AutoConfig {
        order: order.to_vec(),
        probe: Duration::from_secs(2),
        backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        poll_interval: Duration::from_millis(20),
        ..AutoConfig::auto()
    }
}

fn since(id: u64) -> Resume {
    Resume {
        since: Some(id),
        epoch: None,
    }
}

/// The next chat message's id, skipping control events (a gap fails).
async fn next_id(client: &mut AutoClient) -> u64 {
    loop {
        match within(PATIENCE, client.next_event()).await.unwrap() {
            Event::Message(m) => return m.id,
            Event::Control(Control::Gap { from, to }) => panic!("unexpected gap {from}..={to}"),
            Event::Control(_) => continue,
        }
    }
}

/// Ids received until `last`.
async fn ids_until(client: &mut AutoClient, last: u64) -> Vec<u64> {
    let mut ids = Vec::new();
    while ids.last() != Some(&last) {
        ids.push(next_id(client).await);
    }
    ids
}

/// The first event of a connection, which proves it open.
async fn hello(client: &mut AutoClient) {
    loop {
        let event = within(PATIENCE, client.next_event()).await.unwrap();
        if let Event::Control(Control::Hello { .. }) = event {
            return;
        }
    }
}

async fn post(server: &TestServer, room: &str, text: &str) -> u64 {
    server.target(room).send(&draft("net", text)).await.unwrap()
}

#[tokio::test]
async fn the_network_endpoint_reads_and_changes_conditions_and_refuses_bad_input() {
    // Without a network in between, the routes say so.
    let plain = TestServer::start().await;
    let answer = skyrocket::client::tls::get(&format!("{}/network", plain.base()))
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);

    let net = NetServer::start(Config::default(), Conditions::NONE).await;
    let url = format!("{}/network", net.server.base());
    let http = skyrocket::client::tls::http_builder().build().unwrap();
    let put = |body: &str, content_type: &str| {
        http.put(&url)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
    };
    let changed = put(r#"{"rtt_ms":100,"upgrade":"403"}"#, "application/json")
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let body: serde_json::Value = changed.json().await.unwrap();
    assert_eq!(body["conditions"]["up_ms"], 50);
    assert_eq!(body["spec"], "rtt=100ms,upgrade=403");
    assert_eq!(body["addr"], net.base.trim_start_matches("http://"));

    let big = format!(r#"{{"jitter_ms":1,"pad":"{}"}}"#, "x".repeat(70_000));
    for (body, content_type, status, says) in [
        (r#"{"bogus":1}"#, "application/json", 400, "unknown field"),
        (
            r#"{"idle_ms":5}"#,
            "application/json",
            400,
            "idle_ms must be",
        ),
        (
            r#"{"upgrade":"maybe"}"#,
            "application/json",
            400,
            "unknown variant",
        ),
        (r#"{"up_ms":-1}"#, "application/json", 400, "invalid value"),
        ("{", "application/json", 400, ""),
        (r#"{"up_ms":1}"#, "text/plain", 415, "Content-Type"),
        (big.as_str(), "application/json", 413, ""),
    ] {
        let answer = put(body, content_type).await.unwrap();
        assert_eq!(answer.status(), status, "{}", &body[..body.len().min(40)]);
        let error: serde_json::Value = answer.json().await.unwrap();
        let error = error["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{status}: {error}");
    }
    // None of them changed anything.
    let now = net.network.conditions();
    assert_eq!(now, Conditions::parse("rtt=100ms,upgrade=403").unwrap());
}

#[tokio::test]
async fn latency_delays_each_direction_and_keeps_order() {
    let net = NetServer::start(
        quiet_config(),
        Conditions::parse("rtt=200ms,jitter=20ms").unwrap(),
    )
    .await;
    // A request and its answer each wait a one-way delay: at least the
    // round trip less both jitters.
    let started = Instant::now();
    let health = skyrocket::client::tls::get(&format!("{}/healthz", net.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(160));

    // A burst through the delay arrives whole and in order despite jitter.
    let mut client = AutoClient::new(&net.through("lag"), &since(0), quick(&[Transport::Ws]));
    hello(&mut client).await;
    for i in 0..30 {
        post(&net.server, "lag", &format!("m{i}")).await;
    }
    assert_eq!(
        ids_until(&mut client, 30).await,
        (1..=30).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_idle_timeout_spares_connections_with_heartbeats() {
    let mut config = quiet_config();
    config.ws.ping_interval = Duration::from_millis(200);
    config.sse.keepalive = Duration::from_millis(200);
    let net = NetServer::start(config, Conditions::parse("idle=1s").unwrap()).await;
    let mut clients = Vec::new();
    for kind in [Transport::Ws, Transport::Sse] {
        let mut client = AutoClient::new(&net.through("beat"), &since(0), quick(&[kind]));
        hello(&mut client).await;
        clients.push(client);
    }
    // Three idle timeouts pass: the fault under test is time itself.
    tokio::time::sleep(Duration::from_secs(3)).await;
    post(&net.server, "beat", "still here").await;
    for client in &mut clients {
        assert_eq!(next_id(client).await, 1);
        assert_eq!(client.reconnects(), 0, "{:?}", client.last_failure());
    }
    assert_eq!(net.counters().idle_cuts, 0);
}

#[tokio::test]
async fn without_heartbeats_an_idle_timeout_cuts_and_clients_resume_from_their_cursor() {
    let mut config = quiet_config();
    config.ws.ping_interval = NEVER;
    config.sse.keepalive = NEVER;
    let net = NetServer::start(config, Conditions::parse("idle=500ms").unwrap()).await;
    let mut clients = Vec::new();
    for kind in [Transport::Ws, Transport::Sse] {
        let mut client = AutoClient::new(&net.through("quiet"), &since(0), quick(&[kind]));
        hello(&mut client).await;
        clients.push(client);
    }
    post(&net.server, "quiet", "before").await;
    for client in &mut clients {
        assert_eq!(next_id(client).await, 1);
    }
    // Both connections go quiet and are cut.
    eventually(|| async { net.counters().idle_cuts >= 2 }).await;
    post(&net.server, "quiet", "after").await;
    for client in &mut clients {
        // The next message is the new one: nothing lost, nothing twice.
        assert_eq!(next_id(client).await, 2);
        assert!(client.reconnects() >= 1);
        assert_eq!(client.doubles(), 0);
    }
}

#[tokio::test]
async fn buffering_stalls_sse_until_the_buffer_fills_while_polls_go_through() {
    let net = NetServer::start(quiet_config(), Conditions::parse("buffer=4KiB").unwrap()).await;
    let through = net.through("held");
    // The response head passes, so the stream "connects"...
    let mut sse = within(PATIENCE, SseClient::connect(&through, &since(0)))
        .await
        .unwrap();
    let mut long_poll = AutoClient::new(&through, &since(0), quick(&[Transport::LongPoll]));
    let mut short_poll = AutoClient::new(&through, &since(0), quick(&[Transport::Poll]));
    post(&net.server, "held", "first").await;
    // ...polls are unaffected: each answer is a whole body, released at its end...
    assert_eq!(next_id(&mut long_poll).await, 1);
    assert_eq!(next_id(&mut short_poll).await, 1);
    // ...but the stream's events sit in the proxy.
    eventually(|| async { net.counters().held > 0 }).await;
    assert!(
        sse.next_event().now_or_never().is_none(),
        "nothing reached the SSE client"
    );

    // Enough messages to fill the buffer release them all, in order.
    let text = "x".repeat(200);
    for _ in 0..30 {
        post(&net.server, "held", &text).await;
    }
    let mut ids = Vec::new();
    while ids.len() < 20 {
        match within(PATIENCE, sse.next_event()).await.unwrap() {
            Event::Message(m) => ids.push(m.id),
            Event::Control(_) => {}
        }
    }
    assert_eq!(ids, (1..=20).collect::<Vec<_>>());
    assert_eq!(
        ids_until(&mut long_poll, 31).await,
        (2..=31).collect::<Vec<_>>()
    );

    // A proxy that refuses upgrades and buffers: auto mode passes over
    // WebSocket (refused) and SSE (silent) and settles on long polling.
    net.set("buffer=4KiB,upgrade=403");
    let mut auto = AutoClient::new(&through, &since(31), quick(&Transport::RECEIVING));
    post(&net.server, "held", "found a way").await;
    assert_eq!(next_id(&mut auto).await, 32);
    assert_eq!(auto.transport(), Transport::LongPoll, "{}", auto.why());
    let path: Vec<_> = auto.switches().iter().map(|s| (s.from, s.to)).collect();
    assert_eq!(
        path,
        [
            (Transport::Ws, Transport::Sse),
            (Transport::Sse, Transport::LongPoll)
        ]
    );
}

#[tokio::test]
async fn with_no_upgrade_auto_mode_falls_back_to_sse() {
    for mode in ["403", "drop"] {
        let net = NetServer::start(
            quiet_config(),
            Conditions::parse(&format!("upgrade={mode}")).unwrap(),
        )
        .await;
        let through = net.through("corp");
        // A WebSocket client on its own simply fails.
        let refused = within(PATIENCE, WsClient::connect(&through, &since(0))).await;
        match (mode, refused) {
            ("403", Err(ClientError::Ws(e))) => assert!(e.to_string().contains("403"), "{e}"),
            ("drop", Err(ClientError::Ws(_))) => {}
            (_, other) => panic!("{mode}: {other:?}"),
        }
        post(&net.server, "corp", "hello").await;
        let mut auto = AutoClient::new(&through, &since(0), quick(&Transport::RECEIVING));
        // The bound: PATIENCE for the first message, on SSE.
        assert_eq!(next_id(&mut auto).await, 1);
        assert_eq!(auto.transport(), Transport::Sse, "{mode}: {}", auto.why());
        assert_eq!(auto.switches().len(), 1);
        if mode == "403" {
            assert!(auto.why().contains("403"), "{}", auto.why());
        }
        assert!(net.counters().upgrades_refused >= 2);
    }
}

#[tokio::test]
async fn auto_mode_falls_back_mid_conversation_without_losing_or_doubling() {
    let net = NetServer::start(quiet_config(), Conditions::NONE).await;
    let mut auto = AutoClient::new(
        &net.through("switch"),
        &since(0),
        AutoConfig {
            retries: 1,
            ..quick(&Transport::RECEIVING)
        },
    );
    for i in 1..=5 {
        post(&net.server, "switch", &format!("ws {i}")).await;
    }
    assert_eq!(ids_until(&mut auto, 5).await, (1..=5).collect::<Vec<_>>());
    assert_eq!(auto.transport(), Transport::Ws);
    // The network starts refusing upgrades and cuts the open socket.
    net.set("upgrade=403");
    net.network.cut_all();
    for i in 6..=10 {
        post(&net.server, "switch", &format!("after {i}")).await;
    }
    assert_eq!(ids_until(&mut auto, 10).await, (6..=10).collect::<Vec<_>>());
    assert_eq!(auto.transport(), Transport::Sse, "{}", auto.why());
    assert_eq!(auto.doubles(), 0);
}

/// The issue asks for a drop every 2 s during 200 messages. A drop every
/// 300 ms with the messages sent in four bursts, each after the next drop,
/// gives every client at least three cuts mid-stream in about a second
/// and a half instead of several seconds per transport.
#[tokio::test]
async fn drops_lose_nothing_on_any_transport() {
    let net = NetServer::start(quiet_config(), Conditions::parse("drop=300ms").unwrap()).await;
    let orders: [&[Transport]; 5] = [
        &[Transport::Ws],
        &[Transport::Sse],
        &[Transport::LongPoll],
        &[Transport::Poll],
        &Transport::RECEIVING,
    ];
    let receivers: Vec<_> = orders
        .into_iter()
        .map(|order| {
            let mut client = AutoClient::new(&net.through("phone"), &since(0), quick(order));
            tokio::spawn(async move {
                let ids = ids_until(&mut client, 200).await;
                (client.transport(), ids, client.reconnects())
            })
        })
        .collect();
    let mut sent = 0;
    for _ in 0..4 {
        let drops = net.counters().drops;
        eventually(|| async { net.counters().drops > drops }).await;
        for _ in 0..50 {
            sent += 1;
            post(&net.server, "phone", &format!("m{sent}")).await;
        }
    }
    for receiver in receivers {
        let (kind, ids, reconnects) = within(PATIENCE, receiver).await.unwrap();
        assert_eq!(ids, (1..=200).collect::<Vec<_>>(), "{}", kind.name());
        // Held connections are cut by every drop; a poller between two
        // requests may not notice one (its next request opens a new
        // connection), so only those are checked.
        if matches!(kind, Transport::Ws | Transport::Sse) {
            assert!(reconnects >= 1, "{} was never cut", kind.name());
        }
    }
    assert!(net.counters().drop_cuts >= 5);
}
