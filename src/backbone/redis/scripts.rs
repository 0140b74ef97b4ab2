//! The room's keys in Redis and the two Lua scripts that touch them.
//!
//! Keys share the `{room}` hash tag, so a room's keys sit in one slot and a
//! script may touch them all (Redis Cluster requires it):
//! - `skyrocket:{room}:epoch`: the room life's epoch, created when missing;
//! - `skyrocket:{room}:seq`: the last id assigned, the one counter all
//!   instances number from;
//! - `skyrocket:{room}:log`: the stream, entry `<id>-0` holding field `json`
//!   (the message object, id included), trimmed with `MAXLEN ~ history`;
//! - `skyrocket:{room}:online`: presence, one hash field per instance;
//! - `skyrocket:{room}:live`: a pub/sub channel (not a key) on which the
//!   append script publishes each message as `<id> <epoch> <json>`.
//!
//! Why scripts: two instances that `INCR` and then `XADD` as two commands
//! can interleave (A gets 7, B gets 8, B adds 8, A's 7 is then refused as
//! older than the stream's top). One script runs atomically, so ids are
//! assigned and appended in the same order, with no gap and no refusal.
//! `Script` sends `EVALSHA` and loads the script on `NOSCRIPT`, which is what
//! a restarted Redis answers.

use crate::backbone::{new_epoch, BackboneError, LogRead};
use crate::message::Posted;
use bytes::Bytes;
use redis::{Script, Value};
use std::sync::{Arc, LazyLock};

/// The names of one room's keys.
#[derive(Debug, Clone)]
pub struct Keys {
    pub epoch: String,
    pub seq: String,
    pub log: String,
    pub online: String,
    /// The pub/sub channel of live messages.
    pub live: String,
}

impl Keys {
    pub fn new(room: &str) -> Self {
        // Room names are `[A-Za-z0-9_-]`, so they cannot break the braces.
        let key = |part: &str| format!("skyrocket:{{{room}}}:{part}");
        Self {
            epoch: key("epoch"),
            seq: key("seq"),
            log: key("log"),
            online: key("online"),
            live: key("live"),
        }
    }
}

/// Creates the life if there is none, takes the next id, appends the
/// message with that id spliced into its JSON, publishes it with its id and
/// epoch on the room's channel (in the same atomic step, so the channel
/// carries a life's ids in order), and returns the id.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: epoch, seq, log. ARGV: JSON before the id, JSON after it,
-- an epoch for a new life, history to retain, the live channel.
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[1], epoch)
end
local id = string.format('%d', redis.call('INCR', KEYS[2]))
local json = ARGV[1] .. id .. ARGV[2]
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], id .. '-0', 'json', json)
redis.call('PUBLISH', ARGV[5], id .. ' ' .. epoch .. ' ' .. json)
return id
",
    )
});

/// The room's life and bounds, and optionally the retained messages after
/// a cursor, read at one instant.
///
/// Creates the life when there is none (a new room, or a Redis that lost its
/// data). Also starts a new life when the counter is below the last id the
/// caller delivered in the life it names: Redis came back with older data
/// (a snapshot, or an fsync policy that lost the last writes), so ids the
/// clients already hold would be handed out again for other messages.
static LIFE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: epoch, seq, log. ARGV: an epoch for a new life, the epoch the
-- caller knows ('' for none), the last id it delivered in that epoch,
-- the first id to return ('' for no messages).
local epoch = redis.call('GET', KEYS[1])
local latest = tonumber(redis.call('GET', KEYS[2]) or '0')
if not epoch or (epoch == ARGV[2] and latest < tonumber(ARGV[3])) then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local out = {epoch, string.format('%d', latest)}
if ARGV[4] ~= '' then
  local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)
  out[3] = first[1] and first[1][1] or ''
  for _, entry in ipairs(redis.call('XRANGE', KEYS[3], ARGV[4], '+')) do
    out[#out + 1] = entry[1]
    out[#out + 1] = entry[2][2]
  end
end
return out
",
    )
});

/// The message JSON around its id: `{"type":"message","id":` and the rest.
/// The sender encodes the message once; the script splices the id in, and
/// every instance hands out those bytes unchanged.
pub struct Template {
    pub head: Bytes,
    pub tail: Bytes,
}

const ID_PREFIX: &[u8] = br#"{"type":"message","id":"#;

impl Template {
    /// `json` is a message encoded with id 0.
    pub fn new(json: Vec<u8>) -> Self {
        // serde writes fields in declaration order, and `type` and `id` come
        // first in `ChatMessage`; a unit test holds that in place.
        assert!(
            json.starts_with(ID_PREFIX) && json.get(ID_PREFIX.len()) == Some(&b'0'),
            "a message's JSON starts with its type and id"
        );
        let mut head = Bytes::from(json);
        let mut tail = head.split_off(ID_PREFIX.len());
        let _zero = tail.split_to(1);
        Self { head, tail }
    }

