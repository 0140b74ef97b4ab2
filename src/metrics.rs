//! `GET /metrics`: the `/stats` counters in the Prometheus (OpenMetrics)
//! text format, plus the delivery-delay histograms, for scrapers.
//!
//! Nothing is counted twice: the server already keeps every figure in
//! relaxed atomics (`stats.rs`, the room registry, admission), so this is a
//! prometheus-client [`Collector`] that reads them at scrape time and writes
//! them out. The delivery path pays for `/metrics` only the histogram: one
//! clock read and two relaxed atomic adds per write (see
//! [`crate::stats::DelayHistogram`]).

use crate::message::Transport;
use crate::state::AppState;
use crate::stats::{DelaySnapshot, Limit};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition of this server's metrics now.
pub fn render(state: &AppState) -> String {
    let mut registry = Registry::with_prefix("skyrocket");
    registry.register_collector(Box::new(ServerCollector {
        state: state.clone(),
    }));
    let mut text = String::new();
    // Writing into a String cannot fail.
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("encoding into a String");
    text
}

#[derive(Debug)]
struct ServerCollector {
    state: AppState,
}

/// A counter or gauge value read at scrape time.
#[derive(Debug)]
struct Value {
    value: u64,
    kind: MetricType,
}

impl EncodeMetric for Value {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        match self.kind {
            MetricType::Counter => encoder
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
                    &self.value,
                    None,
                ),
            _ => encoder.encode_gauge(&(self.value as i64)),
        }
    }

    fn metric_type(&self) -> MetricType {
        self.kind
    }
}

impl EncodeMetric for DelaySnapshot {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.sum_seconds,
            self.count,
            &self.buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// One metric family: a name, help, type, and a value per label set.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    samples: impl IntoIterator<Item = ([(&'static str, &'static str); 1], M)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, metric) in samples {
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One unlabelled counter or gauge.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, kind)?;
    Value { value, kind }.encode(metric)
}

impl prometheus_client::collector::Collector for ServerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = &self.state.stats;
        let per_transport = |read: fn(&crate::message::CountersSnapshot) -> u64, kind| {
            Transport::ALL.map(|t| {
                let value = read(&stats.of(t).snapshot());
                ([("transport", t.name())], Value { value, kind })
            })
        };
        let counter = MetricType::Counter;
        let gauge = MetricType::Gauge;
        let e = &mut encoder;
        family(
            e,
            "connections_open",
            "TCP connections serving each transport now",
            None,
            gauge,
            per_transport(|s| s.connections_open, gauge),
        )?;
        family(
            e,
            "connections",
            "TCP connections that served each transport",
            None,
            counter,
            per_transport(|s| s.connections_total, counter),
        )?;
        family(
            e,
            "requests",
            "HTTP requests routed to each transport (a WebSocket is one)",
            None,
            counter,
            per_transport(|s| s.requests, counter),
        )?;
        family(
            e,
            "deliveries",
            "chat messages handed to clients",
            None,
            counter,
            per_transport(|s| s.delivered, counter),
        )?;
        family(
            e,
            "payload",
            "bytes of message JSON in those deliveries",
            Some(&Unit::Bytes),
            counter,
            per_transport(|s| s.payload_bytes, counter),
        )?;
        family(
            e,
            "wire_in",
            "bytes read from the sockets that served each transport",
            Some(&Unit::Bytes),
            counter,
            per_transport(|s| s.wire_bytes_in, counter),
        )?;
        family(
            e,
            "wire_out",
            "bytes written to the sockets that served each transport",
            Some(&Unit::Bytes),
            counter,
            per_transport(|s| s.wire_bytes_out, counter),
        )?;
        family(
            e,
            "limit_hits",
            "times each limit of the README's limits table acted",
            None,
            counter,
            Limit::ALL.map(|l| {
                let value = stats.limit_count(l);
                (
                    [("limit", l.name())],
                    Value {
                        value,
                        kind: counter,
                    },
                )
            }),
        )?;
        family(
            e,
            "delivery_delay",
            "from the room accepting a message (over Redis: this instance hearing it) to the write carrying it, one observation per write (its oldest message)",
            Some(&Unit::Seconds),
            MetricType::Histogram,
            Transport::RECEIVING.map(|t| ([("transport", t.name())], stats.delays(t).snapshot())),
        )?;
        let rooms = self.state.rooms.totals();
        single(e, "rooms_live", "rooms alive now", gauge, rooms.live as u64)?;
        single(
            e,
            "rooms_max",
            "the cap on live rooms",
            gauge,
            rooms.max as u64,
        )?;
        single(e, "rooms_created", "rooms created", counter, rooms.created)?;
        single(
            e,
            "rooms_removed_idle",
            "rooms removed for being idle",
            counter,
            rooms.removed_idle,
        )?;
        single(
            e,
            "connections_max",
            "the cap on connections",
            gauge,
            self.state.admission.limits().max as u64,
        )?;
        Ok(())
    }
}
