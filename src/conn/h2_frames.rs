//! HTTP/2 framing (RFC 9113 section 4.1): a byte stream cut into frames,
//! each a 9-byte header (24-bit payload length, type, flags, 31-bit stream
//! id) and its payload, whatever the reads or writes cut it into.
//!
//! Shared by the byte accounting (`h2.rs`) and the wire view's capture
//! (`h2_capture.rs`).

/// What a client sends first: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub(super) const FRAME_HEADER: usize = 9;

pub(super) const DATA: u8 = 0x0;
pub(super) const HEADERS: u8 = 0x1;
pub(super) const RST_STREAM: u8 = 0x3;
pub(super) const CONTINUATION: u8 = 0x9;
pub(super) const END_STREAM: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// The most payload bytes kept of one frame; hyper refuses larger header
/// lists anyway, and the wire view keeps less.
pub(super) const MAX_KEPT: usize = 64 * 1024;

/// A frame's 9-byte header, decoded, and as it was on the wire.
#[derive(Debug, Clone, Copy)]
pub(super) struct FrameHead {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub raw: [u8; FRAME_HEADER],
}

impl FrameHead {
    fn parse(h: [u8; FRAME_HEADER]) -> Self {
        Self {
            len: usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]),
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
            raw: h,
        }
    }

    /// A DATA or HEADERS frame that ends its stream's side.
    pub fn ends_stream(&self) -> bool {
        matches!(self.kind, DATA | HEADERS) && self.flags & END_STREAM != 0
    }
}

/// Where a [`FrameReader`] hands what it read.
pub(super) trait FrameSink {
    /// Whether `frame`'s payload is wanted: asked as its bytes arrive, so
    /// frames nobody wants are never copied.
    fn keep(&mut self, frame: &FrameHead) -> bool;
    /// A whole frame was read; `payload` is empty unless [`Self::keep`]
    /// wanted it (and then at most [`MAX_KEPT`] bytes of it).
    fn frame(&mut self, frame: FrameHead, payload: &[u8]);
}

/// Splits one direction of a connection into frames.
#[derive(Debug)]
pub(super) struct FrameReader {
    preface_left: usize,
    head: [u8; FRAME_HEADER],
    head_len: usize,
    frame: Option<FrameHead>,
    payload_left: usize,
    /// The current frame's payload, kept only for frames that need it.
    payload: Vec<u8>,
}

impl FrameReader {
    /// A reader that first skips `preface` bytes.
    pub fn new(preface: usize) -> Self {
        Self {
            preface_left: preface,
            head: [0; FRAME_HEADER],
            head_len: 0,
            frame: None,
            payload_left: 0,
            payload: Vec::new(),
        }
    }

    /// Feeds `data`; hands `sink` each frame completed in it.
    pub fn feed(&mut self, mut data: &[u8], sink: &mut impl FrameSink) {
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
                    let frame = FrameHead::parse(self.head);
                    self.head_len = 0;
                    self.frame = Some(frame);
                    self.payload_left = frame.len;
                    self.payload.clear();
                    if frame.len == 0 {
                        self.frame = None;
                        sink.frame(frame, &[]);
                    }
                }
                continue;
            };
            let take = self.payload_left.min(data.len());
            if sink.keep(&frame) {
                // A prefix at most: what is kept is always contiguous.
                let room = MAX_KEPT.saturating_sub(self.payload.len());
                self.payload.extend_from_slice(&data[..take.min(room)]);
            }
            self.payload_left -= take;
            data = &data[take..];
            if self.payload_left == 0 {
                self.frame = None;
                sink.frame(frame, &self.payload);
            }
        }
    }
}

/// The header block fragment of a HEADERS frame's payload: without its
/// padding and priority fields.
pub(super) fn header_fragment<'a>(frame: &FrameHead, payload: &'a [u8]) -> Option<&'a [u8]> {
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
