//! Per-transport counters behind `GET /stats`: connections, requests,
//! deliveries, payload bytes and the wire bytes counted in [`crate::conn`].
//!
//! Every counter is a relaxed atomic: each is an independent tally that no
//! reader needs to see in step with another, so no ordering is paid for.

use crate::message::{CountersSnapshot, Online, Transport};
use crate::room::{Room, RoomCounters, Rooms};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Counters {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub requests: AtomicU64,
    pub delivered: AtomicU64,
    pub payload_bytes: AtomicU64,
    pub wire_bytes_in: AtomicU64,
    pub wire_bytes_out: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            connections_open: self.connections_open.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            requests: self.requests.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            payload_bytes: self.payload_bytes.load(Relaxed),
            wire_bytes_in: self.wire_bytes_in.load(Relaxed),
            wire_bytes_out: self.wire_bytes_out.load(Relaxed),
        }
    }
}

/// Each limit of the README's limits table that can act on a client, so
/// `/stats` shows how often it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Connections answered 503: the server held its maximum.
    RefusedFull,
    /// Connections answered 429: their address held its share.
    RefusedPerIp,
    /// Connections closed for not sending a request head in time.
    HeaderTimeouts,
    /// WebSockets closed because their send queue stayed full for the
    /// write timeout (the peer was not reading).
    WsSlowClosed,
    /// Connections (an SSE stream, a response) closed because a write made
    /// no progress for the stall timeout.
    WriteStalled,
    /// WebSockets closed for not answering a ping in time.
    WsNoPongClosed,
    /// WebSockets closed for sending frames over the inbound rate.
    WsFloodClosed,
    /// WebSockets closed with 1009: a message or frame over the limit.
    WsTooBigClosed,
    /// WebSockets closed with 1002 or 1007: a protocol violation.
    WsProtocolClosed,
    /// Sends refused over the send rate (429, or an error event).
    SendsRateLimited,
    /// Requests refused 403 for their `Origin`.
    OriginRefused,
    /// Requests refused 403 by a server on loopback for their `Host`
    /// (DNS rebinding, `host.rs`).
    HostRefused,
    /// Held long polls answered 409 because the same client polled again.
    PollsSuperseded,
    /// Requests refused (503, or an error and close 1013 over a WebSocket)
    /// because a new room would pass the cap on live rooms.
    RoomsFull,
    /// Requests refused (429, or an error and close 1008) because their
    /// address created its share of new rooms this minute.
    RoomCreationsRateLimited,
    /// TLS handshakes that did not finish within the header timeout.
    TlsHandshakeTimeouts,
    /// TLS handshakes that failed (garbage, no common protocol).
    TlsHandshakeFailed,
    /// Plain HTTP (or an HTTP/2 preface) sent to the TLS port; answered
    /// with a clear error and closed.
    PlaintextOnTlsPort,
    /// HTTP/2 connections cut off for resetting streams too fast.
    H2ResetFlood,
    /// HTTP/2 connections closed (GOAWAY) after keeping no stream open for
    /// the idle timeout.
    H2IdleClosed,
}

impl Limit {
    pub const ALL: [Limit; 20] = [
        Self::RefusedFull,
        Self::RefusedPerIp,
        Self::HeaderTimeouts,
        Self::WsSlowClosed,
        Self::WriteStalled,
        Self::WsNoPongClosed,
        Self::WsFloodClosed,
        Self::WsTooBigClosed,
        Self::WsProtocolClosed,
        Self::SendsRateLimited,
        Self::OriginRefused,
        Self::HostRefused,
        Self::PollsSuperseded,
        Self::RoomsFull,
        Self::RoomCreationsRateLimited,
        Self::TlsHandshakeTimeouts,
        Self::TlsHandshakeFailed,
        Self::PlaintextOnTlsPort,
        Self::H2ResetFlood,
        Self::H2IdleClosed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::RefusedFull => "refused_full",
            Self::RefusedPerIp => "refused_per_ip",
            Self::HeaderTimeouts => "header_timeouts",
            Self::WsSlowClosed => "ws_slow_closed",
            Self::WriteStalled => "write_stalled",
            Self::WsNoPongClosed => "ws_no_pong_closed",
            Self::WsFloodClosed => "ws_flood_closed",
            Self::WsTooBigClosed => "ws_too_big_closed",
            Self::WsProtocolClosed => "ws_protocol_closed",
            Self::SendsRateLimited => "sends_rate_limited",
            Self::OriginRefused => "origin_refused",
            Self::HostRefused => "host_refused",
            Self::PollsSuperseded => "polls_superseded",
            Self::RoomsFull => "rooms_full",
            Self::RoomCreationsRateLimited => "room_creations_rate_limited",
            Self::TlsHandshakeTimeouts => "tls_handshake_timeouts",
            Self::TlsHandshakeFailed => "tls_handshake_failed",
            Self::PlaintextOnTlsPort => "plaintext_on_tls_port",
            Self::H2ResetFlood => "h2_reset_flood",
            Self::H2IdleClosed => "h2_idle_closed",
        }
    }
}

