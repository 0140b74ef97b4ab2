//! `GET /metrics` scrapes: the text parses as the OpenMetrics (Prometheus)
//! exposition format, and its samples agree with what the test did.

mod common;

use common::*;
use skyrocket::message::{Resume, Transport};

use std::collections::HashMap;

/// `name{labels}` -> value, with every line checked against the format:
/// comments are `# TYPE`, `# HELP`, `# UNIT` or the final `# EOF`, and
/// every sample is a name, optional labels and a number.
fn parse(text: &str) -> (HashMap<String, f64>, HashMap<String, String>) {
    let mut samples = HashMap::new();
    let mut types = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(["TYPE", "HELP", "UNIT"].contains(&kind), "{line}");
            if kind == "TYPE" {
                types.insert(name.to_owned(), parts.next().unwrap().to_owned());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "{line}");
        }
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "twice: {line}"
        );
    }
    (samples, types)
}

#[tokio::test]
async fn metrics_scrape_as_openmetrics_and_count_what_happened() {
    let server = TestServer::with_config(quiet_config()).await;
    let lobby = server.target("lobby");
    let mut ws = subscribe(Transport::Ws, &lobby, Resume::default()).await;
    let mut sse = subscribe(Transport::Sse, &lobby, Resume::default()).await;
    for text in ["one", "two"] {
        lobby.send(&draft("ada", text)).await.unwrap();
        assert_eq!(next_message(&mut ws).await.text, text);
        assert_eq!(next_message(&mut sse).await.text, text);
    }

    let response = skyrocket::client::tls::get(&format!("{}/metrics", server.base()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let (samples, types) = parse(&text);
    let get = |series: &str| {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };

    assert_eq!(types["skyrocket_deliveries"], "counter");
    assert_eq!(get(r#"skyrocket_deliveries_total{transport="ws"}"#), 2.0);
    assert_eq!(get(r#"skyrocket_deliveries_total{transport="sse"}"#), 2.0);
    assert_eq!(get(r#"skyrocket_requests_total{transport="send"}"#), 2.0);
    assert_eq!(get(r#"skyrocket_connections_open{transport="ws"}"#), 1.0);
    assert!(get(r#"skyrocket_wire_out_bytes_total{transport="ws"}"#) > 0.0);
    assert!(get(r#"skyrocket_payload_bytes_total{transport="sse"}"#) > 0.0);
    assert_eq!(
        get(r#"skyrocket_limit_hits_total{limit="rooms_full"}"#),
        0.0
    );
    assert_eq!(get("skyrocket_rooms_live"), 1.0);
    assert_eq!(get("skyrocket_rooms_max"), 10_000.0);

    // The delay histograms: one per receiving transport, buckets that only
    // grow, ending at +Inf with the count.
    assert_eq!(types["skyrocket_delivery_delay_seconds"], "histogram");
    for t in Transport::RECEIVING {
        let label = t.name();
        let count = get(&format!(
            r#"skyrocket_delivery_delay_seconds_count{{transport="{label}"}}"#
        ));
        let inf = get(&format!(
            r#"skyrocket_delivery_delay_seconds_bucket{{le="+Inf",transport="{label}"}}"#
        ));
        assert_eq!(count, inf, "{label}");
        let mut buckets: Vec<(f64, f64)> = samples
            .iter()
            .filter(|(series, _)| {
                series.starts_with("skyrocket_delivery_delay_seconds_bucket")
                    && series.contains(&format!(r#"transport="{label}""#))
            })
            .map(|(series, value)| {
                let le = series
                    .split("le=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (le, *value)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{label}: {buckets:?}"
        );
    }
    // Each of the two messages went out in a write of its own.
    let ws_writes = get(r#"skyrocket_delivery_delay_seconds_count{transport="ws"}"#);
    assert_eq!(ws_writes, 2.0);
    assert!(get(r#"skyrocket_delivery_delay_seconds_sum{transport="ws"}"#) > 0.0);
}
