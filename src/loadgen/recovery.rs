//! `loadgen recovery`: how long each transport takes to notice a fault of
//! the network in between and to deliver again, and whether it lost or
//! doubled anything on the way.
//!
//! One receiver at a time, so the figures are the protocol's and the
//! client's reaction times, not a queue's. Each case gets a fresh child
//! server whose network port carries the receiver; the sender posts to the
//! server directly, so only the receiver's path is faulted.
//!
//! Two shapes of fault:
//! - in the middle of a conversation (a cut, an idle timeout): the receiver
//!   first has a message, then the fault happens, then one message is
//!   posted; the figure is the time from the fault to its delivery;
//! - from the start (a buffering proxy, a refused Upgrade): the receiver
//!   starts behind the fault while a message is posted every
//!   [`TICK`]; the figure is the time from its start to its first message.
//!
//! The receiver is the library's [`AutoClient`], on one transport (which it
//! retries for ever) or in auto mode (which falls back), so what is measured
//! is the reconnect and resume logic the demo's Rust users get.

use super::child::{ChildServer, ServerCommand};
use super::run::Instance;
use crate::client::auto::{AutoClient, AutoConfig};
use crate::client::tls::http_builder;
use crate::client::Target;
use crate::message::{Draft, Event, Resume, Transport};
use crate::network::Conditions;
use std::fmt::Write as _;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{timeout, timeout_at, Instant};

/// How long a case may take to deliver before it counts as "not within".
pub const PATIENCE: Duration = Duration::from_secs(12);
/// The idle timeout of the idle cases: short, so a case takes seconds.
const IDLE: Duration = Duration::from_secs(3);
/// Posting period while a receiver starts behind a fault.
const TICK: Duration = Duration::from_millis(100);

/// One network fault, and how the server is configured around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No fault: the reference.
    None,
    /// Every connection through the network cut at once (a phone
    /// switching networks).
    Cut,
    /// An idle timeout of [`IDLE`], with server heartbeats every second.
    IdleWithHeartbeats,
    /// The same idle timeout with no heartbeats at all.
    IdleWithoutHeartbeats,
    /// A proxy holding response bodies until 64 KiB or their end.
    Buffering,
    /// WebSocket upgrades answered `403`.
    UpgradeForbidden,
    /// WebSocket upgrades cut without an answer.
    UpgradeDropped,
    /// A corporate proxy: buffering, and Upgrade refused with `403`. Auto
    /// mode must go past a stalled SSE stream to long polling.
    BufferingWithoutUpgrade,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::None,
        Fault::Cut,
        Fault::IdleWithHeartbeats,
        Fault::IdleWithoutHeartbeats,
        Fault::Buffering,
        Fault::UpgradeForbidden,
        Fault::UpgradeDropped,
        Fault::BufferingWithoutUpgrade,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none (reference)",
            Fault::Cut => "cut every connection",
            Fault::IdleWithHeartbeats => "idle timeout 3 s, heartbeats every 1 s",
            Fault::IdleWithoutHeartbeats => "idle timeout 3 s, no heartbeats",
            Fault::Buffering => "buffering proxy (64 KiB)",
            Fault::UpgradeForbidden => "Upgrade refused with 403",
            Fault::UpgradeDropped => "Upgrade cut without an answer",
            Fault::BufferingWithoutUpgrade => "buffering and Upgrade refused",
        }
    }

    /// The network spec the receiver's path has from the start.
    fn conditions(self) -> Conditions {
        let spec = match self {
            Fault::None | Fault::Cut => "none",
            Fault::IdleWithHeartbeats | Fault::IdleWithoutHeartbeats => "idle=3s",
            Fault::Buffering => "buffer=64KiB",
            Fault::UpgradeForbidden => "upgrade=403",
            Fault::UpgradeDropped => "upgrade=drop",
            Fault::BufferingWithoutUpgrade => "buffer=64KiB,upgrade=403",
        };
        Conditions::parse(spec).expect("the built-in specs parse")
    }

    /// Extra server flags the fault needs.
    fn server_flags(self) -> Vec<String> {
        let flags: &[&str] = match self {
            Fault::IdleWithHeartbeats => &["--ws-ping-secs", "1", "--sse-keepalive-secs", "1"],
            Fault::IdleWithoutHeartbeats => &["--no-heartbeats"],
            _ => &[],
        };
        flags.iter().map(|f| f.to_string()).collect()
    }

    /// Whether the fault is there before the receiver connects.
    fn present_at_connect(self) -> bool {
        matches!(
            self,
            Fault::Buffering
                | Fault::UpgradeForbidden
                | Fault::UpgradeDropped
                | Fault::BufferingWithoutUpgrade
        )
    }
}

