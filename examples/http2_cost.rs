//! Measures what each transport costs per delivered message over
//! HTTP/1.1+TLS and over HTTP/2, with one and with ten messages per poll,
//! and the cost of connecting, and writes `results/http2/wire-cost.md`.
//!
//! `cargo run --example http2_cost [-- TEXT_BYTES MESSAGES]`
//! starts a `--tls` server in-process on 127.0.0.1:0 (in-memory backbone,
//! no presence ticks, pings or keepalives during the run) and runs
//! `skyrocket::http_cost::measure` against it. Byte counts do not depend on
//! the machine's load; latency does, and is left to `loadgen`.

use skyrocket::client::Connect;
use skyrocket::http_cost::{markdown, measure};
use skyrocket::message::Transport;
use skyrocket::provenance::Provenance;
use skyrocket::tls::ServerTls;
use skyrocket::{AppState, Config};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let text_bytes: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let messages: u64 = args.next().map_or(Ok(20), |a| a.parse())?;
    let quiet = Duration::from_secs(3600);
    let mut config = Config {
        tls: Some(ServerTls::self_signed(false)?),
        presence_interval: quiet,
        ..Config::default()
    };
    config.ws.ping_interval = quiet;
    config.sse.keepalive = quiet;
    let trusted = config
        .tls
        .as_ref()
        .map(|t| t.identity.chain.clone())
        .unwrap_or_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("https://{}", listener.local_addr()?);
    let state = AppState::in_memory(config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(skyrocket::run(listener, state.clone(), async {
        let _ = stopped.await;
    }));

    let mut costs = Vec::new();
    for kind in Transport::RECEIVING {
        for batch in [1, 10] {
            for http2 in [false, true] {
                let connect = Connect {
                    http2,
                    insecure: false,
                    trusted: trusted.clone(),
                };
                let rounds = messages.div_ceil(batch);
                costs
                    .push(measure(&state, &base, &connect, kind, batch, rounds, text_bytes).await?);
            }
        }
    }
    let provenance = Provenance::here(&format!(
        "cargo run --example http2_cost -- {text_bytes} {messages}"
    ));
    let report = format!(
        "# HTTP/1.1+TLS against HTTP/2: bytes and requests per message\n\n{}\n\
         Workload: one receiver at a time, alone on the server, in a room of its own; \
         {messages} messages of {text_bytes} bytes of text, posted inside the server \
         (no sender on the wire) in rounds of 1 or 10, each round received before the \
         next: a poller asks once per round and gets the whole round in one body, a \
         stream reads until it has it. Bytes are the server's socket accounting: the \
         transport's own line (HTTP/1.1 text, or its stream's HTTP/2 frames with their \
         9-byte headers) plus the `connection` line (TLS handshake and record overhead, \
         HTTP/2 connection-level frames), which is this receiver's alone here. \
         \"out\" is server to client. \"connect\" is from the TCP connect to the first \
         answer (a stream's hello, a poller's first, empty, body), handshakes included. \
         None of these figures depends on the machine's load.\n\n{}",
        provenance.to_markdown(),
        markdown(&costs)
    );
    print!("{report}");
    std::fs::create_dir_all("results/http2")?;
    std::fs::write("results/http2/wire-cost.md", &report)?;
    let _ = stop.send(());
    server.await??;
    Ok(())
}