/// The server's counters, one set per [`Transport`], and one count per
/// [`Limit`].
#[derive(Debug, Default)]
pub struct Stats {
    per_transport: [Counters; 6],
    limits: [AtomicU64; Limit::ALL.len()],
    /// TLS connections' bytes charged to no transport.
    pub connection: ConnectionLine,
    delays: [DelayHistogram; 6],
}

/// The bytes of TLS connections that belong to no request: the TLS
/// handshake, TLS record headers and tags, and HTTP/2's connection-level
/// frames. Counted as what crossed the TCP sockets minus what the
/// transports were charged (see `wire.rs`), so every line adds up.
#[derive(Debug, Default)]
pub struct ConnectionLine {
    pub tcp_in: AtomicU64,
    pub tcp_out: AtomicU64,
    pub charged_in: AtomicU64,
    pub charged_out: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
}

impl ConnectionLine {
    /// The line in the shape of a transport's counters.
    pub fn snapshot(&self) -> CountersSnapshot {
        let load = |c: &AtomicU64| c.load(Relaxed);
        CountersSnapshot {
            connections_open: load(&self.connections_open),
            connections_total: load(&self.connections_total),
            // A charged byte is counted above TLS before (writes) or
            // after (reads) the TCP socket sees it: never below zero.
            wire_bytes_in: load(&self.tcp_in).saturating_sub(load(&self.charged_in)),
            wire_bytes_out: load(&self.tcp_out).saturating_sub(load(&self.charged_out)),
            ..CountersSnapshot::default()
        }
    }
}

