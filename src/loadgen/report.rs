//! A run's figures, and the forms they leave in: a terminal table, JSON,
//! and a Markdown report with its command line, machine and date.

use crate::provenance::Provenance;
use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Milliseconds at the usual quantiles of a histogram kept in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn from_micros(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// The server's side of a run, from its own accounting (`/stats`) and,
/// when loadgen started it, its process (`/proc`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerFigures {
    /// Chat messages the server handed to this transport's clients in the
    /// measured window.
    pub delivered: u64,
    pub wire_out_per_delivery: f64,
    pub wire_in_per_delivery: f64,
    pub requests_per_delivery: f64,
    /// The `connection` line of `/stats` (under TLS: handshakes, TLS
    /// record overhead, HTTP/2 connection-level frames) over the same
    /// window, per delivery; the senders' connections are in it too.
    /// Absent (0) in reports made before loadgen read it.
    #[serde(default)]
    pub connection_out_per_delivery: f64,
    #[serde(default)]
    pub connection_in_per_delivery: f64,
    /// The server's CPU seconds (user + system) over the measured window.
    pub cpu_seconds: Option<f64>,
    pub cpu_seconds_per_1000: Option<f64>,
    pub rss_idle_mib: Option<f64>,
    pub rss_per_client_kib: Option<f64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    #[serde(deserialize_with = "transport_name")]
    pub transport: &'static str,
    /// Receivers asked for.
    pub clients: usize,
    pub connected: u64,
    pub connect_failed: u64,
    /// Receivers whose stream broke after connecting.
    pub dropped: u64,
    /// Why clients failed or dropped, with counts.
    pub failures: Vec<(String, u64)>,
    /// Failed polls that pollers retried with the same `since` (absent
    /// from reports made before loadgen retried).
    #[serde(default)]
    pub poll_retries: u64,
    pub connect_ms: Percentiles,
    pub senders: usize,
    pub rate: f64,
    pub size: usize,
    /// Measured messages the server accepted.
    pub sent: u64,
    pub send_errors: u64,
    pub first_send_error: Option<String>,
    /// `sent` x `connected`.
    pub expected: u64,
    pub delivered: u64,
    /// Deliveries that never came: a receiver moved past the message
    /// (announced as `gap`/`reset`, or silently) or its stream broke.
    pub lost: u64,
    /// Deliveries a receiver still had ahead of its cursor when the drain
    /// ended: queued on the server or in flight, not lost. A run with many
    /// was behind (overloaded). `None` in reports made before loadgen told
    /// the two apart: their `lost` holds both.
    #[serde(default)]
    pub queued: Option<u64>,
    pub duplicates: u64,
    pub announced_losses: u64,
    pub latency_ms: Percentiles,
    /// From the first measured message's due time to the last receipt.
    pub window_s: f64,
    pub deliveries_per_sec: f64,
    pub server: ServerFigures,
    /// loadgen's own CPU seconds over the same window (`/proc/self`): next
    /// to the server's, it shows which side was saturated.
    pub loadgen_cpu_seconds: Option<f64>,
    /// The same workload against the floor server, when `--floor` ran it.
    pub floor: Option<Baseline>,
    /// The same workload against the axum-example shape, when
    /// `--axum-shape` ran it (WebSocket and SSE only).
    #[serde(default)]
    pub axum_shape: Option<Baseline>,
    pub interrupted: bool,
}

/// A baseline server's side of a run (the floor, `floor.rs`, or the axum
/// shape, `axum_shape.rs`) on the same workload, and how much more CPU per
/// delivery ours took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    pub cpu_seconds_per_1000: Option<f64>,
    pub p99_ms: f64,
    pub lost: u64,
    /// Our CPU per delivery over the baseline's.
    pub cpu_ratio: Option<f64>,
    /// Its memory per connected client, as [`ServerFigures`] measures ours
    /// (absent from reports made before it was recorded).
    #[serde(default)]
    pub rss_per_client_kib: Option<f64>,
}

