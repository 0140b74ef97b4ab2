//! Writes `results/bench/summary.md` from the last `cargo bench`: the median
//! time of every benchmark, read from criterion's
//! `target/criterion/**/new/estimates.json`, as one table per group with
//! the transports side by side, then every id with its 95% confidence
//! interval; and a chart per group (`results/bench/{group}.svg`: lines on
//! log axes for fan-out, bars for the rest). Copies the bench's
//! `wire-bytes.md` and `wire-bytes.svg` next to it, so `results/bench/`
//! holds what the slides quote.
//!
//! `cargo bench && cargo run --release --example bench_summary [-- NOTE]`
//!
//! NOTE, when given, is written under the header (say, what else was
//! running on the machine).

use serde::Deserialize;
use skyrocket::chart::{BarChart, LineChart};
use skyrocket::message::Transport;
use skyrocket::provenance;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const OUT: &str = "results/bench";
/// Groups in the order the talk tells them; any other group follows.
const GROUP_ORDER: [&str; 5] = ["roundtrip", "connect", "fanout", "payload", "room"];

/// criterion's `new/benchmark.json`: which benchmark a directory holds.
#[derive(Debug, Deserialize)]
struct BenchmarkId {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
    full_id: String,
}

/// The part of criterion's `new/estimates.json` used here, in nanoseconds.
#[derive(Debug, Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Debug, Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Debug, Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Debug)]
struct Measured {
    id: BenchmarkId,
    median: Estimate,
    when: SystemTime,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let note: Vec<String> = std::env::args().skip(1).collect();
    let criterion = provenance::criterion_dir();
    let mut found = Vec::new();
    collect(&criterion, &mut found)?;
    if found.is_empty() {
        return Err(format!(
            "no estimates under {}: run `cargo bench` first",
            criterion.display()
        )
        .into());
    }
    found.sort_by_key(|m| sort_key(&m.id));

    std::fs::create_dir_all(OUT)?;
    let grids = grids(&found);
    for grid in &grids {
        grid.write_chart(&Path::new(OUT).join(format!("{}.svg", grid.group)))?;
    }
    let summary = summary(&found, &grids, &note.join(" "));
    std::fs::write(Path::new(OUT).join("summary.md"), &summary)?;
    print!("{summary}");
    for file in ["wire-bytes.md", "wire-bytes.svg"] {
        match std::fs::copy(criterion.join(file), Path::new(OUT).join(file)) {
            Ok(_) => println!("copied {file} to {OUT}/"),
            Err(e) => {
                eprintln!("{file} not copied ({e}): `cargo bench --bench wire_bytes` writes it")
            }
        }
    }
    Ok(())
}

/// Every `new/` directory under `dir` that holds both criterion files.
fn collect(dir: &Path, found: &mut Vec<Measured>) -> Result<(), Box<dyn std::error::Error>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some(measured) = read_new(&path)? {
                found.push(measured);
            }
        } else {
            collect(&path, found)?;
        }
    }
    Ok(())
}

fn read_new(dir: &Path) -> Result<Option<Measured>, Box<dyn std::error::Error>> {
    let (id, estimates) = (dir.join("benchmark.json"), dir.join("estimates.json"));
    if !id.exists() || !estimates.exists() {
        return Ok(None);
    }
    let parse_error = |file: &PathBuf, e: serde_json::Error| format!("{}: {e}", file.display());
    let when = std::fs::metadata(&estimates)?.modified()?;
    let median = serde_json::from_slice::<Estimates>(&std::fs::read(&estimates)?)
        .map_err(|e| parse_error(&estimates, e))?
        .median;
    let id = serde_json::from_slice(&std::fs::read(&id)?).map_err(|e| parse_error(&id, e))?;
    Ok(Some(Measured { id, median, when }))
}

/// Groups in the talk's order; transports in `Transport::RECEIVING` order; parameters
/// by size (`16B` < `1KiB` < `64KiB`, `10` < `100`).
fn sort_key(id: &BenchmarkId) -> (usize, String, (usize, String), (u64, String)) {
    let group = GROUP_ORDER
        .iter()
        .position(|g| *g == id.group_id)
        .unwrap_or(GROUP_ORDER.len());
    let function = id.function_id.clone().unwrap_or_default();
    (
        group,
        id.group_id.clone(),
        row_key(&function),
        column_key(id.value_str.as_deref().unwrap_or("")),
    )
}

fn row_key(function: &str) -> (usize, String) {
    let rank = Transport::RECEIVING
        .iter()
        .position(|k| k.name() == function);
    (
        rank.unwrap_or(Transport::RECEIVING.len()),
        function.to_owned(),
    )
}

/// `"64KiB"` -> 65536, `"1000"` -> 1000; anything else sorts by name.
fn column_key(value: &str) -> (u64, String) {
    let digits = value.trim_end_matches(|c: char| !c.is_ascii_digit());
    let unit = match &value[digits.len()..] {
        "" | "B" => Some(1),
        "KiB" => Some(1 << 10),
        "MiB" => Some(1 << 20),
        _ => None,
    };
    let number = digits
        .parse::<u64>()
        .ok()
        .zip(unit)
        .map_or(u64::MAX, |(n, u)| n * u);
    (number, value.to_owned())
}

