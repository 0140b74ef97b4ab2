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
//! timer also closes keep-alive connections idle for that long.
//!
//! # HTTP/2 over TLS (`--tls`)
//! Browsers speak HTTP/2 only over TLS, so plain connections are HTTP/1.1.
//! A TLS connection first passes the front door (`conn/tls.rs`: a
//! handshake within the header timeout), then is served with the protocol
//! ALPN chose: hyper's HTTP/2 builder for `h2`, the HTTP/1 one otherwise.
//! Choosing by ALPN, rather than hyper-util's auto builder, which sniffs
//! the first bytes, keeps the choice explicit and the sniffing untimed
//! wait out. HTTP/2 is served with RFC 8441's extended CONNECT enabled
//! (WebSockets on a stream), a cap on concurrent streams, and a bounded
//! send buffer per stream.
//!
//! # Graceful shutdown
//! hyper's graceful shutdown stops accepting and waits for in-flight
//! requests, but an SSE body or an upgraded WebSocket never finishes on its
//! own. So the shutdown signal first cancels `state.shutdown`, which every
//! stream, socket and held poll selects on, and tells each connection to
//! finish its request and close; then the WebSocket tasks, which hyper no
//! longer tracks after the upgrade, are awaited through the task tracker,
//! each having sent a 1001 close frame. An HTTP/2 connection is told to
//! shut down gracefully too: hyper sends GOAWAY, finishes its streams and
//! closes.

use crate::app::app;
use crate::conn::{Admitted, ConnInfo, ConnWire, CountingListener, Protocol};
use crate::state::AppState;
use crate::stats::Limit;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The longest shutdown waits for WebSocket close handshakes.
const CLOSE_DEADLINE: Duration = Duration::from_secs(2);

pub async fn run(
    listener: TcpListener,
    mut state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.on_loopback = listener.local_addr()?.ip().is_loopback();
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

    let mut listener = CountingListener::new(listener, state.admission.clone());
    let router = app(state.clone());
    let connections = TaskTracker::new();
    loop {
        let (admitted, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = token.cancelled() => break,
        };
        connections.spawn(serve_admitted(
            admitted,
            peer,
            router.clone(),
            state.clone(),
        ));
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

/// Serves an admitted connection: plain HTTP/1.1, or through the TLS
/// front door with the protocol ALPN chose.
async fn serve_admitted(admitted: Admitted, peer: SocketAddr, router: Router, state: AppState) {
    let Admitted { stream, slot } = admitted;
    let (stats, taps) = (&state.stats, &state.taps);
    let Some(tls) = state.config.tls.clone() else {
        let io = Admitted::counted(stream, slot, Protocol::Http1, stats, taps);
        let info = ConnInfo::new(Arc::clone(io.meter()), peer);
        return serve_connection(io, false, info, router, state).await;
    };
    let limit = state.config.header_timeout;
    let Some((stream, h2)) = crate::conn::tls::accept(stream, &tls, stats, limit).await else {
        return;
    };
    let protocol = if h2 {
        Protocol::Http2Tls
    } else {
        Protocol::Http1Tls
    };
    let io = Admitted::counted(stream, slot, protocol, stats, taps);
    let info = ConnInfo::new(Arc::clone(io.meter()), peer);
    serve_connection(io, h2, info, router, state).await
}

/// Serves one connection's requests until it closes, or until shutdown
/// lets its requests in progress finish.
async fn serve_connection<I>(io: I, h2: bool, info: ConnInfo, router: Router, state: AppState)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let wire = Arc::clone(&info.wire);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(info.clone()));
        router.clone().oneshot(request)
    });
    let limits = &state.config.connections;
    let result = if h2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .enable_connect_protocol()
            .max_concurrent_streams(limits.h2_max_streams)
            // hyper's default is 400 KiB per stream: bound a stream whose
            // reader holds its flow-control window shut like an HTTP/1
            // connection's buffer.
            .max_send_buf_size(limits.http_buffer)
            .max_header_list_size(limits.http_buffer as u32);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        let idle = idle_h2(&wire, limits.h2_idle_timeout);
        until_shutdown(connection, idle, &state).await
    } else {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(state.config.header_timeout)
            .max_buf_size(limits.http_buffer.max(8192))
            .max_header_size(limits.http_buffer);
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        // The header timeout bounds an idle HTTP/1.1 connection.
        until_shutdown(connection, std::future::pending(), &state).await
    };
    if let Err(e) = result {
        if e.is_timeout() {
            state.stats.count(Limit::HeaderTimeouts);
        }
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// A hyper connection that can be asked to finish gracefully.
trait Graceful: Future<Output = hyper::Result<()>> {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S> Graceful for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    Self: Future<Output = hyper::Result<()>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::UpgradeableConnection::graceful_shutdown(self)
    }
}

impl<I, S, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
where
    Self: Future<Output = hyper::Result<()>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http2::Connection::graceful_shutdown(self)
    }
}

/// Drives `connection` until it ends; on shutdown, asks it to finish its
/// requests in progress and close (HTTP/2: GOAWAY), and waits for that at
/// most [`CLOSE_DEADLINE`]: HTTP/2's graceful close waits for the peer to
/// answer a PING, which a broken or hostile client never does.
async fn until_shutdown(
    connection: impl Graceful,
    idle: impl Future<Output = ()>,
    state: &AppState,
) -> hyper::Result<()> {
    tokio::pin!(connection);
    let idle = async {
        idle.await;
        state.stats.count(Limit::H2IdleClosed);
    };
    tokio::select! {
        result = connection.as_mut() => result,
        // Either way the connection is asked to finish as on shutdown:
        // GOAWAY over HTTP/2, then close once nothing is in flight.
        _ = state.shutdown.cancelled() => finish(connection).await,
        _ = idle => finish(connection).await,
    }
}

/// Finishes `connection` gracefully, within `CLOSE_DEADLINE`.
async fn finish<C: Graceful>(mut connection: Pin<&mut C>) -> hyper::Result<()> {
    connection.as_mut().graceful_shutdown();
    match tokio::time::timeout(CLOSE_DEADLINE, connection).await {
        Ok(result) => result,
        Err(_) => {
            tracing::debug!("a connection did not close in time; dropped");
            Ok(())
        }
    }
}

/// Resolves once an HTTP/2 connection has kept no stream open for
/// `limit`, looking four times per period: it closes between 1 and 1.25
/// periods after its last stream ended.
async fn idle_h2(wire: &ConnWire, limit: Duration) {
    let mut tick = tokio::time::interval(limit / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if wire.h2_idle_for().is_some_and(|idle| idle >= limit) {
            return;
        }
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
