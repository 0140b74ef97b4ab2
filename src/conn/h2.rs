//! Byte accounting for HTTP/2: each frame's bytes are charged to the
//! transport of the stream it belongs to.
//!
//! One HTTP/2 connection multiplexes requests of every transport at once (a
//! browser's SSE stream, its polls and its POSTs share it), so the HTTP/1
//! rule in `accounting.rs` (the connection's current request owns its bytes)
//! does not apply. Instead the decrypted bytes are read as frames in both
//! directions, beside hyper:
//! - a stream's frames (HEADERS, DATA, RST_STREAM, its WINDOW_UPDATEs),
//!   9-byte frame headers included, go to the transport of that stream's
//!   request;
//! - which transport that is comes from the request's own HEADERS: the
//!   header block is decoded here with a second HPACK decoder (`hpack`
//!   crate) that follows the client's dynamic table just as hyper's does,
//!   and `:method`/`:path` are classified like an HTTP/1 request line;
//! - the connection preface and stream-0 frames (SETTINGS, PING,
//!   connection WINDOW_UPDATE, GOAWAY) belong to no stream: they are left
//!   uncharged, and so, with the TLS handshake and the TLS record overhead,
//!   they make up the `connection` line of `/stats` (bytes on the TCP
//!   socket minus bytes charged to a transport).
//!
//! The cost: each request's headers are decoded twice. What it does not
//! see: a frame still incomplete when the connection ends is uncharged
//! (it lands in the `connection` line).
//!
//! It also counts the client's RST_STREAM frames against a budget (the
//! HTTP/2 "rapid reset" attack opens and cancels streams in a loop, each
//! costing the server a dispatched request): a client over it is cut off.
//!
//! While the wire view watches a room, the streams of that room's requests
//! are also copied frame by frame for it (`h2_capture.rs`). While nobody
//! watches, that costs one relaxed load per request header block and one
//! branch per frame.

use super::capture::MAX_CAPTURE;
use super::h2_capture::{append_capped, shown, StreamCapture};
use super::h2_frames::{
    header_fragment, FrameHead, FrameReader, FrameSink, CONTINUATION, DATA, END_HEADERS,
    END_STREAM, FRAME_HEADER, HEADERS, MAX_KEPT, RST_STREAM,
};
use crate::config::RateLimit;
use crate::message::Transport;
use crate::ratelimit::TokenBucket;
use crate::wire_view::WireTaps;
use std::collections::HashMap;
use std::sync::Arc;

pub use super::h2_frames::PREFACE;

/// The most header-block bytes kept for decoding; hyper refuses larger
/// header lists anyway. Beyond it the decoder's table can no longer be
/// followed, and later streams are charged to `other`.
const MAX_HEADER_BLOCK: usize = MAX_KEPT;
/// Streams remembered at most: far above the concurrent-stream limit, a
/// bound for a client whose streams never finish.
const MAX_TRACKED_STREAMS: usize = 4096;

/// Bytes to charge: `(transport, bytes)`.
pub type Charges = Vec<(Transport, u64)>;

#[derive(Debug)]
struct StreamState {
    transport: Transport,
    client_done: bool,
    server_done: bool,
    /// What the wire view has of this stream.
    watch: Watch,
}

/// A stream in the wire view's eyes.
#[derive(Debug)]
enum Watch {
    /// Not a stream the view shows.
    No,
    /// A stream the view shows, in a room nobody watched when it began:
    /// its `:path`, kept while it runs in case its room becomes watched
    /// (moved out of the decoded header list: no allocation of its own).
    Could(Vec<u8>),
    /// A stream of a watched room, being copied.
    Captured(Box<StreamCapture>),
}

/// The HTTP/2 side of one connection's accounting.
pub struct H2Streams {
    from_client: FrameReader,
    from_server: FrameReader,
    decoder: hpack::Decoder<'static>,
    /// The decoder lost track (a header block too large to keep).
    lost: bool,
    streams: HashMap<u32, StreamState>,
    /// A header block being gathered across HEADERS and CONTINUATION.
    block: Vec<u8>,
    block_bytes: u64,
    /// The wire view's taps: asked when a header block begins.
    taps: Arc<WireTaps>,
    /// The frames of the header block being gathered, as read: kept only
    /// when the wire view was armed as it began (`None` otherwise).
    block_frames: Option<Vec<u8>>,
    /// Streams with a capture: while 0, the server's frames are only
    /// counted.
    captured: usize,
    resets: Option<TokenBucket>,
    /// The client went over its reset budget.
    pub flooded: bool,
    /// Since when no stream has been open (None while one is): what the
    /// idle timeout (`server.rs`) looks at.
    idle_since: Option<std::time::Instant>,
}

