//! Lays several loadgen reports side by side, one column group per
//! condition, from their `results.json`: the round-trip-time table and
//! HTTP/1.1 against HTTP/2. Measures nothing; the figures and provenance
//! are those of the runs.
//!
//! `cargo run --release --example compare_runs -- OUT.md TITLE LABEL=DIR...`
//!
//! For example, after three `loadgen --network rtt=...` runs:
//! `compare_runs results/network/rtt.md "Round-trip time" "rtt 0=results/network/rtt-0" "rtt 50 ms=results/network/rtt-50" "rtt 150 ms=results/network/rtt-150"`

use skyrocket::loadgen::compare::{markdown, Condition};
use skyrocket::loadgen::report::Report;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, title, pairs @ ..] = args.as_slice() else {
        return Err("usage: compare_runs OUT.md TITLE LABEL=DIR...".into());
    };
    let mut conditions = Vec::new();
    for pair in pairs {
        let (label, dir) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?}: expected LABEL=DIR"))?;
        let json = Path::new(dir).join("results.json");
        let report = Report::read_json(&json).map_err(|e| format!("{}: {e}", json.display()))?;
        conditions.push(Condition {
            label: label.to_owned(),
            report,
        });
    }
    if conditions.is_empty() {
        return Err("no LABEL=DIR given".into());
    }
    std::fs::write(out, markdown(title, &conditions))?;
    println!("wrote {out}");
    Ok(())
}
