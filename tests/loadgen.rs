//! loadgen end to end: a small run per transport against a real server
//! loses nothing and yields plausible figures, and the binary's sweep
//! (with its own child servers) writes a report and JSON that parse.
//! Small and bounded: a handful of clients for about a second each.

mod common;

use common::{within, TestServer, Wire, PATIENCE};
use skyrocket::loadgen::report::RunResult;
use skyrocket::loadgen::spec::{Servers, Spec};
use skyrocket::message::Transport;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn small_spec(servers: Servers, transports: Vec<Transport>) -> Spec {
    Spec {
        transports,
        clients: vec![5],
        senders: 2,
        rate: 20.0,
        size: 100,
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(200),
        ramp: 1000.0,
        poll_interval: Duration::from_millis(100),
        // A bound for the last messages to arrive, not a speed claim: the
        // drain ends as soon as everything is in.
        drain: PATIENCE,
        servers,
        connect: Default::default(),
        floor: false,
        axum_shape: false,
        network: None,
    }
}

fn assert_complete(run: &RunResult) {
    let name = format!("{} x{}", run.transport, run.clients);
    assert_eq!(run.connected, 5, "{name}: {:?}", run.failures);
    assert_eq!(run.send_errors, 0, "{name}: {:?}", run.first_send_error);
    assert!(run.sent >= 15, "{name}: only {} measured sends", run.sent);
    assert_eq!(run.expected, run.sent * 5, "{name}");
    assert_eq!(run.delivered, run.expected, "{name}: lost {}", run.lost);
    assert_eq!((run.lost, run.duplicates), (0, 0), "{name}");
    assert_eq!(run.latency_ms.count, run.delivered, "{name}");
    assert!(run.latency_ms.p50 > 0.0, "{name}");
    assert!(run.latency_ms.p50 <= run.latency_ms.max, "{name}");
    assert!(run.deliveries_per_sec > 0.0, "{name}");
    assert!(!run.interrupted, "{name}");
}

/// A small run per transport against the server at `base`, each checked
/// complete (nothing lost, nothing duplicated).
async fn every_transport_at(base: String, connect: skyrocket::client::Connect) -> Vec<RunResult> {
    runs_at(base, connect, Transport::RECEIVING.to_vec()).await
}

/// A small run of each of `transports` against `base`, each checked complete.
async fn runs_at(
    base: String,
    connect: skyrocket::client::Connect,
    transports: Vec<Transport>,
) -> Vec<RunResult> {
    let count = transports.len();
    let mut spec = small_spec(Servers::Urls(vec![base]), transports);
    spec.connect = connect;
    let progress = indicatif::ProgressBar::hidden();
    let runs = within(
        PATIENCE * 4,
        skyrocket::loadgen::run_all(&spec, &CancellationToken::new(), &progress, |_| {}),
    )
    .await
    .unwrap();
    assert_eq!(runs.len(), count);
    runs.iter().for_each(assert_complete);
    runs
}

/// `--network rtt=100ms`: clients and senders go through the server's
/// network in between, lose nothing, and every message pays the round trip
/// (a lower bound a delay cannot undercut; no upper bound is asserted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_through_the_network_pays_the_round_trip_and_loses_nothing() {
    use common::network::NetServer;
    use skyrocket::network::Conditions;
    let net = NetServer::start(skyrocket::Config::default(), Conditions::NONE).await;
    let mut spec = small_spec(Servers::Urls(vec![net.server.base()]), vec![Transport::Ws]);
    spec.network = Some(Conditions::parse("rtt=100ms").unwrap());
    let progress = indicatif::ProgressBar::hidden();
    let runs = within(
        PATIENCE * 2,
        skyrocket::loadgen::run_all(&spec, &CancellationToken::new(), &progress, |_| {}),
    )
    .await
    .unwrap();
    assert_complete(&runs[0]);
    assert!(runs[0].latency_ms.p50 >= 100.0, "{:?}", runs[0].latency_ms);
    assert_eq!(net.network.conditions().up_ms, 50);
    assert!(
        net.counters().total >= 7,
        "5 receivers and 2 senders went through"
    );
}

