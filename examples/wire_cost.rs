//! Measures bytes on the wire per delivered message for each transport and
//! writes `results/wire-cost.md`.
//!
//! `cargo run --release --example wire_cost [-- TEXT_BYTES MESSAGES]`
//! starts a server in-process on 127.0.0.1:0 (in-memory backbone) and runs
//! `skyrocket::wirecost::measure` against it.

use skyrocket::client::Kind;
use skyrocket::wirecost::{markdown, measure, Workload};
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

    let costs = measure(&base, &Kind::ALL, &workload).await?;
    let table = markdown(&costs);
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let report = format!(
        "# Wire cost per delivered message\n\n\
         Command: `cargo run --release --example wire_cost -- {} {}`  \n\
         Machine: {cores} cores, {machine}  \n\
         Date: {}\n\n\
         Workload: one receiver per transport, {} messages of {} bytes of text, \
         posted one at a time, each at least {:?} after the previous and only once \
         the receiver has it, so every message is delivered on its own (one message \
         per poll response); short polling asks every {:?} when a poll came back empty. Bytes come from the server's socket accounting \
         (`/stats`), so they include HTTP heads, chunk framing and WebSocket \
         frame headers, and the presence events a room sends its receivers count as \
         overhead too. \"wire in\" is what the receiver sent (requests); \
         the sender's POSTs are counted under `send`, not here.\n\n{table}",
        workload.text_bytes,
        workload.messages,
        utc_date(skyrocket::message::now_millis() / 1000),
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

/// `YYYY-MM-DD HH:MM UTC` from Unix seconds (the civil-from-days algorithm,
/// so the report needs no date crate).
fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hour, minute) = (secs % 86_400 / 3600, secs % 3600 / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}
