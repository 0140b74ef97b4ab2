//! Automatic transport fallback, as the Socket.IO and Centrifugo clients
//! do: try WebSocket, then SSE, then long polling, then short polling;
//! settle on the first that works, say which and why, and when a
//! connection breaks, resume from the cursor so nothing is lost or doubled.
//!
//! # What counts as working
//! A new connection must prove itself within `probe`: WebSocket and SSE by
//! their `hello` event (a proxy that buffers the SSE body lets the
//! response head through and holds the hello, so "connected" alone proves
//! nothing), a poll by its first answer (a short poll, answered at once).
//! A connection that has proven itself is dead when nothing at all (a
//! message, a ping, a keepalive, a poll answer) has come for `liveness`.
//!
//! # When to move on
//! A transport that has never worked for this client is left at its first
//! failure: a refused upgrade will not get better by asking again. A
//! transport that has worked is retried after each failure (a drop, an
//! idle timeout) and left only after `retries` failed attempts in a row.
//! The last transport in the list is retried for ever, with backoff.
//! The client never moves back up the list: it settles.
//!
//! # Nothing lost, nothing doubled
//! The cursor (`since` and `epoch`) advances only with events handed to the
//! caller, and every (re)connection, on any transport, resumes from it.
//! Events queued inside a connection that broke were never handed out, so
//! they are fetched again; a message at or below the cursor is dropped.

use super::poll::PollClient;
use super::sse::SseClient;
use super::ws::WsClient;
use super::{ClientError, Result, Subscriber, Target};
use crate::message::{Control, Event, Resume, Transport};
use std::time::Duration;
use tokio::time::{sleep, sleep_until, timeout, Instant};

/// How the client chooses and keeps a transport.
#[derive(Debug, Clone)]
pub struct AutoConfig {
    /// Transports to try, in order.
    pub order: Vec<Transport>,
    /// How long a new connection has to prove it works.
    pub probe: Duration,
    /// Silence after which a working connection counts as dead. Above the
    /// server's heartbeat (WebSocket ping 25 s, SSE keepalive 15 s).
    pub liveness: Duration,
    /// Failed attempts in a row before leaving a transport that worked.
    pub retries: u32,
    /// The pause after the second failure in a row, doubling up to `max_backoff`.
    /// The first retry is immediate: after a drop, the next connection
    /// usually works.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Seconds a long poll may be held.
    pub long_poll_wait: u64,
    /// Pause between short polls that found nothing.
    pub poll_interval: Duration,
}

impl AutoConfig {
    /// WebSocket, SSE, long polling, short polling.
    pub fn auto() -> Self {
        Self {
            order: Transport::RECEIVING.to_vec(),
            probe: Duration::from_secs(5),
            liveness: Duration::from_secs(40),
            retries: 3,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            long_poll_wait: 25,
            poll_interval: Duration::from_secs(1),
        }
    }

    /// One transport only, reconnecting and resuming on it for ever.
    pub fn only(kind: Transport) -> Self {
        Self {
            order: vec![kind],
            ..Self::auto()
        }
    }
}

/// A move from one transport to the next, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub from: Transport,
    pub to: Transport,
    pub why: String,
}

/// A receiving client that reconnects, resumes and falls back by itself.
#[derive(Debug)]
pub struct AutoClient {
    target: Target,
    config: AutoConfig,
    /// Index of the current transport in `config.order`.
    at: usize,
    connection: Option<Subscriber>,
    connected_at: Instant,
    /// The current connection has shown life.
    proven: bool,
    /// The current transport has worked for this client.
    worked: bool,
    /// Failed attempts in a row on the current transport.
    failures: u32,
    cursor: Resume,
    switches: Vec<Switch>,
    connects: u64,
    doubles: u64,
    last_failure: Option<String>,
    /// One poller id for every poll connection, so presence counts this
    /// client once however often it reconnects.
    poller: String,
}

impl AutoClient {
    /// A client that will connect on the first `next_event`, from `resume`.
    pub fn new(target: &Target, resume: &Resume, config: AutoConfig) -> Self {
        assert!(!config.order.is_empty(), "at least one transport to try");
        Self {
            target: target.clone(),
            config,
            at: 0,
            connection: None,
            connected_at: Instant::now(),
            proven: false,
            worked: false,
            failures: 0,
            cursor: resume.clone(),
            switches: Vec::new(),
            connects: 0,
            doubles: 0,
            last_failure: None,
            poller: PollClient::new(target, resume, 0).client().to_owned(),
        }
    }

    /// The transport in use (or being tried).
    pub fn transport(&self) -> Transport {
        self.config.order[self.at]
    }

    /// Whether the current transport has worked: the client settled on it.
    pub fn settled(&self) -> bool {
        self.worked
    }

    /// Every fallback so far, with its reason.
    pub fn switches(&self) -> &[Switch] {
        &self.switches
    }

    /// Why the client is on its current transport, for a person.
    pub fn why(&self) -> String {
        match self.switches.last() {
            None => format!("{}: first choice", self.transport().name()),
            Some(s) => format!("{}: {} failed ({})", s.to.name(), s.from.name(), s.why),
        }
    }

    /// The last failure of any connection, if there was one.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// Connections made after the first: reconnects and fallbacks.
    pub fn reconnects(&self) -> u64 {
        self.connects.saturating_sub(1)
    }

    /// Messages dropped because the cursor had passed them already.
    pub fn doubles(&self) -> u64 {
        self.doubles
    }

    /// Where a new connection would resume.
    pub fn cursor(&self) -> &Resume {
        &self.cursor
    }

