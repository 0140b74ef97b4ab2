//! Measures bytes on the wire per delivered message for each transport and
//! writes `results/wire-cost.md`.
//!
//! `cargo run --release --example wire_cost [-- TEXT_BYTES MESSAGES]`
//! starts a server in-process on 127.0.0.1:0 (in-memory backbone) and runs
//! `skyrocket::overhead::measure` against it.

use skyrocket::message::Transport;
use skyrocket::overhead::{markdown, measure, Workload};
use skyrocket::provenance::Provenance;
use skyrocket::{AppState, Config};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut workload = Workload::default();
    if let Some(bytes) = args.next() {
        workload.text_bytes = bytes.parse()?;
    }
    if let Some(messages) = args.next() {
        workload.messages = messages.parse()?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(skyrocket::run(
        listener,
        AppState::in_memory(Config::default()),
        async {
            let _ = stopped.await;
        },
    ));

    let costs = measure(&base, &Transport::RECEIVING, &workload).await?;
    let table = markdown(&costs);
    let provenance = Provenance::here(&format!(
        "cargo run --release --example wire_cost -- {} {}",
        workload.text_bytes, workload.messages
    ));
    let report = format!(
        "# Wire cost per delivered message\n\n{}\n\
         Workload: one receiver per transport, {} messages of {} bytes of text, \
         posted one at a time, each at least {:?} after the previous and only once \
         the receiver has it, so every message is delivered on its own (one message \
         per poll response); short polling asks every {:?} when a poll came back empty. Bytes come from the server's socket accounting \
         (`/stats`), so they include HTTP heads, chunk framing and WebSocket \
         frame headers, and the presence events a room sends its receivers count as \
         overhead too. \"wire in\" is what the receiver sent (requests); \
         the sender's POSTs are counted under `send`, not here.\n\n{table}",
        provenance.to_markdown(),
        workload.messages,
        workload.text_bytes,
        workload.interval,
        workload.poll_interval,
    );
    print!("{report}");
    std::fs::create_dir_all("results")?;
    std::fs::write("results/wire-cost.md", &report)?;
    let _ = stop.send(());
    server.await??;
    Ok(())
}
