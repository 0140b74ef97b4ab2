//! The raw wire view: the exact bytes of the last delivery per transport in a
//! room, and the last WebSocket opening handshake, for the demo page's wire
//! panel and the slides.
//!
//! Capture is opt-in and costs nothing while nobody looks: `GET
//! /rooms/{room}/wire` arms the room's tap for [`WATCH_FOR`]; until then
//! the delivery paths pay one relaxed atomic load and the socket wrapper
//! copies nothing.
//!
//! Where the bytes come from:
//! - WebSocket frames and SSE chunks are rebuilt here from what the transport
//!   hands the writer, framed exactly as tungstenite and hyper frame them
//!   (an unmasked single frame; a `{len:X}\r\n...\r\n` chunk). A test checks
//!   them against the bytes a raw TCP client received.
//! - Poll responses and the WebSocket handshake are captured on the socket
//!   itself by [`crate::conn::ConnWire`], since hyper writes their heads.
//! - Over HTTP/2 nothing is rebuilt: the connection's frame reader
//!   (`conn/h2_capture.rs`) copies the watched streams' frames as they are
//!   written, decrypted, 9-byte headers included. Such a sample says
//!   `"http": "h2"` and lists its frames (see [`h2_frames`]).
//!
//! Taps are keyed by room names that clients choose, so they are bounded
//! like everything clients make grow: at most [`MAX_TAPS`], the least
//! recently watched one forgotten first.

use crate::message::now_millis;
use crate::message::Transport;
use bytes::{BufMut, Bytes, BytesMut};
use lru::LruCache;
use serde::Serialize;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How long one look at the wire panel keeps capture on.
pub const WATCH_FOR: Duration = Duration::from_secs(30);

/// Rooms with a tap at once. A wire panel is a presenter's tool, watched
/// in a room or two; the page asks again every second, which keeps its
/// room the most recently watched, so a flood of other names evicts
/// taps nobody is looking at. Each tap holds at most one sample per
/// transport (a few KiB), so the map stays under a megabyte or so.
pub const MAX_TAPS: usize = 64;

/// The taps of the rooms watched lately.
#[derive(Debug)]
pub struct WireTaps {
    /// True while any room may be watched: the socket wrapper's only check.
    armed: AtomicBool,
    /// Least recently watched first out; lookups on the delivery path
    /// `peek`, so only `watch` reorders and needs the write lock.
    rooms: RwLock<LruCache<String, Arc<RoomTap>>>,
}

impl Default for WireTaps {
    fn default() -> Self {
        Self {
            armed: AtomicBool::new(false),
            rooms: RwLock::new(LruCache::new(
                NonZeroUsize::new(MAX_TAPS).expect("MAX_TAPS is not zero"),
            )),
        }
    }
}

impl WireTaps {
    /// Arms `room`'s tap for [`WATCH_FOR`] and returns it.
    pub fn watch(&self, room: &str) -> Arc<RoomTap> {
        let until = now_millis() + WATCH_FOR.as_millis() as u64;
        let tap = {
            let mut rooms = self.rooms.write().unwrap_or_else(|p| p.into_inner());
            Arc::clone(rooms.get_or_insert_ref(room, Arc::default))
        };
        tap.watched_until.store(until, Relaxed);
        self.armed.store(true, Relaxed);
        tap
    }

    /// The room's tap if someone is watching it now.
    pub fn watching(&self, room: &str) -> Option<Arc<RoomTap>> {
        if !self.armed() {
            return None;
        }
        let rooms = self.rooms.read().unwrap_or_else(|p| p.into_inner());
        let now = now_millis();
        if rooms
            .iter()
            .all(|(_, t)| t.watched_until.load(Relaxed) < now)
        {
            // Nobody is watching any room any more: disarm the fast path.
            self.armed.store(false, Relaxed);
        }
        rooms
            .peek(room)
            .filter(|t| t.watched_until.load(Relaxed) >= now)
            .cloned()
    }

