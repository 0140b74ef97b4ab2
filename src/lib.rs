//! Skyrocket: one chat server over WebSocket, Server-Sent Events, long
//! polling and short polling, built to compare them with measured numbers.
//!
//! The wire protocol this crate serves and speaks is in `docs/PROTOCOL.md`.
//!
//! # Layout
//! Grouped by the three users of the library. Dependencies run one way:
//! the model <- the store <- the room <- the server; the clients use only
//! the model, the tools use the clients (`tests/layout.rs` fails on any
//! cycle between modules, and on a client that reaches past the model).
//! Modules written `like this` are the server's insides, private to the
//! crate; the linked ones are what tests, benches and binaries use.
//!
//! ## Shared: the model
//! - [`message`]: the message and event model of the wire contract, encoded
//!   once per message; the one [`message::Transport`] enum.
//!
//! ## The server (`src/main.rs`)
//! - [`backbone`]: where rooms keep and fan out messages: in memory, or
//!   shared by several instances over Redis Streams (`--redis URL`);
//! - [`room`]: rooms, resume from a cursor, subscriptions, presence; no HTTP;
//!   `pollers`: presence of pollers, O(1) per request;
//! - [`stats`]: per-transport counters and how often each limit acted;
//!   `metrics`: the same, and the delivery-delay histograms, for
//!   Prometheus at `/metrics`;
//! - [`config`]: every option and its default; [`cli`]: the server's flags;
//! - [`tls`]: the certificate (made at start or read) and the rustls config
//!   of `--tls`; [`routes`]: the room routes and their transports;
//! - [`conn`]: listening, socket options, the TLS handshake, metered streams
//!   (with the stall timeout), byte accounting per transport (per stream
//!   over HTTP/2), capture for the wire view;
//! - [`admission`]: the connection limits; `ratelimit`: send and frame
//!   rates; `origin`: which pages may use the rooms (RFC 6455 10.2);
//!   `host`: which names a server on loopback answers (DNS rebinding);
//!   `refusals`: refusals logged at debug, at most so many a second;
//!   `reclaim`: freed memory handed back after a wave of closed connections;
//! - [`wire_view`]: the raw wire view, exact bytes captured only while watched;
//! - `state`: [`AppState`], what every handler reaches; `error`: errors to
//!   HTTP statuses, in one place;
//! - `transport`: one thin adapter per transport (`websocket`, `sse`, `poll`,
//!   `send`), the `/echo/ws` socket, and the one delivery loop they share;
//! - `app`: the router ([`app()`]); [`server`]: [`run`], the serve loop with
//!   a header read timeout and graceful shutdown;
//! - [`slides`]: the talk at `/slides`, and read-only views of the files it
//!   quotes (`/results`, `/source`).
//!
//! - [`network`]: the network in between, a proxy on a second port with
//!   latency, bandwidth, idle timeout, buffering, refused upgrades and
//!   drops, changed live at `/network`.
//!
//! ## The clients (tests, benches, `loadgen`)
//! - [`client`]: one Rust client per transport, and [`client::auto`], which
//!   falls back from one to the next; it uses only the model.
//!
//! ## The tools (`src/bin/loadgen.rs`, examples, benches)
//! - [`loadgen`]: the load generator; [`overhead`]: bytes per message per
//!   transport, measured with the clients; [`http_cost`]: the same over
//!   HTTP/1.1+TLS and HTTP/2, with connect cost; [`chart`]: SVG charts;
//!   [`provenance`]: the command, machine, date, commit and load lines of
//!   `results/` files (the slides read them too).

pub mod admission;
pub(crate) mod app;
pub mod backbone;
pub mod chart;
pub mod cli;
pub mod client;
pub mod config;
pub mod conn;
pub(crate) mod error;
pub(crate) mod host;
pub mod http_cost;
pub mod loadgen;
pub mod message;
mod metrics;
pub mod network;
pub(crate) mod origin;
pub mod overhead;
pub(crate) mod pollers;
pub mod provenance;
pub(crate) mod ratelimit;
pub(crate) mod reclaim;
pub(crate) mod refusals;
pub mod room;
pub mod routes;
pub mod server;
pub mod slides;
pub(crate) mod state;
pub mod stats;
pub mod tls;
pub(crate) mod transport;
pub mod wire_view;

pub use app::app;
pub use config::Config;
pub use server::run;
pub use state::AppState;
