//! WebSocket frames as bytes: cutting a recorded stream into frames,
//! building masked client frames, and describing a frame field by field in
//! Markdown (the hex dump and the table the slides show).

use skyrocket::wire_view::{decode_frame, hex, ws_text_frame};
use std::fmt::Write as _;

/// One frame as it crossed the socket.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Every byte of the frame: header, key and (masked) payload.
    pub bytes: Vec<u8>,
    pub opcode: u8,
    pub opcode_name: &'static str,
    pub header_len: usize,
    pub key: Option<[u8; 4]>,
    /// The payload with the mask removed.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code and reason of a close frame.
    pub fn close(&self) -> Option<(u16, String)> {
        (self.opcode == 0x8 && self.payload.len() >= 2).then(|| {
            let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
            (
                code,
                String::from_utf8_lossy(&self.payload[2..]).into_owned(),
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// The first whole frame at the start of `bytes`, and its length.
pub fn parse(bytes: &[u8]) -> Option<Frame> {
    let header = decode_frame(bytes)?;
    let end = header
        .header_len
        .checked_add(usize::try_from(header.payload_len).ok()?)?;
    let frame = bytes.get(..end)?;
    let key = header
        .masked
        .then(|| {
            frame[header.header_len - 4..header.header_len]
                .try_into()
                .ok()
        })
        .flatten();
    let mut payload = frame[header.header_len..].to_vec();
    if let Some(key) = key {
        apply_mask(&mut payload, key);
    }
    Some(Frame {
        bytes: frame.to_vec(),
        opcode: header.opcode,
        opcode_name: header.opcode_name,
        header_len: header.header_len,
        key,
        payload,
    })
}

/// Every whole frame in `bytes`, in order.
pub fn parse_all(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Some(frame) = parse(bytes) {
        bytes = &bytes[frame.bytes.len()..];
        frames.push(frame);
    }
    frames
}

/// RFC 6455 5.3: byte i of the payload is XORed with byte i mod 4 of the key
/// (masking and unmasking are the same operation).
pub fn apply_mask(payload: &mut [u8], key: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// A client frame: FIN set, `opcode`, and the payload masked with `key`,
/// or sent in the clear when `key` is `None` (which a server must refuse).
/// The length encoding is the server's own (`wiretap::ws_text_frame`).
pub fn client_frame(opcode: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let server_frame = ws_text_frame(payload);
    let mut frame = server_frame[..server_frame.len() - payload.len()].to_vec();
    frame[0] = 0x80 | opcode;
    let mut body = payload.to_vec();
    if let Some(key) = key {
        frame[1] |= 0x80;
        frame.extend_from_slice(&key);
        apply_mask(&mut body, key);
    }
    frame.extend_from_slice(&body);
    frame
}

/// `xxd`-style lines: offset, 16 bytes in hex, the printable ones as text.
pub fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:04x}  ", row * 16);
        // Pad a short last row only when it sits under full ones.
        let width = if bytes.len() > 16 { 16 } else { chunk.len() };
        for i in 0..width {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
        }
        out.push(' ');
        out.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push('\n');
    }
    out
}

fn bits(b: u8) -> String {
    format!("{:04b} {:04b}", b >> 4, b & 0xF)
}

/// The frame's hex dump, then a table of its fields, byte by byte.
pub fn describe(frame: &Frame) -> String {
    let b = &frame.bytes;
    let mut table = String::from("| bytes | hex | bits | field |\n| --- | --- | --- | --- |\n");
    let _ = writeln!(
        table,
        "| 0 | `{:02x}` | `{}` | FIN = {}, RSV1-3 = {:03b}, opcode = 0x{:x} ({}) |",
        b[0],
        bits(b[0]),
        b[0] >> 7,
        (b[0] >> 4) & 0b111,
        frame.opcode,
        frame.opcode_name,
    );
    let len7 = b[1] & 0x7F;
    let len_note = match len7 {
        126 => "126: the length follows in 16 bits".to_owned(),
        127 => "127: the length follows in 64 bits".to_owned(),
        n => format!("{n} bytes"),
    };
    let _ = writeln!(
        table,
        "| 1 | `{:02x}` | `{}` | MASK = {}, payload length = {len_note} |",
        b[1],
        bits(b[1]),
        b[1] >> 7,
    );
    let mut at = 2;
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    if ext > 0 {
        let _ = writeln!(
            table,
            "| {at}-{} | `{}` | | extended payload length = {} bytes |",
            at + ext - 1,
            hex(&b[at..at + ext]),
            frame.payload.len(),
        );
        at += ext;
    }
    if frame.key.is_some() {
        let _ = writeln!(
            table,
            "| {at}-{} | `{}` | | masking key, fresh for every frame |",
            at + 3,
            hex(&b[at..at + 4]),
        );
        at += 4;
    }
    if !frame.payload.is_empty() {
        let what = if frame.key.is_some() {
            "payload, masked: byte i XOR key[i mod 4]"
        } else {
            "payload, as is"
        };
        let _ = writeln!(
            table,
            "| {at}-{} | | | {what} ({} bytes) |",
            b.len() - 1,
            frame.payload.len(),
        );
    }
    format!(
        "```text\n{}```\n\n{table}\nHeader: {} bytes; payload: {} bytes; frame: {} bytes.\n",
        hexdump(b),
        frame.header_len,
        frame.payload.len(),
        b.len(),
    )
}

/// Standard base64 with padding (RFC 4648), for working out
/// `Sec-WebSocket-Accept` in the open.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
