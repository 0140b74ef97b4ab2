//! `--tls`: every route over HTTP/2 and HTTP/1.1, what the TLS port does
//! with input that is not TLS, and the bounds that hold for TLS and HTTP/2
//! clients: a handshake that never finishes, streams reset in a loop, too
//! many streams, a reader that stops, a connection that keeps no stream. Each ends that one connection and
//! the server goes on serving everyone else.

mod common;

use common::raw_h2::{self, Frame};
use common::*;
use skyrocket::Config;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn limits(server: &TestServer) -> impl Fn(&str) -> u64 + '_ {
    move |name| {
        server.state.stats.to_json(&server.state.rooms, 0)["limits"][name]
            .as_u64()
            .unwrap()
    }
}

/// Another client, over HTTP/2, is still served.
async fn others_are_served(server: &TestServer) {
    let target = server.target("others");
    Wire::H2.assert_spoken(&target).await;
    let id = within(PATIENCE, target.send(&draft("ada", "still here")))
        .await
        .unwrap();
    assert!(id >= 1);
}

/// Reads until the server closes (or resets) the connection.
async fn closed(mut tcp: TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let _ = within(PATIENCE, tcp.read_to_end(&mut answer)).await;
    answer
}

#[tokio::test]
async fn every_page_route_is_served_over_h2_and_over_h1_with_tls() {
    for wire in [Wire::H2, Wire::H1Tls] {
        let server = TestServer::over(wire, Config::default()).await;
        let http = &server.target("lobby").http;
        for path in [
            "/",
            "/app.js",
            "/slides",
            "/stats",
            "/healthz",
            "/rooms/lobby/wire",
        ] {
            let response = http
                .get(format!("{}{path}", server.base()))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{wire:?} {path}");
            let expected = if wire == Wire::H2 {
                reqwest::Version::HTTP_2
            } else {
                reqwest::Version::HTTP_11
            };
            assert_eq!(response.version(), expected, "{wire:?} {path}");
        }
    }
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello_fails_the_handshake_alone() {
    let server = TestServer::over(Wire::H2, Config::default()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00])
        .await
        .unwrap();
    let answer = closed(tcp).await;
    // Closed, at most after a TLS alert record (type 21).
    assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
    assert_eq!(limits(&server)("tls_handshake_failed"), 1);
    others_are_served(&server).await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_a_400_that_says_use_https() {
    let server = TestServer::over(Wire::H2, Config::default()).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (status, body) = raw_http(tcp, &get_request("/healthz")).await;
    assert_eq!(status, 400);
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("https://"),
        "{body}"
    );
    assert_eq!(limits(&server)("plaintext_on_tls_port"), 1);
    others_are_served(&server).await;
}

