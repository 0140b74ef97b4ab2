//! Where HTTP/1.1 messages begin and end in a byte stream, so the network
//! in between can act like a proxy that understands HTTP: hold a response
//! body (`buffer.rs`), refuse an Upgrade (`proxy.rs`).
//!
//! The framer only *reads* the stream: every byte it is fed comes out
//! again, unchanged and in order, labelled as a message head, body bytes,
//! or raw bytes (after an upgrade, or anything it cannot parse). A framing
//! mistake can therefore change when bytes are released, never what they
//! are. Heads are parsed by `httparse` (hyper's parser); bodies are
//! delimited as RFC 9112 section 6 says: `Content-Length`, chunked, or the
//! end of the connection.
//!
//! Not handled: a response to `HEAD` (nothing in this kit sends one) would
//! be taken to have the body its `Content-Length` announces.

use bytes::{Bytes, BytesMut};

/// The largest head the framer waits for; beyond it the rest of the
/// connection passes through raw (the server refuses such heads anyway).
const MAX_HEAD: usize = 64 * 1024;
/// The longest chunk-size line (hex digits and extensions).
const MAX_CHUNK_LINE: usize = 1024;
const MAX_HEADERS: usize = 100;

/// Which way the bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Client to server.
    Request,
    /// Server to client.
    Response,
}

/// A labelled slice of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A whole message head. `upgrade`: a request asking for a WebSocket.
    Head { bytes: Bytes, upgrade: bool },
    /// Bytes of the current message's body (chunk framing included).
    Body(Bytes),
    /// The current message ended.
    End,
    /// Not HTTP messages: after an upgrade, or past something unparsable.
    Raw(Bytes),
}

#[derive(Debug)]
enum State {
    Head,
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Raw,
}

#[derive(Debug)]
enum Chunk {
    /// Reading a chunk-size line; its length so far.
    Size { line: Vec<u8> },
    /// Chunk data still to come.
    Data(u64),
    /// The CRLF after chunk data: bytes still to come.
    DataEnd(u8),
    /// Trailer lines after the last chunk; length of the current line.
    Trailer { line: usize },
}

/// Splits one direction of one connection into [`Piece`]s.
#[derive(Debug)]
pub struct Framer {
    side: Side,
    state: State,
    head: BytesMut,
}

impl Framer {
    pub fn new(side: Side) -> Self {
        Self {
            side,
            state: State::Head,
            head: BytesMut::new(),
        }
    }

    /// Labels `input`, appending to `out`. A head split over several reads
    /// comes out once it is complete.
    pub fn feed(&mut self, mut input: Bytes, out: &mut Vec<Piece>) {
        while !input.is_empty() {
            match &mut self.state {
                State::Head => {
                    self.head.extend_from_slice(&input);
                    input = Bytes::new();
                    match self.parse_head() {
                        Some(len) => {
                            let rest = self.head.split_off(len);
                            let head = self.head.split().freeze();
                            input = rest.freeze();
                            self.begin(head, out);
                        }
                        None if self.head.len() > MAX_HEAD => {
                            self.state = State::Raw;
                            out.push(Piece::Raw(self.head.split().freeze()));
                        }
                        None => {}
                    }
                }
                State::Length(left) => {
                    let take = (*left).min(input.len() as u64);
                    *left -= take;
                    out.push(Piece::Body(input.split_to(take as usize)));
                    if *left == 0 {
                        self.end(out);
                    }
                }
                State::Chunked(chunk) => {
                    let (used, ended) = match scan_chunked(chunk, &input) {
                        Ok(scan) => scan,
                        Err(()) => {
                            self.state = State::Raw;
                            continue;
                        }
                    };
                    out.push(Piece::Body(input.split_to(used)));
                    if ended {
                        self.end(out);
                    }
                }
                State::UntilClose => out.push(Piece::Body(std::mem::take(&mut input))),
                State::Raw => out.push(Piece::Raw(std::mem::take(&mut input))),
            }
        }
    }

    /// The stream ended: a body delimited by the close ends here, and a
    /// partial head goes out as it is.
    pub fn finish(&mut self, out: &mut Vec<Piece>) {
        match self.state {
            State::UntilClose => out.push(Piece::End),
            State::Head if !self.head.is_empty() => {
                out.push(Piece::Raw(self.head.split().freeze()));
            }
            _ => {}
        }
        self.state = State::Raw;
    }

