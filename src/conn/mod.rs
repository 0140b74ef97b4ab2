//! Connections: every byte the kernel handed us or took from us, charged
//! to the transport it served; one file per job.
//!
//! - `listener.rs`: accepts, admits under the connection limits, wraps;
//! - `sockopt.rs`: the socket options of an accepted connection;
//! - `counted.rs`: a stream that meters every read and write, with the
//!   stall timeout for a peer that stops reading;
//! - `accounting.rs`: which transport each byte is charged to;
//! - `tls.rs`: the TLS handshake, within a time limit, and a clear answer
//!   to what is not TLS;
//! - `h2_frames.rs`: HTTP/2 bytes cut into frames, both ways;
//! - `h2.rs`: which transport each HTTP/2 frame is charged to;
//! - `h2_capture.rs`: a watched HTTP/2 stream's frames, for the wire view;
//! - `capture.rs`: the exact bytes, kept only while the wire view watches.

mod accounting;
mod capture;
mod counted;
pub mod h2;
mod h2_capture;
mod h2_frames;
mod listener;
mod sockopt;
pub mod tls;

pub use accounting::{ConnWire, Protocol, TlsBytes};
pub use counted::{ByteCount, Counted, Meter, Recorder};
pub use listener::{Admitted, CountingListener};

use std::net::SocketAddr;
use std::sync::Arc;

/// What a handler learns of its connection (axum's `ConnectInfo`).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub wire: Arc<ConnWire>,
}

impl ConnInfo {
    /// What handlers learn of a connection accepted by [`CountingListener`].
    pub fn new(wire: Arc<ConnWire>, peer: SocketAddr) -> Self {
        Self { peer, wire }
    }
}
