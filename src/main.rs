//! The server binary: parse flags and serve (the logic is in
//! `skyrocket::cli`, shared with loadgen's child server).

use clap::Parser;
use skyrocket::cli::{init_logging, serve, ServerArgs};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    init_logging();
    serve(ServerArgs::parse()).await
}
