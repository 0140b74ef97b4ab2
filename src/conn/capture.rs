//! Capture for the raw wire view: a connection's exact bytes, copied only
//! while someone watches the room (see `wire_view.rs`).
//!
//! The accounting (`accounting.rs`) hands this every read between requests
//! (the next request head) while the view is armed, and every write while a
//! response is being captured; otherwise it costs one relaxed load per write.

use crate::wire_view::header_value;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

/// The most of a request head or a response the wire view keeps (and, over
/// HTTP/2, of a sample's frames each way).
pub(super) const MAX_CAPTURE: usize = 16 * 1024;

/// One connection's capture state.
#[derive(Debug, Default)]
pub struct Capture {
    /// Set while a response is being captured for the wire view; checked
    /// on every write, so the common case is one relaxed load.
    capturing: AtomicBool,
    bytes: Mutex<Captured>,
}

/// The wire view's copy of this connection's bytes, only kept while the
/// view is open.
#[derive(Default)]
struct Captured {
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

impl std::fmt::Debug for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captured")
            .field("head_in", &self.head_in.len())
            .field("request", &self.request.len())
            .field("response", &self.response.as_ref().map(|r| r.bytes.len()))
            .finish()
    }
}

impl Capture {
    // Held for a copy of a few KiB at most, never across an await; a panic
    // cannot leave a capture worse than incomplete.
    fn lock(&self) -> MutexGuard<'_, Captured> {
        self.bytes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes read between requests: the head of the next one.
    pub fn head_read(&self, data: &[u8]) {
        let mut captured = self.lock();
        let room = MAX_CAPTURE.saturating_sub(captured.head_in.len());
        captured
            .head_in
            .extend_from_slice(&data[..data.len().min(room)]);
    }

    /// A request was routed: the head read so far is its head.
    pub fn request_routed(&self) {
        let mut captured = self.lock();
        captured.request = Bytes::from(std::mem::take(&mut captured.head_in));
    }

    /// Captures the response this request is about to get, with the
    /// request's head, and hands both to `done` once the response is
    /// written in full (its head, and `Content-Length` bytes of body).
    pub fn exchange(&self, done: impl FnOnce(Bytes, Bytes) + Send + 'static) {
        let mut captured = self.lock();
        let request = captured.request.clone();
        captured.response = Some(ResponseCapture {
            request,
            bytes: Vec::new(),
            done: Box::new(done),
        });
        self.capturing.store(true, Relaxed);
    }

    /// Bytes written to the connection.
    pub fn wrote(&self, data: &[u8]) {
        if !self.capturing.load(Relaxed) {
            return;
        }
        let finished = {
            let mut captured = self.lock();
            let Some(response) = captured.response.as_mut() else {
                return;
            };
            let room = MAX_CAPTURE.saturating_sub(response.bytes.len());
            response
                .bytes
                .extend_from_slice(&data[..data.len().min(room)]);
            if response_complete(&response.bytes) || room <= data.len() {
                self.capturing.store(false, Relaxed);
                captured.response.take()
            } else {
                None
            }
        };
        // Called with the lock released: `done` takes the room tap's lock.
        if let Some(r) = finished {
            (r.done)(r.request, Bytes::from(r.bytes));
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
