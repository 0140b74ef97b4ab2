//! The report's charts, drawn from the runs with [`crate::chart`]: latency
//! percentiles, bytes per delivery, server CPU per delivery, and for a sweep
//! p99 latency against client count. Transports are listed in the order the
//! runs came in, so each keeps its colour from chart to chart.
//!
//! A latency chart shows only runs that kept up ([`kept_up`]): an
//! overloaded run's "latency" is how long messages queued, and a bar of
//! minutes beside bars of milliseconds would read as a slow transport. The
//! runs left out are named in a note under the chart. A chart that cannot
//! be drawn is reported, not fatal: the report is written either way.

use super::report::RunResult;
use super::report::{client_counts, common_count, find, kept_up, overloaded_name, transports};
use crate::chart::{BarChart, ChartError, LineChart};
use std::path::{Path, PathBuf};

/// What [`write`] left in the directory.
#[derive(Debug, Default)]
pub struct Charts {
    /// Files written, each with a caption.
    pub drawn: Vec<(PathBuf, String)>,
    /// Charts that could not be drawn, and why.
    pub failed: Vec<String>,
}

impl Charts {
    fn add(&mut self, file: &str, caption: String, draw: Result<PathBuf, ChartError>) {
        match draw {
            Ok(path) => self.drawn.push((path, caption)),
            Err(e) => self.failed.push(format!("{file}: {e}")),
        }
    }
}

/// Writes the charts into `dir`.
pub fn write(dir: &Path, runs: &[RunResult]) -> Charts {
    let mut charts = Charts::default();
    let names = transports(runs);
    let Some(n) = common_count(runs) else {
        return charts;
    };
    let at_n: Vec<&RunResult> = names.iter().filter_map(|t| find(runs, t, n)).collect();
    let save = |chart: Result<String, ChartError>, file: &str| {
        let path = dir.join(file);
        std::fs::write(&path, chart?)?;
        Ok::<_, ChartError>(path)
    };

    let (shown, overloaded): (Vec<&RunResult>, Vec<&RunResult>) =
        at_n.iter().partition(|r| kept_up(r));
    // With every run overloaded there is no latency to draw; the headline
    // and the problems already say so.
    if !shown.is_empty() {
        let mut latency = BarChart::new(
            format!("Delivery latency at {n} clients"),
            "milliseconds (log scale)",
            ["p50", "p90", "p99", "p99.9"],
        )
        .log_y();
        for run in &shown {
            let l = &run.latency_ms;
            latency = latency.series(run.transport, [l.p50, l.p90, l.p99, l.p999]);
        }
        if let Some(note) = left_out(&overloaded) {
            latency = latency.note(note);
        }
        let caption = format!("Delivery latency percentiles at {n} clients");
        charts.add(
            "latency.svg",
            caption,
            save(latency.to_svg(), "latency.svg"),
        );
    }

    let bytes = BarChart::new(
        format!("Wire bytes per delivered message at {n} clients"),
        "bytes",
        names.iter().copied(),
    )
    .series(
        "server to client",
        at_n.iter().map(|r| r.server.wire_out_per_delivery),
    )
    .series(
        "client to server",
        at_n.iter().map(|r| r.server.wire_in_per_delivery),
    );
    let caption = format!("Wire bytes per delivery at {n} clients");
    charts.add("bytes.svg", caption, save(bytes.to_svg(), "bytes.svg"));

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
        let caption = "Server CPU seconds per 1,000 deliveries".to_owned();
        charts.add("cpu.svg", caption, save(cpu.to_svg(), "cpu.svg"));
    }

    let (kept, overloaded): (Vec<&RunResult>, Vec<&RunResult>) =
        runs.iter().partition(|r| kept_up(r));
    if counts.len() > 1 && !kept.is_empty() {
        let mut sweep = LineChart::new(
            "p99 delivery latency by number of clients",
            "clients (log scale)",
            "p99 milliseconds (log scale)",
        )
        .log_x()
        .log_y();
        for name in &names {
            let points = counts.iter().filter_map(|&c| {
                let run = kept
                    .iter()
                    .find(|r| r.transport == *name && r.clients == c)?;
                Some((c as f64, run.latency_ms.p99))
            });
            sweep = sweep.line(*name, points);
        }
        if let Some(note) = left_out(&overloaded) {
            sweep = sweep.note(note);
        }
        let caption = "p99 latency against client count".to_owned();
        charts.add(
            "sweep-p99.svg",
            caption,
            save(sweep.to_svg(), "sweep-p99.svg"),
        );
    }
    charts
}

/// The note under a latency chart naming the overloaded runs it leaves out.
fn left_out(overloaded: &[&RunResult]) -> Option<String> {
    if overloaded.is_empty() {
        return None;
    }
    let names: Vec<String> = overloaded.iter().map(|r| overloaded_name(r)).collect();
    Some(format!(
        "Not shown, overloaded (latency there is queueing): {}",
        names.join(", ")
    ))
}