    /// The JSON with `id` in place.
    pub fn with_id(&self, id: u64) -> Bytes {
        let id = id.to_string();
        let mut json = Vec::with_capacity(self.head.len() + id.len() + self.tail.len());
        json.extend_from_slice(&self.head);
        json.extend_from_slice(id.as_bytes());
        json.extend_from_slice(&self.tail);
        Bytes::from(json)
    }
}

pub async fn append(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    template: &Template,
    history: usize,
) -> redis::RedisResult<u64> {
    let id: String = APPEND
        .key(&keys.epoch)
        .key(&keys.seq)
        .key(&keys.log)
        .arg(template.head.as_ref())
        .arg(template.tail.as_ref())
        .arg(new_epoch().as_ref())
        .arg(history)
        .arg(&keys.live)
        .invoke_async(conn)
        .await?;
    id.parse()
        .map_err(|_| protocol_error("append answered a non-numeric id"))
}

/// What to ask [`life`] for besides the epoch and the latest id.
pub struct LifeQuery<'a> {
    /// The epoch the caller delivered from, and the last id it delivered.
    pub known: Option<(&'a str, u64)>,
    /// Also read the retained messages after this cursor.
    pub messages_after: Option<u64>,
}

pub async fn life(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    query: LifeQuery<'_>,
) -> redis::RedisResult<LogRead> {
    let (known_epoch, delivered) = query.known.unwrap_or(("", 0));
    let start = query
        .messages_after
        .map_or(String::new(), |cursor| format!("{}-0", cursor + 1));
    let reply: Vec<Value> = LIFE
        .key(&keys.epoch)
        .key(&keys.seq)
        .key(&keys.log)
        .arg(new_epoch().as_ref())
        .arg(known_epoch)
        .arg(delivered)
        .arg(start)
        .invoke_async(conn)
        .await?;
    parse_life(reply)
}

fn parse_life(reply: Vec<Value>) -> redis::RedisResult<LogRead> {
    let mut fields = reply.into_iter().map(bulk);
    let (Some(Some(epoch)), Some(Some(latest))) = (fields.next(), fields.next()) else {
        return Err(protocol_error(
            "the life script answered without epoch and id",
        ));
    };
    let epoch: Arc<str> = String::from_utf8_lossy(&epoch).into();
    let latest = std::str::from_utf8(&latest)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol_error("the life script answered a non-numeric id"))?;
    let oldest = fields
        .next()
        .flatten()
        .and_then(|id| entry_id(&id))
        .unwrap_or(latest + 1);
    let mut messages = Vec::new();
    while let (Some(Some(id)), Some(Some(json))) = (fields.next(), fields.next()) {
        if let Some(id) = entry_id(&id) {
            messages.push(Arc::new(Posted::from_json(id, json)));
        }
    }
    Ok(LogRead {
        epoch,
        latest,
        oldest,
        messages,
    })
}

/// The bytes of a bulk string reply, without a copy.
fn bulk(value: Value) -> Option<Bytes> {
    match value {
        Value::BulkString(bytes) => Some(Bytes::from(bytes)),
        Value::SimpleString(text) => Some(Bytes::from(text)),
        _ => None,
    }
}

/// `17-0` -> 17. Our entries always have sequence 0.
pub fn entry_id(id: &[u8]) -> Option<u64> {
    let id = std::str::from_utf8(id).ok()?;
    id.split_once('-').map_or(id, |(ms, _)| ms).parse().ok()
}

fn protocol_error(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Client, what))
}

/// Every Redis failure means the same to a client: nothing was stored or
/// read, try again later (a 503).
pub fn unavailable(e: redis::RedisError) -> BackboneError {
    BackboneError::Unavailable(format!("redis unreachable ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Draft, Posted};

    #[test]
    fn the_template_splices_the_id_where_serde_puts_it() {
        let draft = Draft {
            user: "ada".into(),
            text: "hi \"there\"".into(),
            client_id: Some("c-1".into()),
        };
        let zero = Posted::new(&draft.clone().into_message("lobby", 0, 5));
        let template = Template::new(zero.json.to_vec());
        let real = Posted::new(&draft.into_message("lobby", 1234, 5));
        assert_eq!(template.with_id(1234), real.json);
    }

    #[test]
    fn entry_ids_parse() {
        assert_eq!(entry_id(b"17-0"), Some(17));
        assert_eq!(entry_id(b"17"), Some(17));
        assert_eq!(entry_id(b"x-0"), None);
    }
}
