//! The proxy: accept a connection, open one to the server, and carry bytes
//! both ways through the conditions.
//!
//! Each direction is a lane of two halves joined by a bounded queue:
//! - a reader takes bytes off one socket as they come, labels them with the
//!   HTTP framer, lets the buffer hold what it holds, and stamps each chunk
//!   with its release time (`delay.rs`): arrival plus the one-way delay;
//! - a writer waits for each stamp in turn, paces the bytes to the
//!   bandwidth cap, and writes them to the other socket.
//!
//! The reader never waits for the writer's timers, so latency is a pipe,
//! not a sleep per chunk. The queue is bounded (`QUEUE` chunks of at most
//! `READ` bytes), so a slow writer (a bandwidth cap, a client that does not
//! read) stops the reader, and TCP pushes back on the sender: memory per
//! connection has a bound whatever the peers do.
//!
//! Beside the two lanes, each connection watches for the faults that end
//! it: the idle timer (no bytes read either way for the idle timeout), a
//! drop (every connection cut, with a reset, as when a phone changes
//! networks), a refused upgrade, and shutdown. All conditions are read
//! when used (per read, per write, on change), never copied at connect.

use super::buffer::Holder;
use super::delay::{jitter_sample, transmit_time, DelayLine};
use super::http::{Framer, Piece, Side};
use super::{Cut, Network, Upgrade};
use crate::client::heard::LastHeard;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{sleep, sleep_until, Instant};
use tokio_util::sync::CancellationToken;

/// Bytes taken off a socket per read.
const READ: usize = 16 * 1024;
/// Chunks queued per direction between reader and writer.
const QUEUE: usize = 64;

/// What a proxy that refuses upgrades answers, with `upgrade=403`.
fn forbidden() -> Bytes {
    let body = r#"{"error":"the network in between refuses WebSocket upgrades"}"#;
    format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into()
}

/// Accepts connections on `listener` and carries each to `upstream`
/// through `network`'s conditions, until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    network: Arc<Network>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let _ = network.addr.set(listener.local_addr()?);
    tokio::spawn(drops(Arc::clone(&network), shutdown.clone()));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => return Ok(()),
        };
        match accepted {
            Ok((client, _)) => {
                tokio::spawn(connection(
                    client,
                    upstream,
                    Arc::clone(&network),
                    shutdown.clone(),
                ));
            }
            // Out of descriptors, say: a pause rather than a busy loop.
            Err(e) => {
                tracing::warn!(error = %e, "network proxy cannot accept");
                sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Cuts every connection each drop period, while one is set.
async fn drops(network: Arc<Network>, shutdown: CancellationToken) {
    let mut conditions = network.watch();
    loop {
        let every = conditions.borrow_and_update().drop_every();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            // A new period starts counting from the change.
            changed = conditions.changed() => if changed.is_err() { return },
            _ = sleep(every.unwrap_or_default()), if every.is_some() => network.cut_all(),
        }
    }
}

/// A chunk on its way, or the end of a direction.
#[derive(Debug)]
enum Item {
    Data { bytes: Bytes, release: Instant },
    End,
}

/// Counts an open connection until dropped.
struct Open<'a>(&'a Network);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.counters.open.fetch_sub(1, Relaxed);
    }
}

