//! Starts a real server on 127.0.0.1:0 for a test, and small helpers for
//! waiting on events with a timeout (never a bare sleep).

#![allow(dead_code)]

pub mod network;
pub mod raw_h2;
pub mod raw_ws;
pub mod redis;

use skyrocket::client::{Connect, Subscriber, Target};
use skyrocket::message::Resume;
use skyrocket::message::Transport;
use skyrocket::message::{ChatMessage, Control, Draft, Event};
use skyrocket::{AppState, Config};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous bound for anything a test waits on: a failure bound, not a
/// speed claim.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// How a test's clients reach its server: the same scenarios run over
/// each (see [`over_each_wire!`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Plain HTTP/1.1: the default server.
    H1,
    /// HTTPS, the client offering only HTTP/1.1 (ALPN).
    H1Tls,
    /// HTTPS with HTTP/2; WebSockets by RFC 8441 extended CONNECT.
    H2,
}

impl Wire {
    /// `config` with the TLS this wire needs: a self-signed certificate
    /// that the test's clients trust (not `insecure`: the chain is checked).
    pub fn config(self, mut config: Config) -> Config {
        if self != Wire::H1 {
            config.tls = Some(skyrocket::tls::ServerTls::self_signed(false).unwrap());
        }
        config
    }

    /// How clients connect over this wire to a server with `config`.
    pub fn connect(self, config: &Config) -> Connect {
        let trusted = config
            .tls
            .as_ref()
            .map(|tls| tls.identity.chain.clone())
            .unwrap_or_default();
        Connect {
            http2: self == Wire::H2,
            insecure: false,
            trusted,
        }
    }
}

impl Wire {
    /// Fails unless `target`'s requests really travel over this wire's
    /// HTTP version (so a parameterised test cannot quietly fall back).
    pub async fn assert_spoken(self, target: &Target) {
        let response = target
            .http
            .get(format!("{}/healthz", target.base))
            .send()
            .await
            .unwrap();
        let expected = match self {
            Wire::H2 => reqwest::Version::HTTP_2,
            Wire::H1 | Wire::H1Tls => reqwest::Version::HTTP_11,
        };
        assert_eq!(response.version(), expected, "{self:?}");
    }
}

