//! Server-Sent Events client over reqwest, parsed by `eventsource-stream`.
//! Keeps the last event id, as a browser's `EventSource` does.

use super::heard::LastHeard;
use super::{parse_event, resume_query, ClientError, Result, Target};
use crate::message::{Event, Resume};
use eventsource_stream::Eventsource;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::time::Instant;

pub struct SseClient {
    events: BoxStream<'static, std::result::Result<eventsource_stream::Event, String>>,
    last_event_id: Option<String>,
    /// When bytes last arrived, keepalive comments included (the parser
    /// swallows comments, so they are seen on the byte stream).
    heard: Arc<LastHeard>,
}

impl std::fmt::Debug for SseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseClient")
            .field("last_event_id", &self.last_event_id)
            .finish_non_exhaustive()
    }
}

impl SseClient {
    pub async fn connect(target: &Target, resume: &Resume) -> Result<Self> {
        Self::connect_with(target, resume, None).await
    }

    /// Connects as a browser reconnects: `Last-Event-ID` set to the last id seen.
    pub async fn connect_with(
        target: &Target,
        resume: &Resume,
        last_event_id: Option<u64>,
    ) -> Result<Self> {
        let mut request = target.http.get(target.url("sse", &resume_query(resume)));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(ClientError::Status(status, response.text().await?));
        }
        let heard = Arc::new(LastHeard::new());
        let on_bytes = Arc::clone(&heard);
        let events = response
            .bytes_stream()
            .inspect(move |_| on_bytes.touch())
            .eventsource()
            .map(|r| r.map_err(|e| e.to_string()))
            .boxed();
        Ok(Self {
            events,
            last_event_id: None,
            heard,
        })
    }

    pub async fn next_event(&mut self) -> Result<Event> {
        loop {
            match self.events.next().await {
                Some(Ok(event)) => {
                    if !event.id.is_empty() {
                        self.last_event_id = Some(event.id.clone());
                    }
                    if event.data.is_empty() {
                        continue;
                    }
                    return parse_event(&event.data);
                }
                Some(Err(e)) => return Err(ClientError::Protocol(e)),
                None => return Err(ClientError::Closed),
            }
        }
    }

    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// When bytes last arrived on the stream.
    pub fn heard(&self) -> Instant {
        self.heard.at()
    }
}
