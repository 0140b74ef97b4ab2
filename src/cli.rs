//! The server's command line: flags become a [`Config`], then bind and
//! serve until Ctrl-C or SIGTERM.
//!
//! It lives in the library, not in `main.rs`, because two binaries start
//! this server: `skyrocket` itself, and `loadgen`, which runs it as a child
//! process of its own executable (`loadgen serve ...`). So the server that
//! loadgen measures is always the one it was built with, and a fresh clone
//! needs one `cargo run` for a whole comparison.
//!
//! Every limit in the README's limits table is a flag here; each default
//! comes from `Config::default()`, so there is one source for them.

use crate::config::{self, RateLimit};
use crate::network::{Conditions, Network};
use crate::tls::{Identity, ServerTls};
use crate::{AppState, Config};
use clap::Parser;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

fn defaults() -> Config {
    Config::default()
}

#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "Chat rooms over WebSocket, SSE, long polling and short polling"
)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "SKYROCKET_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Messages each room keeps for resume.
    #[arg(long, env = "SKYROCKET_HISTORY", default_value_t = defaults().history)]
    history: usize,
    /// The most messages one resume replays; older ones become a gap.
    #[arg(long, env = "SKYROCKET_MAX_REPLAY", default_value_t = defaults().max_replay)]
    max_replay: usize,
    /// Largest message text, in bytes.
    #[arg(long, env = "SKYROCKET_MAX_TEXT_BYTES", default_value_t = defaults().max_text_bytes)]
    max_text_bytes: usize,
    /// Largest POST body, in bytes (413 beyond).
    #[arg(long, env = "SKYROCKET_MAX_BODY_BYTES", default_value_t = defaults().max_body_bytes)]
    max_body_bytes: usize,
    /// Largest WebSocket message and frame, in bytes (close 1009 beyond).
    #[arg(long, env = "SKYROCKET_WS_MAX_MESSAGE_BYTES", default_value_t = defaults().ws.max_message)]
    ws_max_message_bytes: usize,
    /// tungstenite's read buffer per WebSocket, in bytes.
    #[arg(long, env = "SKYROCKET_WS_READ_BUFFER_BYTES", default_value_t = defaults().ws.read_buffer)]
    ws_read_buffer_bytes: usize,
    /// Bytes of frames gathered before a WebSocket write.
    #[arg(long, env = "SKYROCKET_WS_WRITE_BUFFER_BYTES", default_value_t = defaults().ws.write_buffer)]
    ws_write_buffer_bytes: usize,
    /// The most bytes of frames queued for one WebSocket (its send queue);
    /// raised if need be to hold one largest frame.
    #[arg(long, env = "SKYROCKET_WS_MAX_WRITE_BUFFER_BYTES", default_value_t = defaults().ws.max_write_buffer)]
    ws_max_write_buffer_bytes: usize,
    /// Milliseconds a WebSocket write may take; a slower peer is closed.
    #[arg(long, env = "SKYROCKET_WS_WRITE_TIMEOUT_MS", default_value_t = defaults().ws.write_timeout.as_millis() as u64)]
    ws_write_timeout_ms: u64,
    /// Seconds between server pings on each WebSocket.
    #[arg(long, env = "SKYROCKET_WS_PING_SECS", default_value_t = defaults().ws.ping_interval.as_secs())]
    ws_ping_secs: u64,
    /// Seconds a WebSocket peer has to answer a ping.
    #[arg(long, env = "SKYROCKET_WS_PONG_TIMEOUT_SECS", default_value_t = defaults().ws.pong_timeout.as_secs())]
    ws_pong_timeout_secs: u64,
    /// Frames per second one WebSocket peer may send, sustained (0: no limit).
    #[arg(long, env = "SKYROCKET_WS_FRAME_RATE", default_value_t = defaults().ws.inbound_rate.per_second)]
    ws_frame_rate: u32,
    /// Frames one WebSocket peer may send in a burst.
    #[arg(long, env = "SKYROCKET_WS_FRAME_BURST", default_value_t = defaults().ws.inbound_rate.burst)]
    ws_frame_burst: u32,
    /// Seconds between SSE keepalive comments on a quiet stream.
    #[arg(long, env = "SKYROCKET_SSE_KEEPALIVE_SECS", default_value_t = defaults().sse.keepalive.as_secs())]
    sse_keepalive_secs: u64,
    /// The SSE `retry:` hint, in milliseconds.
    #[arg(long, env = "SKYROCKET_SSE_RETRY_MS", default_value_t = defaults().sse.retry.as_millis() as u64)]
    sse_retry_ms: u64,
    /// The longest a long poll may be held, in seconds.
    #[arg(long, env = "SKYROCKET_MAX_POLL_WAIT_SECS", default_value_t = defaults().max_poll_wait.as_secs())]
    max_poll_wait_secs: u64,
    /// Seconds a client has to send a request head (and a WebSocket
    /// handshake); also how long an idle keep-alive connection stays open.
    #[arg(long, env = "SKYROCKET_HEADER_TIMEOUT_SECS", default_value_t = defaults().header_timeout.as_secs())]
    header_timeout_secs: u64,
    /// Connections held at most; beyond, 503 and close [default: the
    /// open-file limit minus a reserve].
    #[arg(long, env = "SKYROCKET_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Connections one address may hold; beyond, 429 and close.
    #[arg(long, env = "SKYROCKET_MAX_CONNECTIONS_PER_IP", default_value_t = defaults().connections.max_per_ip)]
    max_connections_per_ip: usize,
    /// The kernel's send buffer per socket, in bytes (0: the kernel's
    /// autotuning, up to tcp_wmem's maximum).
    #[arg(long, env = "SKYROCKET_SOCKET_SEND_BUFFER_BYTES", default_value_t = defaults().connections.send_buffer)]
    socket_send_buffer_bytes: usize,
    /// Seconds a socket write may make no progress before the connection
    /// is closed (an SSE stream or a response nobody reads).
    #[arg(long, env = "SKYROCKET_WRITE_STALL_SECS", default_value_t = defaults().connections.write_stall.as_secs())]
    write_stall_secs: u64,
    /// hyper's buffer per HTTP connection: the largest request head, and
    /// the most response bytes queued for a peer that is not reading.
    #[arg(long, env = "SKYROCKET_HTTP_BUFFER_BYTES", default_value_t = defaults().connections.http_buffer)]
    http_buffer_bytes: usize,
    /// Apply the per-address limits (connections per address, send and
    /// frame rates) to loopback peers too; needed behind a local proxy.
    #[arg(long, env = "SKYROCKET_LIMIT_LOOPBACK")]
    limit_loopback: bool,
    /// Messages per second one client may send, sustained (0: no limit).
    #[arg(long, env = "SKYROCKET_SEND_RATE", default_value_t = defaults().send_rate.per_second)]
    send_rate: u32,
    /// Messages one client may send in a burst.
    #[arg(long, env = "SKYROCKET_SEND_BURST", default_value_t = defaults().send_rate.burst)]
    send_burst: u32,
    /// A page origin allowed besides the server's own and loopback ones,
    /// as scheme://host[:port], or * for any; repeatable, or several
    /// separated by commas.
    #[arg(
        long = "allow-origin",
        env = "SKYROCKET_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    allow_origins: Vec<String>,
    /// A host name a server on loopback answers besides localhost,
    /// 127.0.0.1 and [::1] (a guard against DNS rebinding): the public
    /// name a reverse proxy on this host passes on, or * for any;
    /// repeatable, or several separated by commas.
    #[arg(
        long = "allow-host",
        env = "SKYROCKET_ALLOW_HOST",
        value_delimiter = ','
    )]
    allow_hosts: Vec<String>,
    /// Rooms alive at once; a request that would create another gets 503
    /// (over a WebSocket: an error event, then close 1013).
    #[arg(long, env = "SKYROCKET_MAX_ROOMS", default_value_t = defaults().rooms.max)]
    max_rooms: usize,
    /// Seconds a room with no client and no request is kept; then it is
    /// removed, history included (a returning client gets a reset).
    #[arg(long, env = "SKYROCKET_ROOM_IDLE_SECS", default_value_t = defaults().rooms.idle_after.as_secs())]
    room_idle_secs: u64,
    /// New rooms one address may create per minute (0: no limit); beyond,
    /// 429 (over a WebSocket: an error event, then close 1008).
    #[arg(long, env = "SKYROCKET_ROOM_CREATIONS_PER_MINUTE", default_value_t = defaults().rooms.creations_per_minute)]
    room_creations_per_minute: u32,
    /// Share rooms with other instances through Redis Streams, for example
    /// `redis://127.0.0.1:6379`. Without it, rooms live in this process.
    #[arg(long, env = "SKYROCKET_REDIS", value_name = "URL")]
    redis: Option<String>,
    /// Serve HTTPS: HTTP/2 and HTTP/1.1 (ALPN), WebSockets over both. With
    /// no --cert, a self-signed certificate for localhost is made at start.
    #[arg(long, env = "SKYROCKET_TLS")]
    tls: bool,
    /// The certificate chain (PEM) for --tls.
    #[arg(long, env = "SKYROCKET_CERT", value_name = "PEM", requires = "key")]
    cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM) for --tls.
    #[arg(long, env = "SKYROCKET_KEY", value_name = "PEM", requires = "cert")]
    key: Option<std::path::PathBuf>,
    /// With --tls, offer only HTTP/1.1 (no HTTP/2), for comparisons.
    #[arg(long, env = "SKYROCKET_HTTP1_ONLY")]
    http1_only: bool,
    /// HTTP/2: streams one connection may have open at once.
    #[arg(long, env = "SKYROCKET_H2_MAX_STREAMS", default_value_t = defaults().connections.h2_max_streams)]
    h2_max_streams: u32,
    /// HTTP/2: stream resets per second one connection may send (0: no limit).
    #[arg(long, env = "SKYROCKET_H2_RESET_RATE", default_value_t = defaults().connections.h2_reset_rate.per_second)]
    h2_reset_rate: u32,
    /// HTTP/2: seconds a connection may keep no stream open before it is
    /// closed with GOAWAY.
    #[arg(long, env = "SKYROCKET_H2_IDLE_SECS", default_value_t = defaults().connections.h2_idle_timeout.as_secs())]
    h2_idle_secs: u64,
    /// HTTP/2: stream resets one connection may send in a burst.
    #[arg(long, env = "SKYROCKET_H2_RESET_BURST", default_value_t = defaults().connections.h2_reset_rate.burst)]
    h2_reset_burst: u32,
    /// Where the network in between listens: a second port whose
    /// connections reach this server through the conditions of --network
    /// (changed live at /network and on the demo page). `off` for none
    /// [default: the port after --addr's, skipped with a warning if taken].
    #[arg(long, env = "SKYROCKET_NETWORK_ADDR", value_name = "ADDR|off", value_parser = parse_network_addr)]
    pub network_addr: Option<NetworkAddr>,
    /// The network's conditions at start, for example
    /// `rtt=100ms,jitter=10ms,bandwidth=1mbit,idle=60s,buffer=16KiB,upgrade=403,drop=5s`.
    #[arg(long, env = "SKYROCKET_NETWORK", value_name = "SPEC", default_value = "none", value_parser = Conditions::parse)]
    pub network: Conditions,
    /// Send no WebSocket pings and no SSE keepalive comments, so a quiet
    /// connection is really quiet (to show what an idle timeout does).
    #[arg(long, env = "SKYROCKET_NO_HEARTBEATS")]
    no_heartbeats: bool,
    /// How log lines are written to stderr: text for a person, json (one
    /// object a line) for a log collector. Which lines: RUST_LOG.
    #[arg(long, env = "SKYROCKET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--network-addr`: off, or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkAddr {
    Off,
    At(SocketAddr),
}