impl std::fmt::Debug for H2Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Streams")
            .field("streams", &self.streams.len())
            .field("captured", &self.captured)
            .field("lost", &self.lost)
            .field("flooded", &self.flooded)
            .finish_non_exhaustive()
    }
}

/// The client's frames, and what they cost.
struct FromClient<'a> {
    h2: &'a mut H2Streams,
    charges: &'a mut Charges,
}

impl FrameSink for FromClient<'_> {
    fn keep(&mut self, frame: &FrameHead) -> bool {
        matches!(frame.kind, HEADERS | CONTINUATION)
    }

    fn frame(&mut self, frame: FrameHead, payload: &[u8]) {
        self.h2.client_frame(frame, payload, self.charges);
    }
}

/// The server's frames, and what they cost.
struct FromServer<'a> {
    h2: &'a mut H2Streams,
    charges: &'a mut Charges,
}

impl FrameSink for FromServer<'_> {
    fn keep(&mut self, frame: &FrameHead) -> bool {
        self.h2.captures(frame.stream)
    }

    fn frame(&mut self, frame: FrameHead, payload: &[u8]) {
        self.h2.server_frame(frame, payload, self.charges);
    }
}

impl H2Streams {
    pub fn new(resets: RateLimit, taps: Arc<WireTaps>) -> Self {
        Self {
            from_client: FrameReader::new(PREFACE.len()),
            from_server: FrameReader::new(0),
            decoder: hpack::Decoder::new(),
            lost: false,
            streams: HashMap::new(),
            block: Vec::new(),
            block_bytes: 0,
            taps,
            block_frames: None,
            captured: 0,
            resets: TokenBucket::new(resets),
            flooded: false,
            idle_since: Some(std::time::Instant::now()),
        }
    }

    /// How long no stream has been open; `None` while one is.
    pub fn idle_for(&self) -> Option<std::time::Duration> {
        self.idle_since.map(|since| since.elapsed())
    }

    /// Forgets a stream; notes the moment the last open one is gone.
    fn forget(&mut self, stream: u32) {
        if let Some(s) = self.streams.remove(&stream) {
            if matches!(s.watch, Watch::Captured(_)) {
                self.captured -= 1;
            }
        }
        if self.streams.is_empty() && self.idle_since.is_none() {
            self.idle_since = Some(std::time::Instant::now());
        }
    }

    /// Whether the server's frames on `stream` are copied for the wire
    /// view. While nothing is watched: one branch and one relaxed load per
    /// frame. While the view is armed, a stream that began before is
    /// captured from here on if its room is watched now.
    fn captures(&mut self, stream: u32) -> bool {
        if self.captured == 0 && !self.taps.armed() {
            return false;
        }
        let Some(s) = self.streams.get_mut(&stream) else {
            return false;
        };
        if let Watch::Could(path) = &s.watch {
            if let Some(capture) = StreamCapture::start_late(&self.taps, stream, s.transport, path)
            {
                s.watch = Watch::Captured(capture);
                self.captured += 1;
            }
        }
        matches!(s.watch, Watch::Captured(_))
    }

    /// Bytes the client sent; returns what to charge to which transport.
    pub fn read(&mut self, data: &[u8]) -> Charges {
        let mut charges = Charges::new();
        let mut reader = std::mem::replace(&mut self.from_client, FrameReader::new(0));
        reader.feed(
            data,
            &mut FromClient {
                h2: self,
                charges: &mut charges,
            },
        );
        self.from_client = reader;
        charges
    }

    /// Bytes the server wrote; returns what to charge to which transport.
    pub fn write(&mut self, data: &[u8]) -> Charges {
        let mut charges = Charges::new();
        let mut reader = std::mem::replace(&mut self.from_server, FrameReader::new(0));
        reader.feed(
            data,
            &mut FromServer {
                h2: self,
                charges: &mut charges,
            },
        );
        self.from_server = reader;
        charges
    }

    fn server_frame(&mut self, frame: FrameHead, payload: &[u8], charges: &mut Charges) {
        let size = (FRAME_HEADER + frame.len) as u64;
        let Some(s) = self.streams.get_mut(&frame.stream) else {
            return;
        };
        charges.push((s.transport, size));
        if let Watch::Captured(capture) = &mut s.watch {
            capture.server_frame(&frame, payload);
        }
        if frame.kind == RST_STREAM || frame.ends_stream() {
            s.server_done = true;
        }
        if frame.kind == RST_STREAM || (s.client_done && s.server_done) {
            self.forget(frame.stream);
        }
    }