async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    network: Arc<Network>,
    shutdown: CancellationToken,
) {
    let mut server = match TcpStream::connect(upstream).await {
        Ok(server) => server,
        Err(e) => {
            tracing::debug!(error = %e, "network proxy cannot reach the server");
            return;
        }
    };
    // Chunks are already paced by the proxy; Nagle would add its own delay.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    network.counters.open.fetch_add(1, Relaxed);
    network.counters.total.fetch_add(1, Relaxed);
    let _open = Open(&network);
    let mut drops = network.cuts.subscribe();
    drops.mark_unchanged();

    // When either socket last had bytes to read: the idle timer's clock.
    let activity = LastHeard::new();
    let refused = CancellationToken::new();
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    let (up_tx, up_rx) = mpsc::channel(QUEUE);
    let (down_tx, down_rx) = mpsc::channel(QUEUE);
    let lanes = async {
        tokio::join!(
            read_requests(
                client_read,
                up_tx,
                down_tx.clone(),
                &network,
                &activity,
                &refused
            ),
            write_lane(server_write, up_rx, &network, &network.counters.bytes_up),
            read_responses(server_read, down_tx, &network, &activity),
            write_lane(
                client_write,
                down_rx,
                &network,
                &network.counters.bytes_down
            ),
        )
    };
    let cut = tokio::select! {
        _ = lanes => None,
        _ = idle(&activity, &network) => Some(Cut::Idle),
        _ = drops.changed() => Some(Cut::Drop),
        _ = refused.cancelled() => Some(Cut::Upgrade),
        _ = shutdown.cancelled() => None,
    };
    match cut {
        // Refusals were counted when made.
        Some(Cut::Upgrade) | None => {}
        Some(cut) => network.count_cut(cut),
    }
    if matches!(cut, Some(Cut::Drop | Cut::Upgrade)) {
        // A reset, not a goodbye: as when the path to the server vanishes.
        for socket in [&client, &server] {
            let _ = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO));
        }
    }
}

/// Client to server: requests, checked for upgrades.
async fn read_requests(
    mut reader: impl AsyncRead + Unpin,
    up: mpsc::Sender<Item>,
    down: mpsc::Sender<Item>,
    network: &Network,
    activity: &LastHeard,
    refused: &CancellationToken,
) {
    let mut framer = Framer::new(Side::Request);
    let mut line = DelayLine::default();
    let mut buf = BytesMut::new();
    let mut pieces = Vec::new();
    loop {
        buf.reserve(READ);
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        activity.touch();
        let arrival = Instant::now();
        let conditions = network.conditions();
        framer.feed(buf.split().freeze(), &mut pieces);
        let mut out = Vec::new();
        for piece in pieces.drain(..) {
            match piece {
                Piece::Head { upgrade: true, .. } if conditions.upgrade != Upgrade::Allow => {
                    network.count_cut(Cut::Upgrade);
                    if conditions.upgrade == Upgrade::Forbid {
                        let answer = forbidden();
                        let _ = down
                            .send(Item::Data {
                                bytes: answer,
                                release: Instant::now(),
                            })
                            .await;
                        let _ = down.send(Item::End).await;
                    } else {
                        refused.cancel();
                    }
                    let _ = up.send(Item::End).await;
                    return;
                }
                Piece::Head { bytes, .. } | Piece::Body(bytes) | Piece::Raw(bytes) => {
                    out.push(bytes)
                }
                Piece::End => {}
            }
        }
        let jitter = jitter_sample(conditions.jitter());
        let release = line.release(arrival, conditions.up(), jitter);
        if !send(&up, out, release).await {
            return;
        }
    }
    framer.finish(&mut pieces);
    let rest = pieces
        .drain(..)
        .filter_map(|p| match p {
            Piece::Head { bytes, .. } | Piece::Body(bytes) | Piece::Raw(bytes) => Some(bytes),
            Piece::End => None,
        })
        .collect();
    let conditions = network.conditions();
    send(&up, rest, line.release(Instant::now(), conditions.up(), 0)).await;
    let _ = up.send(Item::End).await;
}

