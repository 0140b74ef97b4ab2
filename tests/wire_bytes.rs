//! The server's byte counters match, byte for byte and in both directions,
//! what a client counted on its own socket; WebSocket frames cost exactly
//! the RFC 6455 header on top of the payload.

mod common;

use common::*;
use futures_util::StreamExt;
use skyrocket::conn::{ByteCount, Counted};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

type Socket = BufReader<Counted<TcpStream, ByteCount>>;

async fn counted_socket(server: &TestServer) -> (Socket, Arc<ByteCount>) {
    let meter = Arc::new(ByteCount::default());
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    (BufReader::new(Counted::new(tcp, meter.clone())), meter)
}

/// Reads a response head; returns it with its Content-Length, if any.
async fn read_head(socket: &mut Socket) -> (String, Option<usize>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        socket.read_line(&mut line).await.unwrap();
        assert!(!line.is_empty(), "connection closed in a response head");
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().unwrap())
    });
    (head, length)
}

/// One request on a keep-alive connection; the response body.
async fn exchange(socket: &mut Socket, request: &str) -> String {
    socket
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .unwrap();
    let (head, length) = read_head(socket).await;
    let mut body = vec![0; length.unwrap_or_else(|| panic!("no length in {head}"))];
    socket.read_exact(&mut body).await.unwrap();
    String::from_utf8(body).unwrap()
}

/// Waits until the server's counters for `transport` equal the client's.
async fn counters_match(server: &TestServer, transport: &str, meter: &ByteCount) {
    eventually(|| async {
        let stats = server.stats().await;
        let t = &stats["transports"][transport];
        t["wire_bytes_in"] == meter.written() && t["wire_bytes_out"] == meter.read()
    })
    .await;
}

async fn post_messages(server: &TestServer, count: usize) {
    let target = server.target("bytes");
    for i in 0..count {
        target
            .send(&draft("ada", &format!("message {i}")))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn websocket_counters_match_the_client_socket() {
    let server = TestServer::with_config(quiet_config()).await;
    let meter = Arc::new(ByteCount::default());
    let tcp = Counted::new(
        TcpStream::connect(server.addr).await.unwrap(),
        meter.clone(),
    );
    let url = format!("ws://{}/rooms/bytes/ws?since=0", server.addr);
    let (mut socket, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    post_messages(&server, 5).await;
    let mut messages = 0;
    while messages < 5 {
        let frame = within(PATIENCE, socket.next()).await.unwrap().unwrap();
        if frame.to_text().unwrap().starts_with(r#"{"type":"message""#) {
            messages += 1;
        }
    }
    counters_match(&server, "ws", &meter).await;
    let stats = server.stats().await;
    assert_eq!(stats["transports"]["ws"]["delivered"], 5);
    assert_eq!(stats["rooms"]["bytes"]["delivered"]["ws"], 5);
    assert_eq!(stats["rooms"]["bytes"]["online"]["ws"], 1);
}

#[tokio::test]
async fn sse_counters_match_the_client_socket() {
    let server = TestServer::with_config(quiet_config()).await;
    post_messages(&server, 5).await;
    let (mut socket, meter) = counted_socket(&server).await;
    let request = "GET /rooms/bytes/sse?since=0 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    socket
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .unwrap();
    let (head, _) = read_head(&mut socket).await;
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    // Read whole chunks until the fifth message event has arrived.
    let mut events = 0;
    while events < 5 {
        let mut size = String::new();
        socket.read_line(&mut size).await.unwrap();
        let size = usize::from_str_radix(size.trim_end(), 16).unwrap();
        let mut chunk = vec![0; size + 2];
        socket.read_exact(&mut chunk).await.unwrap();
        events += String::from_utf8_lossy(&chunk).matches("\nid: ").count()
            + usize::from(chunk.starts_with(b"id: "));
    }
    counters_match(&server, "sse", &meter).await;
    let stats = server.stats().await;
    assert_eq!(stats["transports"]["sse"]["delivered"], 5);
    assert_eq!(stats["transports"]["sse"]["connections_open"], 1);
}

#[tokio::test]
async fn poll_counters_match_the_client_socket() {
    for (transport, wait) in [("poll", 0), ("longpoll", 5)] {
        let server = TestServer::with_config(quiet_config()).await;
        let (mut socket, meter) = counted_socket(&server).await;
        post_messages(&server, 3).await;
        let get = |since: u64| {
            format!(
                "GET /rooms/bytes/poll?since={since}&wait={wait} HTTP/1.1\r\nHost: localhost\r\n\r\n"
            )
        };
        let body = exchange(&mut socket, &get(0)).await;
        assert!(body.contains(r#""next":3"#), "{body}");
        post_messages(&server, 2).await;
        let body = exchange(&mut socket, &get(3)).await;
        assert!(body.contains(r#""next":5"#), "{body}");
        counters_match(&server, transport, &meter).await;
        let stats = server.stats().await;
        assert_eq!(stats["transports"][transport]["delivered"], 5);
        assert_eq!(stats["transports"][transport]["requests"], 2);
    }
}

#[tokio::test]
async fn send_counters_match_the_client_socket() {
    let server = TestServer::with_config(quiet_config()).await;
    let (mut socket, meter) = counted_socket(&server).await;
    for i in 0..3 {
        let body = format!(r#"{{"user":"ada","text":"m{i}"}}"#);
        let request = format!(
            "POST /rooms/bytes/messages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let answer = exchange(&mut socket, &request).await;
        assert_eq!(answer, format!(r#"{{"id":{}}}"#, i + 1));
    }
    counters_match(&server, "send", &meter).await;
}

#[tokio::test]
async fn a_websocket_frame_costs_the_payload_plus_its_rfc_6455_header() {
    let server = TestServer::with_config(quiet_config()).await;
    let url = format!("ws://{}/rooms/bytes/ws", server.addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut delivered = 0;
    let mut headers_seen = Vec::new();
    // Text sizes whose JSON lands under 126 bytes, and between 126 and 65,535.
    for text_len in [1, 10, 40, 60, 200, 4000] {
        let before = server.stats().await["transports"]["ws"].clone();
        server
            .target("bytes")
            .send(&draft("ada", &"x".repeat(text_len)))
            .await
            .unwrap();
        let payload = loop {
            match within(PATIENCE, socket.next()).await.unwrap().unwrap() {
                Message::Text(t) if t.starts_with(r#"{"type":"message""#) => break t.len(),
                _ => continue,
            }
        };
        // RFC 6455 5.2: 7-bit length up to 125, else 16-bit up to 65,535;
        // server frames carry no mask.
        let header = if payload <= 125 { 2 } else { 4 };
        headers_seen.push(header);
        delivered += 1;
        eventually(|| async { server.stats().await["transports"]["ws"]["delivered"] == delivered })
            .await;
        let after = server.stats().await["transports"]["ws"].clone();
        let out =
            after["wire_bytes_out"].as_u64().unwrap() - before["wire_bytes_out"].as_u64().unwrap();
        assert_eq!(out as usize, payload + header, "payload of {payload} bytes");
        assert_eq!(
            after["payload_bytes"].as_u64().unwrap() - before["payload_bytes"].as_u64().unwrap(),
            payload as u64
        );
    }
    assert!(headers_seen.contains(&2) && headers_seen.contains(&4));
}