    /// Whether any capture may be wanted (one relaxed load).
    pub fn armed(&self) -> bool {
        self.armed.load(Relaxed)
    }

    /// Rooms that have a tap now (at most [`MAX_TAPS`]).
    pub fn len(&self) -> usize {
        self.rooms.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The samples of one room.
#[derive(Debug, Default)]
pub struct RoomTap {
    watched_until: AtomicU64,
    samples: Mutex<HashMap<&'static str, Sample>>,
}

/// Bytes as they crossed the socket.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: u64,
    /// What the client sent, where the sample is a request and its answer.
    pub request: Option<Bytes>,
    /// What the server wrote.
    pub response: Bytes,
    /// Set when the bytes are HTTP/2 frames.
    pub h2: Option<H2Detail>,
}

/// What an HTTP/2 sample adds to its bytes.
#[derive(Debug, Clone)]
pub struct H2Detail {
    pub stream: u32,
    /// The request's header list, as the server's HPACK decoder read it.
    pub request_headers: Arc<[(String, String)]>,
}

/// What the page says of an HTTP/2 sample's bytes.
const H2_TLS_NOTE: &str = "These are the decrypted HTTP/2 frames of one stream, each a 9-byte \
header (length, type, flags, stream id) and its payload. On the wire they travel inside TLS \
records: a 5-byte record header, then under TLS 1.3 the encrypted frames, 1 byte of content \
type and a 16-byte AEAD tag. /stats counts the records' bytes under `connection`.";

/// Why a response's header block is shown as bytes only.
const H2_RESPONSE_HEADERS_NOTE: &str = "The response's HEADERS payload is HPACK, encoded \
against the dynamic table the server's encoder has built since the connection began: \
decoding it means following every response on every connection, so it is shown as bytes.";

impl RoomTap {
    pub fn store(&self, kind: &'static str, request: Option<Bytes>, response: Bytes) {
        self.keep(
            kind,
            Sample {
                at: now_millis(),
                request,
                response,
                h2: None,
            },
        );
    }

    /// Stores HTTP/2 frames: the request's HEADERS frames and the server's
    /// frames of the same stream.
    pub fn store_h2(&self, kind: &'static str, request: Bytes, response: Bytes, h2: H2Detail) {
        self.keep(
            kind,
            Sample {
                at: now_millis(),
                request: Some(request),
                response,
                h2: Some(h2),
            },
        );
    }

    fn keep(&self, kind: &'static str, sample: Sample) {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kind, sample);
    }

    pub fn store_delivery(&self, transport: Transport, response: Bytes) {
        self.store(transport.name(), None, response);
    }

