//! The report's charts, drawn from the runs with [`crate::chart`]: latency
//! percentiles, bytes per delivery, server CPU per delivery, and for a sweep
//! p99 latency against client count. Transports are listed in the order the
//! runs came in, so each keeps its colour from chart to chart.

use super::report::{client_counts, common_count, find, transports, RunResult};
use crate::chart::{BarChart, ChartError, LineChart};
use std::path::{Path, PathBuf};

/// Writes the charts into `dir`; the files written, each with a caption.
pub fn write(dir: &Path, runs: &[RunResult]) -> Result<Vec<(PathBuf, String)>, ChartError> {
    let mut written = Vec::new();
    let names = transports(runs);
    let Some(n) = common_count(runs) else {
        return Ok(written);
    };
    let at_n: Vec<&RunResult> = names.iter().filter_map(|t| find(runs, t, n)).collect();

    let mut latency = BarChart::new(
        format!("Delivery latency at {n} clients"),
        "milliseconds (log scale)",
        ["p50", "p90", "p99", "p99.9"],
    )
    .log_y();
    for run in &at_n {
        let l = &run.latency_ms;
        latency = latency.series(run.transport, [l.p50, l.p90, l.p99, l.p999]);
    }
    let path = dir.join("latency.svg");
    latency.write(&path)?;
    written.push((path, format!("Delivery latency percentiles at {n} clients")));

    let mut bytes = BarChart::new(
        format!("Wire bytes per delivered message at {n} clients"),
        "bytes",
        names.iter().copied(),
    );
    bytes = bytes
        .series(
            "server to client",
            at_n.iter().map(|r| r.server.wire_out_per_delivery),
        )
        .series(
            "client to server",
            at_n.iter().map(|r| r.server.wire_in_per_delivery),
        );
    let path = dir.join("bytes.svg");
    bytes.write(&path)?;
    written.push((path, format!("Wire bytes per delivery at {n} clients")));

    let counts = client_counts(runs);
    if runs.iter().any(|r| r.server.cpu_seconds_per_1000.is_some()) {
        let mut cpu = BarChart::new(
            "Server CPU per 1,000 deliveries",
            "CPU seconds",
            counts.iter().map(|c| format!("{c} clients")),
        );
        for name in &names {
            cpu = cpu.series(
                *name,
                counts.iter().map(|&c| {
                    find(runs, name, c)
                        .and_then(|r| r.server.cpu_seconds_per_1000)
                        .unwrap_or(0.0)
                }),
            );
        }
        let path = dir.join("cpu.svg");
        cpu.write(&path)?;
        written.push((path, "Server CPU seconds per 1,000 deliveries".into()));
    }

    if counts.len() > 1 {
        let mut sweep = LineChart::new(
            "p99 delivery latency by number of clients",
            "clients (log scale)",
            "p99 milliseconds (log scale)",
        )
        .log_x()
        .log_y();
        for name in &names {
            let points = counts.iter().filter_map(|&c| {
                find(runs, name, c).map(|r| (c as f64, r.latency_ms.p99.max(0.001)))
            });
            sweep = sweep.line(*name, points);
        }
        let path = dir.join("sweep-p99.svg");
        sweep.write(&path)?;
        written.push((path, "p99 latency against client count".into()));
    }
    Ok(written)
}