    /// The head's length once it is complete; on a parse error the framer
    /// gives up and passes the rest through raw.
    fn parse_head(&mut self) -> Option<usize> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let parsed = match self.side {
            Side::Request => httparse::Request::new(&mut headers).parse(&self.head),
            Side::Response => httparse::Response::new(&mut headers).parse(&self.head),
        };
        match parsed {
            Ok(httparse::Status::Complete(len)) => Some(len),
            Ok(httparse::Status::Partial) => None,
            Err(_) => {
                self.state = State::Raw;
                // Reported as complete so the bytes go out, as raw.
                Some(0)
            }
        }
    }

    /// A head is complete: label it and pick how its body ends.
    fn begin(&mut self, head: Bytes, out: &mut Vec<Piece>) {
        if head.is_empty() {
            return; // an unparsable head: already switched to raw
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let (status, headers) = match self.side {
            Side::Request => {
                let mut request = httparse::Request::new(&mut headers);
                let _ = request.parse(&head);
                (None, request.headers.to_vec())
            }
            Side::Response => {
                let mut response = httparse::Response::new(&mut headers);
                let _ = response.parse(&head);
                (response.code, response.headers.to_vec())
            }
        };
        let value = |name: &str| {
            headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(",")
        };
        let upgrade = self.side == Side::Request && value("upgrade").contains("websocket");
        out.push(Piece::Head {
            bytes: head.clone(),
            upgrade,
        });
        let chunked = value("transfer-encoding").contains("chunked");
        let length = value("content-length").trim().parse::<u64>().ok();
        self.state = match (self.side, status) {
            // Once a connection has asked to upgrade or switched, what
            // follows is not HTTP.
            (Side::Request, _) if upgrade => State::Raw,
            (Side::Response, Some(101)) => State::Raw,
            (Side::Response, Some(100..=199)) => State::Head,
            (Side::Response, Some(204 | 304)) => return self.end(out),
            _ if chunked => State::Chunked(Chunk::Size { line: Vec::new() }),
            _ => match (length, self.side) {
                (Some(0), _) | (None, Side::Request) => return self.end(out),
                (Some(n), _) => State::Length(n),
                (None, Side::Response) => State::UntilClose,
            },
        };
    }

    fn end(&mut self, out: &mut Vec<Piece>) {
        out.push(Piece::End);
        self.state = State::Head;
    }
}

