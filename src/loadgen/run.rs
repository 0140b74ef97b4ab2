//! One run: `clients` receivers of one transport in a fresh room, senders
//! on an open-loop schedule, and the server's own accounting read before
//! and after the measured window.
//!
//! Phases: connect (at the ramp rate, each client timed until it can
//! receive), warmup (sending, not measured), measure, drain (the last
//! messages get up to `spec.drain` to arrive), then every client closes.

use super::probe::Usage;
use super::report::{Percentiles, RunResult, ServerFigures};
use super::spec::Spec;
use super::tally::{lock, new_histogram, text_for, Schedule, Tally};
use crate::client::{Subscriber, Target};
use crate::message::CountersSnapshot;
use crate::message::Resume;
use crate::message::Transport;
use crate::message::{Control, Draft, Event};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A client that has not connected within this is counted as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections being opened at once, so a fast ramp does not overflow the
/// server's accept backlog.
const CONNECTS_IN_FLIGHT: usize = 256;
/// Failed polls in a row a poller retries (with the same `since`, so it
/// loses nothing) before it counts as dropped.
const POLL_RETRIES: u32 = 5;
/// Pause before the first retry; doubled for each further one.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// A server under test; `pid` is known when loadgen started it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub base: String,
    pub pid: Option<u32>,
    /// The network in between's URL, when clients go through it
    /// (`loadgen --network`); `/stats` is still read from `base`.
    pub via: Option<String>,
}

impl Instance {
    /// Where clients and senders connect.
    pub fn clients_base(&self) -> &str {
        self.via.as_deref().unwrap_or(&self.base)
    }

    /// Sets the instance's network conditions (`PUT /network`) and sends
    /// clients through its network port from now on.
    pub async fn through_network(
        &mut self,
        conditions: &crate::network::Conditions,
    ) -> Result<(), String> {
        let url = format!("{}/network", self.base);
        let answer = crate::client::tls::http_builder()
            .build()
            .map_err(|e| e.to_string())?
            .put(&url)
            .json(conditions)
            .send()
            .await
            .map_err(|e| format!("PUT {url}: {e}"))?;
        let status = answer.status();
        let body: serde_json::Value = answer.json().await.map_err(|e| format!("PUT {url}: {e}"))?;
        let addr = body["addr"].as_str().filter(|_| status.is_success());
        let addr = addr.ok_or_else(|| format!("PUT {url}: {status} {body}"))?;
        self.via = Some(format!("http://{addr}"));
        Ok(())
    }
}

/// What happened to the clients of a run, beyond their messages.
#[derive(Debug)]
struct Clients {
    connected: AtomicU64,
    failed: AtomicU64,
    /// Clients whose stream broke after connecting.
    dropped: AtomicU64,
    /// Failed polls retried with the same `since`.
    retries: AtomicU64,
    /// Each receiver's cursor: the last message id it got, 0 once it can
    /// receive, [`NOT_RECEIVING`] before that and after its stream broke.
    cursors: Vec<AtomicU64>,
    connect_us: Mutex<Histogram<u64>>,
    /// Why clients failed, with counts, so "1,204 x too many open files"
    /// is one line, not 1,204.
    failures: Mutex<BTreeMap<String, u64>>,
}

/// A cursor that counts for nothing queued: the receiver never connected,
/// or its stream broke (what it missed is lost).
const NOT_RECEIVING: u64 = u64::MAX;

impl Clients {
    fn new(receivers: usize) -> Self {
        Self {
            cursors: (0..receivers)
                .map(|_| AtomicU64::new(NOT_RECEIVING))
                .collect(),
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            connect_us: Mutex::new(new_histogram()),
            failures: Mutex::new(BTreeMap::new()),
        }
    }

    fn connected(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        lock(&self.connect_us).saturating_record(micros);
        self.connected.fetch_add(1, Relaxed);
    }

    fn connect_failed(&self, why: String) {
        *lock(&self.failures).entry(why).or_default() += 1;
        self.failed.fetch_add(1, Relaxed);
    }

