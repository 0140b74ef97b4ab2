//! loadgen: measures what each transport costs. Parses flags and prints;
//! the logic is in `skyrocket::loadgen`.
//!
//! `cargo run --release --bin loadgen -- --transport all --clients 100,1000`

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use skyrocket::cli::ServerArgs;
use skyrocket::loadgen::child::ServerCommand;
use skyrocket::loadgen::report::{delivered_share, kept_up, problems, table, Report};
use skyrocket::loadgen::spec::{parse_counts, parse_duration, parse_transports, Servers, Spec};
use skyrocket::message::Transport;
use skyrocket::provenance::Provenance;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    about = "Drive one chat room with many clients per transport and measure the cost",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    load: LoadArgs,
}

// Parsed once at start: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server itself: loadgen starts its child server this way.
    #[command(hide = true)]
    Serve(ServerArgs),
    /// Serve the floor: a minimal fan-out server with no rooms, accounting
    /// or per-delivery JSON, to measure the real server against.
    Floor {
        /// Where to listen; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:3001")]
        addr: std::net::SocketAddr,
    },
    /// Time each transport (and auto mode) takes to deliver again after
    /// each fault of the network in between: a cut, an idle timeout with
    /// and without heartbeats, a buffering proxy, a refused Upgrade.
    Recovery {
        /// Write report.md into this directory.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Serve a chat server written the way axum's own chat example is (a
    /// broadcast channel per room, split socket, tungstenite defaults, no
    /// history or stats), WebSocket and SSE only, to measure ours against.
    AxumShape {
        /// Where to listen; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:3002")]
        addr: std::net::SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// ws, sse, longpoll, poll, a comma list, or all. (A qualified
    /// `std::vec::Vec` keeps clap from reading the list as repeated flags.)
    #[arg(long, default_value = "ws", value_parser = parse_transports)]
    transport: std::vec::Vec<Transport>,
    /// Receivers per run; a list such as 100,1000,10000 runs a sweep.
    #[arg(long, default_value = "100", value_parser = parse_counts)]
    clients: std::vec::Vec<usize>,
    /// Concurrent senders (each with its own connection).
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Messages per second, all senders together, sent on schedule.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Bytes of message text (at least 12: the sequence number).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Measured sending time, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Sending time before measuring.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Client connections opened per second.
    #[arg(long, default_value_t = 2000.0)]
    ramp: f64,
    /// Pause between short polls that came back empty.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    poll_interval: Duration,
    /// Most time the last messages get to arrive after sending ends.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    drain: Duration,
    /// Offer HTTP/2 (over HTTPS, by ALPN, as browsers do); each receiver
    /// has a connection of its own. Needs an https server: a --url, or
    /// --server-arg=--tls.
    #[arg(long)]
    http2: bool,
    /// Accept any server certificate (the self-signed one of --tls).
    #[arg(long)]
    insecure: bool,
    /// A running server to use instead of a child; repeat to spread the
    /// clients over several instances.
    #[arg(long)]
    url: Vec<String>,
    /// Start this server binary instead of loadgen's own (an older build,
    /// say); it gets `--addr 127.0.0.1:0` and the --server-arg values.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Child servers per run; clients and senders are spread over them.
    /// More than one only share rooms with a common
    /// `--server-arg=--redis --server-arg=redis://...`.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// An extra flag for the child server; repeat for more.
    #[arg(long, allow_hyphen_values = true)]
    server_arg: Vec<String>,
    /// Run every workload against the floor server too, and report the
    /// server's CPU per delivery over the floor's.
    #[arg(long)]
    floor: bool,
    /// Run every WebSocket and SSE workload against the axum-example
    /// shape too (`loadgen axum-shape`), and report the server's CPU per
    /// delivery over its.
    #[arg(long)]
    axum_shape: bool,
    /// Send clients and senders through each server's network in between
    /// with these conditions, e.g. `rtt=50ms` or `rtt=150ms,jitter=10ms`
    /// (the server's `--network` spec; see the README).
    #[arg(long, value_name = "SPEC", value_parser = skyrocket::network::Conditions::parse)]
    network: Option<skyrocket::network::Conditions>,
    /// Write the results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write report.md and results.json into this directory.
    #[arg(long)]
    report: Option<PathBuf>,
}

impl LoadArgs {
    fn spec(&self) -> std::io::Result<Spec> {
        let servers = if !self.url.is_empty() {
            Servers::Urls(self.url.clone())
        } else if let Some(bin) = &self.server_bin {
            Servers::Spawn {
                command: ServerCommand::binary(bin.clone(), &self.server_arg),
                count: self.instances,
            }
        } else {
            Servers::Spawn {
                command: ServerCommand::this_executable(&self.server_arg)?,
                count: self.instances,
            }
        };
        Ok(Spec {
            transports: self.transport.clone(),
            clients: self.clients.clone(),
            senders: self.senders.max(1),
            rate: self.rate.max(0.1),
            size: self.size.max(skyrocket::loadgen::tally::SEQ_DIGITS),
            duration: self.duration,
            warmup: self.warmup,
            ramp: self.ramp.max(1.0),
            poll_interval: self.poll_interval,
            drain: self.drain,
            servers,
            connect: skyrocket::client::Connect {
                http2: self.http2,
                insecure: self.insecure,
                trusted: Vec::new(),
            },
            floor: self.floor,
            axum_shape: self.axum_shape,
            network: self.network,
        })
    }

    fn workload(&self) -> String {
        let server = if self.url.is_empty() {
            let flags = if self.server_arg.is_empty() {
                "in-memory backbone".to_owned()
            } else {
                format!("flags `{}`", self.server_arg.join(" "))
            };
            format!(
                "{} fresh child server(s) per run on 127.0.0.1 ({flags}), so CPU and memory are the server's alone",
                self.instances.max(1)
            )
        } else {
            format!(
                "running server(s) {}, clients spread over them in turn",
                self.url.join(", ")
            )
        };
        format!(
            "Workload: {} sender(s) post {} messages/s in total on an open-loop schedule \
             ({} bytes of text each), {:?} of warmup then {:?} measured; receivers connect \
             at {}/s; short pollers wait {:?} after an empty poll, long polls hold up to 25 s. \
             Clients speak {}. Server: {server}.{network}",
            self.senders,
            self.rate,
            self.size,
            self.warmup,
            self.duration,
            self.ramp,
            self.poll_interval,
            if self.http2 {
                "HTTP/2 where the server offers it (one connection per receiver)"
            } else {
                "HTTP/1.1"
            },
            network = match &self.network {
                Some(c) => format!(
                    " Clients and senders go through the server's network in between: `{c}`."
                ),
                None => String::new(),
            },
        )
    }
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("loadgen {}", args.join(" "))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Serve(args)) = cli.command {
        skyrocket::cli::init_logging(args.log_format);
        return match skyrocket::cli::serve(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Floor { addr }) = cli.command {
        let floor = skyrocket::loadgen::floor::app(Default::default());
        return baseline("floor", addr, floor).await;
    }
    if let Some(Command::AxumShape { addr }) = cli.command {
        return baseline("axum-shape", addr, skyrocket::loadgen::axum_shape::app()).await;
    }
    if let Some(Command::Recovery { report }) = cli.command {
        return recovery(report).await;
    }
    let load = cli.load;
    let file_limit = skyrocket::config::raise_open_file_limit();
    let spec = match load.spec() {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };

    // Before the first run: the load average is worth having only from a
    // machine not yet loaded by our own runs.
    let started = Provenance::here(&command_line());

    let interrupt = CancellationToken::new();
    let on_ctrl_c = interrupt.clone();
    tokio::spawn(async move {
        // Ctrl-C or SIGTERM: either way the child servers are stopped in
        // turn and what was measured is printed.
        skyrocket::server::shutdown_signal().await;
        eprintln!("\nloadgen: interrupted; finishing the current run's figures");
        on_ctrl_c.cancel();
    });

    let progress = ProgressBar::new(0);
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let outcome = skyrocket::loadgen::run_all(&spec, &interrupt, &progress, |run| {
        let latency = if kept_up(run) {
            format!("p99 {:.2} ms", run.latency_ms.p99)
        } else {
            format!(
                "overloaded ({:.0}% of offered)",
                delivered_share(run) * 100.0
            )
        };
        let line = format!(
            "{} x{}: {} of {} connected, {latency}, {}/{} delivered, {} queued",
            run.transport,
            run.clients,
            run.connected,
            run.clients,
            run.delivered,
            run.expected,
            run.queued.unwrap_or(0)
        );
        // A hidden bar (stderr not a terminal) drops println, so say it plainly.
        if progress.is_hidden() {
            eprintln!("{line}");
        } else {
            progress.println(line);
        }
    })
    .await;
    progress.finish_and_clear();
    let runs = match outcome {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };

    println!("{}", table(&runs));
    for problem in problems(&runs) {
        println!("! {problem}");
    }
    let workload = format!(
        "{} Open-file limit per process: {file_limit}.",
        load.workload()
    );
    let report = Report::new(command_line(), started, workload, runs);
    let mut failed = false;
    if let Some(path) = &load.json {
        if let Err(e) = report.write_json(path) {
            eprintln!("loadgen: cannot write {}: {e}", path.display());
            failed = true;
        }
    }
    if let Some(dir) = &load.report {
        match report.write_dir(dir) {
            Ok(paths) => {
                for path in paths {
                    println!("wrote {}", path.display());
                }
            }
            Err(e) => {
                eprintln!("loadgen: cannot write the report in {}: {e}", dir.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `loadgen floor`, `loadgen axum-shape`: binds, prints the address as
/// `NAME: URL` (loadgen reads it from there when it asked for port 0) and
/// serves until a shutdown signal.
async fn baseline(name: &str, addr: std::net::SocketAddr, app: axum::Router) -> ExitCode {
    skyrocket::config::raise_open_file_limit();
    let served = async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!(
            "Skyrocket {name} up.\n  {name}: http://{}/",
            listener.local_addr()?
        );
        let shutdown = skyrocket::server::shutdown_signal();
        skyrocket::loadgen::serve_baseline(listener, app, shutdown).await
    };
    match served.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `loadgen recovery`: every fault against every receiver, one case at a
/// time, each on a fresh child server; prints the table and writes it.
async fn recovery(report: Option<PathBuf>) -> ExitCode {
    use skyrocket::loadgen::recovery;
    let started = Provenance::here(&command_line());
    let command = match ServerCommand::this_executable(&[]) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcomes = recovery::run_all(&command, |o| {
        eprintln!(
            "{} / {}: {}",
            o.fault.name(),
            o.receiver.name(),
            o.took.map_or("nothing".to_owned(), |t| format!(
                "{:.2} s",
                t.as_secs_f64()
            ))
        )
    })
    .await;
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let markdown = recovery::report(&started, &outcomes);
    println!("{markdown}");
    if let Some(dir) = report {
        let path = dir.join("report.md");
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, markdown))
        {
            eprintln!("loadgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
