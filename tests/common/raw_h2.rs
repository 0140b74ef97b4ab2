//! A hand-driven HTTP/2 client over TLS, frame by frame, for tests of
//! what a well-behaved client library would never send: streams reset in a
//! loop, more streams than allowed, a reader that stops.

use super::{within, TestServer, PATIENCE};
use skyrocket::client::Connect;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub const SETTINGS: u8 = 0x4;
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const GOAWAY: u8 = 0x7;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
/// RST_STREAM's and GOAWAY's error codes.
pub const CANCEL: u32 = 0x8;
pub const REFUSED_STREAM: u32 = 0x7;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// Its size on the (decrypted) wire: the 9-byte header and payload.
    pub fn size(&self) -> u64 {
        9 + self.payload.len() as u64
    }

    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => return None,
        };
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A GET request's HEADERS frame, ending the stream's request side.
pub fn get(encoder: &mut hpack::Encoder<'_>, stream: u32, path: &str) -> Vec<u8> {
    let block = encoder.encode(vec![
        (b":method".as_slice(), b"GET".as_slice()),
        (b":scheme".as_slice(), b"https".as_slice()),
        (b":path".as_slice(), path.as_bytes()),
        (b":authority".as_slice(), b"localhost".as_slice()),
    ]);
    frame(HEADERS, END_HEADERS | END_STREAM, stream, &block)
}

pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// The client preface and a SETTINGS frame with an initial stream window
/// of `window` bytes.
pub fn preface(window: u32) -> Vec<u8> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let mut settings = vec![0x0, 0x4]; // SETTINGS_INITIAL_WINDOW_SIZE
    settings.extend_from_slice(&window.to_be_bytes());
    out.extend(frame(SETTINGS, 0, 0, &settings));
    out
}

pub type Stream<S = TcpStream> = TlsStream<S>;

/// A TLS connection to `server` over `io` (a socket with a small receive
/// buffer, a counted one) on which ALPN chose `h2`.
pub async fn connect_on<S>(server: &TestServer, io: S) -> Stream<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let tls = Connect {
        http2: true,
        ..server.connect.clone()
    }
    .tls_config();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = within(PATIENCE, connector.connect(name, io)).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    stream
}

pub async fn connect(server: &TestServer) -> Stream {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    connect_on(server, tcp).await
}

/// The next frame, or `None` once the server closed the connection.
pub async fn read_frame<S>(stream: &mut Stream<S>) -> Option<Frame>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = [0u8; 9];
    within(PATIENCE, stream.read_exact(&mut head)).await.ok()?;
    let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    let mut payload = vec![0; len];
    within(PATIENCE, stream.read_exact(&mut payload))
        .await
        .ok()?;
    Some(Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    })
}

/// Writes `bytes`; an error means the server already closed.
pub async fn send<S>(stream: &mut Stream<S>, bytes: &[u8]) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(bytes).await?;
    stream.flush().await
}
