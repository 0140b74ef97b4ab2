//! What one message costs on the wire, per transport, read from the
//! server's own accounting (`/stats`), not estimated.
//!
//! The workload is a chat room at a calm pace: one receiver per transport,
//! messages posted one at a time at a fixed interval, each waited for at the
//! receiver before the next. So a long poll answers one message per request,
//! and a short poller pays for its empty polls between messages; both are
//! what such a room costs. The figures depend on that workload, and the
//! report says which it was.

use crate::client::{Kind, Subscriber, Target};
use crate::message::{Draft, Event};
use crate::room::Resume;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Workload {
    pub messages: u64,
    pub text_bytes: usize,
    pub interval: Duration,
    pub poll_interval: Duration,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            messages: 20,
            text_bytes: 100,
            interval: Duration::from_millis(250),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// One transport's cost per delivered message.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cost {
    pub transport: &'static str,
    pub delivered: u64,
    pub payload_per_message: f64,
    pub wire_out_per_message: f64,
    pub wire_in_per_message: f64,
    pub overhead_out_per_message: f64,
    pub requests_per_message: f64,
}

/// Measures each transport in turn on the server at `base`, each in a fresh
/// room so no other client shares its counters.
pub async fn measure(
    base: &str,
    kinds: &[Kind],
    workload: &Workload,
) -> crate::client::Result<Vec<Cost>> {
    let mut costs = Vec::new();
    let run = crate::message::now_millis();
    for (index, &kind) in kinds.iter().enumerate() {
        // Names of equal length, so every transport carries the same payload.
        let target = Target::new(base, format!("wirecost-{index}-{run}"));
        let mut receiver =
            Subscriber::connect(kind, &target, &Resume::default(), workload.poll_interval).await?;
        let before = target.counters(kind.name()).await?;
        let mut pace = tokio::time::interval(workload.interval);
        for i in 0..workload.messages {
            pace.tick().await;
            let draft = Draft {
                user: "ada".into(),
                text: format!("{i:0width$}", width = workload.text_bytes),
                client_id: None,
            };
            let id = target.send(&draft).await?;
            loop {
                if let Event::Message(m) = receiver.next_event().await? {
                    if m.id == id {
                        break;
                    }
                }
            }
        }
        drop(receiver);
        let after = target.counters(kind.name()).await?;
        let delivered = after.delivered - before.delivered;
        let per = |a: u64, b: u64| (a - b) as f64 / delivered.max(1) as f64;
        costs.push(Cost {
            transport: kind.name(),
            delivered,
            payload_per_message: per(after.payload_bytes, before.payload_bytes),
            wire_out_per_message: per(after.wire_bytes_out, before.wire_bytes_out),
            wire_in_per_message: per(after.wire_bytes_in, before.wire_bytes_in),
            overhead_out_per_message: per(after.wire_bytes_out, before.wire_bytes_out)
                - per(after.payload_bytes, before.payload_bytes),
            requests_per_message: per(after.requests, before.requests),
        });
    }
    Ok(costs)
}

/// The costs as a Markdown table.
pub fn markdown(costs: &[Cost]) -> String {
    let mut out = String::from(
        "| transport | delivered | payload B/msg | wire out B/msg | overhead out B/msg | wire in B/msg | requests/msg |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for c in costs {
        out.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |\n",
            c.transport,
            c.delivered,
            c.payload_per_message,
            c.wire_out_per_message,
            c.overhead_out_per_message,
            c.wire_in_per_message,
            c.requests_per_message
        ));
    }
    out
}
