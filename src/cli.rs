//! The server's command line: flags become a [`Config`], then bind and
//! serve until Ctrl-C or SIGTERM.
//!
//! It lives in the library, not in `main.rs`, because two binaries start
//! this server: `skyrocket` itself, and `loadgen`, which runs it as a child
//! process of its own executable (`loadgen serve ...`). So the server that
//! loadgen measures is always the one it was built with, and a fresh clone
//! needs one `cargo run` for a whole comparison.

use crate::{AppState, Config};
use clap::Parser;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "Chat rooms over WebSocket, SSE, long polling and short polling"
)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Messages each room keeps for resume.
    #[arg(long, default_value_t = 1000)]
    pub history: usize,
    /// Largest message text, in bytes.
    #[arg(long, default_value_t = 4096)]
    pub max_text_bytes: usize,
    /// Seconds between server pings on each WebSocket.
    #[arg(long, default_value_t = 25)]
    pub ws_ping_secs: u64,
    /// Seconds a WebSocket peer has to answer a ping.
    #[arg(long, default_value_t = 10)]
    pub ws_pong_timeout_secs: u64,
    /// Seconds between SSE keepalive comments on a quiet stream.
    #[arg(long, default_value_t = 15)]
    pub sse_keepalive_secs: u64,
    /// Share rooms with other instances through Redis Streams, for example
    /// `redis://127.0.0.1:6379`. Without it, rooms live in this process.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
}

impl ServerArgs {
    pub fn config(&self) -> Config {
        let mut config = Config {
            history: self.history,
            max_text_bytes: self.max_text_bytes,
            redis: self.redis.clone(),
            ..Config::default()
        };
        config.ws.ping_interval = Duration::from_secs(self.ws_ping_secs.max(1));
        config.ws.pong_timeout = Duration::from_secs(self.ws_pong_timeout_secs.max(1));
        config.sse.keepalive = Duration::from_secs(self.sse_keepalive_secs.max(1));
        config
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Binds `args.addr`, prints the URLs on stdout (loadgen reads the address
/// from there when it asked for port 0), and serves until a shutdown signal.
pub async fn serve(args: ServerArgs) -> std::io::Result<()> {
    // With --redis, Redis is reached now: a wrong URL is a clear error at
    // startup, not a server answering 503 to everything.
    let state = AppState::connect(args.config())
        .await
        .map_err(|e| std::io::Error::other(format!("cannot start: {e}")))?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    let backbone = state.rooms.backbone().name();
    tracing::info!(%addr, backbone, "skyrocket listening");
    // A closed stdout (a parent that stopped reading) must not stop the
    // server, so write errors are ignored rather than panicking in println!.
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "Skyrocket is up.\n  demo page: http://{addr}/\n  slides:    http://{addr}/slides\n  stats:     http://{addr}/stats"
    );
    let _ = out.flush();
    crate::run(listener, state, crate::server::shutdown_signal()).await?;
    tracing::info!("shut down cleanly");
    Ok(())
}
