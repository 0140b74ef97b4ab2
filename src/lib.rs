//! Skyrocket: one chat server over WebSocket, Server-Sent Events, long
//! polling and short polling, built to compare them with measured numbers.
//!
//! # Layout
//! - [`message`]: the message and event model, encoded once per message;
//! - [`room`]: rooms, resume from a cursor, subscriptions, presence; no HTTP;
//! - [`backbone`]: where rooms keep and fan out messages (in memory);
//! - [`transport`]: one thin adapter per transport (`ws`, `sse`, `poll`, `send`);
//! - [`app`]: `AppState` and the router; [`error`]: errors to HTTP, in one place;
//! - [`server`]: `run(listener, state, shutdown)` with graceful shutdown;
//! - [`wire`] and [`stats`]: byte accounting on the real sockets, per transport;
//! - [`wirecost`]: bytes per message per transport, from the accounting;
//! - [`wiretap`]: the raw wire view, exact bytes captured only while watched;
//! - [`client`]: a Rust client per transport, shared by tests, loadgen, benches;
//! - [`config`]: every server option and its default;
//! - [`chart`]: SVG bar and line charts for measured reports;
//! - [`provenance`]: the machine and date a report was measured on.

pub mod app;
pub mod backbone;
pub mod chart;
pub mod client;
pub mod config;
pub mod error;
pub mod message;
pub mod provenance;
pub mod room;
pub mod server;
pub mod stats;
pub mod transport;
pub mod wire;
pub mod wirecost;
pub mod wiretap;

pub use app::{app, AppState};
pub use config::Config;
pub use server::run;