    fn dropped(&self, why: String) {
        *lock(&self.failures).entry(why).or_default() += 1;
        self.dropped.fetch_add(1, Relaxed);
    }

    /// The cursors of the receivers still receiving.
    fn cursors(&self) -> impl Iterator<Item = Option<u64>> + '_ {
        self.cursors.iter().map(|c| {
            let cursor = c.load(Relaxed);
            (cursor != NOT_RECEIVING).then_some(cursor)
        })
    }

    fn settled(&self) -> u64 {
        self.connected.load(Relaxed) + self.failed.load(Relaxed)
    }
}

/// The server's counters for one transport, summed over the instances,
/// and its CPU and memory when loadgen knows its process; and loadgen's
/// own CPU, so a report shows which side was saturated.
#[derive(Debug, Clone, Copy, Default)]
struct ServerSample {
    counters: CountersSnapshot,
    /// The `connection` line (TLS and HTTP/2 connection overhead).
    connection: CountersSnapshot,
    usage: Option<Usage>,
    loadgen: Option<Usage>,
}

async fn sample(targets: &[Target], instances: &[Instance], transport: &str) -> ServerSample {
    let mut total = ServerSample {
        loadgen: Usage::of(std::process::id()).ok(),
        ..ServerSample::default()
    };
    for target in targets {
        if let Ok(counters) = target.counters(transport).await {
            total.counters += counters;
        }
        // A server without the line (the floor's) counts none.
        if let Ok(counters) = target.counters("connection").await {
            total.connection += counters;
        }
    }
    for pid in instances.iter().filter_map(|i| i.pid) {
        if let Ok(u) = Usage::of(pid) {
            let sum = total.usage.get_or_insert_with(Usage::default);
            sum.cpu_seconds += u.cpu_seconds;
            sum.rss_bytes += u.rss_bytes;
        }
    }
    total
}

/// `target` for one receiver: over HTTP/2 a clone would share its
/// connection with every other receiver, so each gets its own, as separate
/// browsers would; over HTTP/1.1 the shared pool already opens one
/// connection per receiver.
fn own_connection(spec: &Spec, target: &Target) -> Target {
    if spec.connect.http2 {
        target.own_connection()
    } else {
        target.clone()
    }
}

