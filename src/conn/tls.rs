//! The front door of a TLS connection: a handshake must finish within the
//! header timeout; plain HTTP/1 (or an HTTP/2 preface) sent to the TLS
//! port is answered with a readable error, in its own protocol, and
//! closed; anything else that is not a TLS handshake fails it and is
//! closed. Nothing of this touches other connections.

use super::accounting::TlsBytes;
use super::counted::Counted;
use super::h2::PREFACE;
use crate::stats::{Limit, Stats};
use crate::tls::{ServerTls, ALPN_H2};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// A TLS connection the front door let in: its stream, counted on the TCP
/// socket for the `connection` line, and whether ALPN chose HTTP/2.
pub type Stream = tokio_rustls::server::TlsStream<Counted<TcpStream, TlsBytes>>;

/// How long a refusal on the TLS port waits for the client to read it.
const LINGER: Duration = Duration::from_secs(1);

/// Takes a TCP connection through the TLS handshake, within `limit`.
/// `None` when it did not finish (counted in `stats` by why); then the
/// connection is closed.
pub async fn accept(
    stream: TcpStream,
    tls: &ServerTls,
    stats: &Arc<Stats>,
    limit: Duration,
) -> Option<(Stream, bool)> {
    let deadline = Instant::now() + limit;
    let mut first = [0u8; PREFACE.len()];
    let peeked = match timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => n,
        Ok(_) => return None,
        Err(_) => {
            stats.count(Limit::TlsHandshakeTimeouts);
            return None;
        }
    };
    let stream = Counted::new(stream, Arc::new(TlsBytes::new(Arc::clone(stats))));
    // A TLS record starts with its content type; 22 is a handshake.
    if first[0] != 22 {
        if let Some(answer) = plaintext_answer(&first[..peeked]) {
            stats.count(Limit::PlaintextOnTlsPort);
            let close = crate::admission::answer_and_close(stream, answer);
            let _ = tokio::time::timeout(LINGER, close).await;
            return None;
        }
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.config));
    match timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => {
            let h2 = stream.get_ref().1.alpn_protocol() == Some(ALPN_H2);
            Some((stream, h2))
        }
        Ok(Err(e)) => {
            stats.count(Limit::TlsHandshakeFailed);
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            stats.count(Limit::TlsHandshakeTimeouts);
            None
        }
    }
}

/// What to tell a client that spoke plaintext to the TLS port, in its own
/// protocol: an HTTP/1.1 400 with a JSON error, or for an HTTP/2 preface
/// (h2c prior knowledge) a SETTINGS and GOAWAY frame whose debug data
/// says why. `None` for bytes that are neither: the handshake refuses them.
fn plaintext_answer(first: &[u8]) -> Option<String> {
    const WHY: &str = "this port speaks HTTPS (TLS): use an https:// URL";
    if first.len() >= 4 && PREFACE.starts_with(first) {
        let mut frames = vec![0u8, 0, 0, 0x4, 0, 0, 0, 0, 0];
        let payload_len = 8 + WHY.len();
        frames.extend_from_slice(&[0, (payload_len >> 8) as u8, payload_len as u8, 0x7, 0]);
        frames.extend_from_slice(&[0; 4]); // stream 0
        frames.extend_from_slice(&[0; 4]); // last stream id 0
        frames.extend_from_slice(&1u32.to_be_bytes()); // PROTOCOL_ERROR
        frames.extend_from_slice(WHY.as_bytes());
        // Every byte is ASCII or below 0x80, so this round-trips as bytes.
        return String::from_utf8(frames).ok();
    }
    if !first[0].is_ascii_uppercase() {
        return None;
    }
    let body = serde_json::json!({ "error": WHY }).to_string();
    Some(format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}