/// A whole loadgen invocation.
// The transport names are `&'static str`, so the derived impl asks for
// `'de: 'static`; `read_json` meets it by reading through an owned `Value`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(deserialize = "'de: 'static"))]
pub struct Report {
    pub command: String,
    pub machine: String,
    pub date: String,
    #[serde(default = "not_recorded")]
    pub commit: String,
    /// Load average when the runs started: how busy the machine already was.
    #[serde(default = "not_recorded")]
    pub load: String,
    pub workload: String,
    pub runs: Vec<RunResult>,
}

/// What a report measured before commits and load were recorded says when
/// it is rendered again.
fn not_recorded() -> String {
    "not recorded".into()
}

/// A transport's name read back from JSON, as the `&'static str` the
/// client kinds use, so a `results.json` can be rendered again.
fn transport_name<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let name = String::deserialize(d)?;
    crate::message::Transport::RECEIVING
        .iter()
        .map(|k| k.name())
        .find(|n| *n == name)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown transport {name:?}")))
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}"))
}

/// The headline columns, shared by the terminal table and the Markdown.
fn rows(runs: &[RunResult]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "transport",
        "clients",
        "connected",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "delivered/expected",
        "lost",
        "queued",
        "dup",
        "deliveries/s",
        "out B/dlv",
        "in B/dlv",
        "req/dlv",
        "conn. out/in B/dlv",
        "CPU s/1k dlv",
        "floor CPU s/1k",
        "x floor",
        "axum CPU s/1k",
        "x axum",
        "server CPU s",
        "loadgen CPU s",
        "retries",
        "RSS KiB/client",
        "connect p99 ms",
    ];
    let body = runs
        .iter()
        .map(|r| {
            let l = &r.latency_ms;
            // An overloaded run's "latency" is how long messages queued:
            // the cells say so instead (the figures stay in the JSON).
            let ms = |v: f64| {
                if kept_up(r) {
                    format!("{v:.2}")
                } else {
                    "overloaded".to_owned()
                }
            };
            vec![
                format!("{}{}", r.transport, if r.interrupted { "*" } else { "" }),
                r.clients.to_string(),
                r.connected.to_string(),
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.p999),
                ms(l.max),
                format!("{}/{}", r.delivered, r.expected),
                r.lost.to_string(),
                r.queued.map_or_else(|| "n/a".into(), |q| q.to_string()),
                r.duplicates.to_string(),
                format!("{:.0}", r.deliveries_per_sec),
                format!("{:.1}", r.server.wire_out_per_delivery),
                format!("{:.1}", r.server.wire_in_per_delivery),
                format!("{:.3}", r.server.requests_per_delivery),
                format!(
                    "{:.1}/{:.1}",
                    r.server.connection_out_per_delivery, r.server.connection_in_per_delivery
                ),
                opt(r.server.cpu_seconds_per_1000, 4),
                opt(r.floor.as_ref().and_then(|f| f.cpu_seconds_per_1000), 4),
                opt(r.floor.as_ref().and_then(|f| f.cpu_ratio), 2),
                opt(
                    r.axum_shape.as_ref().and_then(|a| a.cpu_seconds_per_1000),
                    4,
                ),
                opt(r.axum_shape.as_ref().and_then(|a| a.cpu_ratio), 2),
                opt(r.server.cpu_seconds, 2),
                opt(r.loadgen_cpu_seconds, 2),
                r.poll_retries.to_string(),
                opt(r.server.rss_per_client_kib, 1),
                format!("{:.1}", r.connect_ms.p99),
            ]
        })
        .collect();
    (header, body)
}