fn parse_network_addr(value: &str) -> Result<NetworkAddr, String> {
    if value == "off" {
        return Ok(NetworkAddr::Off);
    }
    value
        .parse()
        .map(NetworkAddr::At)
        .map_err(|e| format!("{value:?}: {e} (expected host:port or off)"))
}

impl ServerArgs {
    pub fn config(&self) -> Config {
        let mut config = Config {
            history: self.history,
            max_replay: self.max_replay,
            max_text_bytes: self.max_text_bytes,
            max_body_bytes: self.max_body_bytes,
            max_poll_wait: Duration::from_secs(self.max_poll_wait_secs.max(1)),
            header_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            send_rate: RateLimit {
                per_second: self.send_rate,
                burst: self.send_burst,
            },
            allowed_origins: self.allow_origins.clone(),
            allowed_hosts: self.allow_hosts.clone(),
            redis: self.redis.clone(),
            ..Config::default()
        };
        let ws = &mut config.ws;
        ws.max_message = self.ws_max_message_bytes;
        ws.read_buffer = self.ws_read_buffer_bytes;
        ws.write_buffer = self.ws_write_buffer_bytes;
        ws.max_write_buffer = self.ws_max_write_buffer_bytes;
        ws.write_timeout = Duration::from_millis(self.ws_write_timeout_ms.max(1));
        ws.ping_interval = Duration::from_secs(self.ws_ping_secs.max(1));
        ws.pong_timeout = Duration::from_secs(self.ws_pong_timeout_secs.max(1));
        ws.inbound_rate = RateLimit {
            per_second: self.ws_frame_rate,
            burst: self.ws_frame_burst,
        };
        config.rooms.max = self.max_rooms;
        config.rooms.idle_after = Duration::from_secs(self.room_idle_secs.max(1));
        config.rooms.creations_per_minute = self.room_creations_per_minute;
        config.sse.keepalive = Duration::from_secs(self.sse_keepalive_secs.max(1));
        config.sse.retry = Duration::from_millis(self.sse_retry_ms);
        let connections = &mut config.connections;
        if let Some(max) = self.max_connections {
            connections.max = max;
        }
        connections.max_per_ip = self.max_connections_per_ip;
        connections.send_buffer = self.socket_send_buffer_bytes;
        connections.write_stall = Duration::from_secs(self.write_stall_secs.max(1));
        connections.http_buffer = self.http_buffer_bytes;
        connections.limit_loopback = self.limit_loopback;
        connections.h2_max_streams = self.h2_max_streams.max(1);
        connections.h2_idle_timeout = Duration::from_secs(self.h2_idle_secs.max(1));
        connections.h2_reset_rate = RateLimit {
            per_second: self.h2_reset_rate,
            burst: self.h2_reset_burst,
        };
        if self.no_heartbeats {
            config.ws.ping_interval = config::NEVER;
            config.sse.keepalive = config::NEVER;
        }
        config
    }

