//! What the network in between does: one value, [`Conditions`], written
//! as a short spec (`rtt=50ms,jitter=5ms,idle=5s`) on the command line and
//! in loadgen, and as JSON at `GET/PUT /network`. Both go through the same
//! bounds, so a value that the endpoint refuses, the flag refuses too.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The largest one-way delay or jitter, in milliseconds.
pub const MAX_DELAY_MS: u64 = 10_000;
/// The longest idle timeout or drop period, in milliseconds (one hour).
pub const MAX_PERIOD_MS: u64 = 3_600_000;
/// The shortest idle timeout or drop period: below it nothing could connect.
pub const MIN_PERIOD_MS: u64 = 100;
/// The largest response buffer, in KiB.
pub const MAX_BUFFER_KIB: u64 = 1024;
/// The lowest bandwidth cap, in bytes per second: below it a page would
/// take minutes to load, which looks like a bug rather than a slow link.
pub const MIN_BANDWIDTH: u64 = 1024;
/// The highest bandwidth cap (1 GiB/s); 0 means no cap.
pub const MAX_BANDWIDTH: u64 = 1 << 30;

/// What the network does to a WebSocket upgrade request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Upgrade {
    /// Pass it on, as most networks do.
    #[default]
    #[serde(rename = "allow")]
    Allow,
    /// Answer `403 Forbidden` and close, as a corporate proxy with a
    /// policy page does.
    #[serde(rename = "403")]
    Forbid,
    /// Cut the connection without an answer, as a proxy that does not
    /// understand Upgrade may.
    #[serde(rename = "drop")]
    Drop,
}

impl Upgrade {
    pub fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Forbid => "403",
            Self::Drop => "drop",
        }
    }
}

/// Every condition at once; all zero (the default) is a clean pass-through.
/// Times are milliseconds, sizes bytes or KiB, as the field names say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// One-way delay from client to server.
    pub up_ms: u64,
    /// One-way delay from server to client.
    pub down_ms: u64,
    /// Each chunk's delay varies by up to this much either way (order kept).
    pub jitter_ms: u64,
    /// Bytes per second per connection and direction; 0 is no cap.
    pub bandwidth: u64,
    /// Cut a connection with no bytes either way for this long; 0 is off.
    pub idle_ms: u64,
    /// Hold each response body until it ends or this many KiB are held;
    /// 0 is off.
    pub buffer_kib: u64,
    /// What happens to a WebSocket upgrade.
    pub upgrade: Upgrade,
    /// Cut every connection this often; 0 is off.
    pub drop_ms: u64,
}

/// A change to some conditions: the body of `PUT /network`. Absent fields
/// keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    pub up_ms: Option<u64>,
    pub down_ms: Option<u64>,
    /// Sets both one-way delays to half of it.
    pub rtt_ms: Option<u64>,
    pub jitter_ms: Option<u64>,
    pub bandwidth: Option<u64>,
    pub idle_ms: Option<u64>,
    pub buffer_kib: Option<u64>,
    pub upgrade: Option<Upgrade>,
    pub drop_ms: Option<u64>,
    /// Start from a clean network before applying the rest.
    #[serde(default)]
    pub reset: bool,
}

impl Conditions {
    /// A clean network.
    pub const NONE: Self = Self {
        up_ms: 0,
        down_ms: 0,
        jitter_ms: 0,
        bandwidth: 0,
        idle_ms: 0,
        buffer_kib: 0,
        upgrade: Upgrade::Allow,
        drop_ms: 0,
    };

    pub fn up(&self) -> Duration {
        Duration::from_millis(self.up_ms)
    }

    pub fn down(&self) -> Duration {
        Duration::from_millis(self.down_ms)
    }

    pub fn jitter(&self) -> Duration {
        Duration::from_millis(self.jitter_ms)
    }

    /// The idle timeout, when on.
    pub fn idle(&self) -> Option<Duration> {
        (self.idle_ms > 0).then(|| Duration::from_millis(self.idle_ms))
    }

    /// The drop period, when on.
    pub fn drop_every(&self) -> Option<Duration> {
        (self.drop_ms > 0).then(|| Duration::from_millis(self.drop_ms))
    }

    /// The response buffer in bytes; 0 is off.
    pub fn buffer_bytes(&self) -> usize {
        (self.buffer_kib * 1024) as usize
    }

