//! A stream that tells a [`Meter`] of every byte it reads and writes, and
//! fails a write that makes no progress for the stall timeout.
//!
//! The server wraps each accepted socket in one, metered by the
//! connection's accounting (`accounting.rs`); because it sits under hyper,
//! request lines, headers, chunk framing, WebSocket frame headers, pings
//! and SSE keepalives are all counted, not estimated. Clients wrap their
//! own sockets with [`ByteCount`] or [`Recorder`] to check those counts.

use super::accounting::ConnWire;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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
    /// An error to fail the stream with, checked after each read: the
    /// peer broke a rule the meter enforces.
    fn failed(&self) -> Option<io::Error> {
        None
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
            if let Some(e) = self.meter.failed() {
                return Poll::Ready(Err(e));
            }
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
