//! Connections: every byte the kernel handed us or took from us, charged
//! to the transport it served; one file per job.
//!
//! - `listener.rs`: accepts, admits under the connection limits, wraps;
//! - `sockopt.rs`: the socket options of an accepted connection;
//! - `counted.rs`: a stream that meters every read and write, with the
//!   stall timeout for a peer that stops reading;
//! - `accounting.rs`: which transport each byte is charged to;
//! - `capture.rs`: the exact bytes, kept only while the wire view watches.

mod accounting;
mod capture;
mod counted;
mod listener;
mod sockopt;

pub use accounting::ConnWire;
pub use counted::{ByteCount, Counted, Meter, Recorder};
pub use listener::CountingListener;

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

/// What a handler learns of its connection (axum's `ConnectInfo`).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub wire: Arc<ConnWire>,
}

impl ConnInfo {
    /// What handlers learn of a connection accepted by [`CountingListener`].
    pub fn new(stream: &Counted<TcpStream>, peer: SocketAddr) -> Self {
        Self {
            peer,
            wire: Arc::clone(stream.meter()),
        }
    }
}