/// The receiver of a case: one transport, or auto mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    Only(Transport),
    Auto,
}

impl Receiver {
    pub const ALL: [Receiver; 5] = [
        Receiver::Only(Transport::Ws),
        Receiver::Only(Transport::Sse),
        Receiver::Only(Transport::LongPoll),
        Receiver::Only(Transport::Poll),
        Receiver::Auto,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Receiver::Only(t) => t.name(),
            Receiver::Auto => "auto",
        }
    }

    fn config(self) -> AutoConfig {
        match self {
            Receiver::Only(t) => AutoConfig::only(t),
            Receiver::Auto => AutoConfig::auto(),
        }
    }
}

/// What one case measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub fault: Fault,
    pub receiver: Receiver,
    /// Fault (or start) to delivery; `None`: not within [`PATIENCE`].
    pub took: Option<Duration>,
    /// Connections the receiver opened beyond its first.
    pub reconnects: u64,
    /// The transport it ended on (differs from the first in auto mode).
    pub ended_on: Transport,
    /// Ids missing between the first and the last it received.
    pub lost: u64,
    /// Ids it received twice or out of order.
    pub doubled: u64,
    /// Why the last connection failed, if one did.
    pub last_failure: Option<String>,
}

/// What the receiver heard: a message id, or the error it gave up on, with
/// the client's state at that moment.
#[derive(Debug)]
struct Heard {
    id: Option<u64>,
    gave_up: Option<String>,
    status: Status,
}

/// The client's state when it handed something over.
#[derive(Debug, Clone)]
struct Status {
    reconnects: u64,
    transport: Transport,
    last_failure: Option<String>,
}

impl Status {
    fn of(client: &AutoClient) -> Self {
        Self {
            reconnects: client.reconnects(),
            transport: client.transport(),
            last_failure: client.last_failure().map(str::to_owned),
        }
    }
}

/// Everything a case has heard so far.
#[derive(Debug, Default)]
struct Log {
    ids: Vec<u64>,
    last: Option<Status>,
    gave_up: Option<String>,
}

impl Log {
    fn take(&mut self, heard: Heard) {
        self.ids.extend(heard.id);
        if heard.gave_up.is_some() {
            self.gave_up = heard.gave_up;
        }
        self.last = Some(heard.status);
    }

    /// Ids missing between the first and the last heard, and ids heard
    /// again or out of order.
    fn gaps(&self) -> (u64, u64) {
        let (mut lost, mut doubled) = (0, 0);
        for pair in self.ids.windows(2) {
            match pair[1].checked_sub(pair[0]) {
                Some(0) | None => doubled += 1,
                Some(step) => lost += step - 1,
            }
        }
        (lost, doubled)
    }
}

/// Runs every fault against every receiver, in turn, each case on a fresh
/// server started by `command` (which gets the network flags added).
pub async fn run_all(
    command: &ServerCommand,
    on_case: impl Fn(&Outcome),
) -> Result<Vec<Outcome>, String> {
    let mut outcomes = Vec::new();
    for fault in Fault::ALL {
        for receiver in Receiver::ALL {
            let outcome = run_case(command, fault, receiver).await?;
            on_case(&outcome);
            outcomes.push(outcome);
        }
    }
    Ok(outcomes)
}

