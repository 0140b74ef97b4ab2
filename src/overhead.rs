//! What one message costs on the wire, per transport, read from the
//! server's own accounting (`/stats`), not estimated.
//!
//! The workload is a chat room at a calm pace: one receiver per transport,
//! messages posted one at a time at a fixed interval, each waited for at the
//! receiver before the next. So a long poll answers one message per request,
//! and a short poller pays for its empty polls between messages; both are
//! what such a room costs. The figures depend on that workload, and the
//! report says which it was.
//!
//! [`measure_sizes`] repeats the measurement at several text sizes (the
//! bench `wire_bytes` uses 16 B, 1 KiB and 64 KiB), and [`chart`] draws what
//! each transport adds to the payload, both directions together.

use crate::chart::BarChart;
use crate::client::{Subscriber, Target};
use crate::message::Resume;
use crate::message::Transport;
use crate::message::{Control, Draft, Event};
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
    /// Bytes of `text` in each message (the JSON around it adds about 100).
    pub text_bytes: usize,
    pub delivered: u64,
    pub payload_per_message: f64,
    pub wire_out_per_message: f64,
    pub wire_in_per_message: f64,
    pub overhead_out_per_message: f64,
    pub requests_per_message: f64,
}

impl Cost {
    /// Every byte on the wire for one delivered message, both directions,
    /// beyond the message JSON itself: what the transport adds.
    pub fn overhead_both_ways_per_message(&self) -> f64 {
        self.wire_out_per_message + self.wire_in_per_message - self.payload_per_message
    }
}

/// Measures each transport in turn on the server at `base`, each in a fresh
/// room so no other client shares its counters.
pub async fn measure(
    base: &str,
    kinds: &[Transport],
    workload: &Workload,
) -> crate::client::Result<Vec<Cost>> {
    let mut costs = Vec::new();
    let run = crate::message::now_millis();
    for (index, &kind) in kinds.iter().enumerate() {
        // Names of equal length, so every transport carries the same payload.
        let room = format!("wirecost-{index}-{}-{run}", workload.text_bytes);
        let target = Target::new(base, room);
        let mut receiver =
            Subscriber::connect(kind, &target, &Resume::default(), workload.poll_interval).await?;
        // A stream opens with a `hello`, sent once per connection and not
        // per message; the server may write it just after `connect` returns,
        // so wait for it before the first snapshot, or it may be counted.
        if matches!(kind, Transport::Ws | Transport::Sse) {
            while !matches!(
                receiver.next_event().await?,
                Event::Control(Control::Hello { .. })
            ) {}
        }
        let before = target.counters(kind.name()).await?;
        let mut pace = tokio::time::interval(workload.interval);
        for i in 0..workload.messages {
            pace.tick().await;
            let draft = Draft {
                user: "ada".into(),
                text: numbered_text(i, workload.text_bytes),
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
            text_bytes: workload.text_bytes,
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

/// `i`, zero-padded to `bytes` bytes (a format width cannot exceed 65535,
/// and 64 KiB is one of the sizes measured).
fn numbered_text(i: u64, bytes: usize) -> String {
    let digits = i.to_string();
    let mut text = "0".repeat(bytes.saturating_sub(digits.len()));
    text.push_str(&digits);
    text
}

/// [`measure`] at each text size in `text_bytes`, one after the other:
/// the rows come out size by size, transports in `kinds` order.
pub async fn measure_sizes(
    base: &str,
    kinds: &[Transport],
    text_bytes: &[usize],
    workload: &Workload,
) -> crate::client::Result<Vec<Cost>> {
    let mut costs = Vec::new();
    for &size in text_bytes {
        let workload = Workload {
            text_bytes: size,
            ..workload.clone()
        };
        costs.extend(measure(base, kinds, &workload).await?);
    }
    Ok(costs)
}

/// The costs as a Markdown table.
pub fn markdown(costs: &[Cost]) -> String {
    let mut out = String::from(
        "| transport | text | delivered | payload B/msg | wire out B/msg | overhead out B/msg | wire in B/msg | overhead both ways B/msg | requests/msg |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for c in costs {
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |\n",
            c.transport,
            bytes_label(c.text_bytes),
            c.delivered,
            c.payload_per_message,
            c.wire_out_per_message,
            c.overhead_out_per_message,
            c.wire_in_per_message,
            c.overhead_both_ways_per_message(),
            c.requests_per_message
        ));
    }
    out
}

/// What each transport adds to a message, both directions, grouped by text
/// size: one bar per transport in each group, in the order measured.
pub fn chart(costs: &[Cost]) -> BarChart {
    let mut sizes: Vec<usize> = Vec::new();
    let mut transports: Vec<&str> = Vec::new();
    for c in costs {
        if !sizes.contains(&c.text_bytes) {
            sizes.push(c.text_bytes);
        }
        if !transports.contains(&c.transport) {
            transports.push(c.transport);
        }
    }
    let mut chart = BarChart::new(
        "Wire bytes per delivered message beyond the payload (out + in)",
        "bytes per message",
        sizes.iter().map(|&s| format!("text {}", bytes_label(s))),
    );
    for transport in transports {
        let value = |size: usize| {
            costs
                .iter()
                .find(|c| c.transport == transport && c.text_bytes == size)
                .map_or(0.0, Cost::overhead_both_ways_per_message)
        };
        chart = chart.series(transport, sizes.iter().map(|&s| value(s)));
    }
    chart
}

/// 16 -> "16 B", 1024 -> "1 KiB", 65536 -> "64 KiB".
pub fn bytes_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(transport: &'static str, text_bytes: usize, out: f64, inn: f64) -> Cost {
        Cost {
            transport,
            text_bytes,
            delivered: 10,
            payload_per_message: text_bytes as f64 + 100.0,
            wire_out_per_message: out,
            wire_in_per_message: inn,
            overhead_out_per_message: out - text_bytes as f64 - 100.0,
            requests_per_message: 1.0,
        }
    }

    #[test]
    fn texts_have_the_exact_size_asked_for() {
        assert_eq!(numbered_text(7, 4), "0007");
        assert_eq!(numbered_text(12, 16).len(), 16);
        assert_eq!(numbered_text(3, 65_536).len(), 65_536);
    }

    #[test]
    fn labels_sizes_in_binary_units() {
        assert_eq!(bytes_label(16), "16 B");
        assert_eq!(bytes_label(1024), "1 KiB");
        assert_eq!(bytes_label(65_536), "64 KiB");
        assert_eq!(bytes_label(1500), "1500 B");
    }

    #[test]
    fn chart_has_one_group_per_size_and_one_series_per_transport() {
        let costs = [
            cost("ws", 16, 120.0, 0.0),
            cost("poll", 16, 340.0, 140.0),
            cost("ws", 1024, 1128.0, 0.0),
            cost("poll", 1024, 1350.0, 140.0),
        ];
        let chart = chart(&costs);
        assert_eq!(chart.categories, ["text 16 B", "text 1 KiB"]);
        let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ws", "poll"]);
        // poll at 16 B: 340 out + 140 in - 116 of payload.
        assert_eq!(chart.series[1].values, [364.0, 366.0]);
        assert!(markdown(&costs).contains("| poll | 1 KiB | 10 | 1124.0 | 1350.0 |"));
    }
}