    /// The wire panel's JSON.
    pub fn to_json(&self, room: &str) -> serde_json::Value {
        let samples = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = serde_json::json!({
            "room": room,
            "watching_for_ms": WATCH_FOR.as_millis() as u64,
        });
        for (kind, sample) in samples {
            let mut v = serde_json::json!({
                "at": sample.at,
                "response_text": String::from_utf8_lossy(&sample.response),
                "response_hex": hex(&sample.response),
                "response_len": sample.response.len(),
            });
            if let Some(request) = &sample.request {
                v["request_text"] = String::from_utf8_lossy(request).into();
                v["request_hex"] = hex(request).into();
                v["request_len"] = request.len().into();
            }
            if let Some(h2) = &sample.h2 {
                v["http"] = "h2".into();
                v["tls"] = true.into();
                v["tls_note"] = H2_TLS_NOTE.into();
                v["stream"] = h2.stream.into();
                v["request_headers"] = serde_json::to_value(&*h2.request_headers).unwrap();
                v["frames"] = serde_json::json!({
                    "request": h2_frames(sample.request.as_deref().unwrap_or_default()),
                    "response": h2_frames(&sample.response),
                });
                v["response_headers_note"] = H2_RESPONSE_HEADERS_NOTE.into();
                out[kind] = v;
                continue;
            }
            v["http"] = "http/1.1".into();
            match kind {
                "ws" => v["frame"] = serde_json::to_value(decode_frame(&sample.response)).unwrap(),
                "handshake" => {
                    if let Some(request) = &sample.request {
                        v["accept"] = handshake_accept(request, &sample.response);
                    }
                }
                _ => {}
            }
            out[kind] = v;
        }
        out
    }
}

/// The frame a server writes for one text message: FIN set, opcode 1, no
/// mask (RFC 6455 5.1: only clients mask), then the payload length in 7,
/// 7+16 or 7+64 bits.
pub fn ws_text_frame(payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(payload.len() + 10);
    frame.put_u8(0x80 | 0x1);
    match payload.len() {
        n if n <= 125 => frame.put_u8(n as u8),
        n if n <= 0xFFFF => {
            frame.put_u8(126);
            frame.put_u16(n as u16);
        }
        n => {
            frame.put_u8(127);
            frame.put_u64(n as u64);
        }
    }
    frame.put_slice(payload);
    frame.freeze()
}

/// One body chunk as hyper frames it in `Transfer-Encoding: chunked`.
pub fn http_chunk(data: &[u8]) -> Bytes {
    let mut chunk = BytesMut::with_capacity(data.len() + 12);
    chunk.put_slice(format!("{:X}\r\n", data.len()).as_bytes());
    chunk.put_slice(data);
    chunk.put_slice(b"\r\n");
    chunk.freeze()
}

/// A WebSocket frame header, field by field.
#[derive(Debug, Serialize)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: u8,
    pub opcode_name: &'static str,
    pub masked: bool,
    pub payload_len: u64,
    pub header_len: usize,
    pub header_hex: String,
}

