//! CPU time and resident memory of a process, read from `/proc`.
//!
//! loadgen runs the server as a child process so that these figures are
//! the server's alone: the clients' own CPU and memory never mix in.

use std::io;

/// One reading of a process's cumulative CPU time and current RSS.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// User plus system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

impl Usage {
    /// Reads `/proc/<pid>/stat` (CPU) and `/proc/<pid>/status` (RSS).
    pub fn of(pid: u32) -> io::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        Ok(Self {
            cpu_seconds: cpu_seconds(&stat)
                .ok_or_else(|| io::Error::other(format!("unreadable /proc/{pid}/stat")))?,
            rss_bytes: rss_bytes(&status)
                .ok_or_else(|| io::Error::other(format!("no VmRSS in /proc/{pid}/status")))?,
        })
    }
}

/// utime + stime from a `/proc/<pid>/stat` line. The command name (field 2)
/// is in parentheses and may hold spaces, so fields are counted from the
/// last `)`: state is the first after it, utime the 12th, stime the 13th.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

fn rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_name_has_spaces() {
        let stat = "4242 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        let cpu = cpu_seconds(stat).unwrap();
        assert!((cpu - 300.0 / clock_ticks_per_second()).abs() < 1e-9);
    }

    #[test]
    fn reads_this_process() {
        let usage = Usage::of(std::process::id()).unwrap();
        assert!(usage.rss_bytes > 0);
        assert_eq!(rss_bytes("VmRSS:\t  12 kB\n"), Some(12 * 1024));
    }
}
