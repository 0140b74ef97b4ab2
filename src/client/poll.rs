//! Long- and short-polling client: each poll's body becomes events, and the
//! body's `next` and `epoch` become the following poll's `since` and `epoch`.

use super::{ClientError, Result, Target};
use crate::message::{ChatMessage, Control, Event, Resume};
use serde::Deserialize;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
pub struct PollClient {
    target: Target,
    /// Seconds the server may hold each poll; 0 is short polling.
    wait: u64,
    /// Pause after an empty short poll.
    interval: Duration,
    since: Option<u64>,
    epoch: Option<String>,
    /// A stable id so the server counts this poller once in presence.
    client: String,
    ready: VecDeque<Event>,
    polls: u64,
    /// When the last answer arrived.
    heard: Instant,
}

/// The poll body of the contract.
#[derive(Debug, Deserialize)]
pub struct PollBody {
    pub messages: Vec<ChatMessage>,
    pub next: u64,
    pub epoch: String,
    #[serde(default)]
    pub reset: bool,
    #[serde(default)]
    pub gap: Option<GapField>,
}

#[derive(Debug, Deserialize)]
pub struct GapField {
    pub from: u64,
    pub to: u64,
}

impl PollClient {
    pub fn new(target: &Target, resume: &Resume, wait: u64) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);
        Self {
            target: target.clone(),
            wait,
            interval: Duration::from_millis(250),
            since: resume.since,
            epoch: resume.epoch.clone(),
            client: format!(
                "rs-{}-{}",
                std::process::id(),
                NEXT_CLIENT.fetch_add(1, Ordering::Relaxed)
            ),
            ready: VecDeque::new(),
            polls: 0,
            heard: Instant::now(),
        }
    }

    /// Like [`PollClient::new`], but "from now" is pinned at connect time:
    /// without a `since`, one short poll learns the room's latest id and
    /// epoch (the poll's `hello`), so messages posted between connecting and
    /// the first real poll are not skipped.
    pub async fn connect(target: &Target, resume: &Resume, wait: u64) -> Result<Self> {
        let mut client = Self::new(target, resume, 0);
        if client.since.is_none() {
            client.poll_once().await?;
            client.polls = 0;
        }
        client.wait = wait;
        Ok(client)
    }

    /// Makes the first request now, a short poll answered at once whose
    /// messages are kept for `next_event` (a quick proof that polling works
    /// on this path), then polls that wait `wait` seconds.
    pub async fn probed(mut self, wait: u64) -> Result<Self> {
        self.wait = 0;
        let body = self.poll_once().await?;
        self.take(body);
        self.polls = 0;
        self.wait = wait;
        Ok(self)
    }

    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// One request: the parsed body, with `since`/`epoch` advanced.
    pub async fn poll_once(&mut self) -> Result<PollBody> {
        let mut query = vec![
            ("wait", self.wait.to_string()),
            ("client", self.client.clone()),
        ];
        if let Some(since) = self.since {
            query.push(("since", since.to_string()));
        }
        if let Some(epoch) = &self.epoch {
            query.push(("epoch", epoch.clone()));
        }
        let response = self
            .target
            .http
            .get(self.target.url("poll", &query))
            .send()
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        if status != 200 {
            return Err(ClientError::Status(status, text));
        }
        let body: PollBody = serde_json::from_str(&text)
            .map_err(|e| ClientError::Protocol(format!("poll body {text:?}: {e}")))?;
        self.since = Some(body.next);
        self.epoch = Some(body.epoch.clone());
        self.polls += 1;
        self.heard = Instant::now();
        Ok(body)
    }

    pub async fn next_event(&mut self) -> Result<Event> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(event);
            }
            if self.polls > 0 && self.wait == 0 {
                tokio::time::sleep(self.interval).await;
            }
            let body = self.poll_once().await?;
            self.take(body);
        }
    }

    /// The `client=` id this poller sends, which presence counts it by.
    pub fn client(&self) -> &str {
        &self.client
    }

    /// Sends `client` as this poller's id from now on: the same client
    /// seen through another poller (a page that switched transports).
    pub fn set_client(&mut self, client: &str) {
        self.client = client.to_owned();
    }

    /// A poll body's events, queued in the order the contract gives them.
    fn take(&mut self, body: PollBody) {
        if body.reset {
            self.ready.push_back(Event::Control(Control::Reset {
                epoch: body.epoch.clone(),
                latest: body.next,
            }));
        }
        if let Some(gap) = body.gap {
            self.ready.push_back(Event::Control(Control::Gap {
                from: gap.from,
                to: gap.to,
            }));
        }
        self.ready
            .extend(body.messages.into_iter().map(Event::Message));
    }

    /// The cursor the next poll sends.
    pub fn since(&self) -> Option<u64> {
        self.since
    }

    /// The room life of the last answer, once there was one.
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref()
    }

    /// When the last answer arrived.
    pub fn heard(&self) -> Instant {
        self.heard
    }

    /// Requests made so far.
    pub fn polls(&self) -> u64 {
        self.polls
    }
}