/// Runs `clients` receivers of `kind` against `instances`; `interrupt`
/// (Ctrl-C) cuts the run short and what was measured is still returned.
pub async fn run_one(
    spec: &Spec,
    kind: Transport,
    clients: usize,
    instances: &[Instance],
    interrupt: &CancellationToken,
    progress: &ProgressBar,
) -> RunResult {
    let room = format!(
        "lg-{}-{clients}-{}",
        kind.name(),
        crate::message::now_millis()
    );
    let targets: Vec<Target> = instances
        .iter()
        .map(|i| Target::with(&i.base, &room, spec.connect.clone()))
        .collect();
    // Clients and senders may go through the network in between.
    let client_targets: Vec<Target> = instances
        .iter()
        .map(|i| Target::with(i.clients_base(), &room, spec.connect.clone()))
        .collect();
    let base = sample(&targets, instances, kind.name()).await;

    // Connect.
    let state = Arc::new(Clients::new(clients));
    let tally_slot: Arc<OnceLock<Tally>> = Arc::new(OnceLock::new());
    let stop = interrupt.child_token();
    let mut receivers = JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECTS_IN_FLIGHT));
    let ramp_start = tokio::time::Instant::now();
    progress.set_length(clients as u64);
    progress.set_position(0);
    progress.set_message(format!("{} x{clients}: connecting", kind.name()));
    for index in 0..clients {
        let due = ramp_start + Duration::from_secs_f64(index as f64 / spec.ramp);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(due) => {}
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let receiver = Receiver {
            index,
            kind,
            target: own_connection(spec, &client_targets[index % client_targets.len()]),
            poll_interval: spec.poll_interval,
            clients: state.clone(),
            tally: tally_slot.clone(),
            stop: stop.clone(),
        };
        receivers.spawn(receiver.run(permit));
        progress.set_position(state.settled());
    }
    let requested = receivers.len() as u64;
    while state.settled() < requested && !stop.is_cancelled() {
        progress.set_position(state.settled());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress.set_position(state.settled());
    let connected = state.connected.load(Relaxed);
    let idle = sample(&targets, instances, kind.name()).await;

    // Send: warmup, then the measured window.
    let warmup = (spec.rate * spec.warmup.as_secs_f64()).round() as u64;
    let total = warmup + (spec.rate * spec.duration.as_secs_f64()).round().max(1.0) as u64;
    let schedule = Schedule {
        start: Instant::now() + Duration::from_millis(20),
        rate: spec.rate,
        warmup,
        total,
    };
    let tally_ref = tally_slot.get_or_init(|| Tally::new(schedule));
    progress.set_length(total);
    progress.set_position(0);
    let mut senders = JoinSet::new();
    for sender in 0..spec.senders.max(1) {
        let share = SenderShare {
            first: sender as u64,
            step: spec.senders.max(1) as u64,
            drain: spec.drain,
            size: spec.size,
            target: Target::with(
                instances[sender % instances.len()].clients_base(),
                &room,
                spec.connect.clone(),
            ),
            tally: tally_slot.clone(),
            stop: stop.clone(),
        };
        senders.spawn(share.run());
    }
    // The server's counters are read when the measured window opens, so
    // the per-delivery figures cover the same window as the latencies.
    let measure_start = schedule.due(warmup);
    let before = tokio::spawn({
        let (targets, instances) = (targets.clone(), instances.to_vec());
        async move {
            tokio::time::sleep_until(measure_start.into()).await;
            sample(&targets, &instances, kind.name()).await
        }
    });
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    while !senders.is_empty() {
        tokio::select! {
            _ = senders.join_next() => {}
            _ = ticks.tick() => show_live(progress, kind, clients, tally_ref),
        }
    }
    let before = before.await.unwrap_or_default();

    // Drain: the last messages get `spec.drain` to arrive.
    let expected = tally_ref.sent.load(Relaxed) * connected;
    let drain_deadline = Instant::now() + spec.drain;
    while tally_ref.delivered.load(Relaxed) < expected
        && Instant::now() < drain_deadline
        && !stop.is_cancelled()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let window = Instant::now().saturating_duration_since(measure_start);
    let after = sample(&targets, instances, kind.name()).await;
    show_live(progress, kind, clients, tally_ref);

    // Close every client; a stuck one is aborted after a bound.
    stop.cancel();
    let closing = async { while receivers.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), closing)
        .await
        .is_err()
    {
        receivers.abort_all();
    }

    // Every receiver has stopped, so counts and cursors agree.
    let delivered = tally_ref.delivered.load(Relaxed);
    let queued = tally_ref.queued(state.cursors());
    // Saturating: a server that went away mid-run reads as zeros.
    let server_delivered = after
        .counters
        .delivered
        .saturating_sub(before.counters.delivered);
    let per_delivery = |a: u64, b: u64| a.saturating_sub(b) as f64 / server_delivered.max(1) as f64;
    let usage_delta = match (before.usage, after.usage) {
        (Some(b), Some(a)) => Some(a.cpu_seconds - b.cpu_seconds),
        _ => None,
    };
    let loadgen_cpu = match (before.loadgen, after.loadgen) {
        (Some(b), Some(a)) => Some(a.cpu_seconds - b.cpu_seconds),
        _ => None,
    };
    let rss_per_client = match (base.usage, idle.usage) {
        (Some(b), Some(i)) if connected > 0 => {
            Some((i.rss_bytes as f64 - b.rss_bytes as f64) / connected as f64 / 1024.0)
        }
        _ => None,
    };
    let connect_ms = Percentiles::from_micros(&lock(&state.connect_us));
    let failures = lock(&state.failures)
        .iter()
        .map(|(why, n)| (why.clone(), *n))
        .collect();
    RunResult {
        transport: kind.name(),
        clients,
        connected,
        connect_failed: state.failed.load(Relaxed),
        dropped: state.dropped.load(Relaxed),
        poll_retries: state.retries.load(Relaxed),
        failures,
        connect_ms,
        senders: spec.senders.max(1),
        rate: spec.rate,
        size: spec.size,
        sent: tally_ref.sent.load(Relaxed),
        send_errors: tally_ref.send_errors.load(Relaxed),
        first_send_error: tally_ref.first_error(),
        expected,
        delivered,
        lost: expected.saturating_sub(delivered + queued),
        queued: Some(queued),
        duplicates: tally_ref.duplicates.load(Relaxed),
        announced_losses: tally_ref.announced_losses.load(Relaxed),
        latency_ms: Percentiles::from_micros(&tally_ref.latencies()),
        window_s: window.as_secs_f64(),
        deliveries_per_sec: delivered as f64 / window.as_secs_f64().max(1e-9),
        server: ServerFigures {
            delivered: server_delivered,
            wire_out_per_delivery: per_delivery(
                after.counters.wire_bytes_out,
                before.counters.wire_bytes_out,
            ),
            wire_in_per_delivery: per_delivery(
                after.counters.wire_bytes_in,
                before.counters.wire_bytes_in,
            ),
            requests_per_delivery: per_delivery(after.counters.requests, before.counters.requests),
            connection_out_per_delivery: per_delivery(
                after.connection.wire_bytes_out,
                before.connection.wire_bytes_out,
            ),
            connection_in_per_delivery: per_delivery(
                after.connection.wire_bytes_in,
                before.connection.wire_bytes_in,
            ),
            cpu_seconds: usage_delta,
            cpu_seconds_per_1000: usage_delta
                .map(|cpu| cpu / (server_delivered.max(1) as f64 / 1000.0)),
            rss_idle_mib: idle.usage.map(|u| u.rss_bytes as f64 / (1024.0 * 1024.0)),
            rss_per_client_kib: rss_per_client,
        },
        loadgen_cpu_seconds: loadgen_cpu,
        floor: None,
        axum_shape: None,
        interrupted: interrupt.is_cancelled(),
    }
}

