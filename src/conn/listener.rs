//! The listening socket: each accepted connection is admitted under the
//! connection limits (`admission.rs`) and its socket options are set
//! (`sockopt.rs`). It is wrapped in a counted stream with its own
//! accounting (`counted.rs`, `accounting.rs`) by [`Admitted::counted`]:
//! at once for plain HTTP, after the handshake under TLS, once ALPN has
//! said which protocol the connection speaks.

use super::accounting::{ConnWire, Protocol};
use super::counted::Counted;
use super::sockopt;
use crate::admission::{Admission, Slot};
use crate::stats::Stats;
use crate::wire_view::WireTaps;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// A `TcpListener` whose connections are admitted under the connection
/// limits (see `admission.rs`).
#[derive(Debug)]
pub struct CountingListener {
    inner: TcpListener,
    admission: Arc<Admission>,
}

/// A connection admitted under the limits, not yet counted.
#[derive(Debug)]
pub struct Admitted {
    pub stream: TcpStream,
    pub slot: Slot,
}

impl Admitted {
    /// `stream` (this connection's socket, or the TLS stream over it)
    /// counted as `protocol`, with the write stall timeout.
    pub fn counted<S>(
        stream: S,
        slot: Slot,
        protocol: Protocol,
        stats: &Arc<Stats>,
        taps: &Arc<WireTaps>,
    ) -> Counted<S> {
        let stall = slot.limits().write_stall;
        let wire = ConnWire::new(Arc::clone(stats), Arc::clone(taps), slot, protocol);
        Counted::new(stream, Arc::new(wire)).with_stall_timeout(stall)
    }
}

impl CountingListener {
    pub fn new(inner: TcpListener, admission: Arc<Admission>) -> Self {
        Self { inner, admission }
    }

    /// The next connection admitted under the limits; refused ones are
    /// answered and closed meanwhile.
    pub async fn accept(&mut self) -> (Admitted, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let slot = match self.admission.admit(addr.ip()) {
                        Ok(slot) => slot,
                        Err(refusal) => {
                            self.admission.refuse(stream, refusal);
                            continue;
                        }
                    };
                    sockopt::tune(&stream, self.admission.limits().send_buffer);
                    return (Admitted { stream, slot }, addr);
                }
                // Out of file descriptors (or a similar resource error),
                // which the connection limit is there to prevent: back off
                // instead of spinning on accept, and say so.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}
