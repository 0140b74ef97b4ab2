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

use crate::config::RateLimit;
use crate::message::Transport;
use crate::ratelimit::TokenBucket;
use std::collections::HashMap;

/// What a client sends first: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// The most header-block bytes kept for decoding; hyper refuses larger
/// header lists anyway. Beyond it the decoder's table can no longer be
/// followed, and later streams are charged to `other`.
const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// Streams remembered at most: far above the concurrent-stream limit, a
/// bound for a client whose streams never finish.
const MAX_TRACKED_STREAMS: usize = 4096;

/// A frame's 9-byte header, decoded.
#[derive(Debug, Clone, Copy)]
struct FrameHead {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

/// Splits one direction of a connection into frames, whatever the reads
/// or writes cut it into.
#[derive(Debug)]
struct FrameReader {
    preface_left: usize,
    head: [u8; FRAME_HEADER],
    head_len: usize,
    frame: Option<FrameHead>,
    payload_left: usize,
    /// The current frame's payload, kept only for frames that need it.
    payload: Vec<u8>,
}

impl FrameReader {
    fn new(preface: usize) -> Self {
        Self {
            preface_left: preface,
            head: [0; FRAME_HEADER],
            head_len: 0,
            frame: None,
            payload_left: 0,
            payload: Vec::new(),
        }
    }

    /// Feeds `data`; calls `done` with each frame completed in it, with its
    /// payload when `keep` asks for it.
    fn feed(
        &mut self,
        mut data: &[u8],
        keep: impl Fn(&FrameHead) -> bool,
        mut done: impl FnMut(FrameHead, &[u8]),
    ) {
        let skip = self.preface_left.min(data.len());
        self.preface_left -= skip;
        data = &data[skip..];
        while !data.is_empty() {
            let Some(frame) = self.frame else {
                let take = (FRAME_HEADER - self.head_len).min(data.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&data[..take]);
                self.head_len += take;
                data = &data[take..];
                if self.head_len == FRAME_HEADER {
                    let h = &self.head;
                    let frame = FrameHead {
                        len: usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]),
                        kind: h[3],
                        flags: h[4],
                        stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
                    };
                    self.head_len = 0;
                    self.frame = Some(frame);
                    self.payload_left = frame.len;
                    self.payload.clear();
                    if frame.len == 0 {
                        self.frame = None;
                        done(frame, &[]);
                    }
                }
                continue;
            };
            let take = self.payload_left.min(data.len());
            if keep(&frame) && self.payload.len() + take <= MAX_HEADER_BLOCK {
                self.payload.extend_from_slice(&data[..take]);
            }
            self.payload_left -= take;
            data = &data[take..];
            if self.payload_left == 0 {
                self.frame = None;
                done(frame, &self.payload);
            }
        }
    }
}

/// Bytes to charge: `(transport, bytes)`.
pub type Charges = Vec<(Transport, u64)>;

#[derive(Debug, Clone, Copy)]
struct StreamState {
    transport: Transport,
    client_done: bool,
    server_done: bool,
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
            .field("lost", &self.lost)
            .field("flooded", &self.flooded)
            .finish_non_exhaustive()
    }
}

impl H2Streams {
    pub fn new(resets: RateLimit) -> Self {
        Self {
            from_client: FrameReader::new(PREFACE.len()),
            from_server: FrameReader::new(0),
            decoder: hpack::Decoder::new(),
            lost: false,
            streams: HashMap::new(),
            block: Vec::new(),
            block_bytes: 0,
            resets: TokenBucket::new(resets),
            flooded: false,
            idle_since: Some(std::time::Instant::now()),
        }
    }

    /// How long no stream has been open; `None` while one is.
    pub fn idle_for(&self) -> Option<std::time::Duration> {
        self.idle_since.map(|since| since.elapsed())
    }

    /// Notes the moment the last open stream is forgotten.
    fn forget(&mut self, stream: u32) {
        self.streams.remove(&stream);
        if self.streams.is_empty() && self.idle_since.is_none() {
            self.idle_since = Some(std::time::Instant::now());
        }
    }

    /// Bytes the client sent; returns what to charge to which transport.
    pub fn read(&mut self, data: &[u8]) -> Charges {
        let mut charges = Charges::new();
        let mut reader = std::mem::replace(&mut self.from_client, FrameReader::new(0));
        reader.feed(
            data,
            |f| matches!(f.kind, HEADERS | CONTINUATION),
            |frame, payload| self.client_frame(frame, payload, &mut charges),
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
            |_| false,
            |frame, _| {
                let size = (FRAME_HEADER + frame.len) as u64;
                if let Some(s) = self.streams.get_mut(&frame.stream) {
                    charges.push((s.transport, size));
                    let ends =
                        matches!(frame.kind, DATA | HEADERS) && frame.flags & END_STREAM != 0;
                    if frame.kind == RST_STREAM || ends {
                        s.server_done = true;
                    }
                    if frame.kind == RST_STREAM || (s.client_done && s.server_done) {
                        self.forget(frame.stream);
                    }
                }
            },
        );
        self.from_server = reader;
        charges
    }

    fn client_frame(&mut self, frame: FrameHead, payload: &[u8], charges: &mut Charges) {
        let size = (FRAME_HEADER + frame.len) as u64;
        match frame.kind {
            HEADERS | CONTINUATION => {
                let fragment = if frame.kind == HEADERS {
                    header_fragment(&frame, payload)
                } else {
                    Some(payload)
                };
                match fragment {
                    Some(f) if frame.len <= MAX_HEADER_BLOCK => self.block.extend_from_slice(f),
                    _ => self.lost = true,
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
        let mut transport = Transport::Other;
        if !self.lost {
            match self.decoder.decode(&block) {
                Ok(headers) => transport = classify_headers(&headers),
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
                self.streams.remove(&oldest);
            }
        }
        self.idle_since = None;
        self.streams.insert(
            stream,
            StreamState {
                transport,
                client_done: false,
                server_done: false,
            },
        );
        transport
    }
}

/// The header block fragment of a HEADERS frame's payload: without its
/// padding and priority fields.
fn header_fragment<'a>(frame: &FrameHead, payload: &'a [u8]) -> Option<&'a [u8]> {
    let mut start = 0;
    let mut end = payload.len();
    if frame.flags & PADDED != 0 {
        let pad = usize::from(*payload.first()?);
        start += 1;
        end = end.checked_sub(pad)?;
    }
    if frame.flags & PRIORITY != 0 {
        start += 5;
    }
    payload.get(start..end)
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

    fn sum(charges: &Charges, t: Transport) -> u64 {
        charges.iter().filter(|c| c.0 == t).map(|c| c.1).sum()
    }

    #[test]
    fn frames_are_charged_to_their_streams_transport_byte_by_byte() {
        let mut h2 = H2Streams::new(RateLimit::OFF);
        let mut client = PREFACE.to_vec();
        client.extend(frame(0x4, 0, 0, &[])); // SETTINGS: the connection's
        let sse = frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            &request_headers("GET", "/rooms/a/sse"),
        );
        let poll = frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            3,
            &request_headers("GET", "/rooms/a/poll?wait=0"),
        );
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
        let mut h2 = H2Streams::new(RateLimit::OFF);
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
        let mut h2 = H2Streams::new(RateLimit {
            per_second: 1,
            burst: 5,
        });
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
}