    /// These conditions with `patch` applied, if the result is in bounds.
    pub fn patched(&self, patch: &Patch) -> Result<Self, String> {
        let mut next = if patch.reset { Self::NONE } else { *self };
        if let Some(rtt) = patch.rtt_ms {
            next.up_ms = rtt / 2;
            next.down_ms = rtt - rtt / 2;
        }
        let fields = [
            (&mut next.up_ms, patch.up_ms),
            (&mut next.down_ms, patch.down_ms),
            (&mut next.jitter_ms, patch.jitter_ms),
            (&mut next.bandwidth, patch.bandwidth),
            (&mut next.idle_ms, patch.idle_ms),
            (&mut next.buffer_kib, patch.buffer_kib),
            (&mut next.drop_ms, patch.drop_ms),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                *field = value;
            }
        }
        if let Some(upgrade) = patch.upgrade {
            next.upgrade = upgrade;
        }
        next.check()?;
        Ok(next)
    }

    /// Every value within its bound, or what is wrong, for a person.
    pub fn check(&self) -> Result<(), String> {
        for (name, value) in [
            ("up_ms", self.up_ms),
            ("down_ms", self.down_ms),
            ("jitter_ms", self.jitter_ms),
        ] {
            if value > MAX_DELAY_MS {
                return Err(format!("{name} must be at most {MAX_DELAY_MS}"));
            }
        }
        for (name, value) in [("idle_ms", self.idle_ms), ("drop_ms", self.drop_ms)] {
            if value != 0 && !(MIN_PERIOD_MS..=MAX_PERIOD_MS).contains(&value) {
                return Err(format!(
                    "{name} must be 0 (off) or {MIN_PERIOD_MS} to {MAX_PERIOD_MS}"
                ));
            }
        }
        if self.bandwidth != 0 && !(MIN_BANDWIDTH..=MAX_BANDWIDTH).contains(&self.bandwidth) {
            return Err(format!(
                "bandwidth must be 0 (no cap) or {MIN_BANDWIDTH} to {MAX_BANDWIDTH} bytes per second"
            ));
        }
        if self.buffer_kib > MAX_BUFFER_KIB {
            return Err(format!("buffer_kib must be at most {MAX_BUFFER_KIB}"));
        }
        Ok(())
    }

    /// Parses a spec: comma-separated `key=value` pairs, or `none`.
    ///
    /// | key | value | meaning |
    /// | --- | --- | --- |
    /// | `rtt` | `50ms` | round trip: half each way |
    /// | `up`, `down` | `20ms` | one-way delay, client to server and back |
    /// | `jitter` | `5ms` | each chunk's delay varies by up to this, order kept |
    /// | `bandwidth` | `64KiB`, `1mbit` | per connection and direction, per second |
    /// | `idle` | `5s` | cut connections quiet for this long |
    /// | `buffer` | `16KiB` | hold response bodies up to this much |
    /// | `upgrade` | `allow`, `403`, `drop` | what WebSocket upgrades get |
    /// | `drop` | `2s` | cut every connection this often |
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let mut patch = Patch::default();
        if spec.is_empty() || spec == "none" {
            return Ok(Self::NONE);
        }
        for pair in spec.split(',') {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not key=value"))?;
            let (key, value) = (key.trim(), value.trim());
            let bad = |what: &str| format!("{key}={value}: expected {what}");
            match key {
                "rtt" => patch.rtt_ms = Some(millis(value).ok_or_else(|| bad("a time"))?),
                "up" => patch.up_ms = Some(millis(value).ok_or_else(|| bad("a time"))?),
                "down" => patch.down_ms = Some(millis(value).ok_or_else(|| bad("a time"))?),
                "jitter" => patch.jitter_ms = Some(millis(value).ok_or_else(|| bad("a time"))?),
                "idle" => patch.idle_ms = Some(millis(value).ok_or_else(|| bad("a time"))?),
                "drop" => patch.drop_ms = Some(millis(value).ok_or_else(|| bad("a time"))?),
                "bandwidth" => {
                    patch.bandwidth =
                        Some(rate(value).ok_or_else(|| bad("a rate such as 64KiB or 1mbit"))?)
                }
                "buffer" => {
                    let bytes = size(value).ok_or_else(|| bad("a size such as 16KiB"))?;
                    patch.buffer_kib = Some(bytes.div_ceil(1024));
                }
                "upgrade" => {
                    patch.upgrade = Some(match value {
                        "allow" => Upgrade::Allow,
                        "403" => Upgrade::Forbid,
                        "drop" => Upgrade::Drop,
                        _ => return Err(bad("allow, 403 or drop")),
                    })
                }
                _ => {
                    return Err(format!(
                        "unknown condition {key:?}: expected rtt, up, down, jitter, bandwidth, idle, buffer, upgrade or drop"
                    ))
                }
            }
        }
        Self::NONE.patched(&patch)
    }
}

