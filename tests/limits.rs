//! The limits table of the README, one test per limit that has no other
//! home: connections in all and per address, the send rate, the replay
//! cap, one held long poll per client, the default connection limit taken
//! from the process's open-file limit, the body and write-stall timeouts,
//! the request head size, and what the small socket buffers save. (Message size: `echo.rs`;
//! body size: `bad_input.rs`; write timeout and slow readers:
//! `slow_reader.rs` and `hostile.rs`; ping, pong and SSE keepalive:
//! `liveness.rs`; the header timeout: `hostile.rs`.)

mod common;

use common::*;
use skyrocket::client::ws::WsClient;
use skyrocket::config::RateLimit;
use skyrocket::message::Resume;
use skyrocket::message::Transport;
use skyrocket::message::{Control, Event};
use skyrocket::stats::Limit;
use skyrocket::Config;
use tokio::net::TcpStream;

fn error_text(body: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
    json["error"].as_str().expect("an error field").to_owned()
}

/// `n` idle connections from the loopback address `from`, once the server
/// has admitted them all.
async fn hold(server: &TestServer, from: &str, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(connect_from(from, server.addr).await);
    }
    eventually(|| async { server.state.admission.open() == n }).await;
    held
}

#[tokio::test]
async fn beyond_max_connections_a_new_one_gets_a_503_and_serving_goes_on() {
    let mut config = Config::default();
    config.connections.max = 8;
    let server = TestServer::with_config(config).await;
    let mut held = hold(&server, "127.0.0.1", 8).await;

    let over = TcpStream::connect(server.addr).await.unwrap();
    let (status, body) = raw_http(over, &get_request("/healthz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(error_text(&body).contains("connection limit"), "{body}");

    // A burst over the limit: every connection is answered 503, or closed
    // unanswered once too many refusals are in progress; none hangs, and
    // none takes a place.
    let burst: Vec<_> = (0..200)
        .map(|_| {
            let addr = server.addr;
            tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                try_raw_http(stream, &get_request("/healthz")).await
            })
        })
        .collect();
    let mut answered = 0;
    for answer in burst {
        if let Some((status, _)) = within(PATIENCE, answer).await.unwrap() {
            assert_eq!(status, 503);
            answered += 1;
        }
    }
    println!(
        "max connections: of 200 over the limit at once, {answered} answered 503, the rest closed"
    );
    assert!(answered > 0);
    assert_eq!(server.state.admission.open(), 8);
    let refused = server.state.stats.limit_count(Limit::RefusedFull);
    assert_eq!(refused, 201);

    // One place frees up: a normal client is served again.
    held.truncate(7);
    eventually(|| async { server.state.admission.open() == 7 }).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(raw_http(stream, &get_request("/healthz")).await.0, 200);
}

#[tokio::test]
async fn one_address_gets_its_share_of_connections_and_a_429_beyond() {
    let mut config = Config::default();
    config.connections.max_per_ip = 4;
    config.connections.limit_loopback = true;
    let server = TestServer::with_config(config).await;
    let _held = hold(&server, "127.0.0.2", 4).await;
    let over = connect_from("127.0.0.2", server.addr).await;
    let (status, body) = raw_http(over, &get_request("/healthz")).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        error_text(&body).contains("too many connections from your address"),
        "{body}"
    );
    // Another address is not affected.
    let other = connect_from("127.0.0.3", server.addr).await;
    assert_eq!(raw_http(other, &get_request("/healthz")).await.0, 200);
}

#[tokio::test]
async fn loopback_is_exempt_from_the_per_address_cap_by_default() {
    let mut config = Config::default();
    config.connections.max_per_ip = 4;
    let server = TestServer::with_config(config).await;
    let _held = hold(&server, "127.0.0.2", 10).await;
    let more = connect_from("127.0.0.2", server.addr).await;
    assert_eq!(raw_http(more, &get_request("/healthz")).await.0, 200);
}

/// A burst of 3 and one more a second; the tests send 3 + 10 at once, so
/// some are refused unless sending 10 took over 10 seconds.
fn rate_limited_config() -> Config {
    let mut config = Config {
        send_rate: RateLimit {
            per_second: 1,
            burst: 3,
        },
        ..Config::default()
    };
    config.connections.limit_loopback = true;
    config
}