/// Upper bounds of the delivery-delay histogram's buckets, in seconds: from
/// a loopback delivery (tens of microseconds) to a client stuck behind a
/// write timeout.
pub const DELAY_BOUNDS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A histogram of delays with fixed buckets, lock-free: an observation is
/// a few comparisons and two relaxed atomic adds (prometheus-client's own
/// histogram takes a lock per observation, which the delivery path avoids).
#[derive(Debug, Default)]
pub struct DelayHistogram {
    /// Per bucket, not cumulative; the last is `+Inf`.
    buckets: [AtomicU64; DELAY_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A histogram read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct DelaySnapshot {
    pub sum_seconds: f64,
    pub count: u64,
    /// `(upper bound, observations above the previous bound and at or
    /// below this one)`, ending with `+Inf`. Not cumulative: the text
    /// encoder sums them into Prometheus's cumulative `le` buckets.
    pub buckets: Vec<(f64, u64)>,
}

impl DelayHistogram {
    pub fn observe(&self, delay: std::time::Duration) {
        let secs = delay.as_secs_f64();
        let i = DELAY_BOUNDS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(DELAY_BOUNDS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_nanos
            .fetch_add(u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    pub fn snapshot(&self) -> DelaySnapshot {
        let mut count = 0;
        let mut buckets = Vec::with_capacity(DELAY_BOUNDS.len() + 1);
        for (i, bucket) in self.buckets.iter().enumerate() {
            let n = bucket.load(Relaxed);
            count += n;
            buckets.push((DELAY_BOUNDS.get(i).copied().unwrap_or(f64::INFINITY), n));
        }
        DelaySnapshot {
            sum_seconds: self.sum_nanos.load(Relaxed) as f64 / 1e9,
            count,
            buckets,
        }
    }
}

impl Stats {
    pub fn of(&self, transport: Transport) -> &Counters {
        &self.per_transport[transport.index()]
    }

    /// Records that `limit` acted once.
    pub fn count(&self, limit: Limit) {
        self.limits[limit as usize].fetch_add(1, Relaxed);
    }

    /// How often `limit` has acted.
    pub fn limit_count(&self, limit: Limit) -> u64 {
        self.limits[limit as usize].load(Relaxed)
    }

    /// Records `messages` chat messages handed to a client of `room`,
    /// `payload` bytes of message JSON in all.
    ///
    /// `oldest` is when the oldest message of the write was accepted: its
    /// delay, to now, goes into the transport's delay histogram, one
    /// observation per write (the worst delay in it; with one message a
    /// write, as when idle, every message's).
    pub fn delivered(
        &self,
        room: &RoomCounters,
        transport: Transport,
        messages: u64,
        payload: u64,
        oldest: Option<std::time::Instant>,
    ) {
        let c = self.of(transport);
        c.delivered.fetch_add(messages, Relaxed);
        c.payload_bytes.fetch_add(payload, Relaxed);
        room.delivered(transport, messages, payload);
        if let Some(oldest) = oldest {
            self.delays[transport.index()].observe(oldest.elapsed());
        }
    }

    /// The delivery-delay histogram of `transport`.
    pub fn delays(&self, transport: Transport) -> &DelayHistogram {
        &self.delays[transport.index()]
    }

    /// The `/stats` body, with per-room figures for the `top` most active
    /// rooms only, so it stays small however many rooms there are.
    pub fn to_json(&self, rooms: &Rooms, top: usize) -> serde_json::Value {
        let mut transports = serde_json::Map::new();
        for t in Transport::ALL {
            let s = self.of(t).snapshot();
            let mut v = serde_json::to_value(s).expect("counters serialise");
            let per = |x: u64| {
                if s.delivered == 0 {
                    serde_json::Value::Null
                } else {
                    serde_json::json!((x as f64 / s.delivered as f64 * 100.0).round() / 100.0)
                }
            };
            let derived = serde_json::json!({
                "wire_bytes_out_per_message": per(s.wire_bytes_out),
                "wire_bytes_in_per_message": per(s.wire_bytes_in),
                "overhead_bytes_per_message": per(s.wire_bytes_out.saturating_sub(s.payload_bytes)),
                "requests_per_message": per(s.requests),
            });
            v.as_object_mut()
                .expect("a struct is an object")
                .insert("per_message".into(), derived);
            transports.insert(t.name().into(), v);
        }
        transports.insert(
            "connection".into(),
            serde_json::to_value(self.connection.snapshot()).expect("counters serialise"),
        );
        let mut per_room = serde_json::Map::new();
        for room in most_active(rooms.all(), top) {
            per_room.insert(
                room.name().to_owned(),
                room_json(room.counters(), room.online()),
            );
        }
        let limits: serde_json::Map<_, _> = Limit::ALL
            .into_iter()
            .map(|l| (l.name().to_owned(), self.limit_count(l).into()))
            .collect();
        serde_json::json!({
            "transports": transports,
            "rooms": per_room,
            "room_totals": rooms.totals(),
            "limits": limits,
        })
    }
}

/// The `n` rooms that delivered the most messages, most active first
/// (ties by name, so the answer is stable). One pass over the rooms and a
/// partial sort: `/stats` stays cheap at the room cap.
fn most_active(rooms: Vec<Arc<Room>>, n: usize) -> Vec<Arc<Room>> {
    let mut ranked: Vec<(u64, Arc<Room>)> = rooms
        .into_iter()
        .map(|room| (room.counters().delivered_total(), room))
        .collect();
    let by_activity = |a: &(u64, Arc<Room>), b: &(u64, Arc<Room>)| {
        b.0.cmp(&a.0).then_with(|| a.1.name().cmp(b.1.name()))
    };
    if ranked.len() > n && n > 0 {
        ranked.select_nth_unstable_by(n - 1, by_activity);
    }
    ranked.truncate(n);
    ranked.sort_unstable_by(by_activity);
    ranked.into_iter().map(|(_, room)| room).collect()
}

/// One room's figures in `/stats`: who is online, and what it delivered.
fn room_json(counters: &RoomCounters, online: Online) -> serde_json::Value {
    let mut delivered = serde_json::Map::new();
    let mut payload = serde_json::Map::new();
    for t in Transport::RECEIVING {
        let (messages, bytes) = counters.of(t);
        delivered.insert(t.name().into(), messages.into());
        payload.insert(t.name().into(), bytes.into());
    }
    serde_json::json!({ "online": online, "delivered": delivered, "payload_bytes": payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn delay_buckets_count_each_observation_once_and_end_at_infinity() {
        let h = DelayHistogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(9));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (0.000_1, 1));
        assert_eq!(s.buckets[5], (0.005, 1));
        assert_eq!(*s.buckets.last().unwrap(), (f64::INFINITY, 1));
        assert!((s.sum_seconds - 9.00305).abs() < 1e-9);
    }
}
