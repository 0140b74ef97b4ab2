//! The raw wire view over HTTP/2: the frames of a watched stream, copied
//! as the server writes them (decrypted: this sits above TLS).
//!
//! `h2.rs` already reads every frame of an HTTP/2 connection, both ways,
//! and decodes each request's header block; when a request's `:path` names
//! a room someone watches (`GET /rooms/{room}/wire`), its stream gets a
//! [`StreamCapture`], which keeps the request's HEADERS frames as read and
//! makes samples of what the server writes on that stream:
//! - a poll (long or short): the response's HEADERS and DATA frames, up to
//!   END_STREAM, one sample;
//! - an SSE stream: each DATA frame that carries a message replaces the
//!   sample (keep-alive comments and presence events do not);
//! - a WebSocket over RFC 8441 (extended CONNECT): the server's 200
//!   HEADERS make the `handshake` sample, then each DATA frame that carries
//!   a message (a text frame, first byte 0x81) the `ws` sample.
//!
//! "Carries a message" means the bytes `{"type":"message"` appear: a
//! message's JSON starts with them, and no text inside one can contain
//! them unescaped. It matches the HTTP/1.1 view, which shows deliveries
//! that carried a message, not empty polls or presence updates.
//!
//! The delivery code does not store its rebuilt HTTP/1.1 shapes on an
//! HTTP/2 connection (an HTTP/1.1 chunk would be a lie there): this is
//! the only source of h2 samples.
//!
//! A stream that began before the view was armed (the page's own SSE
//! stream, open long before the presenter opens the panel) is captured
//! from the first frame the server writes on it once its room is watched.
//! Of its request only the `:path` was kept (moved out of the header list
//! the HPACK decoder built anyway: no copy), so such a sample has no
//! request bytes and shows `:method` and `:path` only.
//!
//! Cost: nothing is copied unless the wire view is armed and the stream's
//! room is watched; each sample is bounded by [`MAX_CAPTURE`] bytes.

use super::capture::MAX_CAPTURE;
use super::h2_frames::{FrameHead, DATA, END_HEADERS, HEADERS, RST_STREAM};
use crate::message::Transport;
use crate::wire_view::{H2Detail, RoomTap, WireTaps};
use bytes::Bytes;
use std::sync::Arc;

/// The start of every chat message's JSON (see the module's header).
const MESSAGE: &[u8] = br#"{"type":"message""#;

/// A WebSocket text frame with FIN set: what a message is sent as.
const WS_TEXT: u8 = 0x81;

