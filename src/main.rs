//! The server binary: parse flags and serve (the logic is in
//! `skyrocket::cli`, shared with loadgen's child server).

use clap::Parser;
use skyrocket::cli::{init_logging, serve, ServerArgs};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // Flags first: they choose the log format.
    let args = ServerArgs::parse();
    init_logging(args.log_format);
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
