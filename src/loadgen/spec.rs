//! What a loadgen run does: the workload and where the server is.

use super::child::ServerCommand;
use crate::client::Connect;
use crate::message::Transport;
use std::time::Duration;

/// One comparison: every transport in `transports` at every count in
/// `clients`, each run on the same workload.
#[derive(Debug, Clone)]
pub struct Spec {
    pub transports: Vec<Transport>,
    /// Receivers per run; several make a sweep.
    pub clients: Vec<usize>,
    /// Concurrent senders, each with its own HTTP connection.
    pub senders: usize,
    /// Messages per second, all senders together.
    pub rate: f64,
    /// Bytes of message text.
    pub size: usize,
    /// Measured sending time, after the warmup.
    pub duration: Duration,
    /// Sending time before measuring, so caches, pools and the JIT-free but
    /// allocator-heavy first moments do not count.
    pub warmup: Duration,
    /// Client connections opened per second.
    pub ramp: f64,
    /// Pause between short polls that came back empty.
    pub poll_interval: Duration,
    /// Most time given to the last messages to arrive after sending ends.
    pub drain: Duration,
    pub servers: Servers,
    /// How clients connect: HTTP/2 (each receiver on a connection of its
    /// own, as separate browsers), and whether a self-signed certificate
    /// is accepted.
    pub connect: Connect,
    /// Run every workload against the floor server too (`floor.rs`).
    pub floor: bool,
    /// Run every WebSocket and SSE workload against the axum-example
    /// shape too (`axum_shape.rs`).
    pub axum_shape: bool,
    /// Clients and senders go through the server's network in between,
    /// with these conditions (`--network rtt=50ms`); `None`: directly.
    pub network: Option<crate::network::Conditions>,
}

/// The server(s) under test.
#[derive(Debug, Clone)]
pub enum Servers {
    /// Fresh child servers per run (`count` of them, which only share rooms
    /// when the command gives them a common `--redis`), so each run's memory
    /// and CPU start from the same baseline.
    Spawn {
        command: ServerCommand,
        count: usize,
    },
    /// Running servers; clients and senders are spread over them in turn.
    Urls(Vec<String>),
}

/// `250ms`, `10s`, `2m`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 10s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// `ws`, `sse,poll` or `all`.
pub fn parse_transports(text: &str) -> Result<Vec<Transport>, String> {
    if text == "all" {
        return Ok(Transport::RECEIVING.to_vec());
    }
    text.split(',').map(|t| t.trim().parse()).collect()
}

/// `1000` or a sweep such as `100,1000,10000`.
pub fn parse_counts(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(|n| {
            n.trim()
                .replace('_', "")
                .parse()
                .map_err(|_| format!("{n:?} is not a client count"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn transports_and_counts() {
        assert_eq!(parse_transports("all").unwrap().len(), 4);
        assert_eq!(
            parse_transports("ws,sse").unwrap(),
            vec![Transport::Ws, Transport::Sse]
        );
        assert!(parse_transports("carrier-pigeon").is_err());
        assert_eq!(parse_counts("100,1_000").unwrap(), vec![100, 1000]);
        assert!(parse_counts("many").is_err());
    }
}