/// Walks chunked framing over `input`: how many bytes belong to this body,
/// and whether the body ended there. `Err` on malformed framing.
fn scan_chunked(chunk: &mut Chunk, input: &[u8]) -> Result<(usize, bool), ()> {
    let mut i = 0;
    while i < input.len() {
        match chunk {
            Chunk::Size { line } => {
                let byte = input[i];
                i += 1;
                if byte != b'\n' {
                    if line.len() >= MAX_CHUNK_LINE {
                        return Err(());
                    }
                    line.push(byte);
                    continue;
                }
                let text = std::str::from_utf8(line).map_err(|_| ())?;
                let hex = text.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(hex, 16).map_err(|_| ())?;
                *chunk = if size == 0 {
                    Chunk::Trailer { line: 0 }
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(left) => {
                let take = (*left).min((input.len() - i) as u64);
                *left -= take;
                i += take as usize;
                if *left == 0 {
                    *chunk = Chunk::DataEnd(2);
                }
            }
            Chunk::DataEnd(left) => {
                i += 1;
                *left -= 1;
                if *left == 0 {
                    *chunk = Chunk::Size { line: Vec::new() };
                }
            }
            Chunk::Trailer { line } => {
                let byte = input[i];
                i += 1;
                match byte {
                    b'\n' if *line == 0 => return Ok((i, true)),
                    b'\n' => *line = 0,
                    b'\r' => {}
                    _ => *line += 1,
                }
            }
        }
    }
    Ok((i, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` in pieces of `step` bytes and returns the labels,
    /// with adjacent body and raw pieces merged (read sizes do not matter).
    pub(crate) fn frame(side: Side, stream: &[u8], step: usize) -> Vec<Piece> {
        let mut framer = Framer::new(side);
        let mut out = Vec::new();
        for part in stream.chunks(step) {
            framer.feed(Bytes::copy_from_slice(part), &mut out);
        }
        framer.finish(&mut out);
        let mut merged: Vec<Piece> = Vec::new();
        for piece in out {
            match (merged.last_mut(), piece) {
                (Some(Piece::Body(a)), Piece::Body(b)) | (Some(Piece::Raw(a)), Piece::Raw(b)) => {
                    *a = [a.as_ref(), b.as_ref()].concat().into();
                }
                (_, piece) => merged.push(piece),
            }
        }
        merged
    }

    fn head(text: &str, upgrade: bool) -> Piece {
        Piece::Head {
            bytes: Bytes::copy_from_slice(text.as_bytes()),
            upgrade,
        }
    }

    fn body(text: &str) -> Piece {
        Piece::Body(Bytes::copy_from_slice(text.as_bytes()))
    }

    const LENGTH: &str = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
    const CHUNKED: &str = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";

    #[test]
    fn responses_end_where_their_length_says_at_any_read_size() {
        let stream = format!("{LENGTH}hello{LENGTH}world");
        for step in [1, 3, 7, 1000] {
            assert_eq!(
                frame(Side::Response, stream.as_bytes(), step),
                [
                    head(LENGTH, false),
                    body("hello"),
                    Piece::End,
                    head(LENGTH, false),
                    body("world"),
                    Piece::End
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn a_chunked_body_ends_at_its_last_chunk_and_trailers() {
        let chunks = "5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nx-trailer: 1\r\n\r\n";
        let stream = format!("{CHUNKED}{chunks}{LENGTH}after");
        for step in [1, 2, 5, 1000] {
            assert_eq!(
                frame(Side::Response, stream.as_bytes(), step),
                [
                    head(CHUNKED, false),
                    body(chunks),
                    Piece::End,
                    head(LENGTH, false),
                    body("after"),
                    Piece::End
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn an_event_stream_never_ends_until_the_connection_does() {
        let sse = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let events = "9\r\ndata: 1\n\n\r\n";
        let stream = format!("{sse}{events}{events}");
        assert_eq!(
            frame(Side::Response, stream.as_bytes(), 4),
            [head(sse, false), body(&format!("{events}{events}"))]
        );
        // Without a length or chunking, the close ends the body.
        let close = "HTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(
            frame(Side::Response, format!("{close}bytes").as_bytes(), 3),
            [head(close, false), body("bytes"), Piece::End]
        );
    }

    #[test]
    fn no_body_after_204_and_raw_after_101() {
        let no_content = "HTTP/1.1 204 No Content\r\n\r\n";
        let switching = "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n";
        let stream = format!("{no_content}{switching}\u{81}\u{2}hi");
        assert_eq!(
            frame(Side::Response, stream.as_bytes(), 5),
            [
                head(no_content, false),
                Piece::End,
                head(switching, false),
                Piece::Raw(Bytes::from("\u{81}\u{2}hi"))
            ]
        );
    }

    #[test]
    fn requests_are_told_apart_and_upgrades_flagged() {
        let get = "GET /rooms/a/poll HTTP/1.1\r\nhost: x\r\n\r\n";
        let post = "POST /rooms/a/messages HTTP/1.1\r\ncontent-length: 2\r\n\r\n";
        let ws = "GET /rooms/a/ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\r\n";
        let stream = format!("{get}{post}{{}}{ws}frames");
        assert_eq!(
            frame(Side::Request, stream.as_bytes(), 9),
            [
                head(get, false),
                Piece::End,
                head(post, false),
                body("{}"),
                Piece::End,
                head(ws, true),
                Piece::Raw(Bytes::from("frames"))
            ]
        );
    }

    #[test]
    fn what_is_not_http_passes_through_unchanged() {
        let garbage = b"\x16\x03\x01 not http\r\n\r\nmore";
        let pieces = frame(Side::Request, garbage, 3);
        assert_eq!(pieces, [Piece::Raw(Bytes::from_static(garbage))]);
        // A head that never ends is let go past the bound.
        let endless = vec![b'a'; MAX_HEAD + 10];
        let mut framer = Framer::new(Side::Response);
        let mut out = Vec::new();
        framer.feed(Bytes::from_static(b"HTTP/1.1 200 OK\r\nx: "), &mut out);
        framer.feed(Bytes::from(endless), &mut out);
        assert!(matches!(out.as_slice(), [Piece::Raw(_)]));
    }
}