/// One fault against one receiver, on a fresh server started by `command`.
pub async fn run_case(
    command: &ServerCommand,
    fault: Fault,
    receiver: Receiver,
) -> Result<Outcome, String> {
    let mut command = command.clone();
    command
        .args
        .extend(["--network-addr".to_owned(), "127.0.0.1:0".to_owned()]);
    command.args.extend(fault.server_flags());
    let server = ChildServer::start(&command)
        .await
        .map_err(|e| format!("starting the server: {e}"))?;
    let room = format!("recovery-{}", receiver.name());
    let sender = Target::new(server.base.clone(), room.clone());
    let through = network(&server.base, fault.conditions()).await?;
    let target = Target::new(through, room);

    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let client = AutoClient::new(&target, &Resume::default(), receiver.config());
    let listening = tokio::spawn(listen(client, heard_tx));
    let mut log = Log::default();

    let took = if fault.present_at_connect() {
        first_delivery_while_posting(&sender, &mut heard, &mut log).await?
    } else {
        // The receiver proves it is listening: posts until one arrives
        // (the first may be posted before it subscribed).
        if first_delivery_while_posting(&sender, &mut heard, &mut log)
            .await?
            .is_none()
        {
            listening.abort();
            return Err(format!(
                "{}: no message within {PATIENCE:?} over a clean network",
                receiver.name()
            ));
        }
        let fault_at = Instant::now();
        match fault {
            Fault::Cut => cut_all(&server.base).await?,
            Fault::IdleWithHeartbeats | Fault::IdleWithoutHeartbeats => {
                // The fault is silence itself: one second past the timeout.
                tokio::time::sleep(IDLE + Duration::from_secs(1)).await;
            }
            _ => {}
        }
        let posted_at = Instant::now();
        let id = post(&sender).await?;
        // A cut is timed from the cut; the idle cases by the delay of the
        // message posted after the silence.
        let from = if fault == Fault::Cut {
            fault_at
        } else {
            posted_at
        };
        wait_for(&mut heard, &mut log, id, from + PATIENCE)
            .await
            .map(|at| at - from)
    };
    listening.abort();
    let _ = listening.await;
    while let Ok(more) = heard.try_recv() {
        log.take(more);
    }
    let _ = server.stop().await;
    let (lost, doubled) = log.gaps();
    let last = log.last.clone();
    Ok(Outcome {
        fault,
        receiver,
        took,
        reconnects: last.as_ref().map_or(0, |s| s.reconnects),
        ended_on: last.as_ref().map_or(Transport::Other, |s| s.transport),
        lost,
        doubled,
        last_failure: log
            .gave_up
            .clone()
            .or_else(|| last.and_then(|s| s.last_failure)),
    })
}

/// Hands each message the receiver gets to the case, until it gives up or
/// the case stops listening.
async fn listen(mut client: AutoClient, heard: mpsc::UnboundedSender<Heard>) {
    loop {
        let (id, gave_up) = match client.next_event().await {
            Ok(Event::Message(m)) => (Some(m.id), None),
            Ok(Event::Control(_)) => continue,
            Err(e) => (None, Some(e.to_string())),
        };
        let done = gave_up.is_some();
        let status = Status::of(&client);
        if heard
            .send(Heard {
                id,
                gave_up,
                status,
            })
            .is_err()
            || done
        {
            return;
        }
    }
}

/// Posts a message every [`TICK`] until the receiver has one; the time
/// from the first post, or `None` if nothing came within [`PATIENCE`].
async fn first_delivery_while_posting(
    sender: &Target,
    heard: &mut mpsc::UnboundedReceiver<Heard>,
    log: &mut Log,
) -> Result<Option<Duration>, String> {
    let start = Instant::now();
    let deadline = start + PATIENCE;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                post(sender).await?;
            }
            got = heard.recv() => match got {
                Some(got) => {
                    let message = got.id.is_some();
                    log.take(got);
                    if message {
                        return Ok(Some(start.elapsed()));
                    }
                }
                None => return Ok(None),
            },
        }
    }
}

/// Waits until the receiver has message `id`; when, or `None` by `deadline`.
async fn wait_for(
    heard: &mut mpsc::UnboundedReceiver<Heard>,
    log: &mut Log,
    id: u64,
    deadline: Instant,
) -> Option<Instant> {
    loop {
        let got = timeout_at(deadline, heard.recv()).await.ok()??;
        let reached = got.id.is_some_and(|got| got >= id);
        log.take(got);
        if reached {
            return Some(Instant::now());
        }
    }
}

async fn post(sender: &Target) -> Result<u64, String> {
    let draft = Draft {
        user: "recovery".into(),
        text: "a message after the fault".into(),
        client_id: None,
    };
    timeout(Duration::from_secs(5), sender.send(&draft))
        .await
        .map_err(|_| "a post took over 5 s".to_owned())?
        .map_err(|e| format!("post: {e}"))
}

/// Sets the network's conditions; the URL of its port (loadgen's own
/// `--network` path, so both set conditions the same way).
async fn network(base: &str, conditions: Conditions) -> Result<String, String> {
    let mut instance = Instance {
        base: base.to_owned(),
        pid: None,
        via: None,
    };
    instance.through_network(&conditions).await?;
    Ok(instance.clients_base().to_owned())
}