async fn a_small_run_per_transport_loses_nothing(wire: Wire) {
    let server = TestServer::over(wire, skyrocket::Config::default()).await;
    let runs = every_transport_at(server.base(), server.connect.clone()).await;
    for run in &runs {
        // The message JSON carries the 100-byte text and more, so every
        // delivery costs more than its text on the wire.
        assert!(
            run.server.wire_out_per_delivery > 100.0,
            "{}: {}",
            run.transport,
            run.server.wire_out_per_delivery
        );
        assert!(run.server.delivered > 0, "{}", run.transport);
        // loadgen did not start this server, so it cannot see its process.
        assert_eq!(run.server.cpu_seconds_per_1000, None);
        // The `connection` line: TLS records (and HTTP/2's own frames)
        // cost something per delivery; plain HTTP has no such line.
        let connection = run.server.connection_out_per_delivery;
        if wire == Wire::H1 {
            assert_eq!(connection, 0.0, "{}", run.transport);
        } else {
            assert!(connection > 0.0, "{}: {connection}", run.transport);
        }
    }
    let by = |name: &str| runs.iter().find(|r| r.transport == name).unwrap();
    // Streams make no request per message; polls do, and send them.
    assert_eq!(by("ws").server.requests_per_delivery, 0.0);
    assert_eq!(by("sse").server.requests_per_delivery, 0.0);
    if wire != Wire::H2 {
        // Over HTTP/2 the client's WINDOW_UPDATE frames for the stream
        // are the stream's bytes in.
        assert_eq!(by("sse").server.wire_in_per_delivery, 0.0);
    }
    for poller in ["longpoll", "poll"] {
        assert!(by(poller).server.requests_per_delivery > 0.0, "{poller}");
        assert!(by(poller).server.wire_in_per_delivery > 0.0, "{poller}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_server_delivers_every_message_on_every_transport() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let floor = tokio::spawn(skyrocket::loadgen::serve_baseline(
        listener,
        skyrocket::loadgen::floor::app(Default::default()),
        stop.clone().cancelled_owned(),
    ));
    for run in &every_transport_at(base, Default::default()).await {
        // The floor counts its deliveries, the one figure loadgen needs.
        assert!(run.server.delivered > 0, "{}", run.transport);
    }
    stop.cancel();
    within(PATIENCE, floor).await.unwrap().unwrap();
}

/// The axum-example shape speaks enough of the contract for loadgen's
/// stream clients: every message arrives, in order, once, over WebSocket
/// and SSE, and it counts its deliveries for loadgen's CPU per delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_axum_shape_delivers_every_message_over_both_streams() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let server = tokio::spawn(skyrocket::loadgen::serve_baseline(
        listener,
        skyrocket::loadgen::axum_shape::app(),
        stop.clone().cancelled_owned(),
    ));
    let streams = vec![Transport::Ws, Transport::Sse];
    for run in &runs_at(base, Default::default(), streams).await {
        // Counted after each write returns, so it may trail the
        // receivers by the last few; zero would mean it counts nothing.
        assert!(run.server.delivered > 0, "{}", run.transport);
    }
    stop.cancel();
    within(PATIENCE, server).await.unwrap().unwrap();
}

/// A fresh directory name for one test's report.
fn report_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "skyrocket-{name}-{}-{}",
        std::process::id(),
        skyrocket::message::now_millis()
    ))
}

