//! Two server instances sharing rooms over a real redis-server: every
//! message everywhere once in the same order, history and resume across
//! instances, presence summed, and Redis killed mid-run with and without
//! persistence. Each test starts its own redis-server on a free port, and
//! prints SKIPPED when it is not installed (a failure under CI).

mod common;

use common::redis::{Persistence, RedisServer};
use common::*;
use skyrocket::client::poll::PollClient;
use skyrocket::client::{ws::WsClient, ClientError, Subscriber, Target};
use skyrocket::message::Resume;
use skyrocket::message::Transport;
use skyrocket::message::{ChatMessage, Control, Event};
use skyrocket::{AppState, Config};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A redis-server of the test's own and two server instances on it. Bind
/// `redis` to a name when destructuring (`redis: _redis`): `..` would drop,
/// and so kill, the server at once.
struct Pair {
    redis: RedisServer,
    a: TestServer,
    b: TestServer,
}

/// `None` (the test is skipped) when redis-server is not installed.
async fn pair(test: &str, persistence: Persistence, config: Config) -> Option<Pair> {
    let redis = RedisServer::start(test, persistence).await?;
    let a = instance(&redis, config.clone()).await;
    let b = instance(&redis, config).await;
    Some(Pair { redis, a, b })
}

async fn instance(redis: &RedisServer, mut config: Config) -> TestServer {
    config.redis = Some(redis.url());
    let state = AppState::connect(config).await.expect("redis is up");
    assert_eq!(state.rooms.backbone().name(), "redis");
    TestServer::with_state(state).await
}

