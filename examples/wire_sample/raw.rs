//! Clients on a bare TCP socket that speak just enough HTTP/1.1 and
//! WebSocket to record every byte, and to send what a well-behaved library
//! never would (an unmasked frame, text that is not UTF-8), so the report
//! can show how our server answers.

use crate::frames::{self, Frame};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any one read may take before the run gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// The key of RFC 6455's own example (section 1.3). A raw client that only
/// wants to see the server's answers needs no fresh key; the report's
/// handshake comes from a real client with a random one.
const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The masking key of RFC 6455's examples (section 5.7).
pub const SAMPLE_MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A TCP connection and whatever has been read but not yet consumed.
pub struct Conn {
    tcp: TcpStream,
    buf: Vec<u8>,
    /// Every byte read so far, in order.
    pub read_all: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr, request: &str) -> io::Result<Self> {
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.write_all(request.as_bytes()).await?;
        Ok(Self {
            tcp,
            buf: Vec::new(),
            read_all: Vec::new(),
        })
    }

    /// Reads more bytes; false when the server closed the connection.
    async fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(PATIENCE, self.tcp.read(&mut chunk))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer from the server"))??;
        self.buf.extend_from_slice(&chunk[..n]);
        self.read_all.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The response head, up to and including its blank line.
    pub async fn head(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok(self.buf.drain(..at + 4).collect());
            }
            if !self.fill().await? {
                return Err(io::Error::other("the connection closed before a response"));
            }
        }
    }

    /// The next chunk of a `Transfer-Encoding: chunked` body, as it was
    /// on the wire (size line, data, CRLF), and its data.
    pub async fn chunk(&mut self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        loop {
            if let Some(found) = parse_chunk(&self.buf) {
                self.buf.drain(..found.0.len());
                return Ok(found);
            }
            if !self.fill().await? {
                return Err(io::Error::other("the stream ended"));
            }
        }
    }

    /// The next WebSocket frame; `None` when the server closed TCP.
    pub async fn frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = frames::parse(&self.buf) {
                self.buf.drain(..frame.bytes.len());
                return Ok(Some(frame));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tcp.write_all(bytes).await
    }
}

fn parse_chunk(buf: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let size =
        usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).ok()?.trim(), 16).ok()?;
    let start = line_end + 2;
    let end = start + size + 2;
    let whole = buf.get(..end)?;
    Some((whole.to_vec(), whole[start..start + size].to_vec()))
}

/// A WebSocket opened by hand, past its 101 response.
pub async fn websocket(addr: SocketAddr, path: &str) -> io::Result<Conn> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let mut conn = Conn::open(addr, &request).await?;
    let head = conn.head().await?;
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(io::Error::other(format!(
            "no upgrade: {}",
            String::from_utf8_lossy(&head)
        )));
    }
    Ok(conn)
}

/// How a provoked connection ended up.
#[derive(Debug)]
pub enum Outcome {
    /// A close frame came, with this code and reason.
    Closed(u16, String),
    /// TCP ended with no close frame.
    Dropped,
    /// TCP was reset (the server closed with our bytes still unread).
    Reset,
    /// The text frame the caller was waiting for came (the socket stays open).
    Answered,
}

impl Outcome {
    /// What came back, for the report's table.
    pub fn describe(&self) -> (String, String) {
        match self {
            Self::Closed(code, reason) if reason.is_empty() => ("Close".into(), code.to_string()),
            Self::Closed(code, reason) => (format!("Close, \"{reason}\""), code.to_string()),
            Self::Dropped => (
                "TCP closed, no Close frame".into(),
                "none: a browser reports 1006".into(),
            ),
            Self::Reset => (
                "TCP reset, no Close frame".into(),
                "none: a browser reports 1006".into(),
            ),
            Self::Answered => (
                "an `error` event; the socket stays open".into(),
                "none".into(),
            ),
        }
    }
}

/// Reads frames until a close frame, the end of TCP, or a text frame that
/// `wanted` accepts; pings are left unanswered.
pub async fn outcome(conn: &mut Conn, wanted: impl Fn(&str) -> bool) -> io::Result<Outcome> {
    loop {
        let frame = match conn.frame().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(Outcome::Dropped),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(Outcome::Reset),
            Err(e) => return Err(e),
        };
        if let Some((code, reason)) = frame.close() {
            return Ok(Outcome::Closed(code, reason));
        }
        if frame.opcode == 0x1 && wanted(&frame.text()) {
            return Ok(Outcome::Answered);
        }
    }
}