pub fn decode_frame(frame: &[u8]) -> Option<FrameHeader> {
    let (&b0, &b1) = (frame.first()?, frame.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (payload_len, mut header_len) = match b1 & 0x7F {
        126 => (
            u16::from_be_bytes(frame.get(2..4)?.try_into().ok()?) as u64,
            4,
        ),
        127 => (u64::from_be_bytes(frame.get(2..10)?.try_into().ok()?), 10),
        n => (n as u64, 2),
    };
    if masked {
        header_len += 4;
    }
    let opcode = b0 & 0x0F;
    Some(FrameHeader {
        fin: b0 & 0x80 != 0,
        opcode,
        opcode_name: match opcode {
            0x0 => "continuation",
            0x1 => "text",
            0x2 => "binary",
            0x8 => "close",
            0x9 => "ping",
            0xA => "pong",
            _ => "reserved",
        },
        masked,
        payload_len,
        header_len,
        header_hex: hex(frame.get(..header_len)?),
    })
}

/// One HTTP/2 frame of a sample, its 9-byte header decoded (RFC 9113
/// section 4.1).
#[derive(Debug, Serialize)]
pub struct H2Frame {
    /// Where the frame starts in the sample's bytes.
    pub offset: usize,
    #[serde(rename = "type")]
    pub type_name: &'static str,
    pub type_byte: u8,
    pub flags: u8,
    pub flag_names: Vec<&'static str>,
    pub stream: u32,
    /// The header's length field: the payload's size.
    pub length: usize,
    pub header_hex: String,
    /// Payload bytes present in the sample (less than `length` only where
    /// the sample was cut at its size bound).
    pub payload_len: usize,
}

/// The frames in `bytes`, which hold whole frames back to back (the last
/// one possibly cut short).
pub fn h2_frames(bytes: &[u8]) -> Vec<H2Frame> {
    let mut frames = Vec::new();
    let mut offset = 0;
    while let Some(h) = bytes.get(offset..offset + 9) {
        let length = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        let (type_byte, flags) = (h[3], h[4]);
        let payload_len = length.min(bytes.len() - offset - 9);
        let type_name = match type_byte {
            0x0 => "DATA",
            0x1 => "HEADERS",
            0x2 => "PRIORITY",
            0x3 => "RST_STREAM",
            0x4 => "SETTINGS",
            0x5 => "PUSH_PROMISE",
            0x6 => "PING",
            0x7 => "GOAWAY",
            0x8 => "WINDOW_UPDATE",
            0x9 => "CONTINUATION",
            _ => "unknown",
        };
        // Flag bits mean different things per frame type.
        let known: &[(u8, &str)] = match type_byte {
            0x0 => &[(0x1, "END_STREAM"), (0x8, "PADDED")],
            0x1 => &[
                (0x1, "END_STREAM"),
                (0x4, "END_HEADERS"),
                (0x8, "PADDED"),
                (0x20, "PRIORITY"),
            ],
            0x4 | 0x6 => &[(0x1, "ACK")],
            0x5 => &[(0x4, "END_HEADERS"), (0x8, "PADDED")],
            0x9 => &[(0x4, "END_HEADERS")],
            _ => &[],
        };
        frames.push(H2Frame {
            offset,
            type_name,
            type_byte,
            flags,
            flag_names: known
                .iter()
                .filter(|(bit, _)| flags & bit != 0)
                .map(|(_, name)| *name)
                .collect(),
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
            length,
            header_hex: hex(h),
            payload_len,
        });
        offset += 9 + payload_len;
    }
    frames
}

/// `Sec-WebSocket-Key` from the request, `Sec-WebSocket-Accept` from the
/// response, and the accept value worked out from the key (RFC 6455 4.2.2:
/// base64 of the SHA-1 of the key followed by a fixed GUID).
fn handshake_accept(request: &[u8], response: &[u8]) -> serde_json::Value {
    let key = header_value(request, "sec-websocket-key");
    let accept = header_value(response, "sec-websocket-accept");
    let computed = key
        .as_deref()
        .map(|k| tokio_tungstenite::tungstenite::handshake::derive_accept_key(k.as_bytes()));
    serde_json::json!({
        "key": key,
        "accept": accept,
        "guid": "258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
        "computed": computed,
        "formula": "base64(sha1(key + guid))",
    })
}

/// The value of header `name` in an HTTP head, matched case-insensitively.
pub(crate) fn header_value(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head).lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_decoder() {
        for len in [0, 125, 126, 65_535, 65_536] {
            let frame = ws_text_frame(&vec![b'a'; len]);
            let header = decode_frame(&frame).unwrap();
            assert!(header.fin && !header.masked);
            assert_eq!((header.opcode, header.payload_len), (1, len as u64));
            assert_eq!(frame.len(), header.header_len + len);
        }
    }

    #[test]
    fn taps_stay_under_the_bound_and_the_watched_room_keeps_its_own() {
        let taps = WireTaps::default();
        taps.watch("lobby")
            .store_delivery(Transport::Sse, Bytes::from_static(b"kept"));
        for i in 0..MAX_TAPS * 3 {
            taps.watch(&format!("r{i}"));
            // The page asks again every second, keeping its room recent.
            if i % (MAX_TAPS / 2) == 0 {
                taps.watch("lobby");
            }
        }
        assert_eq!(taps.len(), MAX_TAPS);
        let lobby = taps
            .watching("lobby")
            .expect("the watched room keeps its tap");
        assert_eq!(lobby.to_json("lobby")["sse"]["response_text"], "kept");
        // The oldest of the flood is gone.
        assert!(taps.watching("r0").is_none());
    }

    #[test]
    fn accept_key_matches_the_rfc_example() {
        // RFC 6455 section 1.3's worked example.
        let request = b"GET / HTTP/1.1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        let response = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        let v = handshake_accept(request, response);
        assert_eq!(v["computed"], v["accept"]);
        assert_eq!(v["accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
}
