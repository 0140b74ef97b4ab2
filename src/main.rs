//! The server binary: parse flags and serve (the logic is in
//! `skyrocket::cli`, shared with loadgen's child server).

use clap::Parser;
use skyrocket::cli::{init_logging, serve, ServerArgs};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    match serve(ServerArgs::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