fn show_live(progress: &ProgressBar, kind: Transport, clients: usize, tally: &Tally) {
    let sent = tally.sent.load(Relaxed) + tally.send_errors.load(Relaxed);
    progress.set_position(sent.min(tally.schedule.total));
    let latencies = tally.latencies();
    progress.set_message(format!(
        "{} x{clients}: delivered {} | p99 {:.1} ms",
        kind.name(),
        tally.delivered.load(Relaxed),
        latencies.value_at_quantile(0.99) as f64 / 1000.0,
    ));
}

/// One receiving client for the whole run.
struct Receiver {
    index: usize,
    kind: Transport,
    target: Target,
    poll_interval: Duration,
    clients: Arc<Clients>,
    tally: Arc<OnceLock<Tally>>,
    stop: CancellationToken,
}

impl Receiver {
    async fn run(self, permit: tokio::sync::OwnedSemaphorePermit) {
        let started = Instant::now();
        let connecting = async {
            let mut subscriber = Subscriber::connect(
                self.kind,
                &self.target,
                &Resume::default(),
                self.poll_interval,
            )
            .await?;
            // A stream is ready once its `hello` arrived: the server has
            // subscribed it to the room by then. A poller is ready once
            // its first poll pinned "from now".
            if matches!(self.kind, Transport::Ws | Transport::Sse) {
                subscriber.next_event().await?;
            }
            Ok::<_, crate::client::ClientError>(subscriber)
        };
        let outcome = tokio::select! {
            _ = self.stop.cancelled() => return,
            outcome = tokio::time::timeout(CONNECT_TIMEOUT, connecting) => outcome,
        };
        let mut subscriber = match outcome {
            Ok(Ok(subscriber)) => subscriber,
            Ok(Err(e)) => return self.clients.connect_failed(in_plain_words(&e)),
            Err(_) => {
                return self
                    .clients
                    .connect_failed(format!("no answer within {CONNECT_TIMEOUT:?}"))
            }
        };
        self.clients.connected(started.elapsed());
        let cursor = &self.clients.cursors[self.index];
        cursor.store(0, Relaxed);
        drop(permit);
        let mut last_id = 0;
        let mut failed_polls = 0;
        let polls = matches!(self.kind, Transport::LongPoll | Transport::Poll);
        loop {
            let event = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return,
                event = subscriber.next_event() => event,
            };
            let now = Instant::now();
            // A poll that failed is asked again: the client kept its
            // `since`, so the retry loses nothing. A few in a row, then the
            // poller gives up like a broken stream.
            if event.is_err() && polls && failed_polls < POLL_RETRIES {
                let pause = RETRY_PAUSE * 2u32.pow(failed_polls);
                failed_polls += 1;
                self.clients.retries.fetch_add(1, Relaxed);
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    _ = tokio::time::sleep(pause) => continue,
                }
            }
            // A broken stream ends this receiver whether or not sending has
            // begun: retrying a closed stream would only spin.
            let event = match event {
                Ok(event) => {
                    failed_polls = 0;
                    event
                }
                Err(e) => {
                    cursor.store(NOT_RECEIVING, Relaxed);
                    let why = format!("{} stream ended: {}", self.kind.name(), in_plain_words(&e));
                    return self.clients.dropped(why);
                }
            };
            let Some(tally) = self.tally.get() else {
                continue;
            };
            match event {
                Event::Message(m) => {
                    tally.receipt(self.index, m.id, &m.text, &mut last_id, now);
                    cursor.store(last_id, Relaxed);
                }
                Event::Control(Control::Gap { .. } | Control::Reset { .. }) => {
                    tally.announced_losses.fetch_add(1, Relaxed);
                }
                Event::Control(_) => {}
            }
        }
    }
}