fn summary(found: &[Measured], grids: &[Grid], note: &str) -> String {
    let oldest = found
        .iter()
        .map(|m| m.when)
        .min()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let newest = found
        .iter()
        .map(|m| m.when)
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut out = format!(
        "# cargo bench: median times\n\n\
         Command: `cargo bench`, then `cargo run --release --example bench_summary` \
         (writes this file and the charts beside it)  \n\
         Machine: {}  \n\
         Measured: {} to {}  \n\
         Written: {}  \n\
         Commit: {}  \n\
         Load: {} (when this summary was written; criterion records none)\n\n",
        provenance::machine(),
        provenance::utc_date_of(oldest),
        provenance::utc_date_of(newest),
        provenance::now_utc(),
        provenance::git_commit(),
        provenance::load_average(),
    );
    if !note.is_empty() {
        out.push_str(&format!("Note: {note}\n\n"));
    }
    out.push_str(
        "Each figure is criterion's median time per iteration. What each group \
         times, and what it does not claim, is in the `//!` note of its file in \
         `benches/`; how to read them is in the README's \"Benchmarks\" section. \
         Bytes per message are in [`wire-bytes.md`](wire-bytes.md).\n",
    );
    for grid in grids {
        out.push_str(&grid.markdown());
    }

    out.push_str("\n## Every benchmark, with the 95% confidence interval of its median\n\n");
    out.push_str("| benchmark | median | 95% CI |\n| --- | ---: | ---: |\n");
    for m in found {
        let ci = &m.median.confidence_interval;
        out.push_str(&format!(
            "| `{}` | {} | {} to {} |\n",
            m.id.full_id,
            duration(m.median.point_estimate),
            duration(ci.lower_bound),
            duration(ci.upper_bound)
        ));
    }
    out
}

/// One group's medians: a row per function (transport), a column per
/// parameter (receivers, payload size), in sorted order.
struct Grid {
    group: String,
    rows: Vec<String>,
    columns: Vec<String>,
    /// Median nanoseconds per (row, column).
    cells: BTreeMap<(String, String), f64>,
}

/// The groups in `found`, in its (sorted) order.
fn grids(found: &[Measured]) -> Vec<Grid> {
    let mut grids: Vec<Grid> = Vec::new();
    for m in found {
        let group = &m.id.group_id;
        if !grids.iter().any(|g| &g.group == group) {
            grids.push(Grid {
                group: group.clone(),
                rows: Vec::new(),
                columns: Vec::new(),
                cells: BTreeMap::new(),
            });
        }
        let grid = grids
            .iter_mut()
            .find(|g| &g.group == group)
            .expect("just added");
        let row = m.id.function_id.clone().unwrap_or_else(|| group.clone());
        let column = (m.id.value_str.clone()).unwrap_or_else(|| "median".to_owned());
        if !grid.rows.contains(&row) {
            grid.rows.push(row.clone());
        }
        if !grid.columns.contains(&column) {
            grid.columns.push(column.clone());
        }
        grid.cells.insert((row, column), m.median.point_estimate);
    }
    for grid in &mut grids {
        grid.columns.sort_by_key(|c| column_key(c));
    }
    grids
}

impl Grid {
    fn cell(&self, row: &str, column: &str) -> Option<f64> {
        self.cells
            .get(&(row.to_owned(), column.to_owned()))
            .copied()
    }

    fn markdown(&self) -> String {
        let mut out = format!("\n## {}\n\n![{0}]({0}.svg)\n\n| |", self.group);
        for column in &self.columns {
            out.push_str(&format!(" {column} |"));
        }
        out.push_str("\n| --- |");
        out.push_str(&" ---: |".repeat(self.columns.len()));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&format!("| {row} |"));
            for column in &self.columns {
                let cell = self.cell(row, column).map(duration);
                out.push_str(&format!(" {} |", cell.unwrap_or_default()));
            }
            out.push('\n');
        }
        out
    }

    /// A line per row on log axes when the columns are counts (receivers,
    /// subscribers: 1 to 1000), else grouped bars, one group per column.
    fn write_chart(&self, path: &Path) -> Result<(), skyrocket::chart::ChartError> {
        let max = self.cells.values().copied().fold(0.0, f64::max);
        let (scale, unit) = if max >= 1e6 {
            (1e6, "ms")
        } else {
            (1e3, "µs")
        };
        let y_label = format!("median time ({unit})");
        let title = format!("{}: median time per iteration", self.group);
        let counts: Option<Vec<f64>> = (self.columns.len() > 1)
            .then(|| self.columns.iter().map(|c| c.parse::<f64>().ok()).collect())
            .flatten();
        if let Some(xs) = counts {
            let mut chart = LineChart::new(title, "receivers or subscribers", y_label)
                .log_x()
                .log_y();
            for row in &self.rows {
                let points = (self.columns.iter().zip(&xs))
                    .filter_map(|(c, &x)| Some((x, self.cell(row, c)? / scale)));
                chart = chart.line(row.as_str(), points);
            }
            return chart.write(path);
        }
        let categories = self.columns.iter().map(|c| {
            if c == "median" {
                self.group.clone()
            } else {
                c.clone()
            }
        });
        let mut chart = BarChart::new(title, y_label, categories);
        for row in &self.rows {
            let values = self
                .columns
                .iter()
                .map(|c| self.cell(row, c).unwrap_or(0.0) / scale);
            chart = chart.series(row.as_str(), values);
        }
        chart.write(path)
    }
}

/// Nanoseconds as `812 ns`, `12.3 µs`, `4.56 ms` or `1.23 s`.
fn duration(ns: f64) -> String {
    let (value, unit) = match ns {
        n if n >= 1e9 => (n / 1e9, "s"),
        n if n >= 1e6 => (n / 1e6, "ms"),
        n if n >= 1e3 => (n / 1e3, "µs"),
        n => (n, "ns"),
    };
    let digits = match value {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    format!("{value:.digits$} {unit}")
}