/// Runs the loadgen binary with `args` (split at whitespace) and
/// `--report dir`, within `patience`, and checks that it succeeded.
async fn loadgen(args: &str, dir: &std::path::Path, patience: Duration) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    command
        .args(args.split_whitespace())
        .arg("--report")
        .arg(dir)
        .kill_on_drop(true);
    let output = within(patience, command.output()).await.unwrap();
    assert!(
        output.status.success(),
        "loadgen failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_sweeps_and_writes_its_report() {
    let dir = report_dir("loadgen");
    let json = dir.join("out.json");
    let args = format!(
        "--transport ws,longpoll --clients 2,3 --rate 20 --duration 1s --warmup 200ms \
         --drain 20s --senders 2 --floor --axum-shape --json {}",
        json.display()
    );
    loadgen(&args, &dir, PATIENCE * 4).await;

    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.starts_with("# loadgen report"));
    assert!(report.contains("Command: `loadgen --transport ws,longpoll"));
    assert!(report.contains("Machine: "));
    let baselines = report
        .split("## Against the baselines")
        .nth(1)
        .unwrap_or_else(|| panic!("no baselines section in\n{report}"));
    assert!(baselines.contains("| ws | 3 | "), "{baselines}");
    assert!(baselines.contains("| longpoll | 3 | "), "{baselines}");
    for row in [
        "| ws | 2 | 2 |",
        "| ws | 3 | 3 |",
        "| longpoll | 2 | 2 |",
        "| longpoll | 3 | 3 |",
    ] {
        assert!(report.contains(row), "no row {row} in\n{report}");
    }

    // A sweep draws all four charts, and the report shows them.
    for chart in ["latency.svg", "bytes.svg", "cpu.svg", "sweep-p99.svg"] {
        let svg = std::fs::read_to_string(dir.join(chart)).unwrap();
        assert!(svg.contains("<svg") && svg.contains("longpoll"), "{chart}");
        assert!(report.contains(&format!("]({chart})")), "{chart} not shown");
    }

    for file in [json, dir.join("results.json")] {
        let parsed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let runs = parsed["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 4);
        for run in runs {
            assert_eq!(run["lost"], 0, "{run}");
            assert_eq!(run["delivered"], run["expected"], "{run}");
            // loadgen started these servers, so it saw their processes.
            assert!(run["server"]["cpu_seconds_per_1000"].is_number(), "{run}");
            assert!(run["loadgen_cpu_seconds"].is_number(), "{run}");
            // --floor ran the same workload against the floor server.
            assert_eq!(run["floor"]["lost"], 0, "{run}");
            assert!(run["floor"]["cpu_ratio"].is_number(), "{run}");
            // --axum-shape did too, for the streams only: it has no polls.
            if run["transport"] == "ws" {
                assert_eq!(run["axum_shape"]["lost"], 0, "{run}");
                assert!(run["axum_shape"]["cpu_ratio"].is_number(), "{run}");
                let rss = &run["axum_shape"]["rss_per_client_kib"];
                assert!(rss.is_number(), "{run}");
            } else {
                assert!(run["axum_shape"].is_null(), "{run}");
            }
            assert!(
                run["server"]["rss_idle_mib"].as_f64().unwrap() > 0.0,
                "{run}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

over_each_wire!(multi_thread: a_small_run_per_transport_loses_nothing);

/// `loadgen recovery`'s case runner: a receiver behind a network that
/// refuses WebSocket upgrades; auto mode falls back and has messages, with
/// none lost or doubled, and the report names where it ended. (The times
/// are printed by `loadgen recovery`, not asserted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_runner_sees_auto_mode_fall_back_past_a_refused_upgrade() {
    use skyrocket::loadgen::child::ServerCommand;
    use skyrocket::loadgen::recovery::{report, run_case, Fault, Receiver};
    let server = ServerCommand::binary(env!("CARGO_BIN_EXE_skyrocket").into(), &[]);
    let outcome = within(
        PATIENCE * 2,
        run_case(&server, Fault::UpgradeForbidden, Receiver::Auto),
    )
    .await
    .unwrap();
    assert!(outcome.took.is_some(), "{outcome:?}");
    assert_eq!(outcome.ended_on, Transport::Sse, "{outcome:?}");
    assert_eq!((outcome.lost, outcome.doubled), (0, 0), "{outcome:?}");
    let started = skyrocket::provenance::Provenance::here("test");
    let markdown = report(&started, &[outcome]);
    assert!(
        markdown.contains("| Upgrade refused with 403 |"),
        "{markdown}"
    );
    assert!(markdown.contains("(on sse)"), "{markdown}");
}

/// Pollers that do not poll again within the run (a 10-minute interval)
/// still have every measured message ahead of their cursor when the drain
/// ends: loadgen counts those as queued, not lost, calls the run
/// overloaded, and writes its report though there is no latency to chart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_delivered_nothing_is_reported_as_queued_not_lost() {
    let dir = report_dir("loadgen-queued");
    let args = "--transport poll --clients 3 --rate 20 --duration 1s --warmup 200ms \
                --drain 100ms --poll-interval 10m";
    loadgen(args, &dir, PATIENCE * 2).await;
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let run = &parsed["runs"][0];
    assert_eq!(run["delivered"], 0, "{run}");
    assert!(run["expected"].as_u64().unwrap() >= 3, "{run}");
    assert_eq!(run["queued"], run["expected"], "{run}");
    assert_eq!(run["lost"], 0, "{run}");
    assert!(report.contains("| poll | 3 | 3 | overloaded |"), "{report}");
    assert!(
        report.contains("not yet fetched when the drain ended"),
        "{report}"
    );
    assert!(!report.contains("latency.svg"), "{report}");
}
