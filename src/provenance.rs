//! Where a measured report came from and where it goes: the machine and
//! the date, so every file under `results/` can say which command, machine
//! and day produced it, and the directory criterion writes its report to.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// `"2 cores, AMD EPYC 7B13"`: the cores this process may use and the CPU
/// model from `/proc/cpuinfo` (`unknown CPU` where that file is missing).
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

/// The current time as `YYYY-MM-DD HH:MM UTC`.
pub fn now_utc() -> String {
    utc_date(SystemTime::now())
}

/// `time` as `YYYY-MM-DD HH:MM UTC` (the civil-from-days algorithm, so the
/// reports need no date crate).
pub fn utc_date(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
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
    use std::time::Duration;

    #[test]
    fn dates_match_known_instants() {
        let at = |secs| utc_date(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00 UTC");
        // 2000-02-29 12:34 UTC: a leap day in a century leap year.
        assert_eq!(at(951_827_640), "2000-02-29 12:34 UTC");
        // 2026-11-26 21:03 UTC.
        assert_eq!(at(1_795_726_980), "2026-11-26 21:03 UTC");
    }

    #[test]
    fn machine_names_cores() {
        assert!(machine().contains(" cores, "), "{}", machine());
    }
}
