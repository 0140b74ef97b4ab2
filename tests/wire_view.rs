//! The raw wire view shows exactly the bytes a raw TCP client received: the
//! last WebSocket frame, the last SSE chunk, whole poll exchanges, and the
//! WebSocket handshake with its accept key worked out.

mod common;

use common::*;
use futures_util::StreamExt;
use skyrocket::conn::{Counted, Recorder};
use skyrocket::wire_view::hex;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn wire_view(server: &TestServer) -> serde_json::Value {
    server.get_json("/rooms/tap/wire").await
}

async fn recorded_socket(server: &TestServer) -> (Counted<TcpStream, Recorder>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    (Counted::new(tcp, recorder.clone()), recorder)
}

#[tokio::test]
async fn the_websocket_handshake_and_frame_match_the_raw_bytes() {
    let server = TestServer::with_config(quiet_config()).await;
    wire_view(&server).await; // open the view: capture starts
    let (tcp, recorder) = recorded_socket(&server).await;
    let url = format!("ws://{}/rooms/tap/ws", server.addr);
    let (mut socket, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    server
        .target("tap")
        .send(&draft("ada", "on the wire"))
        .await
        .unwrap();
    loop {
        let frame = within(PATIENCE, socket.next()).await.unwrap().unwrap();
        if frame.to_text().unwrap().contains("on the wire") {
            break;
        }
    }
    let view = wire_view(&server).await;
    let read = recorder.read();

    let handshake = &view["handshake"];
    let head_end = read.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(handshake["response_hex"], hex(&read[..head_end]));
    assert_eq!(handshake["request_hex"], hex(&recorder.written()));
    assert!(handshake["response_text"]
        .as_str()
        .unwrap()
        .starts_with("HTTP/1.1 101 Switching Protocols"));
    assert_eq!(
        handshake["accept"]["computed"],
        handshake["accept"]["accept"]
    );
    assert!(handshake["accept"]["key"].is_string());

    // The message frame was the last thing on the socket.
    let frame = &view["ws"];
    let len = frame["response_len"].as_u64().unwrap() as usize;
    assert_eq!(frame["response_hex"], hex(&read[read.len() - len..]));
    assert_eq!(frame["frame"]["opcode_name"], "text");
    assert_eq!(frame["frame"]["masked"], false);
    assert_eq!(frame["frame"]["fin"], true);
}

#[tokio::test]
async fn the_sse_chunk_matches_the_raw_bytes() {
    let server = TestServer::with_config(quiet_config()).await;
    wire_view(&server).await;
    let (mut tcp, recorder) = recorded_socket(&server).await;
    tcp.write_all(b"GET /rooms/tap/sse HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // Wait until the stream is open (the hello arrived).
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&recorder.read()).contains("event: hello") {
        within(PATIENCE, tcp.read(&mut buf)).await.unwrap();
    }
    server
        .target("tap")
        .send(&draft("ada", "streamed"))
        .await
        .unwrap();
    while !recorder.read().ends_with(b"\n\n\r\n")
        || !String::from_utf8_lossy(&recorder.read()).contains("streamed")
    {
        within(PATIENCE, tcp.read(&mut buf)).await.unwrap();
    }
    let view = wire_view(&server).await;
    let read = recorder.read();
    let sample = &view["sse"];
    let len = sample["response_len"].as_u64().unwrap() as usize;
    assert_eq!(sample["response_hex"], hex(&read[read.len() - len..]));
    let text = sample["response_text"].as_str().unwrap();
    assert!(text.contains("\r\nid: 1\ndata: {"), "{text:?}");
}

#[tokio::test]
async fn poll_exchanges_match_the_raw_bytes() {
    for (kind, wait) in [("poll", 0), ("longpoll", 5)] {
        let server = TestServer::with_config(quiet_config()).await;
        wire_view(&server).await;
        server
            .target("tap")
            .send(&draft("ada", "polled"))
            .await
            .unwrap();
        let (mut tcp, recorder) = recorded_socket(&server).await;
        let request =
            format!("GET /rooms/tap/poll?since=0&wait={wait} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut all = Vec::new();
        within(PATIENCE, tcp.read_to_end(&mut all)).await.unwrap();
        let view = wire_view(&server).await;
        let sample = &view[kind];
        assert_eq!(sample["response_hex"], hex(&recorder.read()), "{kind}");
        assert_eq!(sample["request_hex"], hex(request.as_bytes()), "{kind}");
        assert!(sample["response_text"].as_str().unwrap().contains("polled"));
    }
}

#[tokio::test]
async fn nothing_is_captured_until_the_view_is_opened() {
    let server = TestServer::with_config(quiet_config()).await;
    let mut client = subscribe(
        skyrocket::message::Transport::Ws,
        &server.target("tap"),
        from_start(),
    )
    .await;
    server
        .target("tap")
        .send(&draft("ada", "unseen"))
        .await
        .unwrap();
    next_message(&mut client).await;
    let view = wire_view(&server).await;
    assert!(
        view.get("ws").is_none() && view.get("handshake").is_none(),
        "{view}"
    );
}

#[tokio::test]
async fn many_room_names_keep_the_taps_bounded_and_the_watched_room_working() {
    use skyrocket::wire_view::MAX_TAPS;
    let server = TestServer::with_config(quiet_config()).await;
    wire_view(&server).await;
    let http = server.connect.http_client();
    for i in 0..MAX_TAPS * 2 {
        let url = format!("{}/rooms/name{i}/wire", server.base());
        let response = http.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        // The presenter's page asks for its room's view every second.
        if i % 16 == 0 {
            wire_view(&server).await;
        }
    }
    assert_eq!(server.state.taps.len(), MAX_TAPS);
    let mut client = subscribe(
        skyrocket::message::Transport::Sse,
        &server.target("tap"),
        from_start(),
    )
    .await;
    server
        .target("tap")
        .send(&draft("ada", "still shown"))
        .await
        .unwrap();
    next_message(&mut client).await;
    // The delivery is counted before or after it is written; wait for the
    // sample rather than assume which.
    eventually(|| async {
        let view = wire_view(&server).await;
        view["sse"]["response_text"]
            .as_str()
            .is_some_and(|t| t.contains("still shown"))
    })
    .await;
    assert_eq!(server.state.taps.len(), MAX_TAPS);
}
