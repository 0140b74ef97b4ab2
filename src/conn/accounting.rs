//! Which transport each byte of a connection is charged to.
//!
//! One keep-alive connection can carry requests of several transports (a
//! browser reuses one connection for a send and then a poll), so bytes are
//! charged per request, by this rule:
//! - bytes *written* go to the transport of the request being answered: a
//!   response is written after its request was routed and before the next
//!   one is, so the connection's current tag is the right one;
//! - bytes *read* while no request is in progress are held as pending, and
//!   charged to the request they turn out to carry, when it is routed. Reads
//!   during a request (a POST body, WebSocket frames after an upgrade) go to
//!   that request's transport directly;
//! - whatever is pending when the connection closes goes to the last tag
//!   (or to `other`). Every byte lands in exactly one transport.
//!
//! The router tells each connection which transport a request serves
//! (`app.rs`, `account`); the counted stream (`counted.rs`) tells it of
//! every byte. Counting is relaxed atomics: no lock, no allocation per I/O.
//!
//! An HTTP/2 connection carries many requests at once: its bytes are
//! charged per stream, frame by frame (see `h2.rs`).
//!
//! # TLS
//! Under `--tls` the counting happens twice: a [`TlsBytes`] meter on the
//! TCP socket counts the encrypted bytes, everything that crossed it, and
//! the [`ConnWire`] above the TLS layer charges the decrypted bytes to
//! transports as above. The difference, TLS handshakes and record overhead
//! (and HTTP/2's connection-level frames), is `/stats`' `connection` line,
//! so the lines still add up to the bytes on the sockets.

use super::capture::Capture;
use super::counted::Meter;
use super::h2::H2Streams;
use crate::admission::Slot;
use crate::message::Transport;
use crate::stats::{Limit, Stats};
use crate::wire_view::WireTaps;
use bytes::Bytes;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

const UNTAGGED: u8 = u8::MAX;

/// The accounting state of one accepted connection.
#[derive(Debug)]
pub struct ConnWire {
    stats: Arc<Stats>,
    taps: Arc<WireTaps>,
    read_tag: AtomicU8,
    write_tag: AtomicU8,
    pending_in: AtomicU64,
    /// The wire view's copy of this connection's bytes, kept only while
    /// the view is open.
    capture: Capture,
    /// Upgraded to a WebSocket, whose session bounds its own writes.
    websocket: AtomicBool,
    /// Served over TLS: charged bytes are also told to the `connection`
    /// line, which charges the rest of the socket's bytes.
    tls: bool,
    /// HTTP/2: bytes are charged per stream, not per request in turn.
    /// A std Mutex: taken for one scan of the bytes just read or written,
    /// never across an await, by the connection's one task.
    h2: Option<Mutex<H2Streams>>,
    /// HTTP/2: the transports this connection has served, one bit each.
    h2_served: AtomicU8,
    /// This connection's place under the connection limits, given back
    /// when the connection is gone.
    _slot: Slot,
}

/// How a connection's bytes reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 on a plain TCP socket.
    Http1,
    /// HTTP/1.1 over TLS.
    Http1Tls,
    /// HTTP/2 over TLS.
    Http2Tls,
}

impl ConnWire {
    pub(super) fn new(
        stats: Arc<Stats>,
        taps: Arc<WireTaps>,
        slot: Slot,
        protocol: Protocol,
    ) -> Self {
        let resets = slot.limits().h2_reset_rate;
        let h2 = (protocol == Protocol::Http2Tls)
            .then(|| Mutex::new(H2Streams::new(resets, Arc::clone(&taps))));
        Self {
            stats,
            taps,
            _slot: slot,
            read_tag: AtomicU8::new(UNTAGGED),
            write_tag: AtomicU8::new(UNTAGGED),
            pending_in: AtomicU64::new(0),
            capture: Capture::default(),
            websocket: AtomicBool::new(false),
            tls: protocol != Protocol::Http1,
            h2,
            h2_served: AtomicU8::new(0),
        }
    }

    /// Whether this connection speaks HTTP/2.
    pub fn is_h2(&self) -> bool {
        self.h2.is_some()
    }

    /// HTTP/2: how long no stream has been open (`None` while one is, and
    /// on HTTP/1.1, whose idle connections the header timeout bounds).
    pub fn h2_idle_for(&self) -> Option<std::time::Duration> {
        self.h2_streams().and_then(|h2| h2.idle_for())
    }

    fn charge_in(&self, transport: Transport, n: u64) {
        self.stats.of(transport).wire_bytes_in.fetch_add(n, Relaxed);
        if self.tls {
            self.stats.connection.charged_in.fetch_add(n, Relaxed);
        }
    }

    fn charge_out(&self, transport: Transport, n: u64) {
        self.stats
            .of(transport)
            .wire_bytes_out
            .fetch_add(n, Relaxed);
        if self.tls {
            self.stats.connection.charged_out.fetch_add(n, Relaxed);
        }
    }

    // Held for one scan of a read or write, never across an await; a
    // panic cannot leave the scan worse than one frame off.
    fn h2_streams(&self) -> Option<MutexGuard<'_, H2Streams>> {
        self.h2
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Captures the response this request is about to get, with the
    /// request's head, for the wire view (see `capture.rs`).
    /// HTTP/2 streams are captured frame by frame instead (`h2_capture.rs`).
    pub fn capture_exchange(&self, done: impl FnOnce(Bytes, Bytes) + Send + 'static) {
        if self.is_h2() {
            return;
        }
        self.capture.exchange(done);
    }