/// Appends `bytes` to `out`, up to [`MAX_CAPTURE`] in all.
pub(super) fn append_capped(out: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_CAPTURE.saturating_sub(out.len());
    out.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

fn carries_message(payload: &[u8]) -> bool {
    payload.windows(MESSAGE.len()).any(|w| w == MESSAGE)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A request answered by one response: its frames make one sample.
    Poll(Transport),
    Sse,
    /// A WebSocket on the stream of an extended CONNECT.
    Ws,
}

/// The tap of the room in `path` (`/rooms/{room}/...`), if it is watched.
fn watched(taps: &WireTaps, path: &[u8]) -> Option<Arc<RoomTap>> {
    let path = std::str::from_utf8(path).ok()?;
    let segment = path.strip_prefix("/rooms/")?.split(['/', '?']).next()?;
    // As axum's `Path` reads it, so the name matches the room's.
    let room = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()?;
    taps.watching(&room)
}

/// Whether the wire view shows streams of `transport` with this request.
pub(super) fn shown(transport: Transport, headers: &[(Vec<u8>, Vec<u8>)]) -> bool {
    shape_of(transport, is_connect(headers)).is_some()
}

fn is_connect(headers: &[(Vec<u8>, Vec<u8>)]) -> bool {
    headers
        .iter()
        .any(|(n, v)| n == b":method" && v == b"CONNECT")
}

/// What samples a stream makes; a WebSocket over HTTP/2 is an extended
/// CONNECT (RFC 8441).
fn shape_of(transport: Transport, connect: bool) -> Option<Shape> {
    match transport {
        Transport::LongPoll | Transport::Poll => Some(Shape::Poll(transport)),
        Transport::Sse => Some(Shape::Sse),
        Transport::Ws if connect => Some(Shape::Ws),
        _ => None,
    }
}

/// The wire view's copy of one watched stream.
#[derive(Debug)]
pub(super) struct StreamCapture {
    tap: Arc<RoomTap>,
    shape: Shape,
    /// The request's HEADERS (and CONTINUATION) frames, as read.
    request: Bytes,
    detail: H2Detail,
    /// Frames of the sample being gathered: a poll's response so far, or
    /// a WebSocket's response HEADERS before END_HEADERS.
    response: Vec<u8>,
    carried_message: bool,
    /// The WebSocket's 200 has been stored as the handshake.
    answered: bool,
}

impl StreamCapture {
    /// A capture for the request on `stream` whose header list is
    /// `headers` and whose HEADERS frames were `request`, if the wire view
    /// watches its room and shows its transport.
    pub fn start(
        taps: &WireTaps,
        stream: u32,
        transport: Transport,
        headers: &[(Vec<u8>, Vec<u8>)],
        request: Vec<u8>,
    ) -> Option<Box<Self>> {
        let shape = shape_of(transport, is_connect(headers))?;
        let path = headers.iter().find(|(n, _)| n == b":path")?;
        let tap = watched(taps, &path.1)?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let headers = headers.iter().map(|(n, v)| (text(n), text(v))).collect();
        Some(Self::new(tap, shape, stream, request, headers))
    }

    /// A capture for a stream that began before the view was armed, of
    /// whose request only the `:path` was kept (and the method follows
    /// from the transport: the view shows GETs, and WebSockets' CONNECT).
    pub fn start_late(
        taps: &WireTaps,
        stream: u32,
        transport: Transport,
        path: &[u8],
    ) -> Option<Box<Self>> {
        let tap = watched(taps, path)?;
        // Only streams the view shows are kept for later: a WebSocket one
        // was a CONNECT.
        let shape = shape_of(transport, true)?;
        let method = if shape == Shape::Ws { "CONNECT" } else { "GET" };
        let headers = vec![
            (":method".to_owned(), method.to_owned()),
            (
                ":path".to_owned(),
                String::from_utf8_lossy(path).into_owned(),
            ),
        ];
        Some(Self::new(tap, shape, stream, Vec::new(), headers))
    }

    fn new(
        tap: Arc<RoomTap>,
        shape: Shape,
        stream: u32,
        request: Vec<u8>,
        request_headers: Vec<(String, String)>,
    ) -> Box<Self> {
        Box::new(Self {
            tap,
            shape,
            request: Bytes::from(request),
            detail: H2Detail {
                stream,
                request_headers: request_headers.into(),
            },
            response: Vec::new(),
            carried_message: false,
            answered: false,
        })
    }

    /// A frame the server wrote on this stream, with its payload (up to
    /// the frame reader's bound).
    pub fn server_frame(&mut self, frame: &FrameHead, payload: &[u8]) {
        match self.shape {
            Shape::Poll(transport) => {
                append_capped(&mut self.response, &frame.raw);
                append_capped(&mut self.response, payload);
                if frame.kind == DATA && carries_message(payload) {
                    self.carried_message = true;
                }
                if (frame.ends_stream() || frame.kind == RST_STREAM) && self.carried_message {
                    self.carried_message = false;
                    let response = std::mem::take(&mut self.response);
                    self.store(transport.name(), response);
                }
            }
            Shape::Sse => {
                if frame.kind == DATA && carries_message(payload) {
                    self.store_frame("sse", frame, payload);
                }
            }
            Shape::Ws => {
                if frame.kind == HEADERS && !self.answered {
                    append_capped(&mut self.response, &frame.raw);
                    append_capped(&mut self.response, payload);
                }
                // A CONTINUATION would follow a HEADERS without
                // END_HEADERS; hyper sends a 200's few headers in one.
                if frame.kind == HEADERS && frame.flags & END_HEADERS != 0 && !self.answered {
                    self.answered = true;
                    let response = std::mem::take(&mut self.response);
                    self.store("handshake", response);
                }
                if frame.kind == DATA
                    && payload.first() == Some(&WS_TEXT)
                    && carries_message(payload)
                {
                    self.store_frame("ws", frame, payload);
                }
            }
        }
    }

    /// Stores one frame as the sample.
    fn store_frame(&self, kind: &'static str, frame: &FrameHead, payload: &[u8]) {
        let mut bytes = Vec::with_capacity(frame.raw.len() + payload.len());
        append_capped(&mut bytes, &frame.raw);
        append_capped(&mut bytes, payload);
        self.store(kind, bytes);
    }

    fn store(&self, kind: &'static str, response: Vec<u8>) {
        self.tap.store_h2(
            kind,
            self.request.clone(),
            Bytes::from(response),
            self.detail.clone(),
        );
    }
}
