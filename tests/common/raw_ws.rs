//! A WebSocket peer written at the frame level, for the hostile tests: it
//! sends what a well-behaved client library refuses to (a length of 2^63,
//! invalid UTF-8, floods of pings) and sees every frame the server sends,
//! pings included, without answering any of them.

use super::{within, PATIENCE};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

#[derive(Debug)]
pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A close frame's code and reason.
    pub fn close(&self) -> Option<(u16, String)> {
        (self.opcode == CLOSE && self.payload.len() >= 2).then(|| {
            let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
            (
                code,
                String::from_utf8_lossy(&self.payload[2..]).into_owned(),
            )
        })
    }
}

/// A masked client frame, FIN set, with the header's length field as the
/// RFC lays it out for `claimed` bytes (which may differ from the payload).
pub fn frame_bytes(opcode: u8, payload: &[u8], claimed: u64) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match claimed {
        0..=125 => out.push(0x80 | claimed as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(claimed as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&claimed.to_be_bytes());
        }
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

impl RawWs {
    /// Opens `path` with a handshake written by hand; panics unless 101.
    pub async fn connect(addr: SocketAddr, path: &str) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self::handshake(stream, path).await
    }

    pub async fn handshake(mut stream: TcpStream, path: &str) -> Self {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let n = within(PATIENCE, stream.read(&mut chunk)).await.unwrap();
            assert!(n > 0, "the server closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Self {
            stream,
            buf: buf[end..].to_vec(),
        }
    }

    pub async fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.send_raw(&frame_bytes(opcode, payload, payload.len() as u64))
            .await
            .unwrap();
    }

    /// Writes bytes as they are; fails once the server has closed.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next whole frame, or `None` when the connection ends.
    pub async fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 16 * 1024];
            match within(PATIENCE, self.stream.read(&mut chunk)).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Skips frames until a close frame; its code and reason, or `None`
    /// if the connection ended without one.
    pub async fn read_close(&mut self) -> Option<(u16, String)> {
        while let Some(frame) = self.read_frame().await {
            if frame.opcode == CLOSE {
                return frame.close();
            }
        }
        None
    }
}

/// An unmasked server frame at the start of `buf`, and its length.
fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0F;
    let (len, start) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    let end = start + len;
    (buf.len() >= end).then(|| {
        (
            Frame {
                opcode,
                payload: buf[start..end].to_vec(),
            },
            end,
        )
    })
}
