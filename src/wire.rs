//! Byte accounting on the real sockets: every byte the kernel handed us or
//! took from us, charged to the transport it served.
//!
//! [`CountingListener`] wraps the `TcpListener` and returns each accepted
//! socket wrapped in a [`Counted`] stream, whose reads and writes add to
//! relaxed atomics: no lock and no allocation per I/O. Because the wrapper
//! sits under hyper, request lines, headers, chunk framing, WebSocket frame
//! headers, pings and SSE keepalives are all counted, not estimated.
//!
//! # Which transport a byte belongs to
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

use crate::admission::{Admission, Slot};
use crate::stats::{Limit, Stats, Transport};
use crate::wiretap::{header_value, WireTaps};
use axum::serve::Listener;
use bytes::Bytes;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

const UNTAGGED: u8 = u8::MAX;
/// The most of a request head or a response the wire view keeps.
const MAX_CAPTURE: usize = 16 * 1024;

/// The accounting state of one accepted connection.
#[derive(Debug)]
pub struct ConnWire {
    stats: Arc<Stats>,
    taps: Arc<WireTaps>,
    read_tag: AtomicU8,
    write_tag: AtomicU8,
    pending_in: AtomicU64,
    /// Set while a response is being captured for the wire view; checked
    /// on every write, so the common case is one relaxed load.
    capturing: AtomicBool,
    capture: Mutex<Capture>,
    /// Upgraded to a WebSocket, whose session bounds its own writes.
    websocket: AtomicBool,
    /// This connection's place under the connection limits, given back
    /// when the connection is gone.
    _slot: Slot,
}

/// The wire view's copy of this connection's bytes, only kept while the
/// view is open (see `wiretap.rs`).
#[derive(Default)]
struct Capture {
    /// Bytes read while no request was in progress: the next request head.
    head_in: Vec<u8>,
    /// The head of the request in progress.
    request: Bytes,
    response: Option<ResponseCapture>,
}

type OnCaptured = Box<dyn FnOnce(Bytes, Bytes) + Send>;

struct ResponseCapture {
    request: Bytes,
    bytes: Vec<u8>,
    done: OnCaptured,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("head_in", &self.head_in.len())
            .field("request", &self.request.len())
            .field("response", &self.response.as_ref().map(|r| r.bytes.len()))
            .finish()
    }
}

impl ConnWire {
    fn new(stats: Arc<Stats>, taps: Arc<WireTaps>, slot: Slot) -> Self {
        Self {
            stats,
            taps,
            _slot: slot,
            read_tag: AtomicU8::new(UNTAGGED),
            write_tag: AtomicU8::new(UNTAGGED),
            pending_in: AtomicU64::new(0),
            capturing: AtomicBool::new(false),
            capture: Mutex::default(),
            websocket: AtomicBool::new(false),
        }
    }

    // Held for a copy of a few KiB at most, never across an await; a panic
    // cannot leave a capture worse than incomplete.
    fn capture(&self) -> MutexGuard<'_, Capture> {
        self.capture.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Captures the response this request is about to get, with the
    /// request's head, and hands both to `done` once the response is
    /// written in full (its head, and `Content-Length` bytes of body).
    pub fn capture_exchange(&self, done: impl FnOnce(Bytes, Bytes) + Send + 'static) {
        let mut capture = self.capture();
        let request = capture.request.clone();
        capture.response = Some(ResponseCapture {
            request,
            bytes: Vec::new(),
            done: Box::new(done),
        });
        self.capturing.store(true, Relaxed);
    }

    fn capture_write(&self, data: &[u8]) {
        let finished = {
            let mut capture = self.capture();
            let Some(response) = capture.response.as_mut() else {
                return;
            };
            let room = MAX_CAPTURE.saturating_sub(response.bytes.len());
            response
                .bytes
                .extend_from_slice(&data[..data.len().min(room)]);
            if response_complete(&response.bytes) || room <= data.len() {
                self.capturing.store(false, Relaxed);
                capture.response.take()
            } else {
                None
            }
        };
        // Called with the lock released: `done` takes the room tap's lock.
        if let Some(r) = finished {
            (r.done)(r.request, Bytes::from(r.bytes));
        }
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
            let mut capture = self.capture();
            capture.request = Bytes::from(std::mem::take(&mut capture.head_in));
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
                    let mut capture = self.capture();
                    let room = MAX_CAPTURE.saturating_sub(capture.head_in.len());
                    capture
                        .head_in
                        .extend_from_slice(&data[..data.len().min(room)]);
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
        if self.capturing.load(Relaxed) {
            self.capture_write(data);
        }
    }
}

/// Whether `bytes` hold a whole HTTP response: a 101's head, or a head and
/// `Content-Length` bytes of body.
fn response_complete(bytes: &[u8]) -> bool {
    let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = &bytes[..head_end];
    if head.starts_with(b"HTTP/1.1 101") {
        return true;
    }
    let length = header_value(head, "content-length").and_then(|v| v.parse::<usize>().ok());
    length.is_some_and(|len| bytes.len() >= head_end + 4 + len)
}

/// Something told of every byte a [`Counted`] stream reads and writes.
pub trait Meter: Send + Sync + 'static {
    fn on_read(&self, data: &[u8]);
    fn on_write(&self, data: &[u8]);
    /// A write made no progress for the stall timeout; the stream fails.
    fn on_stall(&self) {}
    /// Whether the stream's stall timeout still applies (a WebSocket has
    /// its own write timeout and close frame, so it opts out).
    fn stall_timeout_applies(&self) -> bool {
        true
    }
}