    fn client_frame(&mut self, frame: FrameHead, payload: &[u8], charges: &mut Charges) {
        let size = (FRAME_HEADER + frame.len) as u64;
        match frame.kind {
            HEADERS | CONTINUATION => {
                let fragment = if frame.kind == HEADERS {
                    if self.taps.armed() {
                        self.block_frames = Some(Vec::new());
                    }
                    header_fragment(&frame, payload)
                } else {
                    Some(payload)
                };
                match fragment {
                    Some(f) if frame.len <= MAX_HEADER_BLOCK => self.block.extend_from_slice(f),
                    _ => self.lost = true,
                }
                if let Some(frames) = self.block_frames.as_mut() {
                    append_capped(frames, &frame.raw);
                    append_capped(frames, payload);
                }
                self.block_bytes += size;
                if frame.flags & END_HEADERS != 0 {
                    let transport = self.end_of_block(frame.stream);
                    charges.push((transport, std::mem::take(&mut self.block_bytes)));
                }
                if frame.kind == HEADERS && frame.flags & END_STREAM != 0 {
                    if let Some(s) = self.streams.get_mut(&frame.stream) {
                        s.client_done = true;
                    }
                }
            }
            _ if frame.stream == 0 => {}
            kind => {
                if let Some(s) = self.streams.get_mut(&frame.stream) {
                    charges.push((s.transport, size));
                    if kind == DATA && frame.flags & END_STREAM != 0 {
                        s.client_done = true;
                    }
                }
                if kind == RST_STREAM {
                    self.forget(frame.stream);
                    if !crate::ratelimit::allow(&mut self.resets) {
                        self.flooded = true;
                    }
                }
            }
        }
    }

    /// A whole header block arrived for `stream`: decode it (always, to keep
    /// the decoder's table in step) and learn the stream's transport.
    fn end_of_block(&mut self, stream: u32) -> Transport {
        let block = std::mem::take(&mut self.block);
        let frames = self.block_frames.take();
        let mut transport = Transport::Other;
        let mut headers = Vec::new();
        if !self.lost {
            match self.decoder.decode(&block) {
                Ok(decoded) => {
                    transport = classify_headers(&decoded);
                    headers = decoded;
                }
                Err(_) => self.lost = true,
            }
        }
        if let Some(known) = self.streams.get(&stream) {
            // Trailers: the stream keeps its transport.
            return known.transport;
        }
        if self.streams.len() >= MAX_TRACKED_STREAMS {
            // The oldest stream (lowest id) is forgotten first.
            if let Some(&oldest) = self.streams.keys().min() {
                self.forget(oldest);
            }
        }
        // Only a block that began while the view was armed kept its frames;
        // a larger one than a sample holds is not shown cut.
        let capture = frames
            .filter(|f| f.len() < MAX_CAPTURE)
            .and_then(|f| StreamCapture::start(&self.taps, stream, transport, &headers, f));
        let watch = match capture {
            Some(capture) => {
                self.captured += 1;
                Watch::Captured(capture)
            }
            None if shown(transport, &headers) => headers
                .into_iter()
                .find(|(n, _)| n == b":path")
                .map_or(Watch::No, |(_, path)| Watch::Could(path)),
            None => Watch::No,
        };
        self.idle_since = None;
        self.streams.insert(
            stream,
            StreamState {
                transport,
                client_done: false,
                server_done: false,
                watch,
            },
        );
        transport
    }
}

