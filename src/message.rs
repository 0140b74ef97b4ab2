//! The one message and event model every transport serialises (CONTRACT.md).
//!
//! A chat message is turned into JSON exactly once, when the room accepts it,
//! and every transport hands out those same bytes: the WebSocket sends them as
//! a text frame, SSE puts them after `data:`, and a poll body splices them into
//! its `messages` array. Fan-out to N receivers therefore costs N writes of
//! shared bytes, not N calls to `serde_json`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// A message the room has accepted: its id and its JSON, encoded once.
#[derive(Debug)]
pub struct Posted {
    pub id: u64,
    /// The whole message object, `{"type":"message","id":..,...}`.
    pub json: Bytes,
    /// The SSE encoding (`id:` and `data:` lines), built by the first SSE
    /// receiver and shared by all the others.
    sse_frame: OnceLock<Bytes>,
    /// When this process accepted the message (over Redis: heard it), the
    /// start of the delivery delay in `/metrics`.
    pub accepted: std::time::Instant,
}

impl Posted {
    pub fn new(message: &ChatMessage) -> Self {
        let json = serde_json::to_vec(message).expect("a chat message always serialises");
        Self::from_json(message.id, Bytes::from(json))
    }

    /// Wraps JSON that was encoded elsewhere (for example read back from a log).
    pub fn from_json(id: u64, json: Bytes) -> Self {
        Self {
            id,
            json,
            sse_frame: OnceLock::new(),
            accepted: std::time::Instant::now(),
        }
    }

    /// The SSE form of this message, computed at most once per message.
    pub fn sse_frame(&self, encode: impl FnOnce(&Self) -> Bytes) -> Bytes {
        self.sse_frame.get_or_init(|| encode(self)).clone()
    }
}

/// The message object of the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    #[serde(rename = "type")]
    pub kind: MessageTag,
    pub id: u64,
    pub room: String,
    pub user: String,
    pub text: String,
    pub ts: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_id: Option<String>,
}

/// The constant `"type":"message"` tag, so the struct serialises the contract's
/// field order without a hand-written serializer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageTag {
    Message,
}

/// What a sender supplies, over `POST` or a WebSocket `send` frame.
#[derive(Debug, Clone, Deserialize)]
pub struct Draft {
    pub user: String,
    pub text: String,
    #[serde(default)]
    pub client_id: Option<String>,
}

/// Why a draft was refused; shown to the sender as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftError {
    UserEmpty,
    UserTooLong,
    UserControlChars,
    TextEmpty,
    TextTooLong { max_bytes: usize },
    TextControlChars,
    ClientIdInvalid,
}

impl std::fmt::Display for DraftError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UserEmpty => f.write_str("user must not be empty"),
            Self::UserTooLong => f.write_str("user must be at most 32 characters"),
            Self::UserControlChars => f.write_str("user must not contain control characters"),
            Self::TextEmpty => f.write_str("text must not be empty"),
            Self::TextTooLong { max_bytes } => write!(f, "text must be at most {max_bytes} bytes"),
            Self::TextControlChars => {
                f.write_str("text must not contain control characters other than newline and tab")
            }
            Self::ClientIdInvalid => {
                f.write_str("client_id must be at most 64 printable ASCII characters")
            }
        }
    }
}

impl std::error::Error for DraftError {}

impl Draft {
    /// Checks the contract's rules and returns the draft with `user` trimmed.
    pub fn validate(mut self, max_text_bytes: usize) -> Result<Self, DraftError> {
        let user = self.user.trim();
        if user.is_empty() {
            return Err(DraftError::UserEmpty);
        }
        if user.chars().count() > 32 {
            return Err(DraftError::UserTooLong);
        }
        if user.chars().any(char::is_control) {
            return Err(DraftError::UserControlChars);
        }
        self.user = user.to_owned();
        if self.text.is_empty() {
            return Err(DraftError::TextEmpty);
        }
        if self.text.len() > max_text_bytes {
            return Err(DraftError::TextTooLong {
                max_bytes: max_text_bytes,
            });
        }
        if self
            .text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(DraftError::TextControlChars);
        }
        if let Some(id) = &self.client_id {
            if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
                return Err(DraftError::ClientIdInvalid);
            }
        }
        Ok(self)
    }

    pub fn into_message(self, room: &str, id: u64, ts: u64) -> ChatMessage {
        ChatMessage {
            kind: MessageTag::Message,
            id,
            room: room.to_owned(),
            user: self.user,
            text: self.text,
            ts,
            client_id: self.client_id,
        }
    }
}

/// Milliseconds since the Unix epoch, the contract's `ts`.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Control events (everything but chat messages), as the contract names them.
/// They are rare next to messages, so they are serialised where they are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Control {
    Hello {
        room: String,
        epoch: String,
        latest: u64,
    },
    Presence {
        room: String,
        online: Online,
        total: u64,
    },
    Ack {
        id: u64,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        client_id: Option<String>,
    },
    Error {
        error: String,
    },
    /// Ids `from..=to` are gone from the room's history and will not be sent.
    Gap {
        from: u64,
        to: u64,
    },
    /// The room started a new life: drop the old cursor; history follows.
    Reset {
        epoch: String,
        latest: u64,
    },
}

impl Control {
    pub fn to_json(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("control events always serialise"))
    }
}

/// The ways a client reaches a room, and what else a connection's bytes
/// can be charged to: the one list of transports the server, the clients,
/// presence and `/stats` share. [`Transport::name`] is how the contract
/// spells each (the keys of `/stats` and of a presence event's `online`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Ws,
    Sse,
    LongPoll,
    Poll,
    /// `POST /rooms/{room}/messages`: sends, not a way to receive.
    Send,
    /// Everything else a connection carries: the page, `/stats`, 404s.
    Other,
}