/// Plain totals, for a client measuring its own socket.
#[derive(Debug, Default)]
pub struct ByteCount {
    pub read: AtomicU64,
    pub written: AtomicU64,
}

impl ByteCount {
    pub fn read(&self) -> u64 {
        self.read.load(Relaxed)
    }

    pub fn written(&self) -> u64 {
        self.written.load(Relaxed)
    }
}

impl Meter for ByteCount {
    fn on_read(&self, data: &[u8]) {
        self.read.fetch_add(data.len() as u64, Relaxed);
    }

    fn on_write(&self, data: &[u8]) {
        self.written.fetch_add(data.len() as u64, Relaxed);
    }
}

/// Every byte, kept in order, for a client that wants to show or compare
/// exactly what crossed its socket (the wire-view test, the slides' sample).
#[derive(Debug, Default)]
pub struct Recorder {
    read: Mutex<Vec<u8>>,
    written: Mutex<Vec<u8>>,
}

impl Recorder {
    /// Everything read so far.
    pub fn read(&self) -> Vec<u8> {
        lock(&self.read).clone()
    }

    /// Everything written so far.
    pub fn written(&self) -> Vec<u8> {
        lock(&self.written).clone()
    }
}

// Held for one copy; a panic elsewhere leaves the bytes as they were.
fn lock(bytes: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    bytes.lock().unwrap_or_else(|p| p.into_inner())
}

impl Meter for Recorder {
    fn on_read(&self, data: &[u8]) {
        lock(&self.read).extend_from_slice(data);
    }

    fn on_write(&self, data: &[u8]) {
        lock(&self.written).extend_from_slice(data);
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

/// A stream whose every read and write is told to a [`Meter`].
///
/// On the server side it also bounds how long a write may wait: a peer
/// that stops reading leaves writes pending for ever (an SSE stream, a
/// response), so a write that makes no progress for the stall timeout
/// fails, and the connection with it. The timer exists only while a write
/// is waiting.
#[derive(Debug)]
pub struct Counted<S, M = ConnWire> {
    inner: S,
    meter: Arc<M>,
    stall: Option<Stall>,
}

#[derive(Debug)]
struct Stall {
    limit: Duration,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S, M> Counted<S, M> {
    pub fn new(inner: S, meter: Arc<M>) -> Self {
        Self {
            inner,
            meter,
            stall: None,
        }
    }

    /// Fails a write that makes no progress for `limit`.
    pub fn with_stall_timeout(mut self, limit: Duration) -> Self {
        self.stall = Some(Stall {
            limit,
            waiting: None,
        });
        self
    }

    pub fn meter(&self) -> &Arc<M> {
        &self.meter
    }
}

impl<S, M: Meter> Counted<S, M> {
    /// Passes `result` through, starting the stall timer while it is
    /// pending and failing once the timer runs out.
    fn check_stall<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let Some(stall) = self
            .stall
            .as_mut()
            .filter(|_| self.meter.stall_timeout_applies())
        else {
            return result;
        };
        if result.is_ready() {
            stall.waiting = None;
            return result;
        }
        let limit = stall.limit;
        let timer = stall
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_ready() {
            stall.waiting = None;
            self.meter.on_stall();
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin, M: Meter> AsyncRead for Counted<S, M> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            self.meter.on_read(&buf.filled()[before..]);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin, M: Meter> AsyncWrite for Counted<S, M> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = result {
            self.meter.on_write(&data[..n]);
        }
        self.check_stall(cx, result)
    }

    // hyper writes headers and body chunks with one vectored write; passing
    // it through keeps that a single syscall.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        let result = self.check_stall(cx, result);
        if let Poll::Ready(Ok(n)) = result {
            // The first `n` bytes across the slices were written.
            let mut left = n;
            for buf in bufs {
                let take = left.min(buf.len());
                self.meter.on_write(&buf[..take]);
                left -= take;
                if left == 0 {
                    break;
                }
            }
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.check_stall(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

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
                    // Chat frames are small and latency is the point: do not
                    // let Nagle hold them back.
                    let _ = stream.set_nodelay(true);
                    // Bound what the kernel holds for a peer that does not
                    // read; the rest of its send queue is in user space.
                    let send_buffer = self.admission.limits().send_buffer;
                    if send_buffer > 0 {
                        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(send_buffer);
                    }
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

/// Classifies a request by method and path, for the accounting above.
pub fn classify(method: &axum::http::Method, path: &str, query: Option<&str>) -> Transport {
    let Some(rest) = path.strip_prefix("/rooms/") else {
        return Transport::Other;
    };
    let Some((_room, endpoint)) = rest.split_once('/') else {
        return Transport::Other;
    };
    match (endpoint, method.as_str()) {
        ("ws", "GET") => Transport::Ws,
        ("sse", "GET") => Transport::Sse,
        ("messages", "POST") => Transport::Send,
        ("poll", "GET") => {
            let waits = query
                .unwrap_or("")
                .split('&')
                .filter_map(|kv| kv.strip_prefix("wait="))
                .any(|v| v.parse::<u64>().is_ok_and(|w| w > 0));
            if waits {
                Transport::LongPoll
            } else {
                Transport::Poll
            }
        }
        _ => Transport::Other,
    }
}
