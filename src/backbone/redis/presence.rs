//! Presence across instances: each counts its own, Redis adds them up.
//!
//! On every presence tick (1 s by default) each instance, in one pipelined
//! round trip for all its rooms, writes its own per-transport counts for
//! each room into the hash `skyrocket:{room}:online`, field = its instance
//! id, value = the counts and the time written (a zero count deletes the
//! field), and reads the whole hash back. The others' entries written within
//! the presence TTL (three ticks, at least 3 s) are summed and handed to the
//! room (`Rooms::share_presence`), which adds its own live counts and publishes on change.
//!
//! How stale: a change on another instance shows here within two ticks
//! (theirs writes it, ours reads it), so about 2 s at the default. An
//! instance that dies without deleting its entry keeps being counted until
//! the TTL passes, about 3 s; its stale field is then deleted by whoever
//! reads it, and the hash itself expires when no instance writes to it.
//! While Redis is unreachable each instance counts only its own clients.

use super::scripts::Keys;
use super::Inner;
use crate::message::{now_millis, Online};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One instance's entry in a room's presence hash.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    online: Online,
    /// When it was written, milliseconds since the Unix epoch.
    at: u64,
}

/// Writes this instance's counts, `(room, online here)`, and returns the
/// other instances' sum for each room, in the same order.
pub(super) async fn share(inner: &Inner, rooms: &[(&str, Online)]) -> Vec<Online> {
    if rooms.is_empty() {
        return Vec::new();
    }
    let now = now_millis();
    let ttl_ms = inner.config.presence_ttl.as_millis() as u64;
    let keys: Vec<String> = rooms
        .iter()
        .map(|(name, _)| Keys::new(name).online)
        .collect();
    let mut pipe = redis::pipe();
    for ((_, online), key) in rooms.iter().zip(&keys) {
        let online = *online;
        if online.total() > 0 {
            let entry = serde_json::to_string(&Entry { online, at: now })
                .expect("presence counts serialise");
            pipe.hset(key, &inner.instance, entry).ignore();
            // The hash outlives its writers by a few TTLs at most.
            pipe.pexpire(key, (ttl_ms * 3) as i64).ignore();
        } else {
            pipe.hdel(key, &inner.instance).ignore();
        }
        pipe.hgetall(key);
    }
    let mut conn = inner.commands.clone();
    let hashes: Vec<HashMap<String, String>> = match pipe.query_async(&mut conn).await {
        Ok(hashes) => hashes,
        Err(e) => {
            tracing::debug!(error = %e, "presence not shared: redis unreachable");
            return vec![Online::default(); rooms.len()];
        }
    };
    let mut stale = redis::pipe();
    let mut remote = Vec::with_capacity(rooms.len());
    for (key, hash) in keys.iter().zip(hashes) {
        let mut others = Online::default();
        for (instance, value) in hash {
            if instance == inner.instance {
                continue;
            }
            match serde_json::from_str::<Entry>(&value) {
                Ok(entry) if now.saturating_sub(entry.at) <= ttl_ms => {
                    others = others + entry.online;
                }
                // Its instance stopped writing (or it is not ours): drop it.
                _ => {
                    stale.hdel(key, instance).ignore();
                }
            }
        }
        remote.push(others);
    }
    if !stale.is_empty() {
        let _ = stale.exec_async(&mut conn).await;
    }
    remote
}