/// A fixed-width table for the terminal.
pub fn table(runs: &[RunResult]) -> String {
    let (header, body) = rows(runs);
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            body.iter()
                .map(|row| row[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(out, "{cell:>width$}  ");
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    };
    line(header.clone(), &mut out);
    for row in &body {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// The same table in Markdown.
pub fn markdown_table(runs: &[RunResult]) -> String {
    let (header, body) = rows(runs);
    let mut out = format!("| {} |\n|", header.join(" | "));
    out.push_str(&" ---: |".repeat(header.len()));
    out.push('\n');
    for row in body {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

/// Transport names in first-seen order, so a transport keeps its place
/// (and its chart colour) in every table and chart.
pub(crate) fn transports<'a>(runs: impl IntoIterator<Item = &'a RunResult>) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for run in runs {
        if !names.contains(&run.transport) {
            names.push(run.transport);
        }
    }
    names
}

/// Client counts in ascending order.
pub(crate) fn client_counts(runs: &[RunResult]) -> Vec<usize> {
    let mut counts: Vec<usize> = runs.iter().map(|r| r.clients).collect();
    counts.sort_unstable();
    counts.dedup();
    counts
}

pub(crate) fn find<'a>(
    runs: &'a [RunResult],
    transport: &str,
    clients: usize,
) -> Option<&'a RunResult> {
    runs.iter()
        .find(|r| r.transport == transport && r.clients == clients)
}

/// The largest client count that every transport ran: the fairest single
/// point for the per-transport bar charts.
pub(crate) fn common_count(runs: &[RunResult]) -> Option<usize> {
    let names = transports(runs);
    client_counts(runs)
        .into_iter()
        .rev()
        .find(|&n| names.iter().all(|t| find(runs, t, n).is_some()))
}

/// Below this share of the offered deliveries per second a run is
/// overloaded: messages queued up faster than they left. (A run that keeps
/// up shows a little under 100%, since its window also holds the last
/// message's delivery; a 1 s poll interval over 10 s measured shows ~91%.)
pub const KEPT_UP: f64 = 0.8;

/// The share of the offered load a run delivered: its deliveries per
/// second against messages per second times receivers.
pub fn delivered_share(r: &RunResult) -> f64 {
    let offered = r.rate * r.connected as f64;
    if offered > 0.0 {
        r.deliveries_per_sec / offered
    } else {
        0.0
    }
}

/// Whether a run kept up with the load offered to it: it delivered
/// something, and at least [`KEPT_UP`] of the offered deliveries per
/// second. The one decision every table, chart and line of a report takes
/// before it shows a run's latency: an overloaded run's "latency" is how
/// long messages queued, not how fast a transport is.
pub fn kept_up(r: &RunResult) -> bool {
    r.latency_ms.count > 0 && delivered_share(r) >= KEPT_UP
}

/// `longpoll x10000 (4% of offered)`: an overloaded run, named for a note.
pub fn overloaded_name(r: &RunResult) -> String {
    format!(
        "{} x{} ({:.0}% of offered)",
        r.transport,
        r.clients,
        delivered_share(r) * 100.0
    )
}

/// A duration in the unit a person reads: `0.45 ms`, `9.5 ms`, `210 ms`,
/// `1.0 s`, `3.9 min`.
pub fn human_ms(ms: f64) -> String {
    match ms {
        ms if ms < 1.0 => format!("{ms:.2} ms"),
        ms if ms < 10.0 => format!("{ms:.1} ms"),
        ms if ms < 1000.0 => format!("{ms:.0} ms"),
        ms if ms < 10_000.0 => format!("{:.1} s", ms / 1000.0),
        ms if ms < 60_000.0 => format!("{:.0} s", ms / 1000.0),
        ms => format!("{:.1} min", ms / 60_000.0),
    }
}

/// A count with thousands separators: `20,048`.
fn grouped(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The talk's view of a sweep: for each client count every transport ran,
/// one row per transport with the share of the offered load it delivered,
/// and its latency only when it kept up: an overloaded run's "latency" is
/// how long messages queued, not how fast a transport is.
pub fn headline_table(runs: &[RunResult]) -> String {
    let names = transports(runs);
    let mut out = format!(
        "A transport keeps up when it delivers at least {:.0}% of the deliveries \
         offered per second (messages/s x receivers). Latency is shown only for runs \
         that kept up; bytes per delivery and every other figure are in the Results table \
         below.\n",
        KEPT_UP * 100.0
    );
    for n in client_counts(runs) {
        if !names.iter().all(|t| find(runs, t, n).is_some()) {
            continue;
        }
        let first = find(runs, names[0], n).expect("every transport ran n");
        let _ = write!(
            out,
            "\n### At {n} clients\n\n{n} receivers in one room; {} sender(s) post {} \
             messages/s in total, {} B of text each: {} deliveries/s offered.\n\n\
             | transport | delivered of offered | p50 | p99 | deliveries/s | req/dlv | CPU s/1k dlv | RSS KiB/client |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
            first.senders,
            first.rate,
            first.size,
            grouped(first.rate * n as f64),
        );
        for name in &names {
            let Some(r) = find(runs, name, n) else {
                continue;
            };
            let share = delivered_share(r);
            let (p50, p99) = if kept_up(r) {
                (human_ms(r.latency_ms.p50), human_ms(r.latency_ms.p99))
            } else {
                ("overloaded".to_owned(), "overloaded".to_owned())
            };
            let _ = writeln!(
                out,
                "| {name} | {:.0}% | {p50} | {p99} | {} | {:.3} | {} | {} |",
                share * 100.0,
                grouped(r.deliveries_per_sec),
                r.server.requests_per_delivery,
                opt(r.server.cpu_seconds_per_1000, 4),
                opt(r.server.rss_per_client_kib, 1),
            );
        }
    }
    out
}

/// Ours beside the baselines (`--floor`, `--axum-shape`), per run that ran
/// one: CPU per delivery and memory per client. `None` without baselines.
pub fn baselines_table(runs: &[RunResult]) -> Option<String> {
    let with: Vec<&RunResult> = runs
        .iter()
        .filter(|r| r.floor.is_some() || r.axum_shape.is_some())
        .collect();
    if with.is_empty() {
        return None;
    }
    let mut out = String::from(
        "The same workload against the floor (`--floor`) and the axum-example shape \
         (`--axum-shape`, WebSocket and SSE only), each on a fresh server right after ours.\n\n\
         The p99 columns say what latency the same machine gives with no server work \
         beyond the writes: where the floor misses a latency goal too, the goal is out \
         of this machine's reach, whatever the server does.\n\n\
         | transport | clients | CPU s/1k dlv | floor | x floor | axum shape | x axum | \
         p99 ms | floor | axum shape | RSS KiB/client | floor | axum shape |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in with {
        let (floor, axum) = (r.floor.as_ref(), r.axum_shape.as_ref());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.transport,
            r.clients,
            opt(r.server.cpu_seconds_per_1000, 4),
            opt(floor.and_then(|b| b.cpu_seconds_per_1000), 4),
            opt(floor.and_then(|b| b.cpu_ratio), 2),
            opt(axum.and_then(|b| b.cpu_seconds_per_1000), 4),
            opt(axum.and_then(|b| b.cpu_ratio), 2),
            if kept_up(r) {
                format!("{:.1}", r.latency_ms.p99)
            } else {
                "overloaded".to_owned()
            },
            opt(floor.map(|b| b.p99_ms), 1),
            opt(axum.map(|b| b.p99_ms), 1),
            opt(r.server.rss_per_client_kib, 1),
            opt(floor.and_then(|b| b.rss_per_client_kib), 1),
            opt(axum.and_then(|b| b.rss_per_client_kib), 1),
        );
    }
    Some(out)
}

/// Plain-words problems: overload, failed connects, drops, send errors,
/// losses and deliveries still queued.
pub fn problems(runs: &[RunResult]) -> Vec<String> {
    let mut out = Vec::new();
    for r in runs {
        let name = format!("{} x{}", r.transport, r.clients);
        if !kept_up(r) {
            let queueing = if r.latency_ms.count > 0 {
                format!(
                    "; its latencies (p99 {}) are queueing time, so tables and charts \
                     leave them out (they are in results.json)",
                    human_ms(r.latency_ms.p99)
                )
            } else {
                String::new()
            };
            out.push(format!(
                "{name}: overloaded: delivered {:.0}% of the offered deliveries/s{queueing}",
                delivered_share(r) * 100.0
            ));
        }
        for (why, count) in &r.failures {
            out.push(format!("{name}: {count} client(s): {why}"));
        }
        if r.send_errors > 0 {
            out.push(format!(
                "{name}: {} send(s) failed, first: {}",
                r.send_errors,
                r.first_send_error.as_deref().unwrap_or("?")
            ));
        }
        if r.lost > 0 {
            out.push(format!(
                "{name}: {} of {} deliveries lost ({} announced as gap/reset)",
                r.lost, r.expected, r.announced_losses
            ));
        }
        if let Some(queued) = r.queued.filter(|&q| q > 0) {
            out.push(format!(
                "{name}: {} of {} deliveries not yet fetched when the drain ended: \
                 the receivers were behind (queued or in flight, not lost)",
                queued, r.expected
            ));
        }
        if r.duplicates > 0 {
            out.push(format!("{name}: {} duplicate deliveries", r.duplicates));
        }
        if r.interrupted {
            out.push(format!("{name}: interrupted (Ctrl-C); figures are partial"));
        }
    }
    out
}

impl Report {
    /// A report of `runs` made by `command`, on the machine and at the
    /// commit and load that `started` recorded before the first run.
    pub fn new(
        command: String,
        started: Provenance,
        workload: String,
        runs: Vec<RunResult>,
    ) -> Self {
        Self {
            command,
            machine: started.machine.unwrap_or_default(),
            date: started.date.unwrap_or_default(),
            commit: started.commit.unwrap_or_default(),
            load: started.load.unwrap_or_default(),
            workload,
            runs,
        }
    }

    fn provenance(&self) -> Provenance {
        Provenance {
            command: Some(format!("`{}`", self.command)),
            machine: Some(self.machine.clone()),
            date: Some(self.date.clone()),
            commit: Some(self.commit.clone()),
            load: Some(self.load.clone()),
        }
    }

    /// The report in Markdown, showing `charts` (file, caption) that sit
    /// beside it.
    pub fn markdown(&self, charts: &[(PathBuf, String)]) -> String {
        self.markdown_with(charts, &[])
    }

    /// The report in Markdown, with `charts` shown and the charts that
    /// could not be drawn (`failed`) said so.
    fn markdown_with(&self, charts: &[(PathBuf, String)], failed: &[String]) -> String {
        let mut out = format!(
            "# loadgen report\n\n{}\n{}\n\n## Headline\n\n{}\n## Results\n\n{}",
            self.provenance().to_markdown(),
            self.workload,
            headline_table(&self.runs),
            markdown_table(&self.runs)
        );
        if let Some(table) = baselines_table(&self.runs) {
            let _ = write!(out, "\n## Against the baselines\n\n{table}");
        }
        let problems = problems(&self.runs);
        if !problems.is_empty() {
            out.push_str("\n## Problems seen\n\n");
            for p in problems {
                let _ = writeln!(out, "- {p}");
            }
        }
        if !charts.is_empty() || !failed.is_empty() {
            out.push_str("\n## Charts\n\n");
            for (path, caption) in charts {
                let file = path.file_name().unwrap_or_default().to_string_lossy();
                let _ = writeln!(out, "![{caption}]({file})\n");
            }
        }
        for failure in failed {
            let _ = writeln!(out, "Chart not drawn: {failure}.\n");
        }
        out.push_str(COLUMNS);
        out
    }

    /// `report.md`, `results.json` and the SVG charts in `dir`; the paths
    /// written.
    pub fn write_dir(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        let json = dir.join("results.json");
        self.write_json(&json)?;
        let mut written = vec![json];
        written.extend(self.render_dir(dir)?);
        Ok(written)
    }

    /// `report.md` and the SVG charts in `dir`, from the figures alone (a
    /// report read back from its `results.json` renders again this way,
    /// leaving the JSON as it was measured); the paths written.
    pub fn render_dir(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        // A chart that cannot be drawn costs that chart, never the report:
        // the figures are what a run leaves behind.
        let charts = super::charts::write(dir, &self.runs);
        let path = dir.join("report.md");
        std::fs::write(&path, self.markdown_with(&charts.drawn, &charts.failed))?;
        let mut written = vec![path];
        written.extend(charts.drawn.into_iter().map(|(path, _)| path));
        Ok(written)
    }

    /// A report written before, read back from its `results.json`.
    pub fn read_json(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(std::io::Error::other)?;
        Self::deserialize(value).map_err(std::io::Error::other)
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }
}

const COLUMNS: &str = "
## Columns

- **p50 ... max ms**: delivery latency, from the moment each message was
  *due* on the open-loop send schedule to its receipt, over every receiver
  (HdrHistogram, 3 significant digits). Measuring from the due time, not
  from the actual send, charges a stall to the server instead of hiding it
  (coordinated omission).
- **delivered/expected**: first receipts of measured messages, against
  messages the server accepted times receivers connected. Of the
  difference, **queued** is what receivers still had ahead of their cursor
  when the drain ended (the server still held it for them: they were
  behind, nothing was lost), and **lost** the rest: messages a receiver
  moved past without getting (the problems say how many of those the
  server announced with `gap`/`reset`) or never got because its stream
  broke. (Reports measured before loadgen told the two apart show queued
  `n/a`; their lost holds both.) **dup** counts a message id a receiver
  had already seen.
- A run is **overloaded** when it delivered less than 80% of the offered
  deliveries per second (messages/s x receivers connected): its latency
  cells read `overloaded` and the charts leave it out, since what it
  measured is how long messages queued (the figures are in results.json).
- **deliveries/s**: delivered over the measured window (first due time to
  last receipt).
- **out/in B/dlv, req/dlv**: bytes the server wrote to / read from this
  transport's sockets, and requests it served, per message it delivered,
  from its own accounting (`/stats`). The senders' POSTs are not included.
  Under TLS these are the decrypted bytes of the transport's requests
  (over HTTP/2, its streams' frames with their 9-byte headers).
- **conn. out/in B/dlv**: the `connection` line of `/stats` over the same
  window, per delivery: under TLS, the handshakes, the TLS record headers
  and tags, and HTTP/2's connection-level frames, the senders' connections
  included (0 over plain HTTP). Add it to out/in for what crossed the
  sockets.
- **CPU s/1k dlv**: the server process's user+system CPU seconds per 1,000
  deliveries (`/proc/PID/stat`); n/a when loadgen did not start the server.
- **floor CPU s/1k, x floor**: the same workload against the floor, a
  minimal fan-out server that writes the same bytes to the same sockets
  with no room, no accounting and no JSON work per delivery (`--floor`);
  and our CPU per delivery over the floor's.
- **axum CPU s/1k, x axum**: the same for the axum-example shape
  (`--axum-shape`): a chat server written the way axum's own chat example
  is (a broadcast channel per room, split socket, tungstenite defaults, no
  history or stats); WebSocket and SSE only.
- **server CPU s, loadgen CPU s**: CPU seconds (user + system) of the
  server and of loadgen itself over the measured window. Two cores are
  200% at most: when loadgen's share is large, the client side was part of
  what saturated.
- **retries**: failed polls that a poller asked again with the same `since`
  (up to 5 in a row), so a refused connection is not a lost message.
- **RSS KiB/client**: growth of the server's resident memory from before the
  clients connected to when all were connected and idle, per client.
- **connect p99 ms**: from starting to connect to being able to receive
  (`hello` for WebSocket and SSE, the first poll's answer for polling).
";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A run of `clients` at 20 msg/s that delivered `per_sec`, for tests.
    pub(crate) fn run(
        transport: &'static str,
        clients: usize,
        per_sec: f64,
        p99: f64,
    ) -> RunResult {
        RunResult {
            transport,
            clients,
            connected: clients as u64,
            connect_failed: 0,
            dropped: 0,
            failures: Vec::new(),
            poll_retries: 0,
            connect_ms: Percentiles::default(),
            senders: 1,
            rate: 20.0,
            size: 100,
            sent: 200,
            send_errors: 0,
            first_send_error: None,
            expected: 200 * clients as u64,
            delivered: 200 * clients as u64,
            lost: 0,
            queued: Some(0),
            duplicates: 0,
            announced_losses: 0,
            latency_ms: Percentiles {
                count: 200 * clients as u64,
                p50: p99 / 2.0,
                p90: p99 * 0.8,
                p99,
                p999: p99 * 1.2,
                max: p99 * 1.5,
                ..Percentiles::default()
            },
            window_s: 10.0,
            deliveries_per_sec: per_sec,
            server: ServerFigures {
                delivered: 0,
                wire_out_per_delivery: 210.0,
                wire_in_per_delivery: 0.0,
                requests_per_delivery: 0.0,
                connection_out_per_delivery: 40.0,
                connection_in_per_delivery: 20.0,
                cpu_seconds: None,
                cpu_seconds_per_1000: None,
                rss_idle_mib: None,
                rss_per_client_kib: None,
            },
            loadgen_cpu_seconds: None,
            floor: None,
            axum_shape: None,
            interrupted: false,
        }
    }

    #[test]
    fn the_headline_shows_saturation_as_a_share_not_as_a_latency() {
        let runs = [
            run("ws", 1000, 20_048.0, 17.38),
            run("longpoll", 1000, 19_877.0, 190.59),
            run("ws", 10_000, 198_209.0, 210.69),
            run("longpoll", 10_000, 8_160.0, 233_439.23),
            run("ws", 20_000, 398_000.0, 300.0),
        ];
        let md = headline_table(&runs);
        let at = |n: usize| {
            md.split(&format!("### At {n} clients\n"))
                .nth(1)
                .unwrap_or_else(|| panic!("no section for {n} in\n{md}"))
                .split("###")
                .next()
                .unwrap()
                .to_owned()
        };
        assert!(at(1000).contains("20,000 deliveries/s offered"));
        assert!(at(1000).contains("| ws | 100% | 8.7 ms | 17 ms | 20,048 |"));
        assert!(at(1000).contains("| longpoll | 99% | 95 ms | 191 ms |"));
        assert!(at(10_000).contains("| longpoll | 4% | overloaded | overloaded | 8,160 |"));
        assert!(
            !md.contains("233"),
            "an overloaded run's latency is not shown"
        );
        assert!(!md.contains("At 20000"), "only counts every transport ran");
    }

    #[test]
    fn a_report_reads_back_from_its_json() {
        let report = Report::new(
            "loadgen --clients 1000".into(),
            Provenance::here("loadgen --clients 1000"),
            "Workload: test.".into(),
            vec![
                run("ws", 1000, 20_048.0, 17.38),
                run("poll", 1000, 18_235.0, 993.79),
            ],
        );
        let path =
            std::env::temp_dir().join(format!("skyrocket-report-{}.json", std::process::id()));
        report.write_json(&path).unwrap();
        let back = Report::read_json(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back.runs[1].transport, "poll");
        assert_eq!(back.markdown(&[]), report.markdown(&[]));
        assert!(report.markdown(&[]).contains("| 40.0/20.0 |"));
        // A report measured before commits and load were recorded says so.
        let mut old: serde_json::Value = serde_json::to_value(&report).unwrap();
        old.as_object_mut().unwrap().remove("commit");
        std::fs::write(&path, old.to_string()).unwrap();
        let back = Report::read_json(&path).unwrap();
        assert!(back.markdown(&[]).contains("Commit: not recorded"));
        std::fs::write(&path, r#"{"runs":[{"transport":"carrier pigeon"}]}"#).unwrap();
        assert!(Report::read_json(&path).is_err());
        std::fs::remove_file(&path).unwrap();
    }

    /// A run that delivered nothing (every send refused, say) has only
    /// zeros for latencies: the report is still written, it says the run
    /// was overloaded, and no chart plots its zeros on a log axis.
    #[test]
    fn a_report_is_written_when_a_run_delivered_nothing() {
        let mut starved = run("ws", 1000, 0.0, 0.0);
        starved.latency_ms = Percentiles::default();
        (starved.sent, starved.expected, starved.delivered) = (0, 0, 0);
        let report = Report::new(
            "loadgen".into(),
            Provenance::here("loadgen"),
            "Workload: test.".into(),
            vec![starved],
        );
        let dir = std::env::temp_dir().join(format!("skyrocket-starved-{}", std::process::id()));
        let written = report.render_dir(&dir).unwrap();
        let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(written.iter().any(|p| p.ends_with("report.md")));
        assert!(!written.iter().any(|p| p.ends_with("latency.svg")));
        assert!(md.contains("| ws | 1000 | 1000 | overloaded |"), "{md}");
        assert!(md.contains("ws x1000: overloaded: delivered 0%"), "{md}");
    }

    /// An overloaded run is named under the latency charts, not drawn in
    /// them, and its latencies appear in no table.
    #[test]
    fn charts_and_tables_leave_an_overloaded_runs_latency_out() {
        let runs = vec![
            run("ws", 1000, 20_048.0, 17.38),
            run("longpoll", 1000, 19_877.0, 190.59),
            run("ws", 10_000, 198_209.0, 210.69),
            run("longpoll", 10_000, 8_160.0, 233_439.23),
        ];
        let report = Report::new(
            "loadgen".into(),
            Provenance::here("loadgen"),
            "Workload: test.".into(),
            runs,
        );
        let dir = std::env::temp_dir().join(format!("skyrocket-overload-{}", std::process::id()));
        report.render_dir(&dir).unwrap();
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| {
                let md = std::fs::read_to_string(dir.join("report.md"));
                panic!("{file}: {e}; report: {md:?}")
            })
        };
        let (md, latency, sweep) = (
            read("report.md"),
            read("latency.svg"),
            read("sweep-p99.svg"),
        );
        std::fs::remove_dir_all(&dir).unwrap();
        // At 10,000 clients ws kept up and is drawn; longpoll is a note.
        assert!(latency.contains("ws"));
        assert!(latency.contains("Not shown, overloaded"), "{latency}");
        assert!(latency.contains("longpoll x10000 (4% of offered)"));
        assert!(sweep.contains("longpoll x10000 (4% of offered)"));
        // 233,439 ms is drawn nowhere and tabled nowhere; the problems
        // name it as queueing time.
        for text in [&latency, &sweep] {
            assert!(!text.contains("233k") && !text.contains("100k"), "{text}");
        }
        assert!(
            md.contains("| longpoll | 10000 | 10000 | overloaded |"),
            "{md}"
        );
        assert!(!md.contains("233439"), "{md}");
        assert!(md.contains("(p99 3.9 min) are queueing time"), "{md}");
    }

    #[test]
    fn durations_read_in_a_persons_units() {
        assert_eq!(human_ms(0.449), "0.45 ms");
        assert_eq!(human_ms(9.46), "9.5 ms");
        assert_eq!(human_ms(210.69), "211 ms");
        assert_eq!(human_ms(1002.5), "1.0 s");
        assert_eq!(human_ms(233_439.23), "3.9 min");
        assert_eq!(grouped(1_993_131.0), "1,993,131");
        assert_eq!(grouped(20.0), "20");
    }
}
