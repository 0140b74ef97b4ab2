//! Where a measured report came from: the `Command:`, `Machine:`, `Date:`,
//! `Commit:` and `Load:` lines every file under `results/` opens with.
//!
//! The commit says which code was measured (with `-dirty` when the work tree
//! had uncommitted changes); the load average at the start says how busy the
//! machine already was, since a run on a shared 2-core machine is only as
//! quiet as its neighbours.
//!
//! Both sides of that convention live here, so they cannot drift apart: the
//! commands that measure write the lines with [`Provenance::here`], and the
//! slides read them back with [`Provenance::parse`] to caption every table
//! and chart they quote with the command and the machine behind it.

use std::fmt::Write as _;
use std::path::PathBuf;

/// The provenance lines of a report; a report may lack some.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// The command that wrote the report, as Markdown (usually in backticks).
    pub command: Option<String>,
    pub machine: Option<String>,
    pub date: Option<String>,
    /// `git describe --always --dirty` of the measured tree.
    pub commit: Option<String>,
    /// The 1, 5 and 15 minute load averages when the run started.
    pub load: Option<String>,
}

impl Provenance {
    /// For a report about to be written by `command`: this machine, now.
    pub fn here(command: &str) -> Self {
        Self {
            command: Some(format!("`{command}`")),
            machine: Some(machine()),
            date: Some(now_utc()),
            commit: Some(git_commit()),
            load: Some(load_average()),
        }
    }

    /// The lines as Markdown, each ending in a hard line break, the last in a
    /// plain newline: `Command: ...  \nMachine: ...  \nDate: ...\n`.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        for (key, value) in self.fields() {
            if let Some(value) = value {
                if !out.is_empty() {
                    out.push_str("  \n");
                }
                let _ = write!(out, "{key}: {value}");
            }
        }
        out.push('\n');
        out
    }

    /// Reads the lines back from a report. A key may be bold or a list item
    /// (`- **Command:** ...`), so reports need not copy one exact layout;
    /// the first line naming each key wins.
    pub fn parse(report: &str) -> Self {
        let mut found = Self::default();
        for line in report.lines() {
            let line = line.trim().trim_start_matches(['-', '*', ' ']);
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim_start_matches(['*', '_']).trim();
            let slot = match key
                .trim_matches(['*', '_', ' '])
                .to_ascii_lowercase()
                .as_str()
            {
                "command" => &mut found.command,
                "machine" => &mut found.machine,
                "date" => &mut found.date,
                "commit" => &mut found.commit,
                "load" => &mut found.load,
                _ => continue,
            };
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value.to_owned());
            }
        }
        found
    }

    fn fields(&self) -> [(&'static str, &Option<String>); 5] {
        [
            ("Command", &self.command),
            ("Machine", &self.machine),
            ("Date", &self.date),
            ("Commit", &self.commit),
            ("Load", &self.load),
        ]
    }
}

/// This machine in a few words: core count and CPU model.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

/// The checked-out commit, `-dirty` when the work tree differs from it;
/// `unknown (no git)` outside a checkout, so a report still says it does
/// not know rather than leaving the line out.
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown (no git)".into())
}

/// `0.42 0.30 0.12 (1, 5, 15 min)` from /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .map_or_else(|| "unknown".into(), |l| format!("{l} (1, 5, 15 min)"))
}

/// `YYYY-MM-DD HH:MM UTC` from Unix seconds (the civil-from-days algorithm,
/// so reports need no date crate).
pub fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hour, minute) = (secs % 86_400 / 3600, secs % 3600 / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub fn now_utc() -> String {
    utc_date(crate::message::now_millis() / 1000)
}

/// A file time (say, when criterion wrote an estimate) as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_date_of(time: std::time::SystemTime) -> String {
    utc_date(
        time.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// Where `cargo bench` leaves criterion's report, found the way criterion
/// finds it: `$CRITERION_HOME`, else `criterion/` in the cargo target
/// directory (`$CARGO_TARGET_DIR`, else what `cargo metadata` says when run
/// under cargo), else `target/criterion`.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(cargo_target_dir);
    target.unwrap_or_else(|| "target".into()).join("criterion")
}

fn cargo_target_dir() -> Option<PathBuf> {
    let cargo = std::env::var_os("CARGO")?;
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()?;
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    metadata["target_directory"].as_str().map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_lines_read_back() {
        let written = Provenance {
            command: Some("`cargo run --example x`".into()),
            machine: Some("2 cores, AMD EPYC".into()),
            date: Some("2026-11-26 21:03 UTC".into()),
            commit: Some("d09231f4a2b1-dirty".into()),
            load: Some("0.42 0.30 0.12 (1, 5, 15 min)".into()),
        };
        let text = format!("# Report\n\n{}\nprose: not a key\n", written.to_markdown());
        assert_eq!(Provenance::parse(&text), written);
    }

    #[test]
    fn bold_and_listed_keys_are_found() {
        let text = "- **Command:** `loadgen --report`\n* **Machine**: 8 cores\n";
        let p = Provenance::parse(text);
        assert_eq!(p.command.as_deref(), Some("`loadgen --report`"));
        assert_eq!(p.machine.as_deref(), Some("8 cores"));
        assert_eq!(p.date, None);
        assert_eq!(p.commit, None);
    }

    #[test]
    fn here_names_a_commit_and_a_load() {
        let here = Provenance::here("x");
        let load = here.load.unwrap();
        assert!(load.ends_with("(1, 5, 15 min)"), "{load}");
        // Tests run inside the repository's checkout, so git knows the commit.
        let commit = here.commit.unwrap();
        assert!(
            commit.chars().take(7).all(|c| c.is_ascii_hexdigit()),
            "{commit}"
        );
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        // 2024-02-29 12:34 UTC, a leap day.
        assert_eq!(utc_date(1_709_210_040), "2024-02-29 12:34 UTC");
    }
}
