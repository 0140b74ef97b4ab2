//! `run(listener, state, shutdown)`: serve until `shutdown` resolves, then end
//! every long-lived connection and return.
//!
//! hyper's graceful shutdown stops accepting and waits for in-flight
//! requests, but an SSE body or an upgraded WebSocket never finishes on its
//! own. So the shutdown signal first cancels `state.shutdown`, which every
//! stream, socket and held poll selects on; then the WebSocket tasks, which
//! hyper no longer tracks after the upgrade, are awaited through the task
//! tracker, each having sent a 1001 close frame.

use crate::app::{app, AppState};
use crate::wire::{ConnInfo, CountingListener};
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

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

    let listener = CountingListener::new(listener, state.stats.clone(), state.taps.clone());
    let tasks = state.tasks.clone();
    let service = app(state).into_make_service_with_connect_info::<ConnInfo>();
    axum::serve(listener, service)
        .with_graceful_shutdown(token.cancelled_owned())
        .await?;
    tasks.close();
    if tokio::time::timeout(CLOSE_DEADLINE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some WebSocket sessions did not close in time");
    }
    Ok(())
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
            _ = tick.tick() => state.rooms.publish_presence(),
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