/// The usual reasons a client cannot connect, said plainly; anything else
/// as the client library reports it.
fn in_plain_words(error: &crate::client::ClientError) -> String {
    let text = error.to_string();
    // reqwest's message leaves the OS error to its source chain.
    let mut all = text.clone();
    if let crate::client::ClientError::Http(e) = error {
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            all.push_str(&format!(" {cause}"));
            source = cause.source();
        }
    }
    if all.contains("Too many open files") {
        "too many open files: a process reached its file limit (ulimit -n)".into()
    } else if all.contains("Connection refused") || all.contains("ConnectionRefused") {
        "connection refused: nothing listens there, or its accept backlog is full".into()
    } else if all.contains("Cannot assign requested address") || all.contains("AddrNotAvailable") {
        "no free local port: the ephemeral port range is used up".into()
    } else {
        // Drop the URL (it names the client), so failures of one kind
        // count as one line.
        match text.split_once(" for url (") {
            Some((head, _)) => head.to_owned(),
            None => text,
        }
    }
}

/// One sender's share of the schedule: every `step`-th message from `first`.
struct SenderShare {
    first: u64,
    step: u64,
    drain: Duration,
    size: usize,
    target: Target,
    tally: Arc<OnceLock<Tally>>,
    stop: CancellationToken,
}

impl SenderShare {
    async fn run(self) {
        let Some(tally) = self.tally.get() else {
            return;
        };
        let schedule = tally.schedule;
        // A saturated server can make each send slow; sending stops a drain
        // period after the schedule's end, so every run is bounded in time.
        let deadline = schedule.due(schedule.total) + self.drain;
        let mut seq = self.first;
        while seq < schedule.total {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep_until(schedule.due(seq).into()) => {}
            }
            if Instant::now() > deadline {
                let unsent = (schedule.total - seq).div_ceil(self.step);
                tally.send_errors.fetch_add(unsent, Relaxed);
                tally.error(
                    "not sent: the schedule ran past its deadline (server saturated)".into(),
                );
                return;
            }
            let draft = Draft {
                user: "loadgen".into(),
                text: text_for(seq, self.size),
                client_id: None,
            };
            match self.target.send(&draft).await {
                Ok(id) if schedule.is_measured(seq) => tally.sent(id),
                Ok(_) => {}
                Err(e) => {
                    tally.send_errors.fetch_add(1, Relaxed);
                    tally.error(format!("send: {}", in_plain_words(&e)));
                }
            }
            seq += self.step;
        }
    }
}