    fn tag(cell: &AtomicU8) -> Option<Transport> {
        Transport::from_index(cell.load(Relaxed))
    }

    /// A request for `transport` was routed on this connection.
    pub fn begin_request(&self, transport: Transport) {
        if self.is_h2() {
            // Its bytes are charged by stream; count the request, and the
            // connection once per transport it serves.
            let bit = 1u8 << transport.index();
            if self.h2_served.fetch_or(bit, Relaxed) & bit == 0 {
                let c = self.stats.of(transport);
                c.connections_open.fetch_add(1, Relaxed);
                c.connections_total.fetch_add(1, Relaxed);
            }
            self.stats.of(transport).requests.fetch_add(1, Relaxed);
            return;
        }
        let previous = Self::tag(&self.write_tag);
        if previous != Some(transport) {
            if let Some(p) = previous {
                self.stats.of(p).connections_open.fetch_sub(1, Relaxed);
            }
            let c = self.stats.of(transport);
            c.connections_open.fetch_add(1, Relaxed);
            c.connections_total.fetch_add(1, Relaxed);
        }
        self.stats.of(transport).requests.fetch_add(1, Relaxed);
        if self.taps.armed() {
            self.capture.request_routed();
        }
        self.write_tag.store(transport as u8, Relaxed);
        self.charge_reads_to(transport);
    }

    /// Reads from now on belong to `transport` (the request body, or the
    /// frames of an upgraded connection), including any still pending.
    pub fn charge_reads_to(&self, transport: Transport) {
        if self.is_h2() {
            return;
        }
        self.read_tag.store(transport as u8, Relaxed);
        let pending = self.pending_in.swap(0, Relaxed);
        self.charge_in(transport, pending);
    }

    /// The connection is now a WebSocket: its reads are `transport`'s, and
    /// its session's write timeout replaces the socket's stall timeout.
    pub fn upgraded_to_websocket(&self, transport: Transport) {
        if self.is_h2() {
            // One stream of a shared connection: the connection's stall
            // timeout still guards the others.
            return;
        }
        self.websocket.store(true, Relaxed);
        self.charge_reads_to(transport);
    }

    /// The request's handler has finished reading: later reads are the next
    /// request's.
    pub fn end_request(&self) {
        self.read_tag.store(UNTAGGED, Relaxed);
    }
}

impl Meter for ConnWire {
    fn on_read(&self, data: &[u8]) {
        let n = data.len() as u64;
        if let Some(mut h2) = self.h2_streams() {
            for (t, n) in h2.read(data) {
                self.charge_in(t, n);
            }
            return;
        }
        match Self::tag(&self.read_tag) {
            Some(t) => self.charge_in(t, n),
            None => {
                if self.taps.armed() {
                    self.capture.head_read(data);
                }
                self.pending_in.fetch_add(n, Relaxed);
            }
        };
    }

    fn failed(&self) -> Option<io::Error> {
        let flooded = self.h2_streams().is_some_and(|h2| h2.flooded);
        flooded.then(|| {
            self.stats.count(Limit::H2ResetFlood);
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "HTTP/2 streams reset faster than the reset budget",
            )
        })
    }

    fn on_stall(&self) {
        self.stats.count(Limit::WriteStalled);
    }

    fn stall_timeout_applies(&self) -> bool {
        !self.websocket.load(Relaxed)
    }

    fn on_write(&self, data: &[u8]) {
        if let Some(mut h2) = self.h2_streams() {
            for (t, n) in h2.write(data) {
                self.charge_out(t, n);
            }
            return;
        }
        let t = Self::tag(&self.write_tag).unwrap_or(Transport::Other);
        self.charge_out(t, data.len() as u64);
        self.capture.wrote(data);
    }
}

impl Drop for ConnWire {
    fn drop(&mut self) {
        let served = *self.h2_served.get_mut();
        for t in Transport::ALL {
            if served & (1 << t.index()) != 0 {
                self.stats.of(t).connections_open.fetch_sub(1, Relaxed);
            }
        }
        let last = Self::tag(&self.write_tag);
        let t = last.unwrap_or(Transport::Other);
        let pending = *self.pending_in.get_mut();
        self.charge_in(t, pending);
        if let Some(last) = last {
            self.stats.of(last).connections_open.fetch_sub(1, Relaxed);
        }
    }
}

/// Counts the encrypted bytes of a TLS connection on its TCP socket, for
/// the `connection` line (see the module's header).
#[derive(Debug)]
pub struct TlsBytes {
    stats: Arc<Stats>,
}

impl TlsBytes {
    pub fn new(stats: Arc<Stats>) -> Self {
        let line = &stats.connection;
        line.connections_open.fetch_add(1, Relaxed);
        line.connections_total.fetch_add(1, Relaxed);
        Self { stats }
    }
}

impl Meter for TlsBytes {
    fn on_read(&self, data: &[u8]) {
        let line = &self.stats.connection;
        line.tcp_in.fetch_add(data.len() as u64, Relaxed);
    }

    fn on_write(&self, data: &[u8]) {
        let line = &self.stats.connection;
        line.tcp_out.fetch_add(data.len() as u64, Relaxed);
    }
}

impl Drop for TlsBytes {
    fn drop(&mut self) {
        let line = &self.stats.connection;
        line.connections_open.fetch_sub(1, Relaxed);
    }
}
