//! `wire-bytes`: bytes on the wire per delivered message, per transport, at
//! 16 B, 1 KiB and 64 KiB of text, in both directions, and requests per
//! message. Not a criterion benchmark (criterion measures time): it reads
//! the server's own socket accounting (`/stats`, through
//! `skyrocket::overhead`) and writes `wire-bytes.md` and `wire-bytes.svg`
//! next to criterion's report (`target/criterion/`), so one `cargo bench`
//! gives both time and bytes.
//!
//! Workload: one receiver per transport, in its own room, gets 10 messages
//! POSTed one at a time, each only once the previous one arrived, so every
//! message travels on its own (one per poll response, one per SSE chunk).
//! The server is quiet (no presence events, pings or keepalives, see
//! `bench_config` in `benches/common/mod.rs`), so the overhead is the
//! transport's framing and HTTP heads only; its text limit is raised to
//! 64 KiB for this run only.
//!
//! What the numbers claim: exact bytes of this server and these clients
//! (reqwest's request headers, axum's response headers) for this calm
//! workload. Short polling asks every 100 ms here and the next message is
//! posted as soon as one arrives, so a poll rarely comes back empty; at a
//! real poller's pace most polls are empty and each costs a full request
//! and response (see `results/wire-cost.md`).
//!
//! What they don't: TLS, compression, HTTP/2, a browser's (larger) headers,
//! or a busy room where one response or chunk carries several messages.
//!
//! `cargo bench -- FILTER` skips this unless FILTER is part of
//! `wire-bytes`; without `--bench` (as `cargo test --benches` runs it) it
//! measures one message at 16 B and writes nothing.

mod common;

use common::PAYLOADS;
use skyrocket::message::Transport;
use skyrocket::overhead::{self, Workload};
use skyrocket::provenance;
use std::time::Duration;

const NAME: &str = "wire-bytes";

/// criterion options that take a value: their value is not a filter.
const VALUED_OPTIONS: [&str; 15] = [
    "--save-baseline",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--profile-time",
    "--color",
    "--output-format",
    "--plotting-backend",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{NAME}: bench");
        return;
    }
    let filters = filters(&args);
    if !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str())) {
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let workload = Workload {
        messages: if full { 10 } else { 1 },
        text_bytes: 0, // set per size by measure_sizes
        interval: Duration::from_millis(50),
        poll_interval: Duration::from_millis(100),
    };
    let sizes: Vec<usize> = if full {
        PAYLOADS.iter().map(|&(bytes, _)| bytes).collect()
    } else {
        vec![PAYLOADS[0].0]
    };

    let rt = common::runtime();
    let base = common::start_server(&rt);
    let costs = rt
        .block_on(overhead::measure_sizes(
            &base,
            &Transport::RECEIVING,
            &sizes,
            &workload,
        ))
        .unwrap_or_else(|e| panic!("measuring wire bytes: {e}"));
    let table = overhead::markdown(&costs);
    println!("{NAME}: bytes per delivered message\n{table}");
    if !full {
        return;
    }

    let dir = provenance::criterion_dir();
    let report = report(&table, &workload);
    std::fs::create_dir_all(&dir).expect("create criterion's directory");
    let md = dir.join(format!("{NAME}.md"));
    let svg = dir.join(format!("{NAME}.svg"));
    std::fs::write(&md, report).expect("write wire-bytes.md");
    overhead::chart(&costs)
        .write(&svg)
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{NAME}: wrote {} and {}", md.display(), svg.display());
}

/// The arguments that are benchmark-name filters, as criterion reads them.
fn filters(args: &[String]) -> Vec<String> {
    let mut filters = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if arg.starts_with('-') {
            skip_value = VALUED_OPTIONS.contains(&arg.as_str());
        } else {
            filters.push(arg.clone());
        }
    }
    filters
}

fn report(table: &str, workload: &Workload) -> String {
    format!(
        "# Wire bytes per delivered message\n\n\
         {}\n\
         One receiver per transport, {} messages per text size, POSTed one at a \
         time, each only once the receiver had the previous one, so every message \
         travels on its own. Short polling asks every {:?}. The server is quiet (no \
         presence events, pings or keepalives) and allows 64 KiB of text for this \
         run (the default limit is 4096 bytes). Bytes come from the server's socket \
         accounting (`/stats`): HTTP heads, chunk framing and WebSocket frame \
         headers included. \"wire out\" is what the server wrote to the receiver, \
         \"wire in\" what the receiver sent (its requests); the sender's POSTs are \
         not in these rows. \"overhead both ways\" is wire out + wire in - payload: \
         what the transport adds to each message, drawn in `{NAME}.svg`.\n\n{table}\n\
         Reading it: the payload column is the message JSON (text plus about 100 \
         bytes of fields). A WebSocket adds a 2-10 byte frame header, SSE its \
         `id:`/`data:` lines and chunk framing, and each poll a request and a \
         response head. Those are flat in the message size, so they matter for \
         small chat messages and vanish next to 64 KiB.\n",
        provenance::Provenance {
            command: Some(
                "`cargo bench` (this part alone: `cargo bench --bench wire_bytes`)".into()
            ),
            ..provenance::Provenance::here("")
        }
        .to_markdown(),
        workload.messages,
        workload.poll_interval,
    )
}