impl Transport {
    pub const ALL: [Transport; 6] = [
        Self::Ws,
        Self::Sse,
        Self::LongPoll,
        Self::Poll,
        Self::Send,
        Self::Other,
    ];

    /// The four ways to receive a room's messages, the ones a client picks.
    pub const RECEIVING: [Transport; 4] = [Self::Ws, Self::Sse, Self::LongPoll, Self::Poll];

    pub fn name(self) -> &'static str {
        match self {
            Self::Ws => "ws",
            Self::Sse => "sse",
            Self::LongPoll => "longpoll",
            Self::Poll => "poll",
            Self::Send => "send",
            Self::Other => "other",
        }
    }

    /// Its position in [`Transport::ALL`], for per-transport arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: u8) -> Option<Self> {
        Self::ALL.get(i as usize).copied()
    }
}

/// A receiving transport by its contract name (`ws`, `sse`, `longpoll`,
/// `poll`), as `loadgen --transport` takes it.
impl std::str::FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::RECEIVING
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown transport {s:?}: expected ws, sse, longpoll or poll"))
    }
}

/// Where a client wants to start reading (`since`, `epoch`; see CONTRACT).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// The last id the client has; `None` means "from now".
    pub since: Option<u64>,
    /// The room life `since` belongs to, when the client knows it.
    pub epoch: Option<String>,
}

/// How many clients are online, per receiving transport. The fields are
/// the contract's keys; [`Online::of`] reaches them by [`Transport`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Online {
    pub ws: u64,
    pub sse: u64,
    pub longpoll: u64,
    pub poll: u64,
}

impl Online {
    pub fn total(&self) -> u64 {
        Transport::RECEIVING.iter().map(|&t| self.of(t)).sum()
    }

    /// The count for `transport`; always 0 for `Send` and `Other`.
    pub fn of(&self, transport: Transport) -> u64 {
        match transport {
            Transport::Ws => self.ws,
            Transport::Sse => self.sse,
            Transport::LongPoll => self.longpoll,
            Transport::Poll => self.poll,
            Transport::Send | Transport::Other => 0,
        }
    }

    /// Adds `n` clients on `transport` (nothing for `Send` and `Other`).
    pub fn increase(&mut self, transport: Transport, n: u64) {
        match transport {
            Transport::Ws => self.ws += n,
            Transport::Sse => self.sse += n,
            Transport::LongPoll => self.longpoll += n,
            Transport::Poll => self.poll += n,
            Transport::Send | Transport::Other => {}
        }
    }
}

/// Counts from several places (instances) add up per transport.
impl std::ops::Add for Online {
    type Output = Self;

    fn add(mut self, other: Self) -> Self {
        for t in Transport::RECEIVING {
            self.increase(t, other.of(t));
        }
        self
    }
}

/// One transport's counters as `GET /stats` reports them under
/// `transports` (the fields the contract names; the server adds more).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CountersSnapshot {
    pub connections_open: u64,
    pub connections_total: u64,
    pub requests: u64,
    pub delivered: u64,
    pub payload_bytes: u64,
    pub wire_bytes_in: u64,
    pub wire_bytes_out: u64,
}

/// Several servers' counters summed, as loadgen reads a room spread over
/// instances.
impl std::ops::AddAssign for CountersSnapshot {
    fn add_assign(&mut self, other: Self) {
        self.connections_open += other.connections_open;
        self.connections_total += other.connections_total;
        self.requests += other.requests;
        self.delivered += other.delivered;
        self.payload_bytes += other.payload_bytes;
        self.wire_bytes_in += other.wire_bytes_in;
        self.wire_bytes_out += other.wire_bytes_out;
    }
}

/// Any event a client can receive, parsed (used by the Rust clients).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Event {
    Message(ChatMessage),
    Control(Control),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(user: &str, text: &str) -> Draft {
        Draft {
            user: user.into(),
            text: text.into(),
            client_id: None,
        }
    }

    #[test]
    fn validation_follows_the_contract() {
        assert_eq!(draft("  ada ", "hi").validate(10).unwrap().user, "ada");
        assert_eq!(
            draft(" ", "hi").validate(10).unwrap_err(),
            DraftError::UserEmpty
        );
        assert_eq!(
            draft(&"a".repeat(33), "hi").validate(10).unwrap_err(),
            DraftError::UserTooLong
        );
        assert!(draft(&"é".repeat(32), "hi").validate(10).is_ok());
        assert_eq!(
            draft("a\u{7}", "hi").validate(10).unwrap_err(),
            DraftError::UserControlChars
        );
        assert!(draft("a", "line\n\tnext").validate(100).is_ok());
        assert_eq!(
            draft("a", "bell\u{7}").validate(100).unwrap_err(),
            DraftError::TextControlChars
        );
        assert_eq!(
            draft("a", "12345678901").validate(10).unwrap_err(),
            DraftError::TextTooLong { max_bytes: 10 }
        );
    }

    #[test]
    fn message_json_has_the_contract_shape() {
        let m = draft("ada", "hello").into_message("lobby", 17, 5);
        let json = String::from_utf8(Posted::new(&m).json.to_vec()).unwrap();
        assert_eq!(
            json,
            r#"{"type":"message","id":17,"room":"lobby","user":"ada","text":"hello","ts":5}"#
        );
        let parsed: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, Event::Message(m));
    }
}