const SENDS: usize = 13;

#[tokio::test]
async fn http_sends_over_the_rate_get_429_per_address() {
    let server = TestServer::with_config(rate_limited_config()).await;
    let target = server.target("rate");
    let mut statuses = Vec::new();
    for i in 0..SENDS {
        match target.send(&draft("ada", &format!("m{i}"))).await {
            Ok(_) => statuses.push(201),
            Err(skyrocket::client::ClientError::Status(code, body)) => {
                assert!(error_text(&body).contains("rate limited"), "{body}");
                statuses.push(code);
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(statuses[..3], [201, 201, 201]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");

    // Another address has its own bucket.
    let other = skyrocket::client::tls::http_builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let response = other
        .post(format!("{}/rooms/rate/messages", server.base()))
        .json(&serde_json::json!({"user": "bob", "text": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let stats = server.stats().await;
    assert!(stats["limits"]["sends_rate_limited"].as_u64() >= Some(1));
}

#[tokio::test]
async fn websocket_sends_over_the_rate_get_error_events_and_the_socket_stays() {
    let server = TestServer::with_config(rate_limited_config()).await;
    let target = server.target("rate");
    let mut socket = WsClient::connect(&target, &Resume::default())
        .await
        .unwrap();
    for i in 0..SENDS {
        socket.send(&draft("ada", &format!("m{i}"))).await.unwrap();
    }
    let (mut acks, mut refusals) = (0, 0);
    while acks + refusals < SENDS {
        match within(PATIENCE, socket.next_event()).await.unwrap() {
            Event::Control(Control::Ack { .. }) => acks += 1,
            Event::Control(Control::Error { error }) => {
                assert!(error.contains("rate limited"), "{error}");
                refusals += 1;
            }
            _ => continue,
        }
    }
    assert!((3..SENDS).contains(&acks), "the burst is 3: {acks} acks");
    assert!(refusals >= 1);
    // Still open and served: a bad command gets its own error.
    socket
        .send_raw(tokio_tungstenite::tungstenite::Message::text("not json"))
        .await
        .unwrap();
    loop {
        if let Event::Control(Control::Error { error }) =
            within(PATIENCE, socket.next_event()).await.unwrap()
        {
            assert!(error.contains("bad command"), "{error}");
            break;
        }
    }
}

#[tokio::test]
async fn loopback_senders_are_not_rate_limited_by_default() {
    let server = TestServer::start().await;
    let target = server.target("fast");
    let burst = Config::default().send_rate.burst;
    for i in 0..(3 * burst) {
        target.send(&draft("ada", &format!("m{i}"))).await.unwrap();
    }
}

#[tokio::test]
async fn a_resume_replays_at_most_max_replay_and_the_rest_is_a_gap() {
    let server = TestServer::with_config(Config {
        history: 50,
        max_replay: 10,
        ..Config::default()
    })
    .await;
    let target = server.target("replay");
    for i in 1..=30 {
        target.send(&draft("ada", &format!("m{i}"))).await.unwrap();
    }
    for kind in Transport::RECEIVING {
        let mut client = subscribe(kind, &target, from_start()).await;
        assert_eq!(
            next_significant(&mut client).await,
            Event::Control(Control::Gap { from: 1, to: 20 }),
            "{}",
            kind.name()
        );
        for expected in 21..=30 {
            assert_eq!(next_message(&mut client).await.id, expected);
        }
        // Within the cap, no gap.
        let resume = Resume {
            since: Some(25),
            epoch: None,
        };
        let mut client = subscribe(kind, &target, resume).await;
        assert_eq!(next_message(&mut client).await.id, 26, "{}", kind.name());
    }
}

#[tokio::test]
async fn a_second_long_poll_from_one_client_supersedes_the_first_with_a_409() {
    let server = TestServer::start().await;
    let http = skyrocket::client::tls::http_builder().build().unwrap();
    let poll = |client: &str| {
        http.get(format!(
            "{}/rooms/overlap/poll?since=0&wait=25&client={client}",
            server.base()
        ))
        .send()
    };
    let first = tokio::spawn(poll("tab-1"));
    let bystander = tokio::spawn(poll("tab-2"));
    eventually(|| async { server.state.rooms.held_polls() == 2 }).await;

    let second = tokio::spawn(poll("tab-1"));
    let first = within(PATIENCE, first).await.unwrap().unwrap();
    assert_eq!(first.status().as_u16(), 409);
    let body = first.text().await.unwrap();
    assert!(error_text(&body).contains("superseded"), "{body}");
    // The newer poll is the one held, with the other client's.
    eventually(|| async { server.state.rooms.held_polls() == 2 }).await;

    let id = server
        .target("overlap")
        .send(&draft("ada", "hello"))
        .await
        .unwrap();
    for held in [second, bystander] {
        let response = within(PATIENCE, held).await.unwrap().unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["messages"][0]["id"], id, "{body}");
    }
    assert_eq!(server.stats().await["limits"]["polls_superseded"], 1);
}

#[tokio::test]
async fn the_default_connection_limit_follows_the_open_file_limit() {
    // 100 descriptors: the binary keeps a reserve, and answers the
    // connections beyond its limit with 503 rather than failing accept.
    let server = ChildServer::start_with_open_files(100, &[]).await;
    let stats = server.stats().await;
    let max = stats["connections"]["max"].as_u64().unwrap();
    assert_eq!(max, 68, "100 minus a reserve of 32");
    let mut held = Vec::new();
    for _ in 0..max + 5 {
        held.push(TcpStream::connect(server.addr()).await.unwrap());
    }
    let over = TcpStream::connect(server.addr()).await.unwrap();
    assert_eq!(raw_http(over, &get_request("/healthz")).await.0, 503);
    drop(held);
    eventually(|| async {
        let stream = TcpStream::connect(server.addr()).await.unwrap();
        raw_http(stream, &get_request("/healthz")).await.0 == 200
    })
    .await;
}

#[tokio::test]
async fn a_post_body_that_does_not_arrive_in_time_gets_408() {
    let server = TestServer::with_config(Config {
        header_timeout: std::time::Duration::from_millis(500),
        ..Config::default()
    })
    .await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    // A whole head, then a tenth of the body it announced, then nothing.
    let request = "POST /rooms/slow/messages HTTP/1.1\r\nHost: localhost\r\n\
                   Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user\":";
    let (status, body) = raw_http(stream, request).await;
    assert_eq!(status, 408, "{body}");
    assert!(error_text(&body).contains("did not arrive"), "{body}");
}

#[tokio::test]
async fn an_sse_reader_that_stops_reading_is_closed_after_the_write_stall() {
    let mut config = Config::default();
    config.connections.write_stall = std::time::Duration::from_millis(500);
    let server = TestServer::with_config(config).await;
    let target = server.target("stall");
    let mut healthy = subscribe(Transport::Ws, &target, Resume::default()).await;
    // An SSE request on a socket with a tiny receive buffer, never read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stuck, get_request("/rooms/stall/sse").as_bytes())
        .await
        .unwrap();
    eventually(|| async { server.stats().await["transports"]["sse"]["connections_open"] == 1 })
        .await;
    let text = "s".repeat(4000);
    let mut sent = 0;
    while server.state.stats.limit_count(Limit::WriteStalled) == 0 {
        target.send(&draft("ada", &text)).await.unwrap();
        sent += 1;
        assert!(sent < 10_000, "the stuck SSE reader was never closed");
    }
    eventually(|| async { server.stats().await["transports"]["sse"]["connections_open"] == 0 })
        .await;
    println!(
        "write stall: an SSE reader that never reads was closed after {sent} messages of 4 KB"
    );
    // The room went on meanwhile.
    for expected in 1..=sent {
        assert_eq!(next_message(&mut healthy).await.id, expected);
    }
}

#[tokio::test]
async fn a_request_head_over_the_http_buffer_gets_431() {
    let server = TestServer::start().await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let big = "a".repeat(Config::default().connections.http_buffer + 1);
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: {big}\r\n\r\n"
    );
    let (status, _) = raw_http(stream, &request).await;
    assert_eq!(status, 431);
}

#[tokio::test]
async fn a_websocket_is_bound_by_its_own_write_timeout_not_the_socket_stall() {
    use futures_util::StreamExt;
    let mut config = Config::default();
    config.connections.write_stall = std::time::Duration::from_millis(200);
    config.ws.write_timeout = std::time::Duration::from_secs(3600);
    let server = TestServer::with_config(config).await;
    let target = server.target("ws-stall");
    let mut stalled = tiny_buffer_socket(server.addr, "/rooms/ws-stall/ws?since=0").await;
    let mut healthy = subscribe(Transport::Sse, &target, Resume::default()).await;
    let text = "w".repeat(4000);
    // The healthy reader keeps up, so only the stalled socket waits.
    for expected in 1..=200 {
        target.send(&draft("ada", &text)).await.unwrap();
        assert_eq!(next_message(&mut healthy).await.id, expected);
    }
    // The stalled client stays silent for several stall timeouts: this
    // sleep is the client's behaviour under test, not a wait for an event.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(server.state.stats.limit_count(Limit::WriteStalled), 0);
    let mut next = 1;
    while next <= 200 {
        let frame = within(PATIENCE, stalled.next()).await.unwrap().unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            if let Event::Message(m) = serde_json::from_str::<Event>(&text).unwrap() {
                assert_eq!(m.id, next);
                next += 1;
            }
        }
    }
}

#[tokio::test]
async fn the_header_timeout_does_not_cut_streams_or_held_polls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = Config {
        header_timeout: std::time::Duration::from_millis(300),
        ..Config::default()
    };
    config.sse.keepalive = std::time::Duration::from_millis(100);
    let server = TestServer::with_config(config).await;
    // An SSE stream outlives many header timeouts: 20 keepalives at
    // 100 ms apart span 2 s, against a 300 ms timeout.
    let mut sse = TcpStream::connect(server.addr).await.unwrap();
    sse.write_all(get_request("/rooms/long/sse").as_bytes())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while seen.windows(3).filter(|w| w == b":\n\n").count() < 20 {
        let n = within(PATIENCE, sse.read(&mut buf)).await.unwrap();
        assert!(n > 0, "the stream was cut");
        seen.extend_from_slice(&buf[..n]);
    }
    // A long poll held for 1 s is answered, not cut.
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (status, body) = raw_http(stream, &get_request("/rooms/long/poll?wait=1")).await;
    assert_eq!(status, 200, "{body}");
}

/// Resident memory per idle WebSocket on a child server started with `args`.
async fn kib_per_idle_websocket(args: &[&str]) -> f64 {
    use futures_util::StreamExt;
    const SOCKETS: usize = 500;
    let server = ChildServer::start(args).await;
    let target = server.target("idle");
    // Warm up: the room and the runtime's first allocations.
    let mut warm = WsClient::connect(&target, &Resume::default())
        .await
        .unwrap();
    warm.next_event().await.unwrap();
    let before = server.rss_kib();
    let mut sockets = Vec::new();
    for _ in 0..SOCKETS {
        let url = format!("ws://{}/rooms/idle/ws", server.addr());
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        // The hello has arrived: the server's session is running.
        within(PATIENCE, socket.next()).await.unwrap().unwrap();
        sockets.push(socket);
    }
    server.stats().await;
    (server.rss_kib() - before) as f64 / SOCKETS as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_websocket_costs_the_server_little_memory() {
    // Also a configuration tungstenite would refuse as given (a write
    // buffer as large as the bounded one): the server raises the bound.
    let ours = kib_per_idle_websocket(&[]).await;
    let defaults = kib_per_idle_websocket(&[
        "--ws-read-buffer-bytes",
        "131072",
        "--ws-write-buffer-bytes",
        "131072",
    ])
    .await;
    println!(
        "idle WebSocket: {ours:.1} KiB of server RSS each with 4/8 KiB buffers, \
         {defaults:.1} KiB with tungstenite's 128 KiB defaults"
    );
    // The small buffers are what keeps an idle socket cheap.
    assert!(ours < 32.0, "{ours:.1} KiB per idle socket");
    assert!(ours * 4.0 < defaults, "{ours:.1} vs {defaults:.1} KiB");
}
