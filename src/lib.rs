//! Skyrocket: one chat server over WebSocket, Server-Sent Events, long
//! polling and short polling, built to compare them with measured numbers.
//!
//! # Layout
//! - [`message`]: the message and event model, encoded once per message;
//! - [`room`]: rooms, resume from a cursor, subscriptions, presence; no HTTP;
//! - [`pollers`]: presence of pollers, O(1) per request on a coarse clock;
//! - [`backbone`]: where rooms keep and fan out messages: in memory, or
//!   shared by several instances over Redis Streams (`--redis URL`);
//! - [`transport`]: one thin adapter per transport (`ws`, `sse`, `poll`, `send`),
//!   the `/echo/ws` socket, and the WebSocket code both sockets share;
//! - [`app`]: `AppState` and the router; [`error`]: errors to HTTP, in one place;
//! - [`server`]: `run(listener, state, shutdown)`: the serve loop, with a
//!   header read timeout and graceful shutdown;
//! - [`admission`]: the connection limits, and a clear answer beyond them;
//! - [`ratelimit`]: send and frame rates as token buckets;
//! - [`memory`]: freed memory handed back after a wave of closed connections;
//! - [`origin`]: which pages may use the rooms (RFC 6455 section 10.2);
//! - [`wire`] and [`stats`]: byte accounting on the real sockets, per transport;
//! - [`wirecost`]: bytes per message per transport, from the accounting;
//! - [`wiretap`]: the raw wire view, exact bytes captured only while watched;
//! - [`client`]: a Rust client per transport, shared by tests, loadgen, benches;
//! - [`slides`]: the talk at `/slides`, rendered from `slides/*.md`, with
//!   read-only views of the repo files it quotes (`/results`, `/source`);
//! - [`provenance`]: the command, machine and date lines of `results/` files;
//! - [`config`]: every server option and its default; [`cli`]: the server's flags;
//! - [`chart`]: SVG bar and line charts for measured reports;
//! - [`loadgen`]: the load generator behind the `loadgen` binary.

pub mod admission;
pub mod app;
pub mod backbone;
pub mod chart;
pub mod cli;
pub mod client;
pub mod config;
pub mod error;
pub mod loadgen;
pub mod memory;
pub mod message;
pub mod origin;
pub mod pollers;
pub mod provenance;
pub mod ratelimit;
pub mod room;
pub mod server;
pub mod slides;
pub mod stats;
pub mod transport;
pub mod wire;
pub mod wirecost;
pub mod wiretap;

pub use app::{app, AppState};
pub use config::Config;
pub use server::run;