    /// The TLS settings the flags ask for: `--cert`/`--key` turn TLS on
    /// too. `None` serves plain HTTP.
    pub fn server_tls(&self) -> std::io::Result<Option<ServerTls>> {
        let on = self.tls || self.cert.is_some();
        if !on {
            if self.http1_only {
                return Err(std::io::Error::other(
                    "--http1-only applies to --tls (plain HTTP is HTTP/1.1 only already)",
                ));
            }
            return Ok(None);
        }
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Identity::from_pem_files(cert, key),
            _ => Identity::self_signed(),
        };
        identity
            .and_then(|identity| ServerTls::new(identity, self.http1_only))
            .map(Some)
            .map_err(|e| std::io::Error::other(format!("cannot start: {e}")))
    }

    /// Binds the network in between, unless it is off. The default port
    /// is a convenience: when it is taken the server runs without it.
    /// `main` is where the server listens; `self.addr` what was asked.
    async fn bind_network(&self, main: SocketAddr) -> std::io::Result<Option<TcpListener>> {
        let addr = match self.network_addr {
            Some(NetworkAddr::Off) => return Ok(None),
            Some(NetworkAddr::At(addr)) => return TcpListener::bind(addr).await.map(Some),
            // Port 0 asked (tests, loadgen's child) gets a free port of its
            // own: the port after the one the system chose may be anyone's.
            None if self.addr.port() == 0 => SocketAddr::new(main.ip(), 0),
            None => match main.port().checked_add(1) {
                Some(port) => SocketAddr::new(main.ip(), port),
                None => return Ok(None),
            },
        };
        match TcpListener::bind(addr).await {
            Ok(listener) => Ok(Some(listener)),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "no network in between (choose a port with --network-addr)");
                Ok(None)
            }
        }
    }
}

