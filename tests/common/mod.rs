//! Starts a real server on 127.0.0.1:0 for a test, and small helpers for
//! waiting on events with a timeout (never a bare sleep).

#![allow(dead_code)]

use skyrocket::client::{Kind, Subscriber, Target};
use skyrocket::message::{ChatMessage, Control, Draft, Event};
use skyrocket::room::Resume;
use skyrocket::{AppState, Config};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous bound for anything a test waits on: a failure bound, not a
/// speed claim.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    config: Config,
    stop: Option<oneshot::Sender<()>>,
    pub handle: Option<ServerTask>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (state, stop, handle) = serve(listener, &config);
        Self {
            addr,
            state,
            config,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Shuts this server down and starts a new one on the same port, so
    /// clients that only know the address can come back by themselves.
    /// Nothing of the old state survives (empty rooms, a new epoch for
    /// each), as with an in-memory server process that restarts.
    pub async fn restart(&mut self) {
        self.shutdown().await;
        let listener = within(PATIENCE, bind_again(self.addr)).await;
        let (state, stop, handle) = serve(listener, &self.config);
        self.state = state;
        self.stop = Some(stop);
        self.handle = Some(handle);
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn target(&self, room: &str) -> Target {
        Target::new(self.base(), room)
    }

    /// Signals shutdown and waits for `run` to return.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            within(PATIENCE, handle).await.unwrap().unwrap();
        }
    }

    pub async fn stats(&self) -> serde_json::Value {
        self.get_json("/stats").await
    }

    /// `GET path` on this server, parsed as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        reqwest::get(format!("{}{path}", self.base()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

type ServerTask = JoinHandle<std::io::Result<()>>;

/// Runs a server with fresh state on `listener` until the sender fires.
fn serve(
    listener: tokio::net::TcpListener,
    config: &Config,
) -> (AppState, oneshot::Sender<()>, ServerTask) {
    let state = AppState::in_memory(config.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(skyrocket::run(listener, state.clone(), async {
        let _ = stopped.await;
    }));
    (state, stop, handle)
}

/// Binds `addr` again after its server stopped. tokio sets SO_REUSEADDR,
/// so the old connections in TIME_WAIT do not block it; but the port came
/// from the ephemeral range, and while it was free an outgoing connection
/// on this machine may have taken it as its own local port. That one is
/// short-lived, so the bind is retried until it lets go (a retry interval,
/// not a wait for an event of ours).
async fn bind_again(addr: SocketAddr) -> tokio::net::TcpListener {
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("rebinding {addr}: {e}"),
        }
    }
}

/// A server that sends nothing the test did not cause: no presence events,
/// pings or keepalives during the run, so byte counts are exact.
pub fn quiet_config() -> Config {
    let mut config = Config {
        presence_interval: Duration::from_secs(3600),
        ..Config::default()
    };
    config.ws.ping_interval = Duration::from_secs(3600);
    config.sse.keepalive = Duration::from_secs(3600);
    config
}

/// Awaits `future`, failing the test if it takes longer than `limit`.
pub async fn within<F: Future>(limit: Duration, future: F) -> F::Output {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {limit:?}"))
}

pub fn draft(user: &str, text: &str) -> Draft {
    Draft {
        user: user.into(),
        text: text.into(),
        client_id: None,
    }
}

/// Connects a subscriber, with a short poll interval so tests stay quick.
pub async fn subscribe(kind: Kind, target: &Target, resume: Resume) -> Subscriber {
    within(
        PATIENCE,
        Subscriber::connect(kind, target, &resume, Duration::from_millis(20)),
    )
    .await
    .unwrap_or_else(|e| panic!("{} connect: {e}", kind.name()))
}

pub fn from_start() -> Resume {
    Resume {
        since: Some(0),
        epoch: None,
    }
}

/// The next chat message, skipping hello, presence and acks.
pub async fn next_message(subscriber: &mut Subscriber) -> ChatMessage {
    loop {
        match within(PATIENCE, subscriber.next_event()).await.unwrap() {
            Event::Message(m) => return m,
            Event::Control(Control::Gap { from, to }) => {
                panic!("unexpected gap {from}..={to}")
            }
            Event::Control(_) => continue,
        }
    }
}

/// The next event that is not hello or presence.
pub async fn next_significant(subscriber: &mut Subscriber) -> Event {
    loop {
        match within(PATIENCE, subscriber.next_event()).await.unwrap() {
            Event::Control(Control::Hello { .. } | Control::Presence { .. }) => continue,
            other => return other,
        }
    }
}

/// Polls `check` until it returns true, failing after `PATIENCE`. For state
/// with no event to wait on (server counters); each round trip is the pause.
pub async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(PATIENCE, async {
        while !check().await {
            tokio::task::yield_now().await;
        }
    })
    .await
}
