//! Renders a loadgen report again from its `results.json`, without
//! measuring anything: `report.md` and the charts beside it, after a change
//! to how reports are laid out (the talk's headline, say).
//!
//! `cargo run --release --example loadgen_report -- results/loadgen [MORE_DIRS]`
//!
//! The report keeps the command, machine and date of the run that measured
//! it, and `results.json` is left as it was: the figures are that run's,
//! only their layout is new.

use skyrocket::loadgen::report::Report;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        return Err("usage: loadgen_report DIR... (each holding a results.json)".into());
    }
    for dir in dirs {
        let report = Report::read_json(&dir.join("results.json"))
            .map_err(|e| format!("{}: {e}", dir.join("results.json").display()))?;
        for path in report.render_dir(&dir)? {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