/// Logs to stderr in `format`, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    // Two arms, because `.json()` changes the builder's type.
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// Binds `args.addr`, prints the URLs on stdout (loadgen reads the address
/// from there when it asked for port 0), and serves until a shutdown signal.
pub async fn serve(args: ServerArgs) -> std::io::Result<()> {
    // Before the config: the default connection limit follows the raised
    // open-file limit.
    let open_files = config::raise_open_file_limit();
    // With --redis, Redis is reached now: a wrong URL is a clear error at
    // startup, not a server answering 503 to everything.
    let mut config = args.config();
    config.tls = args.server_tls()?;
    let tls = config.tls.clone();
    let max_connections = config.connections.max;
    let state = AppState::connect(config)
        .await
        .map_err(|e| std::io::Error::other(format!("cannot start: {e}")))?;
    let listener = TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    let network = match args.bind_network(addr).await? {
        Some(proxy) => {
            let network = Arc::new(Network::new(args.network));
            // The proxy dials the main listener; a wildcard address is
            // reached over loopback.
            let upstream = match addr.ip().is_unspecified() {
                true => SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port()),
                false => addr,
            };
            let proxy_addr = proxy.local_addr()?;
            tokio::spawn(crate::network::serve(
                proxy,
                upstream,
                Arc::clone(&network),
                state.shutdown.clone(),
            ));
            Some((network, proxy_addr))
        }
        None => None,
    };
    let state = match &network {
        Some((network, _)) => state.with_network(Arc::clone(network)),
        None => state,
    };
    let backbone = state.rooms.backbone().name();
    tracing::info!(
        %addr,
        backbone,
        open_files,
        max_connections,
        "skyrocket listening"
    );
    // A closed stdout (a parent that stopped reading) must not stop the
    // server, so write errors are ignored rather than panicking in println!.
    let mut out = std::io::stdout();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let _ = writeln!(
        out,
        "Skyrocket is up.\n  demo page: {scheme}://{addr}/\n  slides:    {scheme}://{addr}/slides\n  stats:     {scheme}://{addr}/stats"
    );
    if let Some(tls) = &tls {
        let _ = write!(out, "{}", tls.how_to_trust(addr));
    }
    if let Some((network, proxy_addr)) = &network {
        let _ = writeln!(
            out,
            "  network:   http://{proxy_addr}/ (the same server through the network in between: {})",
            network.conditions()
        );
    }
    let _ = out.flush();
    crate::run(listener, state, crate::server::shutdown_signal()).await?;
    tracing::info!("shut down cleanly");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every option can come from the environment, named after its flag,
    /// so `--help` lists the variable beside each (`[env: SKYROCKET_...]`).
    #[test]
    fn every_option_has_an_environment_variable_named_after_its_flag() {
        let command = ServerArgs::command();
        let mut checked = 0;
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let expected = format!("SKYROCKET_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(expected.as_str()),
                "--{long}"
            );
            checked += 1;
        }
        assert!(checked > 40, "only {checked} options checked");
    }
}
