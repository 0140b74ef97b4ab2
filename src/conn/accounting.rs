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

use super::capture::Capture;
use super::counted::Meter;
use crate::admission::Slot;
use crate::message::Transport;
use crate::stats::{Limit, Stats};
use crate::wire_view::WireTaps;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

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
    /// This connection's place under the connection limits, given back
    /// when the connection is gone.
    _slot: Slot,
}

impl ConnWire {
    pub(super) fn new(stats: Arc<Stats>, taps: Arc<WireTaps>, slot: Slot) -> Self {
        Self {
            stats,
            taps,
            _slot: slot,
            read_tag: AtomicU8::new(UNTAGGED),
            write_tag: AtomicU8::new(UNTAGGED),
            pending_in: AtomicU64::new(0),
            capture: Capture::default(),
            websocket: AtomicBool::new(false),
        }
    }

    /// Captures the response this request is about to get, with the
    /// request's head, for the wire view (see `capture.rs`).
    pub fn capture_exchange(&self, done: impl FnOnce(Bytes, Bytes) + Send + 'static) {
        self.capture.exchange(done);
    }

    fn tag(cell: &AtomicU8) -> Option<Transport> {
        Transport::from_index(cell.load(Relaxed))
    }

    /// A request for `transport` was routed on this connection.
    pub fn begin_request(&self, transport: Transport) {
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
        self.read_tag.store(transport as u8, Relaxed);
        let pending = self.pending_in.swap(0, Relaxed);
        self.stats
            .of(transport)
            .wire_bytes_in
            .fetch_add(pending, Relaxed);
    }

    /// The connection is now a WebSocket: its reads are `transport`'s, and
    /// its session's write timeout replaces the socket's stall timeout.
    pub fn upgraded_to_websocket(&self, transport: Transport) {
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
        match Self::tag(&self.read_tag) {
            Some(t) => self.stats.of(t).wire_bytes_in.fetch_add(n, Relaxed),
            None => {
                if self.taps.armed() {
                    self.capture.head_read(data);
                }
                self.pending_in.fetch_add(n, Relaxed)
            }
        };
    }

    fn on_stall(&self) {
        self.stats.count(Limit::WriteStalled);
    }

    fn stall_timeout_applies(&self) -> bool {
        !self.websocket.load(Relaxed)
    }

    fn on_write(&self, data: &[u8]) {
        let t = Self::tag(&self.write_tag).unwrap_or(Transport::Other);
        self.stats
            .of(t)
            .wire_bytes_out
            .fetch_add(data.len() as u64, Relaxed);
        self.capture.wrote(data);
    }
}

impl Drop for ConnWire {
    fn drop(&mut self) {
        let last = Self::tag(&self.write_tag);
        let t = last.unwrap_or(Transport::Other);
        let pending = *self.pending_in.get_mut();
        self.stats.of(t).wire_bytes_in.fetch_add(pending, Relaxed);
        if let Some(last) = last {
            self.stats.of(last).connections_open.fetch_sub(1, Relaxed);
        }
    }
}
