//! The network in between: an in-process TCP proxy whose conditions
//! (latency, bandwidth, idle timeout, response buffering, refused
//! upgrades, periodic drops) combine and change while it runs.
//!
//! The kernel here has no `netem` and Toxiproxy cannot be installed; and
//! neither understands HTTP, so neither could buffer a response body or
//! refuse an Upgrade. So the server can open a second listener
//! (`--network-addr`, see `cli.rs`) whose connections pass through this
//! proxy to the main listener. The page, the tests and loadgen reach the
//! same rooms either way; through the second port they meet the network.
//!
//! - `conditions.rs`: what the network does, as a spec and as JSON;
//! - `delay.rs`: latency and jitter stamped per chunk, order kept;
//! - `http.rs`: where HTTP messages start and end in the byte stream;
//! - `buffer.rs`: a proxy that holds response bodies;
//! - `proxy.rs`: the accept loop and one task per connection, which
//!   applies all of the above plus the bandwidth cap, the idle timeout and
//!   the drops;
//! - `api.rs`: `GET/PUT /network`, to read and change the conditions.
//!
//! [`Network`] is the shared state: conditions behind a `watch` channel,
//! read per chunk and per connection, so a change applies at once to the
//! connections already open, and counters of what the network did.

pub mod api;
pub mod buffer;
pub mod conditions;
pub mod delay;
pub mod http;
pub mod proxy;

pub use conditions::{Conditions, Upgrade};
pub use proxy::serve;

use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use tokio::sync::watch;

/// The network's conditions and counters, shared by the proxy, its
/// connections and the `/network` endpoint.
#[derive(Debug)]
pub struct Network {
    conditions: watch::Sender<Conditions>,
    /// Bumped to cut every open connection (a drop).
    cuts: watch::Sender<u64>,
    counters: Counters,
    addr: OnceLock<SocketAddr>,
}

/// What the network did, since it started.
#[derive(Debug, Default)]
struct Counters {
    open: AtomicU64,
    total: AtomicU64,
    idle_cuts: AtomicU64,
    drop_cuts: AtomicU64,
    upgrades_refused: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    held: AtomicU64,
}

/// A snapshot of the counters, as `GET /network` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NetworkCounters {
    pub open: u64,
    pub total: u64,
    /// Connections cut by the idle timeout.
    pub idle_cuts: u64,
    /// Connections cut by a drop.
    pub drop_cuts: u64,
    /// Drops so far (each cuts every open connection).
    pub drops: u64,
    pub upgrades_refused: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Response bytes the buffer holds now, over all connections.
    pub held: u64,
}

/// Why the proxy cut a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    Idle,
    Drop,
    Upgrade,
}

impl Network {
    pub fn new(conditions: Conditions) -> Self {
        Self {
            conditions: watch::Sender::new(conditions),
            cuts: watch::Sender::new(0),
            counters: Counters::default(),
            addr: OnceLock::new(),
        }
    }

    /// The conditions now.
    pub fn conditions(&self) -> Conditions {
        *self.conditions.borrow()
    }

    /// Replaces the conditions; open connections follow at once.
    pub fn set(&self, conditions: Conditions) {
        self.conditions.send_replace(conditions);
    }

    /// Applies a change, if the result is within bounds.
    pub fn patch(&self, patch: &conditions::Patch) -> Result<Conditions, String> {
        let mut result = Ok(Conditions::NONE);
        // send_if_modified applies the change atomically against
        // concurrent patches: two PUTs of different fields both stick.
        self.conditions.send_if_modified(|current| {
            result = current.patched(patch);
            match &result {
                Ok(next) if next != current => {
                    *current = *next;
                    true
                }
                _ => false,
            }
        });
        result
    }

    /// Cuts every open connection now, as a drop does.
    pub fn cut_all(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Where the proxy listens, once it does.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr.get().copied()
    }

    pub fn counters(&self) -> NetworkCounters {
        let c = &self.counters;
        NetworkCounters {
            open: c.open.load(Relaxed),
            total: c.total.load(Relaxed),
            idle_cuts: c.idle_cuts.load(Relaxed),
            drop_cuts: c.drop_cuts.load(Relaxed),
            drops: *self.cuts.borrow(),
            upgrades_refused: c.upgrades_refused.load(Relaxed),
            bytes_up: c.bytes_up.load(Relaxed),
            bytes_down: c.bytes_down.load(Relaxed),
            held: c.held.load(Relaxed),
        }
    }

    /// `GET /network`: where, what, and what it did.
    pub fn to_json(&self) -> serde_json::Value {
        let conditions = self.conditions();
        serde_json::json!({
            "addr": self.addr().map(|a| a.to_string()),
            "conditions": conditions,
            "spec": conditions.to_string(),
            "counters": self.counters(),
        })
    }

    fn watch(&self) -> watch::Receiver<Conditions> {
        self.conditions.subscribe()
    }

    fn count_cut(&self, cut: Cut) {
        let counter = match cut {
            Cut::Idle => &self.counters.idle_cuts,
            Cut::Drop => &self.counters.drop_cuts,
            Cut::Upgrade => &self.counters.upgrades_refused,
        };
        counter.fetch_add(1, Relaxed);
    }
}

impl Default for Network {
    fn default() -> Self {
        Self::new(Conditions::NONE)
    }
}
