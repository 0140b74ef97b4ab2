//! The server binary: parse flags, bind, hand over to `skyrocket::run`.

use clap::Parser;
use skyrocket::{AppState, Config};
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Chat rooms over WebSocket, SSE, long polling and short polling"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Messages each room keeps for resume.
    #[arg(long, default_value_t = 1000)]
    history: usize,
    /// Largest message text, in bytes.
    #[arg(long, default_value_t = 4096)]
    max_text_bytes: usize,
    /// Seconds between server pings on each WebSocket.
    #[arg(long, default_value_t = 25)]
    ws_ping_secs: u64,
    /// Seconds a WebSocket peer has to answer a ping.
    #[arg(long, default_value_t = 10)]
    ws_pong_timeout_secs: u64,
    /// Seconds between SSE keepalive comments on a quiet stream.
    #[arg(long, default_value_t = 15)]
    sse_keepalive_secs: u64,
    /// Share rooms with other instances through Redis Streams, for example
    /// `redis://127.0.0.1:6379`. Without it, rooms live in this process.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = Config {
        history: args.history,
        max_text_bytes: args.max_text_bytes,
        redis: args.redis,
        ..Config::default()
    };
    config.ws.ping_interval = Duration::from_secs(args.ws_ping_secs.max(1));
    config.ws.pong_timeout = Duration::from_secs(args.ws_pong_timeout_secs.max(1));
    config.sse.keepalive = Duration::from_secs(args.sse_keepalive_secs.max(1));

    // With --redis, Redis is reached now: a wrong URL is a clear error at
    // startup, not a server answering 503 to everything.
    let state = match AppState::connect(config).await {
        Ok(state) => state,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            std::process::exit(1);
        }
    };
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    let backbone = state.rooms.backbone().name();
    tracing::info!(%addr, backbone, "skyrocket listening");
    // A closed stdout (a parent that stopped reading) must not stop the
    // server, so write errors are ignored rather than panicking in println!.
    let _ = writeln!(
        std::io::stdout(),
        "Skyrocket is up.\n  demo page: http://{addr}/\n  slides:    http://{addr}/slides\n  stats:     http://{addr}/stats"
    );
    skyrocket::run(listener, state, skyrocket::server::shutdown_signal()).await?;
    tracing::info!("shut down cleanly");
    Ok(())
}
