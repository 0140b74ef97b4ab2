//! Connection admission: at most `max` connections in all and `max_per_ip`
//! from one address, and a clear answer for a connection over either.
//!
//! A server that runs out of file descriptors fails `accept` and, if it
//! retries at once, spins at full CPU while every new client hangs. So the
//! limit sits below the process's descriptor limit (see
//! [`crate::config::default_max_connections`]): a connection over it is
//! still accepted, answered `503` (or `429` for one address over its share)
//! with the contract's JSON error, and closed. The refusal is written by a
//! small task that also reads what the client sent until it closes (for at
//! most a second), so closing does not reset the connection and discard
//! the answer; at most [`MAX_REFUSING`] refusals are in progress at once,
//! and beyond that a flood is simply closed.

use crate::config::ConnectionLimits;
use crate::stats::{Limit, Stats};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Refusals being written at once; the descriptor reserve covers them.
pub const MAX_REFUSING: usize = 64;
/// How long a refusal waits for the client to read it and close.
const LINGER: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Admission {
    limits: ConnectionLimits,
    stats: Arc<Stats>,
    open: AtomicUsize,
    // Held for one hash-map update per connection opened or closed, never
    // across an await: a std Mutex is the right tool.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    refusing: Arc<Semaphore>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server holds its maximum number of connections.
    Full,
    /// This address holds its share.
    PerIp,
}

/// An admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    /// Set when the connection counts against its address's share.
    ip: Option<IpAddr>,
}

impl Admission {
    pub fn new(limits: ConnectionLimits, stats: Arc<Stats>) -> Self {
        Self {
            limits,
            stats,
            open: AtomicUsize::new(0),
            per_ip: Mutex::default(),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
        }
    }

    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Connections admitted and still open.
    pub fn open(&self) -> usize {
        self.open.load(Relaxed)
    }

    /// Whether per-address limits (connection share, send and frame rates)
    /// apply to a peer at `ip`.
    pub fn limits_apply_to(&self, ip: IpAddr) -> bool {
        self.limits.limit_loopback || !ip.is_loopback()
    }

    fn per_ip(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Only counters inside: a panic elsewhere cannot leave them torn.
        self.per_ip.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a new connection from `ip`, or why there is none.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        if self.open.fetch_add(1, Relaxed) >= self.limits.max {
            self.open.fetch_sub(1, Relaxed);
            return Err(Refusal::Full);
        }
        let mut slot = Slot {
            admission: Arc::clone(self),
            ip: None,
        };
        if self.limits_apply_to(ip) {
            let mut per_ip = self.per_ip();
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= self.limits.max_per_ip {
                drop(per_ip);
                // Dropping the slot gives back the place taken above.
                drop(slot);
                return Err(Refusal::PerIp);
            }
            *count += 1;
            slot.ip = Some(ip);
        }
        Ok(slot)
    }

    /// Answers a connection that was not admitted, then closes it.
    pub fn refuse(&self, stream: TcpStream, refusal: Refusal) {
        let (status, why, limit) = match refusal {
            Refusal::Full => {
                self.stats.count(Limit::RefusedFull);
                (
                    "503 Service Unavailable",
                    "the server is at its connection limit; try again shortly",
                    self.limits.max,
                )
            }
            Refusal::PerIp => {
                self.stats.count(Limit::RefusedPerIp);
                (
                    "429 Too Many Requests",
                    "too many connections from your address",
                    self.limits.max_per_ip,
                )
            }
        };
        crate::refusals::log(
            stream.peer_addr().ok(),
            None,
            format_args!("{status} at connect: {why}"),
        );
        // Beyond MAX_REFUSING at once, a flood is closed unanswered rather
        // than spending a descriptor and a task on each.
        let Ok(permit) = Arc::clone(&self.refusing).try_acquire_owned() else {
            return;
        };
        let body = serde_json::json!({ "error": format!("{why} (limit {limit})") }).to_string();
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             retry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(LINGER, answer_and_close(stream, response)).await;
        });
    }
}

/// Writes `response` and closes, reading what the client sends meanwhile.
pub async fn answer_and_close<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    response: String,
) -> std::io::Result<()> {
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    // Read the request (and anything else) until the client closes: closing
    // with unread bytes would send a reset, which can discard the answer.
    let mut sink = [0u8; 1024];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}

impl Slot {
    /// The limits this connection was admitted under.
    pub fn limits(&self) -> &ConnectionLimits {
        self.admission.limits()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut per_ip = self.admission.per_ip();
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        self.admission.open.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max: usize, max_per_ip: usize, limit_loopback: bool) -> Arc<Admission> {
        Arc::new(Admission::new(
            ConnectionLimits {
                max,
                max_per_ip,
                limit_loopback,
                send_buffer: 0,
                write_stall: std::time::Duration::from_secs(10),
                http_buffer: 64 * 1024,
                ..ConnectionLimits::default()
            },
            Arc::default(),
        ))
    }

    #[test]
    fn places_are_counted_and_given_back() {
        let a = admission(2, 10, false);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let one = a.admit(ip).unwrap();
        let _two = a.admit(ip).unwrap();
        assert_eq!(a.admit(ip).unwrap_err(), Refusal::Full);
        assert_eq!(a.open(), 2);
        drop(one);
        assert_eq!(a.open(), 1);
        assert!(a.admit(ip).is_ok());
    }

    #[test]
    fn one_address_gets_its_share_and_loopback_is_exempt_by_default() {
        let a = admission(100, 2, false);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let held = [a.admit(ip).unwrap(), a.admit(ip).unwrap()];
        assert_eq!(a.admit(ip).unwrap_err(), Refusal::PerIp);
        assert_eq!(a.open(), 2, "a refusal takes no place");
        assert!(a.admit(other).is_ok());
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let many: Vec<_> = (0..5).map(|_| a.admit(loopback).unwrap()).collect();
        assert_eq!(many.len(), 5);
        drop(held);
        assert!(a.per_ip().get(&ip).is_none(), "empty entries are removed");

        let strict = admission(100, 2, true);
        let _held = [
            strict.admit(loopback).unwrap(),
            strict.admit(loopback).unwrap(),
        ];
        assert_eq!(strict.admit(loopback).unwrap_err(), Refusal::PerIp);
    }
}