/// The spec that parses back to these conditions (`none` for none).
impl fmt::Display for Conditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.up_ms == self.down_ms && self.up_ms > 0 {
            parts.push(format!("rtt={}ms", self.up_ms * 2));
        } else {
            if self.up_ms > 0 {
                parts.push(format!("up={}ms", self.up_ms));
            }
            if self.down_ms > 0 {
                parts.push(format!("down={}ms", self.down_ms));
            }
        }
        for (key, value) in [
            ("jitter", self.jitter_ms),
            ("idle", self.idle_ms),
            ("drop", self.drop_ms),
        ] {
            if value > 0 {
                parts.push(format!("{key}={value}ms"));
            }
        }
        if self.bandwidth > 0 {
            parts.push(format!("bandwidth={}B", self.bandwidth));
        }
        if self.buffer_kib > 0 {
            parts.push(format!("buffer={}KiB", self.buffer_kib));
        }
        if self.upgrade != Upgrade::Allow {
            parts.push(format!("upgrade={}", self.upgrade.name()));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

/// `250ms`, `2s`, `1.5s` in milliseconds.
fn millis(value: &str) -> Option<u64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    let number: f64 = number.trim().parse().ok()?;
    (number.is_finite() && number >= 0.0 && number * scale <= u64::MAX as f64)
        .then(|| (number * scale).round() as u64)
}

/// `512`, `512B`, `16k`, `16KiB`, `1MiB` in bytes.
fn size(value: &str) -> Option<u64> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "" | "B" => 1.0,
        "k" | "K" | "KiB" | "KB" | "kB" => 1024.0,
        "M" | "MiB" | "MB" => 1024.0 * 1024.0,
        "kbit" => 1000.0 / 8.0,
        "mbit" | "Mbit" => 1_000_000.0 / 8.0,
        _ => return None,
    };
    let bytes = number * scale;
    (bytes.is_finite() && bytes <= u64::MAX as f64).then(|| bytes.round() as u64)
}

/// A size per second; `/s` is optional.
fn rate(value: &str) -> Option<u64> {
    size(value.strip_suffix("/s").unwrap_or(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_parses_into_every_field() {
        let c = Conditions::parse(
            "rtt=50ms, jitter=5ms,bandwidth=1mbit,idle=2s,buffer=16KiB,upgrade=403,drop=1.5s",
        )
        .unwrap();
        assert_eq!((c.up_ms, c.down_ms, c.jitter_ms), (25, 25, 5));
        assert_eq!(c.bandwidth, 125_000);
        assert_eq!((c.idle_ms, c.drop_ms, c.buffer_kib), (2000, 1500, 16));
        assert_eq!(c.upgrade, Upgrade::Forbid);
        // Display writes a spec that parses back to the same conditions.
        assert_eq!(Conditions::parse(&c.to_string()).unwrap(), c);
        assert_eq!(Conditions::parse("none").unwrap(), Conditions::NONE);
        assert_eq!(Conditions::NONE.to_string(), "none");
    }

    #[test]
    fn a_bad_spec_says_what_is_wrong() {
        for (spec, says) in [
            ("rtt=50", "a time"),
            ("speed=1", "unknown condition"),
            ("idle=10ms", "idle_ms must be 0"),
            ("up=11s", "up_ms must be at most"),
            ("bandwidth=10B", "bandwidth must be"),
            ("buffer=2MiB", "buffer_kib must be"),
            ("upgrade=maybe", "allow, 403 or drop"),
            ("rtt", "not key=value"),
        ] {
            let error = Conditions::parse(spec).unwrap_err();
            assert!(error.contains(says), "{spec}: {error}");
        }
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let start = Conditions::parse("rtt=100ms,idle=5s").unwrap();
        let patch: Patch = serde_json::from_str(r#"{"buffer_kib":8,"upgrade":"drop"}"#).unwrap();
        let next = start.patched(&patch).unwrap();
        assert_eq!((next.up_ms, next.idle_ms, next.buffer_kib), (50, 5000, 8));
        assert_eq!(next.upgrade, Upgrade::Drop);
        let reset: Patch = serde_json::from_str(r#"{"reset":true,"jitter_ms":3}"#).unwrap();
        let next = next.patched(&reset).unwrap();
        assert_eq!(
            next,
            Conditions {
                jitter_ms: 3,
                ..Conditions::NONE
            }
        );
        let too_long: Patch = serde_json::from_str(r#"{"drop_ms":5}"#).unwrap();
        assert!(start.patched(&too_long).is_err());
        assert!(serde_json::from_str::<Patch>(r#"{"latency":5}"#).is_err());
    }
}