#[tokio::test]
async fn an_h2_preface_without_tls_gets_a_goaway_that_says_why() {
    let server = TestServer::over(Wire::H2, Config::default()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&raw_h2::preface(65_535)).await.unwrap();
    let answer = closed(tcp).await;
    // An empty SETTINGS frame, then GOAWAY (type 7) with debug data.
    assert_eq!(&answer[..9], &[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    assert_eq!(answer[9 + 3], raw_h2::GOAWAY);
    let debug = String::from_utf8_lossy(&answer[9 + 9 + 8..]);
    assert!(debug.contains("https://"), "{debug}");
    others_are_served(&server).await;
}

#[tokio::test]
async fn a_tls_handshake_that_never_finishes_is_closed_after_the_header_timeout() {
    let config = Config {
        header_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let server = TestServer::over(Wire::H2, config).await;
    // One says nothing; one starts a handshake record and stops.
    let silent = TcpStream::connect(server.addr).await.unwrap();
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    assert!(closed(silent).await.is_empty());
    closed(partial).await;
    assert_eq!(limits(&server)("tls_handshake_timeouts"), 2);
    others_are_served(&server).await;
}

#[tokio::test]
async fn streams_reset_in_a_loop_end_the_connection() {
    let mut config = Config::default();
    config.connections.h2_reset_rate = skyrocket::config::RateLimit {
        per_second: 10,
        burst: 20,
    };
    let server = TestServer::over(Wire::H2, config).await;
    let mut h2 = raw_h2::connect(&server).await;
    let mut encoder = hpack::Encoder::new();
    let mut flood = raw_h2::preface(65_535);
    for i in 0..500u32 {
        let id = 2 * i + 1;
        flood.extend(raw_h2::get(&mut encoder, id, "/healthz"));
        flood.extend(raw_h2::rst_stream(id, raw_h2::CANCEL));
    }
    // The server may close while the flood is still being written.
    let _ = raw_h2::send(&mut h2, &flood).await;
    let mut goaway = None;
    while let Some(frame) = raw_h2::read_frame(&mut h2).await {
        if frame.kind == raw_h2::GOAWAY {
            goaway = frame.error_code();
        }
    }
    // Cut off by our reset budget, or by hyper's own limit on streams
    // reset before they were accepted (GOAWAY ENHANCE_YOUR_CALM).
    let ours = limits(&server)("h2_reset_flood");
    assert!(
        ours == 1 || goaway == Some(raw_h2::ENHANCE_YOUR_CALM),
        "connection ended: budget {ours}, goaway {goaway:?}"
    );
    others_are_served(&server).await;
}

#[tokio::test]
async fn streams_beyond_the_limit_are_refused_and_the_others_go_on() {
    let mut config = quiet_config();
    config.connections.h2_max_streams = 3;
    let server = TestServer::over(Wire::H2, config).await;
    let mut h2 = raw_h2::connect(&server).await;
    let mut encoder = hpack::Encoder::new();
    let mut request = raw_h2::preface(65_535);
    // Four SSE streams: they stay open, so the fourth is one too many.
    for id in [1, 3, 5, 7] {
        request.extend(raw_h2::get(&mut encoder, id, "/rooms/many/sse"));
    }
    raw_h2::send(&mut h2, &request).await.unwrap();
    let (mut answered, mut refused) = (Vec::new(), None);
    while answered.len() < 3 || refused.is_none() {
        let frame: Frame = raw_h2::read_frame(&mut h2).await.expect("still open");
        match frame.kind {
            raw_h2::HEADERS => answered.push(frame.stream),
            raw_h2::RST_STREAM => refused = Some((frame.stream, frame.error_code())),
            _ => {}
        }
    }
    answered.sort();
    assert_eq!(answered, [1, 3, 5]);
    assert_eq!(refused, Some((7, Some(raw_h2::REFUSED_STREAM))));
    others_are_served(&server).await;
}

#[tokio::test]
async fn an_h2_client_that_never_reads_is_cut_off_after_the_stall_timeout() {
    let mut config = quiet_config();
    config.connections.write_stall = Duration::from_secs(1);
    config.connections.send_buffer = 4096;
    let server = TestServer::over(Wire::H2, config).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let mut h2 = raw_h2::connect_on(&server, tcp).await;
    let mut encoder = hpack::Encoder::new();
    // A window as large as allowed, so only TCP holds the server back.
    let mut request = raw_h2::preface(i32::MAX as u32);
    request.extend(raw_h2::frame(
        0x8,
        0,
        0,
        &(i32::MAX as u32 - 65_535).to_be_bytes(),
    ));
    for id in [1, 3, 5] {
        request.extend(raw_h2::get(&mut encoder, id, "/rooms/stall/sse?since=0"));
    }
    raw_h2::send(&mut h2, &request).await.unwrap();
    // Then it reads nothing more, while the room fills its streams.
    let target = server.target("stall");
    let text = "x".repeat(4000);
    let stalled = limits(&server);
    within(PATIENCE, async {
        while stalled("write_stalled") == 0 {
            target.send(&draft("ada", &text)).await.unwrap();
        }
    })
    .await;
    others_are_served(&server).await;
    drop(h2);
}

/// The raw client never answers the server's PING, as a broken client
/// would: shutdown still ends within its deadline.
#[tokio::test]
async fn graceful_shutdown_sends_goaway_and_ends_open_streams() {
    let mut server = TestServer::over(Wire::H2, quiet_config()).await;
    let mut h2 = raw_h2::connect(&server).await;
    let mut encoder = hpack::Encoder::new();
    let mut request = raw_h2::preface(65_535);
    request.extend(raw_h2::get(&mut encoder, 1, "/rooms/bye/sse"));
    raw_h2::send(&mut h2, &request).await.unwrap();
    // Wait for the stream's response headers: the stream is open.
    while raw_h2::read_frame(&mut h2).await.expect("open").kind != raw_h2::HEADERS {}
    let reader = tokio::spawn(async move {
        let (mut goaway, mut ended) = (false, false);
        while let Some(frame) = raw_h2::read_frame(&mut h2).await {
            goaway |= frame.kind == raw_h2::GOAWAY;
            ended |= frame.stream == 1 && frame.flags & raw_h2::END_STREAM != 0;
        }
        (goaway, ended)
    });
    server.shutdown().await;
    let (goaway, ended) = within(PATIENCE, reader).await.unwrap();
    assert!(goaway, "GOAWAY before the connection closed");
    assert!(ended, "the SSE stream ended cleanly");
}

#[tokio::test]
async fn h2_bytes_are_charged_per_stream_exactly() {
    let server = TestServer::over(Wire::H2, quiet_config()).await;
    let target = server.target("bytes");
    target.send(&draft("ada", "one")).await.unwrap();
    let mut h2 = raw_h2::connect(&server).await;
    let mut encoder = hpack::Encoder::new();
    let sse = raw_h2::get(&mut encoder, 1, "/rooms/bytes/sse?since=0");
    let poll = raw_h2::get(&mut encoder, 3, "/rooms/bytes/poll?since=0");
    let mut request = raw_h2::preface(65_535);
    request.extend(&sse);
    request.extend(&poll);
    raw_h2::send(&mut h2, &request).await.unwrap();
    // Read until the poll's answer ended and the SSE stream carried the
    // message (its `id: 1` event).
    let (mut sse_in, mut poll_in) = (0, 0);
    let (mut poll_done, mut sse_got) = (false, false);
    while !(poll_done && sse_got) {
        let frame = raw_h2::read_frame(&mut h2).await.expect("open");
        match frame.stream {
            1 => {
                sse_in += frame.size();
                sse_got |= String::from_utf8_lossy(&frame.payload).contains("id: 1\n");
            }
            3 => {
                poll_in += frame.size();
                poll_done |= frame.flags & raw_h2::END_STREAM != 0;
            }
            _ => {}
        }
    }
    let stats = server.stats().await;
    let line = |t: &str, k: &str| stats["transports"][t][k].as_u64().unwrap();
    assert_eq!(line("sse", "wire_bytes_in"), sse.len() as u64);
    assert_eq!(line("poll", "wire_bytes_in"), poll.len() as u64);
    assert_eq!(line("sse", "wire_bytes_out"), sse_in);
    assert_eq!(line("poll", "wire_bytes_out"), poll_in);
    assert_eq!((line("sse", "requests"), line("poll", "requests")), (1, 1));
    // The TLS handshake and records, SETTINGS and the preface are the
    // connection line's.
    assert!(line("connection", "wire_bytes_out") > 0);
    assert!(line("connection", "wire_bytes_in") as usize > raw_h2::preface(0).len());
}

/// Waits until the server closes `h2`; whether it sent GOAWAY first.
async fn goaway_then_close(h2: &mut raw_h2::Stream) -> bool {
    let mut goaway = false;
    while let Some(frame) = raw_h2::read_frame(h2).await {
        goaway |= frame.kind == raw_h2::GOAWAY;
    }
    goaway
}

/// An HTTP/2 connection with no stream open is closed with GOAWAY after
/// the idle timeout (it holds a connection slot and gives nothing back);
/// one whose SSE stream stays open is not, however long it lasts.
#[tokio::test]
async fn an_h2_connection_that_keeps_no_stream_open_is_closed_after_the_idle_timeout() {
    let mut config = quiet_config();
    config.connections.h2_idle_timeout = Duration::from_millis(200);
    let server = TestServer::over(Wire::H2, config).await;
    let mut encoder = hpack::Encoder::new();
    let mut busy = raw_h2::connect(&server).await;
    let mut request = raw_h2::preface(65_535);
    request.extend(raw_h2::get(&mut encoder, 1, "/rooms/idle/sse"));
    raw_h2::send(&mut busy, &request).await.unwrap();
    while raw_h2::read_frame(&mut busy).await.expect("open").kind != raw_h2::HEADERS {}

    // Two idle connections, one after the other: by the time the second
    // is closed, the busy one has outlived two idle periods.
    for n in 1..=2 {
        let mut idle = raw_h2::connect(&server).await;
        raw_h2::send(&mut idle, &raw_h2::preface(65_535))
            .await
            .unwrap();
        assert!(
            goaway_then_close(&mut idle).await,
            "GOAWAY on idle connection {n}"
        );
        assert_eq!(limits(&server)("h2_idle_closed"), n);
    }

    // The busy connection is still open and its stream still delivers.
    let id = server
        .target("idle")
        .send(&draft("ada", "still streaming"))
        .await
        .unwrap();
    let delivered = loop {
        let frame = raw_h2::read_frame(&mut busy).await.expect("still open");
        if frame.kind == raw_h2::DATA && frame.stream == 1 {
            let text = String::from_utf8_lossy(&frame.payload).into_owned();
            if text.contains("still streaming") {
                break text;
            }
        }
    };
    assert!(delivered.contains(&format!("id: {id}")), "{delivered}");
    assert_eq!(limits(&server)("h2_idle_closed"), 2);
    others_are_served(&server).await;
}
