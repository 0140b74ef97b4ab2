//! The listening socket: each accepted connection is admitted under the
//! connection limits (`admission.rs`), its socket options are set
//! (`sockopt.rs`), and it is wrapped in a counted stream with its own
//! accounting (`counted.rs`, `accounting.rs`).

use super::accounting::ConnWire;
use super::counted::Counted;
use super::sockopt;
use crate::admission::Admission;
use crate::stats::Stats;
use crate::wire_view::WireTaps;
use axum::serve::Listener;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// A `TcpListener` whose connections are admitted under the connection
/// limits (see `admission.rs`) and counted in `stats`.
#[derive(Debug)]
pub struct CountingListener {
    inner: TcpListener,
    stats: Arc<Stats>,
    taps: Arc<WireTaps>,
    admission: Arc<Admission>,
}

impl CountingListener {
    pub fn new(
        inner: TcpListener,
        stats: Arc<Stats>,
        taps: Arc<WireTaps>,
        admission: Arc<Admission>,
    ) -> Self {
        Self {
            inner,
            stats,
            taps,
            admission,
        }
    }
}

impl Listener for CountingListener {
    type Io = Counted<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
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
                    let wire = Arc::new(ConnWire::new(
                        Arc::clone(&self.stats),
                        Arc::clone(&self.taps),
                        slot,
                    ));
                    let stall = self.admission.limits().write_stall;
                    return (Counted::new(stream, wire).with_stall_timeout(stall), addr);
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

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