fn classify_headers(headers: &[(Vec<u8>, Vec<u8>)]) -> Transport {
    let find = |name: &[u8]| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    };
    let (Some(method), Some(path)) = (find(b":method"), find(b":path")) else {
        return Transport::Other;
    };
    let Ok(method) = axum::http::Method::from_bytes(method.as_bytes()) else {
        return Transport::Other;
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    crate::routes::transport_of(&method, crate::routes::route_of(path), query)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn request_headers(method: &str, path: &str) -> Vec<u8> {
        hpack::Encoder::new().encode(vec![
            (b":method".as_slice(), method.as_bytes()),
            (b":scheme".as_slice(), b"https".as_slice()),
            (b":path".as_slice(), path.as_bytes()),
            (b":authority".as_slice(), b"localhost".as_slice()),
        ])
    }

    /// A GET's HEADERS frame, ending the stream's request side.
    fn get(stream: u32, path: &str) -> Vec<u8> {
        frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            stream,
            &request_headers("GET", path),
        )
    }

    fn sum(charges: &Charges, t: Transport) -> u64 {
        charges.iter().filter(|c| c.0 == t).map(|c| c.1).sum()
    }

    #[test]
    fn frames_are_charged_to_their_streams_transport_byte_by_byte() {
        let mut h2 = H2Streams::new(RateLimit::OFF, Arc::default());
        let mut client = PREFACE.to_vec();
        client.extend(frame(0x4, 0, 0, &[])); // SETTINGS: the connection's
        let sse = get(1, "/rooms/a/sse");
        let poll = get(3, "/rooms/a/poll?wait=0");
        client.extend(&sse);
        client.extend(&poll);
        // Fed one byte at a time: reads may cut frames anywhere.
        let mut charges = Charges::new();
        for b in &client {
            charges.extend(h2.read(std::slice::from_ref(b)));
        }
        assert_eq!(sum(&charges, Transport::Sse), sse.len() as u64);
        assert_eq!(sum(&charges, Transport::Poll), poll.len() as u64);
        assert_eq!(
            charges.iter().map(|c| c.1).sum::<u64>(),
            (sse.len() + poll.len()) as u64
        );

        let mut server = frame(0x4, 0, 0, &[]);
        let data_sse = frame(DATA, 0, 1, b"data: x\n\n");
        let data_poll = frame(DATA, END_STREAM, 3, b"{}");
        server.extend(&data_sse);
        server.extend(&data_poll);
        let charges = h2.write(&server);
        assert_eq!(sum(&charges, Transport::Sse), data_sse.len() as u64);
        assert_eq!(sum(&charges, Transport::Poll), data_poll.len() as u64);
        // The poll stream ended both ways and is forgotten; SSE goes on.
        assert!(!h2.streams.contains_key(&3));
        assert!(h2.streams.contains_key(&1));
    }

    #[test]
    fn the_dynamic_table_is_followed_across_requests() {
        let mut h2 = H2Streams::new(RateLimit::OFF, Arc::default());
        let mut encoder = hpack::Encoder::new();
        let mut block = |path: &str| {
            encoder.encode(vec![
                (b":method".as_slice(), b"GET".as_slice()),
                (b":path".as_slice(), path.as_bytes()),
                (
                    b"user-agent".as_slice(),
                    b"a long agent string kept in the table".as_slice(),
                ),
            ])
        };
        let first = block("/rooms/a/ws");
        let second = block("/rooms/a/sse");
        let mut client = PREFACE.to_vec();
        client.extend(frame(HEADERS, END_HEADERS, 1, &first));
        client.extend(frame(HEADERS, END_HEADERS, 3, &second));
        let charges = h2.read(&client);
        assert_eq!(charges[0].0, Transport::Ws);
        assert_eq!(charges[1].0, Transport::Sse);
    }

    #[test]
    fn resets_over_the_budget_mark_the_connection() {
        let mut h2 = H2Streams::new(
            RateLimit {
                per_second: 1,
                burst: 5,
            },
            Arc::default(),
        );
        let mut client = PREFACE.to_vec();
        for i in 0..10u32 {
            let id = 2 * i + 1;
            client.extend(frame(
                HEADERS,
                END_HEADERS,
                id,
                &request_headers("GET", "/healthz"),
            ));
            client.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
        }
        h2.read(&client);
        assert!(h2.flooded);
        assert!(h2.streams.is_empty(), "reset streams are forgotten");
    }

    #[test]
    fn nothing_is_kept_while_no_room_is_watched() {
        let mut h2 = H2Streams::new(RateLimit::OFF, Arc::default());
        let mut client = PREFACE.to_vec();
        client.extend(get(1, "/rooms/a/poll?wait=0"));
        h2.read(&client);
        assert!(h2.block_frames.is_none());
        assert_eq!(h2.captured, 0);
        assert!(matches!(h2.streams[&1].watch, Watch::Could(_)));
    }

    #[test]
    fn a_watched_polls_frames_become_its_sample_and_other_rooms_are_left() {
        let taps = Arc::new(WireTaps::default());
        let tap = taps.watch("a");
        let mut h2 = H2Streams::new(RateLimit::OFF, Arc::clone(&taps));
        let watched = get(1, "/rooms/a/poll?wait=0");
        let other = get(3, "/rooms/b/poll?wait=0");
        let mut client = PREFACE.to_vec();
        client.extend(&watched);
        client.extend(&other);
        h2.read(&client);
        assert_eq!(h2.captured, 1);

        let head = frame(HEADERS, END_HEADERS, 1, &[0x88]); // :status 200
        let body = frame(DATA, END_STREAM, 1, br#"{"messages":[{"type":"message"}]}"#);
        let mut server = head.clone();
        server.extend(frame(DATA, END_STREAM, 3, b"{}"));
        server.extend(&body);
        // Written a byte at a time: writes may cut frames anywhere.
        for b in &server {
            h2.write(std::slice::from_ref(b));
        }
        let json = tap.to_json("a");
        let sample = &json["poll"];
        assert_eq!(sample["http"], "h2");
        assert_eq!(sample["request_hex"], crate::wire_view::hex(&watched));
        assert_eq!(
            sample["response_hex"],
            crate::wire_view::hex(&[head, body].concat())
        );
        assert_eq!(sample["frames"]["response"][1]["type"], "DATA");
        assert_eq!(
            sample["frames"]["response"][1]["flag_names"],
            serde_json::json!(["END_STREAM"])
        );
        // Both streams ended: forgotten, and nothing is captured any more.
        assert_eq!(h2.captured, 0);
        assert!(h2.streams.is_empty());
    }

    #[test]
    fn an_sse_stream_keeps_only_data_frames_that_carry_a_message() {
        let taps = Arc::new(WireTaps::default());
        let tap = taps.watch("a");
        let mut h2 = H2Streams::new(RateLimit::OFF, Arc::clone(&taps));
        let mut client = PREFACE.to_vec();
        client.extend(get(1, "/rooms/a/sse"));
        h2.read(&client);
        h2.write(&frame(HEADERS, END_HEADERS, 1, &[0x88]));
        h2.write(&frame(DATA, 0, 1, b":\n\n"));
        assert!(tap.to_json("a").get("sse").is_none());
        let event = frame(DATA, 0, 1, b"id: 1\ndata: {\"type\":\"message\"}\n\n");
        h2.write(&event);
        h2.write(&frame(DATA, 0, 1, b":\n\n"));
        let json = tap.to_json("a");
        assert_eq!(json["sse"]["response_hex"], crate::wire_view::hex(&event));
        assert_eq!(json["sse"]["request_headers"][2][0], ":path");
    }

    #[test]
    fn a_stream_begun_before_its_room_was_watched_is_captured_from_then_on() {
        let taps = Arc::new(WireTaps::default());
        let mut h2 = H2Streams::new(RateLimit::OFF, Arc::clone(&taps));
        let mut client = PREFACE.to_vec();
        client.extend(get(1, "/rooms/a/sse"));
        h2.read(&client);
        let message = b"id: 1\ndata: {\"type\":\"message\"}\n\n";
        h2.write(&frame(DATA, 0, 1, message));
        assert_eq!(h2.captured, 0, "nobody watches yet");
        let tap = taps.watch("a");
        let event = frame(DATA, 0, 1, message);
        h2.write(&event);
        assert_eq!(h2.captured, 1);
        let json = tap.to_json("a");
        assert_eq!(json["sse"]["response_hex"], crate::wire_view::hex(&event));
        // The request's frames went by unkept; its path was kept.
        assert_eq!(json["sse"]["request_len"], 0);
        assert_eq!(
            json["sse"]["request_headers"],
            serde_json::json!([[":method", "GET"], [":path", "/rooms/a/sse"]])
        );
    }

    #[test]
    fn a_sample_keeps_at_most_max_capture_bytes() {
        let taps = Arc::new(WireTaps::default());
        let tap = taps.watch("a");
        let mut h2 = H2Streams::new(RateLimit::OFF, Arc::clone(&taps));
        let mut client = PREFACE.to_vec();
        client.extend(get(1, "/rooms/a/poll?wait=0"));
        h2.read(&client);
        let mut body = br#"{"messages":[{"type":"message","text":""#.to_vec();
        body.resize(MAX_CAPTURE * 2, b'x');
        h2.write(&frame(HEADERS, END_HEADERS, 1, &[0x88]));
        h2.write(&frame(DATA, END_STREAM, 1, &body));
        let json = tap.to_json("a");
        assert_eq!(json["poll"]["response_len"], MAX_CAPTURE);
        let data = &json["poll"]["frames"]["response"][1];
        assert_eq!(data["length"], body.len());
        assert_eq!(data["payload_len"], MAX_CAPTURE - 9 - 10);
    }
}