/// `POST /network/drop`: cuts every connection through the network.
async fn cut_all(base: &str) -> Result<(), String> {
    let url = format!("{base}/network/drop");
    let http = http_builder().build().map_err(|e| e.to_string())?;
    let answer = http
        .post(&url)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!("POST {url}: {}", answer.status()))
    }
}

/// The report: one row per fault, one column per receiver.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::from("| fault |");
    for receiver in Receiver::ALL {
        let _ = write!(out, " {} |", receiver.name());
    }
    out.push_str("\n|---|");
    for _ in Receiver::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for fault in Fault::ALL {
        let _ = write!(out, "| {} |", fault.name());
        for receiver in Receiver::ALL {
            let cell = outcomes
                .iter()
                .find(|o| o.fault == fault && o.receiver == receiver)
                .map_or_else(|| "not run".to_owned(), cell);
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out
}

/// One case as a table cell: the time, then what it took to get there.
fn cell(outcome: &Outcome) -> String {
    let mut cell = match outcome.took {
        Some(took) => format!("{:.2} s", took.as_secs_f64()),
        None => format!("none in {} s", PATIENCE.as_secs()),
    };
    let mut notes = Vec::new();
    if outcome.reconnects > 0 {
        notes.push(format!("{} reconnect(s)", outcome.reconnects));
    }
    if outcome.receiver == Receiver::Auto && outcome.ended_on != Transport::Ws {
        notes.push(format!("on {}", outcome.ended_on.name()));
    }
    if outcome.lost > 0 {
        notes.push(format!("{} lost", outcome.lost));
    }
    if outcome.doubled > 0 {
        notes.push(format!("{} doubled", outcome.doubled));
    }
    if !notes.is_empty() {
        let _ = write!(cell, " ({})", notes.join(", "));
    }
    cell
}

/// The whole report as Markdown: provenance, what was done, the table, and
/// why the failing cases failed.
pub fn report(started: &crate::provenance::Provenance, outcomes: &[Outcome]) -> String {
    let mut out = String::from("# Recovery from network faults\n\n");
    out.push_str(&started.to_markdown());
    let _ = write!(
        out,
        "\nOne receiver at a time (the library's `AutoClient`: one transport retried \
         for ever, or auto mode falling back WebSocket -> SSE -> long poll -> short \
         poll), behind the server's network in between; the sender posts directly. \
         A fresh child server per case, plain HTTP/1.1 on loopback.\n\n\
         - *Cut*: the receiver has a message, every connection through the network is \
         cut, one message is posted at once: the time from the cut to its delivery.\n\
         - *Idle timeout*: the receiver has a message, then nothing is posted for \
         {idle} s (the timeout plus one): the delay of the message posted after the \
         silence.\n\
         - *Buffering, Upgrade refused*: the fault is there from the start; a message \
         is posted every {tick} ms: the time from the receiver's start to its first \
         message. A new WebSocket or SSE connection must show its `hello` within 5 s \
         (the client's probe) to count as working.\n\
         - *none*: the reference, measured the way the cut is.\n\n\
         Short polling asks every second, so its figures are where the message fell \
         in that second: anything from 0 to 1 s, whatever the fault.\n\n\
         The network in between closes both sides of a connection it cuts, as a \
         proxy does, so a client notices a cut at once. A NAT or mobile network that \
         silently forgets a connection is noticed only by the client's liveness \
         check (40 s without a byte): that is what the heartbeats are for.\n\n\
         Reconnects are the connections the receiver opened beyond its first, up to \
         the message measured; *lost* and *doubled* count ids missing or repeated \
         between the first and last message it had. A case that delivered nothing \
         within {patience} s says so.\n\n",
        idle = IDLE.as_secs() + 1,
        tick = TICK.as_millis(),
        patience = PATIENCE.as_secs(),
    );
    out.push_str(&table(outcomes));
    let failures: Vec<_> = outcomes
        .iter()
        .filter_map(|o| {
            let why = o.last_failure.as_ref()?;
            Some(format!(
                "- {} / {}: {why}",
                o.fault.name(),
                o.receiver.name()
            ))
        })
        .collect();
    if !failures.is_empty() {
        out.push_str("\nThe last failure each receiver saw, where it saw one:\n\n");
        out.push_str(&failures.join("\n"));
        out.push('\n');
    }
    out
}
