//! The reader: one task per active room per instance, the only place the
//! room's stream is read for live delivery.
//!
//! It blocks in `XREAD BLOCK` from the last id it delivered, on a connection
//! of its own, and pushes each batch into the room's window and feed. When
//! the connection fails it reconnects with a bounded backoff (100 ms,
//! doubling, at most 2 s), checks that the room is still in the same life,
//! and reads on from the same id: nothing accepted while it was away is
//! skipped. Once every block period, busy or idle, it checks the life too
//! (a Redis flushed or rolled back under a live connection), and stops if
//! the room has had no subscriber on this instance for a whole period.

use super::log::Shared;
use super::scripts::{self, LifeQuery};
use crate::message::Posted;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long one `XREAD` blocks; also how often the reader checks the room's
/// life and whether anyone still wants it.
pub const BLOCK: Duration = Duration::from_secs(5);
/// Entries taken per read: a reader that is behind catches up in batches.
const BATCH: usize = 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Where the reader is: the life it delivers from and the last id delivered.
struct Position {
    epoch: Arc<str>,
    cursor: u64,
}

pub(super) async fn run(
    shared: Arc<Shared>,
    conn: MultiplexedConnection,
    epoch: Arc<str>,
    cursor: u64,
) {
    let room = shared.room.clone();
    let mut position = Position { epoch, cursor };
    let mut conn = Some(conn);
    let mut backoff = BACKOFF_MIN;
    let mut last_look = Instant::now();
    loop {
        // At most once a block period, however busy the stream: does anyone
        // still want this room here, and is it still the same life in Redis?
        let look = last_look.elapsed() >= BLOCK;
        if look {
            last_look = Instant::now();
            if shared.stop_if_unwanted() {
                tracing::debug!(%room, "reader stopped: no subscribers");
                return;
            }
        }
        let Some(c) = conn.as_mut() else {
            match reconnect(&shared, &mut position).await {
                Ok(c) => {
                    tracing::info!(%room, cursor = position.cursor, "reader reconnected to redis");
                    conn = Some(c);
                    backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    tracing::debug!(%room, error = %e, ?backoff, "reader cannot reach redis");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
            continue;
        };
        let outcome = if look {
            check_life(c, &shared, &mut position).await
        } else {
            match read_batch(c, &shared, position.cursor).await {
                Ok(Some((last, batch))) => {
                    position.cursor = last;
                    shared.deliver(batch);
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        };
        if let Err(e) = outcome {
            tracing::warn!(%room, error = %e, "reader lost redis; retrying");
            conn = None;
        }
    }
}

async fn reconnect(
    shared: &Shared,
    position: &mut Position,
) -> redis::RedisResult<MultiplexedConnection> {
    let mut conn = shared.backbone.blocking_connection().await?;
    check_life(&mut conn, shared, position).await?;
    Ok(conn)
}

/// Asks Redis whether the room is still in the life this reader delivers
/// from, with nothing lost behind its cursor; if not, announces the new life
/// and reads it from its start.
async fn check_life(
    conn: &mut MultiplexedConnection,
    shared: &Shared,
    position: &mut Position,
) -> redis::RedisResult<()> {
    let query = LifeQuery {
        known: Some((&position.epoch, position.cursor)),
        messages_after: None,
    };
    let life = scripts::life(conn, &shared.keys, query).await?;
    if life.epoch != position.epoch {
        tracing::warn!(
            room = %shared.room,
            old = %position.epoch,
            new = %life.epoch,
            "the room's data in redis was lost: new life, clients are sent a reset"
        );
        shared.new_life(Arc::clone(&life.epoch), life.latest);
        *position = Position {
            epoch: life.epoch,
            cursor: 0,
        };
    }
    Ok(())
}

/// The next entries after `cursor`, waiting up to [`BLOCK`] for some, and
/// the id to read on from; `None` when none came.
async fn read_batch(
    conn: &mut MultiplexedConnection,
    shared: &Shared,
    cursor: u64,
) -> redis::RedisResult<Option<(u64, Vec<Arc<Posted>>)>> {
    let options = StreamReadOptions::default()
        .block(BLOCK.as_millis() as usize)
        .count(BATCH);
    let after = format!("{cursor}-0");
    let reply: Option<StreamReadReply> = conn
        .xread_options(&[&shared.keys.log], &[&after], &options)
        .await?;
    let Some(reply) = reply else {
        return Ok(None);
    };
    let mut batch = Vec::new();
    let mut last = cursor;
    for entry in reply.keys.into_iter().flat_map(|key| key.ids) {
        let id = scripts::entry_id(entry.id.as_bytes());
        let json = entry
            .map
            .into_iter()
            .find_map(|(field, value)| match value {
                Value::BulkString(json) if field == "json" => Some(json),
                _ => None,
            });
        match (id, json) {
            (Some(id), Some(json)) if id > last => {
                last = id;
                batch.push(Arc::new(Posted::from_json(id, json.into())));
            }
            // Not written by our script; stepping over it keeps the reader
            // from reading it again forever.
            (id, _) => {
                last = last.max(id.unwrap_or(last));
                tracing::warn!(room = %shared.room, id = %entry.id, "skipped a stream entry that is not ours");
            }
        }
    }
    Ok((last > cursor || !batch.is_empty()).then_some((last, batch)))
}
