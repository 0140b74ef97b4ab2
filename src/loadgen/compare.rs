//! Several loadgen reports side by side, one column group per condition:
//! the round-trip-time table (`--network rtt=0ms`, `50ms`, `150ms`) and
//! HTTP/1.1 against HTTP/2. Each condition is its own loadgen invocation
//! (its own child servers), so this reads their `results.json` back and
//! lays the same figures out per transport, with every run's provenance.
//!
//! A run that did not keep up shows "overloaded" instead of a latency, by
//! the same rule as the headline ([`kept_up`]).

use super::report::{human_ms, kept_up, transports, Report, RunResult, KEPT_UP};
use std::fmt::Write as _;

/// One condition: a label for the column headers and its report.
#[derive(Debug)]
pub struct Condition {
    pub label: String,
    pub report: Report,
}

/// The comparison as Markdown: provenance lines that the slides' captions
/// read (the commands of every run, the first run's machine and date, each
/// run's commit and load), then a latency table and a bytes table.
pub fn markdown(title: &str, conditions: &[Condition]) -> String {
    let mut out = format!("# {title}\n\n");
    let commands: Vec<String> = conditions
        .iter()
        .map(|c| format!("`{}`", c.report.command))
        .collect();
    let each = |field: fn(&Report) -> &str| {
        let values: Vec<String> = conditions
            .iter()
            .map(|c| format!("{} ({})", field(&c.report), c.label))
            .collect();
        values.join("; ")
    };
    let _ = write!(
        out,
        "Command: {}  \nMachine: {}  \nDate: {}  \nCommit: {}  \nLoad: {}\n\n",
        commands.join(" ; "),
        conditions.first().map_or("", |c| c.report.machine.as_str()),
        each(|r| r.date.as_str()),
        each(|r| r.commit.as_str()),
        each(|r| r.load.as_str()),
    );
    // One workload line when the runs share it; else each run's, labelled
    // (HTTP/1.1 and HTTP/2 runs differ in the protocol their clients speak).
    match conditions.split_first() {
        Some((first, rest))
            if rest
                .iter()
                .all(|c| c.report.workload == first.report.workload) =>
        {
            let _ = writeln!(out, "{}\n", first.report.workload);
        }
        _ => {
            for c in conditions {
                let _ = writeln!(out, "- {}: {}", c.label, c.report.workload);
            }
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "Latency from each message's due time to its receipt; a run that delivered \
         less than {:.0}% of the deliveries offered per second shows \"overloaded\" \
         instead, since its latency would only measure its queue.\n",
        KEPT_UP * 100.0
    );
    out.push_str(&latency_table(conditions));
    out.push_str(
        "\nBytes the server wrote to (out) and read from (in) the receivers' sockets \
         per message delivered, the requests it served per message delivered, from \
         its own accounting, and its CPU seconds per 1,000 deliveries.\n\n",
    );
    out.push_str(&bytes_table(conditions));
    out
}

fn run<'a>(condition: &'a Condition, transport: &str) -> Option<&'a RunResult> {
    condition
        .report
        .runs
        .iter()
        .find(|r| r.transport == transport)
}

/// A table with one row per transport and, per condition, the columns
/// `cells` names and fills.
fn table(
    conditions: &[Condition],
    columns: &[&str],
    cells: impl Fn(&RunResult) -> Vec<String>,
) -> String {
    let mut out = String::from("| transport |");
    for c in conditions {
        for column in columns {
            let _ = write!(out, " {column} {} |", c.label);
        }
    }
    out.push_str("\n| --- |");
    for _ in 0..conditions.len() * columns.len() {
        out.push_str(" ---: |");
    }
    out.push('\n');
    // Every transport that ran under any condition, in first-seen order.
    for name in transports(conditions.iter().flat_map(|c| &c.report.runs)) {
        let _ = write!(out, "| {name} |");
        for c in conditions {
            let values = run(c, name)
                .map(&cells)
                .unwrap_or_else(|| vec!["not run".to_owned(); columns.len()]);
            for value in values {
                let _ = write!(out, " {value} |");
            }
        }
        out.push('\n');
    }
    out
}

fn latency_table(conditions: &[Condition]) -> String {
    table(conditions, &["p50", "p99"], |r| {
        if kept_up(r) {
            vec![human_ms(r.latency_ms.p50), human_ms(r.latency_ms.p99)]
        } else {
            vec!["overloaded".to_owned(), "overloaded".to_owned()]
        }
    })
}

fn bytes_table(conditions: &[Condition]) -> String {
    table(
        conditions,
        &["out B/dlv", "in B/dlv", "req/dlv", "CPU s/1k dlv"],
        |r| {
            vec![
                format!("{:.0}", r.server.wire_out_per_delivery),
                format!("{:.0}", r.server.wire_in_per_delivery),
                format!("{:.3}", r.server.requests_per_delivery),
                r.server
                    .cpu_seconds_per_1000
                    .map_or_else(|| "n/a".to_owned(), |cpu| format!("{cpu:.4}")),
            ]
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::report::tests::run;

    fn condition(label: &str, runs: Vec<RunResult>) -> Condition {
        Condition {
            label: label.to_owned(),
            report: Report {
                command: format!("loadgen --network {label}"),
                machine: "2 cores".to_owned(),
                date: "today".to_owned(),
                commit: "abc".to_owned(),
                load: "0.5".to_owned(),
                workload: "Workload: test.".to_owned(),
                runs,
            },
        }
    }

    #[test]
    fn each_condition_gets_its_columns_and_an_overloaded_run_no_latency() {
        // 1,000 clients at 20 msg/s offer 20,000 deliveries/s.
        let conditions = [
            condition("rtt=0ms", vec![run("ws", 1000, 19_900.0, 12.0)]),
            condition(
                "rtt=150ms",
                vec![
                    run("ws", 1000, 19_900.0, 160.0),
                    run("poll", 1000, 2_000.0, 9e5),
                ],
            ),
        ];
        let text = markdown("RTT", &conditions);
        let provenance = crate::provenance::Provenance::parse(&text);
        assert_eq!(provenance.machine.as_deref(), Some("2 cores"));
        assert!(provenance.command.unwrap().contains("--network rtt=150ms"));
        assert!(
            text.contains(
                "| transport | p50 rtt=0ms | p99 rtt=0ms | p50 rtt=150ms | p99 rtt=150ms |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| ws | 6.0 ms | 12 ms | 80 ms | 160 ms |"),
            "{text}"
        );
        assert!(
            text.contains("| poll | not run | not run | overloaded | overloaded |"),
            "{text}"
        );
        assert!(!text.contains("15.0 min"), "{text}");
        assert_eq!(text.matches("Workload: test.").count(), 1, "{text}");

        // Runs with different workloads (HTTP/1.1 and HTTP/2) say each one.
        let mut h2 = condition("h2", vec![run("ws", 1000, 19_900.0, 12.0)]);
        h2.report.workload = "Workload: over HTTP/2.".to_owned();
        let text = markdown("h2", &[condition("h1", Vec::new()), h2]);
        assert!(
            text.contains("- h1: Workload: test.\n- h2: Workload: over HTTP/2."),
            "{text}"
        );
    }
}
