//! A buffering proxy (nginx's `proxy_buffering on`, some antivirus
//! gateways): a response head goes out at once, but its body is held until
//! the body ends or the held bytes reach the limit, then released together.
//!
//! For a poll, whose body is one small JSON document, that changes nothing
//! a client can see. For an SSE stream, whose body never ends, events sit
//! in the proxy until enough of them pile up: the stream stalls. That is
//! why servers send `X-Accel-Buffering: no`, and why a client that hears
//! nothing after connecting should try another transport.

use super::http::Piece;
use bytes::{Bytes, BytesMut};

/// Response bytes held back, for one connection.
#[derive(Debug, Default)]
pub struct Holder {
    held: BytesMut,
}

impl Holder {
    /// Takes one labelled piece and appends what may go out now to `out`.
    /// `limit` is the buffer size in bytes (0: no buffering); it is read per
    /// piece, so a change at run time applies from the next read.
    pub fn take(&mut self, piece: Piece, limit: usize, out: &mut Vec<Bytes>) {
        match piece {
            Piece::Body(bytes) if limit > 0 => {
                self.held.extend_from_slice(&bytes);
                if self.held.len() >= limit {
                    self.release(out);
                }
            }
            Piece::Body(bytes) | Piece::Raw(bytes) | Piece::Head { bytes, .. } => {
                self.release(out);
                out.push(bytes);
            }
            Piece::End => self.release(out),
        }
    }

    /// Lets everything held go (buffering was turned off, or the
    /// connection is ending).
    pub fn release(&mut self, out: &mut Vec<Bytes>) {
        if !self.held.is_empty() {
            out.push(self.held.split().freeze());
        }
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(held: &mut Holder, pieces: Vec<Piece>, limit: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        for piece in pieces {
            held.take(piece, limit, &mut out);
        }
        out
    }

    fn body(n: usize) -> Piece {
        Piece::Body(Bytes::from(vec![b'x'; n]))
    }

    #[test]
    fn a_stream_body_is_held_until_the_limit_then_released_together() {
        let mut holder = Holder::default();
        let head = Piece::Head {
            bytes: Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"),
            upgrade: false,
        };
        // The head passes; 3 events of 400 bytes stay under 1 KiB.
        let out = pieces(
            &mut holder,
            vec![head, body(400), body(400), body(400)],
            1500,
        );
        assert_eq!(out.len(), 1, "only the head went out");
        assert_eq!(holder.held(), 1200);
        // The fourth reaches the limit: all four go out as one chunk.
        let out = pieces(&mut holder, vec![body(400)], 1500);
        assert_eq!(out.iter().map(Bytes::len).collect::<Vec<_>>(), [1600]);
        assert_eq!(holder.held(), 0);
    }

    #[test]
    fn a_small_body_goes_out_when_it_ends() {
        let mut holder = Holder::default();
        let out = pieces(&mut holder, vec![body(10), body(20)], 4096);
        assert!(out.is_empty());
        let out = pieces(&mut holder, vec![Piece::End], 4096);
        assert_eq!(out.iter().map(Bytes::len).collect::<Vec<_>>(), [30]);
    }

    #[test]
    fn without_a_limit_nothing_is_held_and_turning_it_off_releases() {
        let mut holder = Holder::default();
        let out = pieces(&mut holder, vec![body(10), body(20)], 0);
        assert_eq!(out.iter().map(Bytes::len).collect::<Vec<_>>(), [10, 20]);
        pieces(&mut holder, vec![body(10)], 100);
        // Buffering switched off mid-body: the held bytes go first, in order.
        let out = pieces(&mut holder, vec![body(5)], 0);
        assert_eq!(out.iter().map(Bytes::len).collect::<Vec<_>>(), [10, 5]);
        // Raw bytes (an upgraded connection) are never held.
        let out = pieces(
            &mut holder,
            vec![Piece::Raw(Bytes::from_static(b"ws"))],
            100,
        );
        assert_eq!(out, [Bytes::from_static(b"ws")]);
    }
}