/// Runs each named `async fn scenario(wire: Wire)` as three tests, one per
/// [`Wire`]: `scenario::h1`, `scenario::h1_tls`, `scenario::h2`. With
/// `multi_thread:` first, on tokio's multi-threaded runtime (2 workers).
#[macro_export]
macro_rules! over_each_wire {
    (multi_thread: $($scenario:ident),* $(,)?) => {
        $crate::over_each_wire!(@tests (flavor = "multi_thread", worker_threads = 2), $($scenario),*);
    };
    ($($scenario:ident),* $(,)?) => {
        $crate::over_each_wire!(@tests (), $($scenario),*);
    };
    (@tests $flavor:tt, $($scenario:ident),*) => {$(
        mod $scenario {
            #[tokio::test $flavor]
            async fn h1() {
                super::$scenario($crate::common::Wire::H1).await
            }
            #[tokio::test $flavor]
            async fn h1_tls() {
                super::$scenario($crate::common::Wire::H1Tls).await
            }
            #[tokio::test $flavor]
            async fn h2() {
                super::$scenario($crate::common::Wire::H2).await
            }
        }
    )*};
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    config: Config,
    /// How this test's clients connect (HTTP/1.1 unless built `over` a wire).
    pub connect: Connect,
    stop: Option<oneshot::Sender<()>>,
    pub handle: Option<ServerTask>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> Self {
        Self::with_state(AppState::in_memory(config)).await
    }

    /// A server reached over `wire`, with `config` otherwise.
    pub async fn over(wire: Wire, config: Config) -> Self {
        let mut server = Self::with_config(wire.config(config)).await;
        server.connect = wire.connect(&server.config);
        server
    }

    /// A server on a state the test built (another backbone, say).
    pub async fn with_state(state: AppState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = (*state.config).clone();
        let (stop, handle) = serve(listener, state.clone());
        Self {
            addr,
            state,
            config,
            connect: Connect::default(),
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
        let state = AppState::in_memory(self.config.clone());
        let (stop, handle) = serve(listener, state.clone());
        self.state = state;
        self.stop = Some(stop);
        self.handle = Some(handle);
    }

    pub fn base(&self) -> String {
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    pub fn target(&self, room: &str) -> Target {
        Target::with(self.base(), room, self.connect.clone())
    }

    /// The configuration this server runs with.
    pub fn config(&self) -> &Config {
        &self.config
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
        self.connect
            .http_client()
            .get(format!("{}{path}", self.base()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

type ServerTask = JoinHandle<std::io::Result<()>>;

/// Runs a server with fresh state on `listener` until the sender fires.
fn serve(listener: tokio::net::TcpListener, state: AppState) -> (oneshot::Sender<()>, ServerTask) {
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(skyrocket::run(listener, state, async {
        let _ = stopped.await;
    }));
    (stop, handle)
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
pub async fn subscribe(kind: Transport, target: &Target, resume: Resume) -> Subscriber {
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

/// Sends one raw HTTP request on a fresh connection and reads the answer
/// until the server closes: `(status, body)`.
pub async fn raw_http(stream: tokio::net::TcpStream, request: &str) -> (u16, String) {
    try_raw_http(stream, request)
        .await
        .expect("an HTTP answer before the connection closed")
}

/// Like [`raw_http`], but `None` when the server closes without answering.
pub async fn try_raw_http(
    mut stream: tokio::net::TcpStream,
    request: &str,
) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The server may answer and close before reading the request.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = within(PATIENCE, stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Some((status, body.to_owned()))
}

/// A `GET path` that asks the server to close after answering.
pub fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

/// A TCP connection to `addr` from the loopback address `from` (any of
/// 127.0.0.0/8), so a test can be a different client address.
pub async fn connect_from(from: &str, addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// The server binary running as a child process, for tests that need its
/// own memory figures or its signal handling. Killed when dropped.
pub struct ChildServer {
    child: Option<std::process::Child>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The server's log lines (stderr), as they come.
    pub log: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl ChildServer {
    /// Starts the binary on a free port with extra `args`, and waits until
    /// it prints its address.
    pub async fn start(args: &[&str]) -> Self {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_skyrocket"));
        command.args(["--addr", "127.0.0.1:0"]).args(args);
        Self::spawn(command).await
    }

    /// Starts the binary with these environment variables and `args`
    /// (no `--addr` unless given, in either).
    pub async fn start_with_env(env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_skyrocket"));
        command.envs(env.iter().copied()).args(args);
        Self::spawn(command).await
    }

    /// Like `start`, in a process allowed only `open_files` descriptors
    /// (soft and hard limit, so the server cannot raise it).
    pub async fn start_with_open_files(open_files: u32, args: &[&str]) -> Self {
        let mut command = std::process::Command::new("sh");
        command
            .args([
                "-c",
                &format!("ulimit -n {open_files} && exec \"$0\" \"$@\""),
            ])
            .arg(env!("CARGO_BIN_EXE_skyrocket"))
            .args(["--addr", "127.0.0.1:0"])
            .args(args);
        Self::spawn(command).await
    }

    async fn spawn(mut command: std::process::Command) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read the log as it comes, so the server never blocks on a full
        // pipe; the lines wait in the channel until the test reads or
        // drops them (a child logs little unless RUST_LOG asks).
        let stderr = child.stderr.take().unwrap();
        let (lines, log) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let base = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let base = lines
                .find_map(|line| {
                    let line = line.ok()?;
                    let url = line.split_once("demo page: ")?.1.trim();
                    Some(url.trim_end_matches('/').to_owned())
                })
                .expect("the server prints its address");
            // Keep draining, as a terminal would, until the server exits.
            std::thread::spawn(move || lines.for_each(drop));
            base
        });
        let base = within(PATIENCE, base).await.unwrap();
        Self {
            child: Some(child),
            base,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The first log line for which `pick` is true, waiting for it (at
    /// most `PATIENCE`).
    pub async fn log_line(&mut self, pick: impl Fn(&str) -> bool) -> String {
        within(PATIENCE, async {
            loop {
                let line = self.log.recv().await.expect("the server's log ended");
                if pick(&line) {
                    return line;
                }
            }
        })
        .await
    }

    /// Waits for the server to exit by itself (after a signal).
    pub async fn exit_status(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        within(PATIENCE, tokio::task::spawn_blocking(move || child.wait()))
            .await
            .unwrap()
            .unwrap()
    }

    pub fn addr(&self) -> SocketAddr {
        self.base.trim_start_matches("http://").parse().unwrap()
    }

    pub fn target(&self, room: &str) -> Target {
        Target::new(self.base.clone(), room)
    }

    /// The child's resident memory, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    pub async fn stats(&self) -> serde_json::Value {
        skyrocket::client::tls::get(&format!("{}/stats", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A WebSocket whose TCP receive buffer is tiny, so the server's writes back
/// up after a few KiB once it stops reading.
pub async fn tiny_buffer_socket(
    addr: SocketAddr,
    path: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let url = format!("ws://{addr}{path}");
    tokio_tungstenite::client_async(url, stream)
        .await
        .unwrap()
        .0
}