    /// The next event. Connection trouble is handled here, not returned:
    /// a caller bounds the wait with a timeout if it must.
    pub async fn next_event(&mut self) -> Result<Event> {
        loop {
            let Some(connection) = &mut self.connection else {
                self.connect().await;
                continue;
            };
            let deadline = if self.proven {
                connection.heard() + self.config.liveness
            } else {
                self.connected_at + self.config.probe
            };
            let outcome = tokio::select! {
                event = connection.next_event() => Some(event),
                _ = sleep_until(deadline) => None,
            };
            let poll_epoch = match connection {
                Subscriber::Poll(poll) => poll.epoch().map(str::to_owned),
                _ => None,
            };
            match outcome {
                Some(Ok(event)) => {
                    self.alive();
                    if self.cursor.epoch.is_none() {
                        self.cursor.epoch = poll_epoch;
                    }
                    if let Some(event) = self.track(event) {
                        return Ok(event);
                    }
                }
                Some(Err(e)) => self.failed(e.to_string()).await,
                None if !self.proven => {
                    let why = format!("nothing within {:?} of connecting", self.config.probe);
                    self.failed(why).await;
                }
                // The deadline moved: something was heard since.
                None if connection_heard_within(&self.connection, self.config.liveness) => {}
                None => {
                    let why = format!("silent for {:?}", self.config.liveness);
                    self.failed(why).await;
                }
            }
        }
    }

    /// Opens a connection on the current transport from the cursor,
    /// moving down the list on failures, until one opens.
    async fn connect(&mut self) {
        loop {
            let kind = self.transport();
            let opening = open(kind, &self.target, &self.cursor, &self.config, &self.poller);
            match timeout(self.config.probe, opening).await {
                Ok(Ok(connection)) => {
                    self.connects += 1;
                    self.connected_at = Instant::now();
                    self.proven = false;
                    if let Subscriber::Poll(poll) = &connection {
                        // The probe answered: polling works. With no cursor
                        // yet, its answer pins "from now".
                        if self.cursor.since.is_none() {
                            self.cursor.since = poll.since();
                        }
                        if self.cursor.epoch.is_none() {
                            self.cursor.epoch = poll.epoch().map(str::to_owned);
                        }
                        self.connection = Some(connection);
                        self.alive();
                    } else {
                        self.connection = Some(connection);
                    }
                    return;
                }
                Ok(Err(e)) => self.failed(e.to_string()).await,
                Err(_) => {
                    let why = format!("no answer within {:?}", self.config.probe);
                    self.failed(why).await;
                }
            }
        }
    }

    /// The current connection showed life.
    fn alive(&mut self) {
        self.proven = true;
        self.worked = true;
        self.failures = 0;
    }

    /// The current connection (or attempt) failed: retry, or move on.
    async fn failed(&mut self, why: String) {
        let kind = self.transport();
        let why = format!("{}: {why}", kind.name());
        tracing::debug!(%why, "connection failed");
        self.connection = None;
        self.proven = false;
        self.failures += 1;
        self.last_failure = Some(why.clone());
        let give_up = !self.worked || self.failures > self.config.retries;
        if give_up && self.at + 1 < self.config.order.len() {
            self.at += 1;
            self.switches.push(Switch {
                from: kind,
                to: self.transport(),
                why,
            });
            self.worked = false;
            self.failures = 0;
            return;
        }
        if self.failures > 1 {
            let doublings = (self.failures - 2).min(16);
            let pause = (self.config.backoff * 2u32.pow(doublings)).min(self.config.max_backoff);
            sleep(pause).await;
        }
    }

    /// Moves the cursor with an event; `None` for a message already seen.
    fn track(&mut self, event: Event) -> Option<Event> {
        let cursor = &mut self.cursor;
        match &event {
            Event::Message(m) => {
                if cursor.since.is_some_and(|since| m.id <= since) {
                    self.doubles += 1;
                    return None;
                }
                cursor.since = Some(m.id);
            }
            Event::Control(Control::Hello { epoch, latest, .. }) => {
                cursor.since.get_or_insert(*latest);
                cursor.epoch.get_or_insert_with(|| epoch.clone());
            }
            // A new room life: its history comes next, from the start.
            Event::Control(Control::Reset { epoch, .. }) => {
                cursor.since = Some(0);
                cursor.epoch = Some(epoch.clone());
            }
            Event::Control(Control::Gap { to, .. }) => {
                cursor.since = Some(cursor.since.unwrap_or(0).max(*to));
            }
            Event::Control(_) => {}
        }
        Some(event)
    }
}

/// A connection on `kind` from `cursor`. A free function, not a method, so
/// the future borrows only what is `Sync` (the client holds a boxed SSE
/// stream, which is not).
async fn open(
    transport: Transport,
    target: &Target,
    cursor: &Resume,
    config: &AutoConfig,
    poller: &str,
) -> Result<Subscriber> {
    let poll = || {
        let mut client = PollClient::new(target, cursor, 0);
        client.set_client(poller);
        client.with_interval(config.poll_interval)
    };
    Ok(match transport {
        Transport::Ws => Subscriber::Ws(WsClient::connect(target, cursor).await?),
        Transport::Sse => Subscriber::Sse(SseClient::connect(target, cursor).await?),
        Transport::LongPoll => Subscriber::Poll(poll().probed(config.long_poll_wait).await?),
        Transport::Poll => Subscriber::Poll(poll().probed(0).await?),
        Transport::Send | Transport::Other => {
            return Err(ClientError::Protocol(format!(
                "{} is not a receiving transport",
                transport.name()
            )))
        }
    })
}

fn connection_heard_within(connection: &Option<Subscriber>, liveness: Duration) -> bool {
    connection
        .as_ref()
        .is_some_and(|c| c.heard().elapsed() < liveness)
}
