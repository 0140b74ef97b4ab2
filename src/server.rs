//! `run(listener, state, shutdown)`: serve until `shutdown` resolves, then end
//! every long-lived connection and return.
//!
//! # Why a serve loop of our own
//! `axum::serve` sets no header read timeout, and gives no way to set one: a
//! client that sends its request head a byte at a time (slowloris) holds a
//! connection and a task for ever. hyper has the timeout built in
//! (`http1::Builder::header_read_timeout`, with a timer), so this loop
//! accepts connections and serves each with hyper's HTTP/1 builder, which
//! enforces it where the head is parsed. That is more robust than a timer
//! in the socket wrapper, which cannot see where a head ends, and the same
//! timer also closes keep-alive connections idle for that long. HTTP/1.1
//! only: WebSockets upgrade over it, and browsers speak HTTP/2 only over
//! TLS, which this server leaves to a proxy (and the auto builder's
//! protocol sniffing would itself wait, untimed, for the first bytes).
//!
//! # Graceful shutdown
//! hyper's graceful shutdown stops accepting and waits for in-flight
//! requests, but an SSE body or an upgraded WebSocket never finishes on its
//! own. So the shutdown signal first cancels `state.shutdown`, which every
//! stream, socket and held poll selects on, and tells each connection to
//! finish its request and close; then the WebSocket tasks, which hyper no
//! longer tracks after the upgrade, are awaited through the task tracker,
//! each having sent a 1001 close frame.

use crate::app::app;
use crate::conn::{ConnInfo, Counted, CountingListener};
use crate::state::AppState;
use crate::stats::Limit;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The longest shutdown waits for WebSocket close handshakes.
const CLOSE_DEADLINE: Duration = Duration::from_secs(2);

pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = state.shutdown.clone();
    tokio::spawn({
        let token = token.clone();
        async move {
            shutdown.await;
            token.cancel();
        }
    });
    tokio::spawn(publish_presence(state.clone()));
    tokio::spawn(remove_idle_rooms(state.clone()));
    tokio::spawn(crate::reclaim::release_after_waves(
        state.admission.clone(),
        state.shutdown.clone(),
    ));

    let mut listener = CountingListener::new(
        listener,
        state.stats.clone(),
        state.taps.clone(),
        state.admission.clone(),
    );
    let router = app(state.clone());
    let connections = TaskTracker::new();
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = token.cancelled() => break,
        };
        let info = ConnInfo::new(&io, peer);
        connections.spawn(serve_connection(io, info, router.clone(), state.clone()));
    }
    // Stop accepting, then wait for every connection to finish its request.
    drop(listener);
    connections.close();
    connections.wait().await;
    state.tasks.close();
    if tokio::time::timeout(CLOSE_DEADLINE, state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some WebSocket sessions did not close in time");
    }
    Ok(())
}

/// Serves one connection's requests until it closes, or until shutdown
/// lets its request in progress finish.
async fn serve_connection(io: Counted<TcpStream>, info: ConnInfo, router: Router, state: AppState) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(info.clone()));
        router.clone().oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.header_timeout)
        .max_buf_size(state.config.connections.http_buffer.max(8192))
        .max_header_size(state.config.connections.http_buffer);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = state.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            state.stats.count(Limit::HeaderTimeouts);
        }
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Publishes coalesced presence changes until shutdown.
async fn publish_presence(state: AppState) {
    // The first tick one interval after start, not at once: there is
    // nothing to publish at start, and an immediate tick that this task
    // happens to run late would publish to the first clients even on a
    // server configured to stay quiet (tests and benches count bytes).
    let period = state.config.presence_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                state.rooms.share_presence().await;
                state.rooms.publish_presence();
            }
            _ = state.shutdown.cancelled() => return,
        }
    }
}

/// Removes idle rooms until shutdown, checking four times per idle period
/// (at most every 30 s), so a room goes between 1 and 1.25 idle periods
/// after its last use.
async fn remove_idle_rooms(state: AppState) {
    let period = (state.config.rooms.idle_after / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(30));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let removed = state.rooms.remove_idle();
                if removed > 0 {
                    tracing::debug!(removed, live = state.rooms.totals().live, "removed idle rooms");
                }
            }
            _ = state.shutdown.cancelled() => return,
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