async fn healthz(server: &TestServer) -> (u16, serde_json::Value) {
    let response = skyrocket::client::tls::get(&format!("{}/healthz", server.base()))
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Waits until `/healthz` says ok (`true`) or degraded (`false`), and checks
/// the body says the same as the status.
async fn wait_health(server: &TestServer, ok: bool) {
    eventually(|| async {
        let (status, body) = healthz(server).await;
        match (status, ok) {
            (200, true) => {
                assert_eq!(body["status"], "ok");
                true
            }
            (503, false) => {
                assert_eq!(body["status"], "degraded");
                let backbone = body["backbone"].as_str().unwrap_or_default();
                assert!(backbone.starts_with("redis unreachable"), "{body}");
                true
            }
            _ => false,
        }
    })
    .await;
}

/// One receiver of each transport on each instance, all from `resume`.
async fn spread(servers: [&TestServer; 2], room: &str, resume: Resume) -> Vec<Receiver> {
    let mut receivers = Vec::new();
    for (i, server) in servers.into_iter().enumerate() {
        for kind in Transport::RECEIVING {
            let subscriber = subscribe(kind, &server.target(room), resume.clone()).await;
            receivers.push(Receiver::spawn(
                format!("{} on instance {i}", kind.name()),
                subscriber,
            ));
        }
    }
    receivers
}

/// A receiver reading in its own task, so sockets are drained (and pings
/// answered) all through the test, recording every message, gap and reset
/// until a message whose text is `until`.
struct Receiver {
    name: String,
    events: JoinHandle<Vec<Event>>,
}

impl Receiver {
    fn spawn(name: String, mut subscriber: Subscriber) -> Self {
        let label = name.clone();
        let events = tokio::spawn(async move {
            let mut events = Vec::new();
            loop {
                let event = subscriber
                    .next_event()
                    .await
                    .unwrap_or_else(|e| panic!("{label}: the receiver was cut off: {e}"));
                match &event {
                    Event::Control(Control::Hello { .. } | Control::Presence { .. }) => continue,
                    Event::Message(m) if m.text == "until" => {
                        events.push(event);
                        return events;
                    }
                    _ => events.push(event),
                }
            }
        });
        Self { name, events }
    }

    async fn events(self) -> (String, Vec<Event>) {
        let events = within(PATIENCE, self.events).await.unwrap();
        (self.name, events)
    }
}

/// What every receiver got, after checking they all got the same: ids
/// 1..=N once each and in order, no gap or reset, the same JSON fields on
/// every transport of both instances.
async fn same_everywhere(receivers: Vec<Receiver>) -> Vec<ChatMessage> {
    let mut first: Option<Vec<ChatMessage>> = None;
    for receiver in receivers {
        let (name, events) = receiver.events().await;
        let got: Vec<ChatMessage> = events
            .into_iter()
            .map(|event| match event {
                Event::Message(m) => m,
                other => panic!("{name}: expected only messages, got {other:?}"),
            })
            .collect();
        let ids: Vec<u64> = got.iter().map(|m| m.id).collect();
        let n = got.len() as u64;
        assert_eq!(
            ids,
            (1..=n).collect::<Vec<_>>(),
            "{name}: every id once, in order"
        );
        match &first {
            Some(first) => assert_eq!(&got, first, "{name}"),
            None => first = Some(got),
        }
    }
    first.unwrap_or_default()
}

/// Sends over a WebSocket `send` frame and returns the acked id.
async fn ws_send(socket: &mut WsClient, text: &str) -> Result<u64, String> {
    socket.send(&draft("ws", text)).await.unwrap();
    loop {
        match within(PATIENCE, socket.next_event()).await.unwrap() {
            Event::Control(Control::Ack { id, .. }) => return Ok(id),
            Event::Control(Control::Error { error }) => return Err(error),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn two_instances_deliver_every_message_everywhere_once_in_the_same_order() {
    let Some(Pair {
        a,
        b,
        redis: _redis,
    }) = pair("everywhere", Persistence::None, Config::default()).await
    else {
        return;
    };
    let receivers = spread([&a, &b], "lobby", from_start()).await;

    // Four senders at once: POST and WebSocket `send`, on each instance.
    const EACH: usize = 40;
    let mut senders = Vec::new();
    for (s, server) in [&a, &b, &a, &b].into_iter().enumerate() {
        let target = server.target("lobby");
        senders.push(tokio::spawn(async move {
            let mut texts = Vec::new();
            let mut socket = match s {
                0 | 1 => None,
                _ => Some(
                    WsClient::connect(&target, &Resume::default())
                        .await
                        .unwrap(),
                ),
            };
            for i in 0..EACH {
                let text = format!("s{s}-m{i}");
                match &mut socket {
                    None => target.send(&draft("post", &text)).await.map(drop).unwrap(),
                    Some(socket) => ws_send(socket, &text).await.map(drop).unwrap(),
                }
                texts.push(text);
            }
            texts
        }));
    }
    let mut sent = HashSet::new();
    for sender in senders {
        sent.extend(within(PATIENCE, sender).await.unwrap());
    }
    a.target("lobby")
        .send(&draft("end", "until"))
        .await
        .unwrap();
    let got = same_everywhere(receivers).await;
    assert_eq!(got.len(), 4 * EACH + 1);
    let texts: HashSet<String> = got.into_iter().map(|m| m.text).collect();
    assert!(texts.is_superset(&sent), "every message sent");
}

#[tokio::test]
async fn history_gap_and_epoch_are_the_same_through_either_instance() {
    // A short history: the stream is trimmed (`MAXLEN ~` trims whole
    // nodes, so it keeps at least 3) and each instance's window holds 3.
    let config = Config {
        history: 3,
        ..Config::default()
    };
    let Some(Pair {
        a,
        b,
        redis: _redis,
    }) = pair("history", Persistence::None, config).await
    else {
        return;
    };
    const SENT: u64 = 250;
    for i in 1..=SENT {
        a.target("hist")
            .send(&draft("ada", &format!("m{i}")))
            .await
            .unwrap();
    }

    let mut oldest = None;
    for kind in Transport::RECEIVING {
        let since_one = Resume {
            since: Some(1),
            epoch: None,
        };
        let mut client = subscribe(kind, &b.target("hist"), since_one).await;
        let Event::Control(Control::Gap { from, to }) = next_significant(&mut client).await else {
            panic!("{}: a gap comes first", kind.name());
        };
        assert_eq!(from, 2, "{}", kind.name());
        assert!(
            to > 2 && to < SENT - 2,
            "{}: trimmed to about 3: {to}",
            kind.name()
        );
        assert_eq!(
            *oldest.get_or_insert(to + 1),
            to + 1,
            "one store, one answer"
        );
        for id in to + 1..=SENT {
            assert_eq!(next_message(&mut client).await.id, id, "{}", kind.name());
        }
    }

    // Both instances name the same life, and a cursor from one resumes on
    // the other without a reset, even the newest id (which B may not have
    // seen yet: it asks Redis rather than calling it another life).
    let hello = |server: &TestServer| {
        let target = server.target("hist");
        async move {
            let mut poll = PollClient::new(&target, &Resume::default(), 0);
            poll.poll_once().await.unwrap().epoch
        }
    };
    let epoch = hello(&a).await;
    assert_eq!(hello(&b).await, epoch);
    for kind in Transport::RECEIVING {
        let latest = a
            .target("hist")
            .send(&draft("ada", "newest"))
            .await
            .unwrap();
        let resume = Resume {
            since: Some(latest),
            epoch: Some(epoch.clone()),
        };
        let mut client = subscribe(kind, &b.target("hist"), resume).await;
        let next = a.target("hist").send(&draft("ada", "next")).await.unwrap();
        match next_significant(&mut client).await {
            Event::Message(m) => assert_eq!(m.id, next, "{}", kind.name()),
            other => panic!("{}: expected message {next}, got {other:?}", kind.name()),
        }
    }

    // A cursor from another life gets a reset and the retained history.
    let stale = Resume {
        since: Some(5),
        epoch: Some("not-this-life".into()),
    };
    for kind in Transport::RECEIVING {
        let mut client = subscribe(kind, &b.target("hist"), stale.clone()).await;
        match next_significant(&mut client).await {
            Event::Control(Control::Reset { epoch: new, .. }) => assert_eq!(new, epoch),
            other => panic!("{}: expected a reset, got {other:?}", kind.name()),
        }
    }
}

#[tokio::test]
async fn presence_adds_up_across_instances() {
    let Some(Pair {
        a,
        b,
        redis: _redis,
    }) = pair("presence", Persistence::None, Config::default()).await
    else {
        return;
    };
    let mut watcher = subscribe(Transport::Ws, &a.target("lobby"), Resume::default()).await;
    let sse = subscribe(Transport::Sse, &b.target("lobby"), Resume::default()).await;
    let _ws = subscribe(Transport::Ws, &b.target("lobby"), Resume::default()).await;
    // Two WebSockets (one here, one on B) and B's SSE stream.
    wait_for_presence(&mut watcher, (2, 1)).await;
    drop(sse);
    wait_for_presence(&mut watcher, (2, 0)).await;
}

/// Reads presence events until one counts `(ws, sse)`.
async fn wait_for_presence(watcher: &mut Subscriber, want: (u64, u64)) {
    loop {
        let event = within(PATIENCE, watcher.next_event()).await.unwrap();
        if let Event::Control(Control::Presence { online, total, .. }) = event {
            if (online.ws, online.sse) == want {
                assert_eq!(total, want.0 + want.1);
                return;
            }
        }
    }
}

/// Sends alternately through A and B until stopped, recording which sends
/// were accepted (201) and which were refused (503).
struct Sender {
    log: Arc<Mutex<SendLog>>,
    progress: watch::Receiver<(usize, usize)>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct SendLog {
    accepted: Vec<(u64, String)>,
    refused: Vec<String>,
}

impl Sender {
    fn spawn(targets: [Target; 2]) -> Self {
        let log = Arc::new(Mutex::new(SendLog::default()));
        let (tell, progress) = watch::channel((0, 0));
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (log, stop) = (Arc::clone(&log), stop.clone());
            async move {
                for i in 0.. {
                    if stop.is_cancelled() {
                        return;
                    }
                    let text = format!("m{i}");
                    let result = targets[i % 2].send(&draft("ada", &text)).await;
                    let mut log = log.lock().unwrap();
                    match result {
                        Ok(id) => log.accepted.push((id, text)),
                        Err(ClientError::Status(503, body)) => {
                            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                            assert!(body["error"].is_string(), "a JSON error: {body}");
                            log.refused.push(text);
                        }
                        Err(e) => panic!("a send may succeed or get a 503, not: {e}"),
                    }
                    tell.send_replace((log.accepted.len(), log.refused.len()));
                }
            }
        });
        Self {
            log,
            progress,
            stop,
            task,
        }
    }

    /// Waits until at least this many sends were accepted and refused.
    async fn wait_for(&mut self, accepted: usize, refused: usize) {
        within(
            PATIENCE,
            self.progress
                .wait_for(|&(a, r)| a >= accepted && r >= refused),
        )
        .await
        .unwrap();
    }

    fn counts(&self) -> (usize, usize) {
        *self.progress.borrow()
    }

    async fn finish(self) -> SendLog {
        self.stop.cancel();
        within(PATIENCE, self.task).await.unwrap();
        Arc::into_inner(self.log).unwrap().into_inner().unwrap()
    }
}

#[tokio::test]
async fn with_persistence_a_redis_restart_loses_and_repeats_nothing_accepted() {
    let Some(Pair { mut redis, a, b }) =
        pair("persistent", Persistence::EveryWrite, Config::default()).await
    else {
        return;
    };
    let receivers = spread([&a, &b], "lobby", from_start()).await;
    let mut ws_sender = WsClient::connect(&b.target("lobby"), &Resume::default())
        .await
        .unwrap();
    let mut sender = Sender::spawn([a.target("lobby"), b.target("lobby")]);
    sender.wait_for(20, 0).await;

    redis.kill().await;
    wait_health(&a, false).await;
    wait_health(&b, false).await;
    let (accepted, refused) = sender.counts();
    sender.wait_for(accepted, refused + 4).await;
    let refusal = ws_send(&mut ws_sender, "over a socket, while down").await;
    assert!(
        refusal.as_ref().is_err_and(|e| e.contains("unavailable")),
        "a WebSocket send while Redis is down gets an error event: {refusal:?}"
    );

    redis.restart().await;
    wait_health(&a, true).await;
    wait_health(&b, true).await;
    let (accepted, _) = sender.counts();
    sender.wait_for(accepted + 20, 0).await;
    let log = sender.finish().await;
    let last = a
        .target("lobby")
        .send(&draft("ada", "until"))
        .await
        .unwrap();

    let accepted: HashSet<u64> = log.accepted.iter().map(|(id, _)| *id).collect();
    assert_eq!(accepted.len(), log.accepted.len(), "no id handed out twice");
    let mut sent: HashSet<String> = log.accepted.into_iter().map(|(_, t)| t).collect();
    sent.extend(log.refused);
    sent.insert("until".into());
    // Ids 1..=last, once each, in order: nothing lost, nothing twice.
    let got = same_everywhere(receivers).await;
    assert_eq!(got.len() as u64, last);
    assert!(accepted.iter().all(|id| *id <= last));
    // Nothing delivered that nobody sent (a refused send whose reply was
    // lost in the kill may appear: it was stored).
    assert!(got.iter().all(|m| sent.contains(&m.text)));
}

#[tokio::test]
async fn without_persistence_a_redis_restart_is_announced_as_a_reset() {
    let Some(Pair { mut redis, a, b }) =
        pair("volatile", Persistence::None, Config::default()).await
    else {
        return;
    };
    let receivers = spread([&a, &b], "lobby", from_start()).await;
    for i in 1..=10 {
        let server = if i % 2 == 0 { &a } else { &b };
        let id = server
            .target("lobby")
            .send(&draft("ada", &format!("m{i}")))
            .await;
        assert_eq!(id.unwrap(), i);
    }
    let mut probe = PollClient::new(&a.target("lobby"), &from_start(), 0);
    let old_epoch = probe.poll_once().await.unwrap().epoch;

    redis.kill().await;
    wait_health(&a, false).await;
    redis.restart().await;
    wait_health(&a, true).await;
    wait_health(&b, true).await;
    // The new life starts at id 1: the reset is what tells clients.
    let id = b
        .target("lobby")
        .send(&draft("ada", "until"))
        .await
        .unwrap();
    assert_eq!(id, 1, "Redis lost everything: a new life");

    for receiver in receivers {
        let (name, events) = receiver.events().await;
        let before: Vec<u64> = events[..10]
            .iter()
            .map(|e| match e {
                Event::Message(m) => m.id,
                other => panic!("{name}: expected the first life's messages, got {other:?}"),
            })
            .collect();
        assert_eq!(before, (1..=10).collect::<Vec<_>>(), "{name}");
        match &events[10..] {
            [Event::Control(Control::Reset { epoch, .. }), Event::Message(m)] => {
                assert_ne!(epoch, &old_epoch, "{name}: a new epoch");
                assert_eq!((m.id, m.text.as_str()), (1, "until"), "{name}");
            }
            other => panic!("{name}: expected a reset, then the new message: {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_at_startup() {
    // A port nothing listens on: connecting fails at once, no server needed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = Config {
        redis: Some(format!("redis://127.0.0.1:{port}")),
        ..Config::default()
    };
    let error = AppState::connect(config).await.unwrap_err();
    assert!(error.to_string().contains("redis unreachable"), "{error}");
}

#[tokio::test]
async fn two_binaries_started_as_the_readme_shows_share_a_room() {
    let Some(redis) = RedisServer::start("binaries", Persistence::None).await else {
        return;
    };
    let url = redis.url();
    let first = ChildServer::start(&["--redis", &url]).await;
    let second = ChildServer::start(&["--redis", &url]).await;
    let (base_a, base_b) = (first.base.clone(), second.base.clone());
    let health: serde_json::Value = skyrocket::client::tls::get(&format!("{base_b}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["backbone"], "redis");
    let mut receiver =
        subscribe(Transport::Sse, &Target::new(&base_b, "lobby"), from_start()).await;
    let id = Target::new(&base_a, "lobby")
        .send(&draft("ada", "from the first instance"))
        .await
        .unwrap();
    let got = next_message(&mut receiver).await;
    assert_eq!((got.id, got.text.as_str()), (id, "from the first instance"));
    // Both are killed when dropped.
    drop((first, second));
}

/// A raw SSE subscriber: a request written on a socket, and what came back.
struct RawSse {
    stream: tokio::net::TcpStream,
    seen: Vec<u8>,
}

impl RawSse {
    /// Opens `room`'s stream and waits for its `hello`: by then the
    /// instance reads the room live.
    async fn open(server: &TestServer, room: &str) -> Self {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let request = format!("GET /rooms/{room}/sse HTTP/1.1\r\nHost: localhost\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut sse = Self {
            stream,
            seen: Vec::new(),
        };
        sse.wait_for("event: hello").await;
        sse
    }

    async fn wait_for(&mut self, what: &str) {
        use tokio::io::AsyncReadExt;
        let found = |seen: &[u8]| seen.windows(what.len()).any(|w| w == what.as_bytes());
        within(PATIENCE, async {
            let mut buf = [0u8; 4096];
            while !found(&self.seen) {
                let n = self.stream.read(&mut buf).await.unwrap();
                assert!(
                    n > 0,
                    "stream ended before {what:?}: {}",
                    String::from_utf8_lossy(&self.seen)
                );
                self.seen.extend_from_slice(&buf[..n]);
            }
        })
        .await;
    }
}

/// How many clients Redis has, this test's own query connection included.
async fn redis_clients(redis: &RedisServer) -> usize {
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let list: String = ::redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    list.lines().count()
}

#[tokio::test]
async fn two_thousand_rooms_share_a_few_redis_connections_per_instance() {
    use futures_util::StreamExt;
    const ROOMS: usize = 2000;
    // Two instances and 2000 subscribers in this process: about 8000
    // descriptors, above a shell's usual soft limit.
    skyrocket::config::raise_open_file_limit();
    let Some(Pair { redis, a, b }) = pair("many-rooms", Persistence::None, quiet_config()).await
    else {
        return;
    };
    let idle = redis_clients(&redis).await;
    // One subscriber per room, alternating instances, 64 opening at once.
    let opened = futures_util::stream::iter(0..ROOMS)
        .map(|i| {
            let server = if i % 2 == 0 { &a } else { &b };
            async move { RawSse::open(server, &format!("r{i}")).await }
        })
        .buffered(64)
        .collect::<Vec<_>>();
    let mut subscribers = within(PATIENCE * 3, opened).await;
    let busy = redis_clients(&redis).await;
    println!("redis clients: {idle} with no room read, {busy} with {ROOMS} rooms read");
    // Per instance: the command connection and the pub/sub one. Before,
    // each room read held a connection of its own (2000 here).
    assert!(
        busy <= idle + 2,
        "{busy} redis clients for {ROOMS} rooms (idle: {idle})"
    );
    assert!(busy <= 1 + 2 * 3, "a small constant per instance: {busy}");

    // Every room delivers, each message sent through the other instance.
    let http = skyrocket::client::tls::http_builder().build().unwrap();
    let sent = futures_util::stream::iter(0..ROOMS)
        .map(|i| {
            let server = if i % 2 == 0 { &b } else { &a };
            let url = format!("{}/rooms/r{i}/messages", server.base());
            let body = serde_json::json!({"user": "ada", "text": format!("m{i}")});
            let http = http.clone();
            async move { http.post(url).json(&body).send().await.unwrap().status() }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>();
    let statuses = within(PATIENCE * 3, sent).await;
    assert!(
        statuses.iter().all(|s| s.as_u16() == 201),
        "every send accepted"
    );
    let received = futures_util::stream::iter(subscribers.iter_mut().enumerate())
        .map(|(i, sse)| async move { sse.wait_for(&format!("\"text\":\"m{i}\"")).await })
        .buffer_unordered(64)
        .collect::<Vec<_>>();
    assert_eq!(within(PATIENCE * 3, received).await.len(), ROOMS);

    // With Redis really down, a new subscriber is told so.
    let mut redis = redis;
    redis.kill().await;
    wait_health(&a, false).await;
    let response = skyrocket::client::tls::get(&format!("{}/rooms/new-room/sse", a.base()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("message store unavailable: redis unreachable"),
        "{error}"
    );
}
