//! Shared by the benches: an in-process server on 127.0.0.1:0, an
//! [`Audience`] of receivers on one transport that is timed from "send one
//! message" to "the last receiver has it", and the criterion settings that
//! keep a full `cargo bench` within about ten minutes on two cores.
//!
//! Everything runs in one process and one tokio runtime: the server, the
//! receivers and the sender share the machine's cores, as they would share
//! them with a child process. 1000 receivers hold about 2000 descriptors
//! (both ends of each socket), well under the 20,000 a process may open, so
//! no group needs a child server.

#![allow(dead_code)] // each bench uses a different part of this file

use criterion::{Bencher, Criterion};
use skyrocket::client::poll::PollClient;
use skyrocket::client::{Connect, Subscriber, Target};
use skyrocket::message::Resume;
use skyrocket::message::Transport;
use skyrocket::message::{Draft, Event};
use skyrocket::{AppState, Config};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::AbortHandle;

/// The text sizes of `payload/*` and of the wire-bytes table, with the name
/// each has in a benchmark id.
pub const PAYLOADS: [(usize, &str); 3] = [(16, "16B"), (1024, "1KiB"), (64 * 1024, "64KiB")];

/// Text size of every message outside `payload/*`: a short chat line.
pub const CHAT_TEXT: usize = 16;

/// A bench that waits longer than this for a delivery has a broken
/// receiver; it stops with an error instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

/// The benches' server settings: the defaults, except
/// - quiet: no presence events, pings or SSE keepalives during a run, so
///   every delivery timed or counted is the message itself;
/// - 64 KiB messages allowed (`payload/*/64KiB`): the text limit, the POST
///   body limit and the WebSocket message limit are raised here, for the
///   benches only; the server's defaults stay 4096 bytes of text.
pub fn bench_config() -> Config {
    let mut config = Config {
        presence_interval: Duration::from_secs(3600),
        max_text_bytes: 64 * 1024,
        max_body_bytes: 256 * 1024,
        ..Config::default()
    };
    config.ws.ping_interval = Duration::from_secs(3600);
    config.sse.keepalive = Duration::from_secs(3600);
    config.ws.max_message = 256 * 1024;
    config
}

/// The runtime for a bench: multi-threaded like the real server, one
/// worker per core.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Starts the server on 127.0.0.1:0 inside `rt` and returns its base URL.
/// It runs until the runtime is dropped at the end of the bench.
pub fn start_server(rt: &tokio::runtime::Runtime) -> String {
    serve(rt, bench_config())
}

/// Like [`start_server`], with `--tls` (a self-signed certificate), and
/// how clients reach it over HTTP/2 trusting that certificate: for the
/// `*-h2` variants.
pub fn start_server_h2(rt: &tokio::runtime::Runtime) -> (String, Connect) {
    let mut config = bench_config();
    let tls = skyrocket::tls::ServerTls::self_signed(false).expect("a certificate");
    let connect = Connect {
        http2: true,
        insecure: false,
        trusted: tls.identity.chain.clone(),
    };
    config.tls = Some(tls);
    (serve(rt, config), connect)
}

fn serve(rt: &tokio::runtime::Runtime, config: Config) -> String {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let base = format!("{scheme}://{}", listener.local_addr().expect("local addr"));
        let state = AppState::in_memory(config);
        tokio::spawn(skyrocket::run(listener, state, std::future::pending()));
        base
    })
}

