//! Skyrocket: one chat server over WebSocket, Server-Sent Events, long
//! polling and short polling, built to compare them with measured numbers.
//!
//! # Layout
//! Dependencies run one way, down this list (`tests/layout.rs` fails on a
//! cycle between modules):
//! - the model: [`message`], the message and event model of the wire
//!   contract, encoded once per message, and the one [`message::Transport`];
//! - the store: [`backbone`], where rooms keep and fan out messages: in
//!   memory, or shared by several instances over Redis Streams;
//! - the room: [`room`], resume from a cursor, subscriptions, presence; no
//!   HTTP; [`pollers`]: presence of pollers, O(1) per request;
//! - the server:
//!   - [`tls`]: the certificate (made at start or read) and the rustls
//!     config of `--tls`; [`routes`]: the room routes and their transports;
//!   - [`stats`]: per-transport counters; [`config`]: every option and its
//!     default; [`error`]: errors to HTTP, in one place;
//!   - [`conn`]: listening, admission, socket options, the TLS handshake,
//!     byte accounting per transport (per stream over HTTP/2) on the real
//!     sockets, capture for the wire view;
//!   - [`admission`]: the connection limits; [`ratelimit`]: send and frame
//!     rates; [`origin`]: which pages may use the rooms (RFC 6455 10.2);
//!     [`reclaim`]: freed memory handed back after a wave of closed connections;
//!   - [`wire_view`]: the raw wire view, exact bytes captured only while watched;
//!   - [`state`]: `AppState`, what every handler reaches;
//!   - [`transport`]: one thin adapter per transport (`websocket`, `sse`,
//!     `poll`, `send`) and the `/echo/ws` socket;
//!   - [`app`]: the router; [`server`]: `run(listener, state, shutdown)`,
//!     the serve loop with a header read timeout and graceful shutdown;
//!   - [`slides`]: the talk at `/slides`; [`cli`]: the server's flags;
//! - the clients: [`client`], a Rust client per transport, shared by tests,
//!   loadgen and benches; it uses only the model;
//! - the tools: [`loadgen`], [`overhead`] (bytes per message per transport,
//!   measured with the clients), [`chart`] (SVG charts) and [`provenance`]
//!   (the command, machine and date lines of `results/` files).

pub mod admission;
pub mod app;
pub mod backbone;
pub mod chart;
pub mod cli;
pub mod client;
pub mod config;
pub mod conn;
pub mod error;
pub mod loadgen;
pub mod message;
pub mod origin;
pub mod overhead;
pub mod pollers;
pub mod provenance;
pub mod ratelimit;
pub mod reclaim;
pub mod room;
pub mod routes;
pub mod server;
pub mod slides;
pub mod state;
pub mod stats;
pub mod tls;
pub mod transport;
pub mod wire_view;

pub use app::app;
pub use config::Config;
pub use server::run;
pub use state::AppState;