/// Server to client: responses, whose bodies the buffer may hold.
async fn read_responses(
    mut reader: impl AsyncRead + Unpin,
    down: mpsc::Sender<Item>,
    network: &Network,
    activity: &LastHeard,
) {
    let mut framer = Framer::new(Side::Response);
    let mut holder = Holder::default();
    let mut gauge = Held { network, bytes: 0 };
    let mut line = DelayLine::default();
    let mut watch = network.watch();
    let mut buf = BytesMut::new();
    let mut pieces = Vec::new();
    loop {
        buf.reserve(READ);
        let mut out = Vec::new();
        let ended = tokio::select! {
            read = reader.read_buf(&mut buf) => matches!(read, Ok(0) | Err(_)),
            // Buffering turned off (or down) while bytes are held: they go
            // now, not when the next byte happens to arrive.
            Ok(()) = watch.changed() => {
                let limit = watch.borrow_and_update().buffer_bytes();
                if holder.held() > 0 && holder.held() >= limit {
                    holder.release(&mut out);
                }
                false
            }
        };
        if !buf.is_empty() {
            activity.touch();
        }
        let conditions = network.conditions();
        framer.feed(buf.split().freeze(), &mut pieces);
        if ended {
            framer.finish(&mut pieces);
        }
        for piece in pieces.drain(..) {
            holder.take(piece, conditions.buffer_bytes(), &mut out);
        }
        if ended {
            holder.release(&mut out);
        }
        gauge.set(holder.held());
        let jitter = jitter_sample(conditions.jitter());
        let release = line.release(Instant::now(), conditions.down(), jitter);
        if !send(&down, out, release).await || ended {
            break;
        }
    }
    let _ = down.send(Item::End).await;
}

/// This connection's share of the network's `held` gauge.
struct Held<'a> {
    network: &'a Network,
    bytes: usize,
}

impl Held<'_> {
    fn set(&mut self, bytes: usize) {
        let held = &self.network.counters.held;
        held.fetch_add(bytes as u64, Relaxed);
        held.fetch_sub(self.bytes as u64, Relaxed);
        self.bytes = bytes;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.set(0);
    }
}

/// Queues `chunks` (joined into one) for release at `release`; false when
/// the writer is gone.
async fn send(lane: &mpsc::Sender<Item>, chunks: Vec<Bytes>, release: Instant) -> bool {
    let bytes = match chunks.len() {
        0 => return true,
        1 => chunks.into_iter().next().unwrap_or_default(),
        _ => chunks.concat().into(),
    };
    lane.send(Item::Data { bytes, release }).await.is_ok()
}

/// Writes each chunk at its release time, paced to the bandwidth cap.
async fn write_lane(
    mut writer: impl AsyncWrite + Unpin,
    mut lane: mpsc::Receiver<Item>,
    network: &Network,
    counter: &AtomicU64,
) {
    // When the link is free again after the bytes written so far.
    let mut free = Instant::now();
    while let Some(Item::Data { bytes, release }) = lane.recv().await {
        sleep_until(release).await;
        let rate = network.conditions().bandwidth;
        // Slices of a twentieth of a second, so a capped link trickles
        // rather than bursting once a second.
        let slice = if rate == 0 {
            bytes.len().max(1)
        } else {
            (rate as usize / 20).max(256)
        };
        for part in bytes.chunks(slice) {
            if rate > 0 {
                sleep_until(free).await;
            }
            if writer.write_all(part).await.is_err() {
                return;
            }
            counter.fetch_add(part.len() as u64, Relaxed);
            free = free.max(Instant::now()) + transmit_time(part.len(), rate);
        }
    }
    // The other side finished (or a refusal): pass the end on.
    let _ = writer.shutdown().await;
}

/// Resolves when the connection has been idle for the idle timeout.
async fn idle(activity: &LastHeard, network: &Network) {
    let mut watch = network.watch();
    loop {
        let timeout = watch.borrow_and_update().idle();
        let Some(timeout) = timeout else {
            if watch.changed().await.is_err() {
                return std::future::pending().await;
            }
            continue;
        };
        let deadline = activity.at() + timeout;
        if Instant::now() >= deadline {
            return;
        }
        tokio::select! {
            _ = sleep_until(deadline) => {}
            _ = watch.changed() => {}
        }
    }
}
