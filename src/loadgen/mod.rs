//! loadgen: drives one room with many clients over each transport in turn
//! and measures what each costs, the same way for all of them.
//!
//! - [`spec`]: the workload and where the server is;
//! - [`child`]: the server under test as a child process, so its CPU and
//!   memory ([`probe`]) are measured apart from the clients';
//! - [`run`]: one run (connect, warm up, measure, drain) with the library's
//!   own clients ([`crate::client`]), no second copy of the protocol;
//! - [`tally`]: open-loop latency and delivery counts;
//! - [`report`]: the table, JSON and Markdown; [`charts`]: its SVG charts;
//!   [`compare`]: several reports side by side (RTT, HTTP/1.1 and HTTP/2);
//! - [`floor`]: the minimal fan-out server each transport is measured
//!   against (`loadgen floor`, `loadgen --floor`); [`axum_shape`]: a chat
//!   server the way axum's own example is, the other baseline
//!   (`loadgen axum-shape`, `loadgen --axum-shape`);
//! - [`recovery`]: how long each transport takes to deliver again after
//!   each fault of the network in between (`loadgen recovery`).
//!
//! Everything is bounded: counts and durations come from the spec, every
//! connect and the drain have a deadline, and the target is loopback
//! unless `--url` says otherwise.

pub mod axum_shape;
pub mod charts;
pub mod child;
pub mod compare;
pub mod floor;
pub mod probe;
pub mod recovery;
pub mod report;
pub mod run;
pub mod spec;
pub mod tally;

use crate::message::Transport;
use child::ChildServer;
use indicatif::ProgressBar;
use report::{Baseline, RunResult};
use run::Instance;
use spec::{Servers, Spec};
use tokio_util::sync::CancellationToken;

/// Serves a baseline server's routes ([`floor::app`], [`axum_shape::app`])
/// on `listener` until `shutdown` resolves: plain axum, no TLS, no limits.
pub async fn serve_baseline(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Runs every (client count, transport) pair of `spec`, smallest count
/// first, each against a fresh child server when loadgen starts its own.
/// `interrupt` stops early; the runs done so far, and the one cut short,
/// are returned. `on_run` sees each result as it is ready.
pub async fn run_all(
    spec: &Spec,
    interrupt: &CancellationToken,
    progress: &ProgressBar,
    mut on_run: impl FnMut(&RunResult),
) -> std::io::Result<Vec<RunResult>> {
    let mut results = Vec::new();
    for &clients in &spec.clients {
        for &kind in &spec.transports {
            if interrupt.is_cancelled() {
                return Ok(results);
            }
            let result = match &spec.servers {
                Servers::Spawn { command, count } => {
                    let mut children = Vec::new();
                    for _ in 0..(*count).max(1) {
                        children.push(ChildServer::start(command).await?);
                    }
                    let mut instances: Vec<Instance> = children
                        .iter()
                        .map(|child| Instance {
                            base: child.base.clone(),
                            pid: Some(child.pid()),
                            via: None,
                        })
                        .collect();
                    through_network(spec, &mut instances).await?;
                    let result =
                        run::run_one(spec, kind, clients, &instances, interrupt, progress).await;
                    for child in children {
                        child.stop().await?;
                    }
                    result
                }
                Servers::Urls(urls) => {
                    let mut instances: Vec<Instance> = urls
                        .iter()
                        .map(|url| Instance {
                            base: url.trim_end_matches('/').to_owned(),
                            pid: None,
                            via: None,
                        })
                        .collect();
                    through_network(spec, &mut instances).await?;
                    run::run_one(spec, kind, clients, &instances, interrupt, progress).await
                }
            };
            let mut result = result;
            if spec.floor && !interrupt.is_cancelled() {
                let floor =
                    baseline_run(spec, kind, clients, &result, "floor", interrupt, progress);
                result.floor = Some(floor.await?);
            }
            // The axum shape has no polling, as axum's example has none.
            let streams = matches!(kind, Transport::Ws | Transport::Sse);
            if spec.axum_shape && streams && !interrupt.is_cancelled() {
                let axum = baseline_run(
                    spec,
                    kind,
                    clients,
                    &result,
                    "axum-shape",
                    interrupt,
                    progress,
                );
                result.axum_shape = Some(axum.await?);
            }
            on_run(&result);
            results.push(result);
        }
    }
    Ok(results)
}

/// The same workload against a fresh baseline server (`loadgen floor`,
/// `loadgen axum-shape`), and our CPU per delivery over its.
async fn baseline_run(
    spec: &Spec,
    kind: Transport,
    clients: usize,
    ours: &RunResult,
    subcommand: &str,
    interrupt: &CancellationToken,
    progress: &ProgressBar,
) -> std::io::Result<Baseline> {
    let child = ChildServer::start(&child::ServerCommand::baseline(subcommand)?).await?;
    let instance = Instance {
        base: child.base.clone(),
        pid: Some(child.pid()),
        via: None,
    };
    let theirs = run::run_one(spec, kind, clients, &[instance], interrupt, progress).await;
    child.stop().await?;
    let cpu = theirs.server.cpu_seconds_per_1000;
    Ok(Baseline {
        cpu_seconds_per_1000: cpu,
        p99_ms: theirs.latency_ms.p99,
        lost: theirs.lost,
        rss_per_client_kib: theirs.server.rss_per_client_kib,
        cpu_ratio: match (ours.server.cpu_seconds_per_1000, cpu) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        },
    })
}

/// With `spec.network`, sets each instance's conditions and sends its
/// clients through its network port.
async fn through_network(spec: &Spec, instances: &mut [Instance]) -> std::io::Result<()> {
    let Some(conditions) = &spec.network else {
        return Ok(());
    };
    for instance in instances {
        instance
            .through_network(conditions)
            .await
            .map_err(std::io::Error::other)?;
    }
    Ok(())
}