/// Settings shared by every group; each group sets its own times on top.
/// Fewer bootstrap resamples than criterion's 100,000: the confidence
/// intervals barely move and the analysis of ~50 benchmarks takes seconds
/// instead of minutes on two cores.
pub fn criterion() -> Criterion {
    Criterion::default()
        .nresamples(10_000)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// A message of `text_bytes` bytes of text.
pub fn draft(text_bytes: usize) -> Draft {
    Draft {
        user: "bench".into(),
        text: "x".repeat(text_bytes),
        client_id: None,
    }
}

/// Connects `n` subscribers at once (a few dozen handshakes in flight, not
/// 1000), so setting up a large audience takes seconds, not minutes.
async fn connect_all<T, F, Fut>(n: usize, connect: F) -> Vec<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = skyrocket::client::Result<T>>,
{
    use futures_util::stream::{self, StreamExt};
    stream::iter((0..n).map(|_| connect()))
        .buffer_unordered(32)
        .map(|r| r.unwrap_or_else(|e| panic!("connecting a receiver: {e}")))
        .collect()
        .await
}

/// Messages received by all receivers of an audience, and a wake-up when
/// the count reaches what the sender waits for.
#[derive(Default)]
struct Tally {
    arrived: AtomicU64,
    goal: AtomicU64,
    reached: Notify,
    failure: Mutex<Option<String>>,
}

impl Tally {
    fn arrive(&self, messages: u64) {
        if self.arrived.fetch_add(messages, SeqCst) + messages >= self.goal.load(SeqCst) {
            // notify_one keeps a permit when nobody waits yet: no lost wake-up.
            self.reached.notify_one();
        }
    }

    fn fail(&self, why: String) {
        // Held for one assignment; nothing else happens under this lock.
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        self.reached.notify_one();
    }

    async fn wait_for(&self, goal: u64) {
        self.goal.store(goal, SeqCst);
        let wait = async {
            while self.arrived.load(SeqCst) < goal {
                let failure = self
                    .failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                if let Some(why) = failure {
                    panic!("a receiver failed: {why}");
                }
                self.reached.notified().await;
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .unwrap_or_else(|_| panic!("no delivery to every receiver within {PATIENCE:?}"));
    }
}

/// How an audience's message is sent.
enum Sending {
    /// `POST /rooms/{room}/messages`; pollers are told the new id.
    Post {
        target: Target,
        polls: Option<watch::Sender<u64>>,
    },
    /// Over the (only) receiver's own WebSocket.
    OwnSocket(mpsc::Sender<Draft>),
}

/// `n` receivers of one transport in one room, each in its own task, each
/// counting the chat messages it receives. [`Audience::deliver`] sends one
/// message and returns the time until every receiver had it.
///
/// WebSocket, SSE and long-poll receivers listen all the time (a long poll
/// is parked in the server when the message is sent, or is about to be:
/// each receiver asks again as soon as it has a message). Short pollers do
/// not poll on a timer here: a poller that asks every P seconds sees a
/// message P/2 late on average, and a bench would measure P. Instead every
/// poller polls once as soon as the send has been answered, so the time is
/// one poll cycle: the floor of short polling's latency, to which a real
/// poller adds half its interval.
pub struct Audience {
    receivers: u64,
    sending: Sending,
    tally: Arc<Tally>,
    sent: AtomicU64,
    tasks: Vec<AbortHandle>,
}

impl Audience {
    /// `n` receivers of `kind` in `room`; messages are POSTed by a separate
    /// client, as in a room where one person speaks and `n` listen.
    pub async fn join(kind: Transport, base: &str, room: &str, n: usize) -> Self {
        Self::new(kind, base, room, n, false, &Connect::default()).await
    }

    /// One client that sends and receives, each the way its transport does
    /// it: a WebSocket client sends over its socket, the others POST.
    pub async fn roundtrip(kind: Transport, base: &str, room: &str) -> Self {
        Self::roundtrip_with(kind, base, room, &Connect::default()).await
    }

    /// [`Audience::roundtrip`], connecting as `connect` says (HTTP/2).
    pub async fn roundtrip_with(
        kind: Transport,
        base: &str,
        room: &str,
        connect: &Connect,
    ) -> Self {
        Self::new(kind, base, room, 1, true, connect).await
    }

    async fn new(
        kind: Transport,
        base: &str,
        room: &str,
        n: usize,
        own_socket: bool,
        connect: &Connect,
    ) -> Self {
        // Receivers share one HTTP client (a pool of keep-alive
        // connections); the sender has its own, as a separate person would.
        let receivers = Target::with(base, room, connect.clone());
        let from_now = Resume::default();
        let tally = Arc::new(Tally::default());
        let mut tasks = Vec::new();
        let mut polls = None;
        let mut outbox = None;
        if kind == Transport::Poll {
            let (go, wait) = watch::channel(0);
            let clients = connect_all(n, || PollClient::connect(&receivers, &from_now, 0));
            for client in clients.await {
                let task = tokio::spawn(poll_on_signal(client, wait.clone(), tally.clone()));
                tasks.push(task.abort_handle());
            }
            polls = Some(go);
        } else {
            // No poll interval: long polls ask again at once, by design.
            let connect = || Subscriber::connect(kind, &receivers, &from_now, Duration::ZERO);
            for subscriber in connect_all(n, connect).await {
                let commands = if own_socket && kind == Transport::Ws {
                    let (send, commands) = mpsc::channel(1);
                    outbox = Some(send);
                    Some(commands)
                } else {
                    None
                };
                let task = tokio::spawn(listen(subscriber, commands, tally.clone()));
                tasks.push(task.abort_handle());
            }
        }
        let sending = match outbox {
            Some(outbox) => Sending::OwnSocket(outbox),
            None => Sending::Post {
                target: Target::with(base, room, connect.clone()),
                polls,
            },
        };
        Self {
            receivers: n as u64,
            sending,
            tally,
            sent: AtomicU64::new(0),
            tasks,
        }
    }

    /// Sends `draft` once and waits until every receiver has it.
    pub async fn deliver(&self, draft: &Draft) -> Duration {
        let goal = (self.sent.fetch_add(1, SeqCst) + 1) * self.receivers;
        let start = Instant::now();
        match &self.sending {
            Sending::Post { target, polls } => {
                let id = target.send(draft).await.expect("POST a message");
                if let Some(polls) = polls {
                    polls.send_replace(std::hint::black_box(id));
                }
            }
            Sending::OwnSocket(outbox) => {
                outbox
                    .send(draft.clone())
                    .await
                    .expect("receiver task alive");
            }
        }
        self.tally.wait_for(goal).await;
        start.elapsed()
    }

    /// `iters` deliveries, the total time: the body of an `iter_custom`.
    pub async fn time(&self, iters: u64, draft: &Draft) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            total += self.deliver(draft).await;
        }
        total
    }
}

/// The body of every delivery bench: `iters` deliveries of `draft` to
/// `audience` per sample, timed by the audience itself.
pub fn bench_deliveries(
    b: &mut Bencher<'_>,
    rt: &tokio::runtime::Runtime,
    audience: &Arc<Audience>,
    draft: &Draft,
) {
    b.to_async(rt).iter_custom(|iters| {
        let (audience, draft) = (Arc::clone(audience), draft.clone());
        async move { audience.time(iters, &draft).await }
    });
}

impl Drop for Audience {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A receiver on WebSocket, SSE or long polling: counts every chat message
/// (hello, presence and acks are not messages). With `commands`, it also
/// sends what it is handed over its WebSocket.
async fn listen(
    mut subscriber: Subscriber,
    mut commands: Option<mpsc::Receiver<Draft>>,
    tally: Arc<Tally>,
) {
    loop {
        let event = match &mut commands {
            // Both branches are cancel-safe: a frame half read stays in
            // the socket's buffer, a command stays in the channel.
            Some(inbox) => tokio::select! {
                draft = inbox.recv() => {
                    let Some(draft) = draft else { return };
                    if let Subscriber::Ws(ws) = &mut subscriber {
                        if let Err(e) = ws.send(&draft).await {
                            return tally.fail(format!("sending over the socket: {e}"));
                        }
                    }
                    continue;
                }
                event = subscriber.next_event() => event,
            },
            None => subscriber.next_event().await,
        };
        match event {
            Ok(Event::Message(_)) => tally.arrive(1),
            Ok(Event::Control(_)) => {}
            Err(e) => return tally.fail(e.to_string()),
        }
    }
}

/// A short poller: each time it is told a new message id, it polls until
/// it has that message (one poll, since the message already exists).
async fn poll_on_signal(mut client: PollClient, mut go: watch::Receiver<u64>, tally: Arc<Tally>) {
    while go.changed().await.is_ok() {
        let id = *go.borrow_and_update();
        loop {
            match client.poll_once().await {
                Ok(body) => {
                    tally.arrive(body.messages.len() as u64);
                    if body.next >= id {
                        break;
                    }
                }
                Err(e) => return tally.fail(e.to_string()),
            }
        }
    }
}
