//! What our server closes with, provoked case by case on raw sockets, and
//! the server settings the whole sample runs with.
//!
//! Shared by the example, which writes the table into
//! `results/wire-sample.md`, and by `tests/slides.rs`, which runs the same
//! cases against a live server and fails when the committed table no longer
//! says what the server does (a sample captured before a change in the
//! close handling would otherwise stay on the slides).

use crate::frames::client_frame;
use crate::raw::{self, outcome, Conn, Outcome, SAMPLE_MASK};
use skyrocket::Config;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// The sample's server: a ping right after connecting, so the session shows
/// one; a short pong timeout, so the "never answers a ping" case ends
/// quickly; no presence events or SSE keepalives in between.
pub fn config() -> Config {
    let mut config = Config {
        presence_interval: Duration::from_secs(3600),
        ..Config::default()
    };
    config.ws.ping_interval = Duration::from_millis(300);
    config.ws.pong_timeout = Duration::from_secs(1);
    config.sse.keepalive = Duration::from_secs(3600);
    config
}

/// The report's section title (its slug is what the slides quote).
pub const TITLE: &str = "Close codes our server sent";

/// The sentence above the table.
pub const INTRO: &str = "One raw-socket connection per row: the client does what the row \
    says, then reads until the server answers or closes (pings every 300 ms, 1 s for a \
    pong in this run).";

/// The table's header and one row per case that leaves the server running.
pub async fn rows(addr: SocketAddr, max_message: usize) -> io::Result<String> {
    let is_error = |text: &str| text.contains(r#""type":"error""#);
    let mut close = b"\x03\xe8".to_vec();
    close.extend_from_slice(b"bye");
    let too_big = max_message + 4096;
    let cases: Vec<(String, Option<Vec<u8>>)> = vec![
        (
            "sends Close, code 1000".into(),
            Some(client_frame(0x8, &close, Some(SAMPLE_MASK))),
        ),
        (
            "sends text that is not UTF-8".into(),
            Some(client_frame(0x1, b"\xff\xfe\xfd", Some(SAMPLE_MASK))),
        ),
        (
            format!("sends {too_big} bytes (limit {max_message})"),
            Some(client_frame(0x1, &vec![b'a'; too_big], Some(SAMPLE_MASK))),
        ),
        (
            "sends a frame with no mask".into(),
            Some(client_frame(
                0x1,
                br#"{"type":"send","user":"ada","text":"hi"}"#,
                None,
            )),
        ),
        (
            "sends a binary frame".into(),
            Some(client_frame(0x2, b"\x01\x02", Some(SAMPLE_MASK))),
        ),
        (
            "sends text that is not a command".into(),
            Some(client_frame(0x1, b"hello", Some(SAMPLE_MASK))),
        ),
        ("never answers the server's ping".into(), None),
    ];
    let mut table = String::from("| the client | the server | close code |\n| --- | --- | --- |\n");
    for (what, frame) in cases {
        let mut conn = raw::websocket(addr, "/rooms/probe/ws").await?;
        if let Some(frame) = frame {
            conn.send(&frame).await?;
        }
        let (answer, code) = outcome(&mut conn, is_error).await?.describe();
        let _ = writeln!(table, "| {what} | {answer} | {code} |");
    }
    Ok(table)
}

/// A client in session (past its `hello`), to be there when the server stops.
pub async fn at_shutdown(addr: SocketAddr) -> io::Result<Conn> {
    let mut conn = raw::websocket(addr, "/rooms/probe/ws").await?;
    let hello = conn
        .frame()
        .await?
        .ok_or_else(|| io::Error::other("no hello"))?;
    if !hello.text().contains("hello") {
        return Err(io::Error::other("the session did not start"));
    }
    Ok(conn)
}

/// The last row, once the server was told to stop: how `conn` ended.
pub async fn shutdown_row(conn: &mut Conn) -> io::Result<(String, Outcome)> {
    let ended = outcome(conn, |_| false).await?;
    let (answer, code) = ended.describe();
    Ok((
        format!("| is there when the server stops | {answer} | {code} |\n"),
        ended,
    ))
}

/// The whole section body, as the report has it.
pub fn section(rows: &str, shutdown_row: &str) -> String {
    format!("{INTRO}\n\n{rows}{shutdown_row}")
}
