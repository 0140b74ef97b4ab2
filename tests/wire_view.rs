//! The raw wire view shows exactly the bytes a raw TCP client received: the
//! last WebSocket frame, the last SSE chunk, whole poll exchanges, and the
//! WebSocket handshake with its accept key worked out. Over HTTP/2 the
//! samples are the stream's frames, decrypted, checked against the frames
//! a hand-driven HTTP/2 client read (`common/raw_h2.rs`).

mod common;

use common::raw_h2::{self, Frame};
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

// ---------------------------------------------------------------------------
// HTTP/2 over TLS: the samples are the stream's own frames.
// ---------------------------------------------------------------------------

/// A frame's exact bytes, as they crossed the (decrypted) connection.
fn frame_bytes(frame: &Frame) -> Vec<u8> {
    raw_h2::frame(frame.kind, frame.flags, frame.stream, &frame.payload)
}

/// An HTTP/2 client with its stream-1 GET of `path` sent.
async fn h2_get(server: &TestServer, path: &str) -> (raw_h2::Stream, Vec<u8>) {
    let mut h2 = raw_h2::connect(server).await;
    let request = raw_h2::get(&mut hpack::Encoder::new(), 1, path);
    let mut out = raw_h2::preface(1 << 20);
    out.extend(&request);
    raw_h2::send(&mut h2, &out).await.unwrap();
    (h2, request)
}

/// The server's next frame on stream 1.
async fn next_on_stream_1(h2: &mut raw_h2::Stream) -> Frame {
    loop {
        let frame = raw_h2::read_frame(h2).await.expect("the stream goes on");
        if frame.stream == 1 {
            return frame;
        }
    }
}

/// Checks an h2 sample's frame list against its bytes: each 9-byte header
/// is the bytes at its offset, its length field the payload that follows,
/// all on stream 1; returns the frame types.
fn checked_frames(sample: &serde_json::Value, side: &str) -> Vec<String> {
    let bytes = hex_bytes(&sample[format!("{side}_hex")]);
    let frames = sample["frames"][side].as_array().unwrap();
    let mut end = 0;
    for f in frames {
        let offset = f["offset"].as_u64().unwrap() as usize;
        assert_eq!(offset, end, "frames are back to back: {f}");
        assert_eq!(f["header_hex"], hex(&bytes[offset..offset + 9]), "{f}");
        assert_eq!(f["length"], f["payload_len"], "nothing was cut: {f}");
        let length = f["length"].as_u64().unwrap() as usize;
        let field = usize::from(bytes[offset]) << 16
            | usize::from(bytes[offset + 1]) << 8
            | usize::from(bytes[offset + 2]);
        assert_eq!(field, length, "{f}");
        assert_eq!(f["stream"], 1, "{f}");
        end = offset + 9 + length;
    }
    assert_eq!(end, bytes.len(), "the frames cover the sample");
    frames
        .iter()
        .map(|f| f["type"].as_str().unwrap().to_owned())
        .collect()
}

fn hex_bytes(value: &serde_json::Value) -> Vec<u8> {
    value
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn header<'a>(sample: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    sample["request_headers"]
        .as_array()?
        .iter()
        .find(|h| h[0] == name)?[1]
        .as_str()
}

#[tokio::test]
async fn h2_poll_exchanges_are_the_streams_frames() {
    for (kind, wait) in [("poll", 0), ("longpoll", 5)] {
        let server = TestServer::over(Wire::H2, quiet_config()).await;
        wire_view(&server).await;
        server
            .target("tap")
            .send(&draft("ada", "polled over h2"))
            .await
            .unwrap();
        let path = format!("/rooms/tap/poll?since=0&wait={wait}");
        let (mut h2, request) = h2_get(&server, &path).await;
        let mut response = Vec::new();
        loop {
            let frame = next_on_stream_1(&mut h2).await;
            response.extend(frame_bytes(&frame));
            if frame.flags & raw_h2::END_STREAM != 0 {
                break;
            }
        }
        let view = wire_view(&server).await;
        let sample = &view[kind];
        assert_eq!(sample["http"], "h2", "{kind}: {sample}");
        assert_eq!(sample["tls"], true);
        assert_eq!(sample["response_hex"], hex(&response), "{kind}");
        assert_eq!(sample["request_hex"], hex(&request), "{kind}");
        assert_eq!(header(sample, ":path"), Some(path.as_str()));
        assert_eq!(checked_frames(sample, "request"), ["HEADERS"]);
        let types = checked_frames(sample, "response");
        assert_eq!(types[0], "HEADERS", "{kind}: {types:?}");
        assert!(types[1..].iter().all(|t| t == "DATA"), "{kind}: {types:?}");
        assert!(sample["response_text"]
            .as_str()
            .unwrap()
            .contains(r#""text":"polled over h2""#));
    }
}

#[tokio::test]
async fn the_h2_sse_delivery_is_its_data_frame() {
    let server = TestServer::over(Wire::H2, quiet_config()).await;
    wire_view(&server).await;
    let (mut h2, request) = h2_get(&server, "/rooms/tap/sse").await;
    // The stream is open once its hello arrived.
    while !String::from_utf8_lossy(&next_on_stream_1(&mut h2).await.payload).contains("hello") {}
    server
        .target("tap")
        .send(&draft("ada", "streamed over h2"))
        .await
        .unwrap();
    let data = loop {
        let frame = next_on_stream_1(&mut h2).await;
        if String::from_utf8_lossy(&frame.payload).contains("streamed over h2") {
            break frame;
        }
    };
    assert_eq!(data.kind, raw_h2::DATA);
    // The sample is stored as the frame is written: wait for it rather
    // than assume it was stored before the client read the frame.
    let sample = eventually_sample(&server, "sse", "streamed over h2").await;
    assert_eq!(sample["http"], "h2");
    assert_eq!(sample["response_hex"], hex(&frame_bytes(&data)));
    assert_eq!(sample["request_hex"], hex(&request));
    assert_eq!(checked_frames(&sample, "response"), ["DATA"]);
    assert_eq!(
        sample["frames"]["response"][0]["payload_len"],
        data.payload.len()
    );
    assert_eq!(header(&sample, ":method"), Some("GET"));
}

/// The room's `kind` sample once it shows `text` (each round trip is the
/// pause, as in [`eventually`]).
async fn eventually_sample(server: &TestServer, kind: &str, text: &str) -> serde_json::Value {
    within(PATIENCE, async {
        loop {
            let view = wire_view(server).await;
            let shows = view[kind]["response_text"]
                .as_str()
                .is_some_and(|t| t.contains(text));
            if shows {
                return view[kind].clone();
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

#[tokio::test]
async fn a_websocket_over_h2_shows_its_connect_and_data_frames() {
    use skyrocket::message::Transport;
    let server = TestServer::over(Wire::H2, quiet_config()).await;
    wire_view(&server).await;
    // The crate's client opens it by RFC 8441 extended CONNECT.
    let mut client = subscribe(Transport::Ws, &server.target("tap"), from_start()).await;
    server
        .target("tap")
        .send(&draft("ada", "framed over h2"))
        .await
        .unwrap();
    next_message(&mut client).await;
    let ws = eventually_sample(&server, "ws", "framed over h2").await;
    assert_eq!(ws["http"], "h2");
    assert_eq!(checked_frames(&ws, "response"), ["DATA"]);
    // The DATA payload is the WebSocket frame: FIN + text, unmasked.
    assert_eq!(hex_bytes(&ws["response_hex"])[9], 0x81);

    let handshake = &wire_view(&server).await["handshake"];
    assert_eq!(handshake["http"], "h2", "{handshake}");
    assert_eq!(header(handshake, ":method"), Some("CONNECT"));
    assert_eq!(header(handshake, ":protocol"), Some("websocket"));
    assert_eq!(checked_frames(handshake, "response"), ["HEADERS"]);
    assert!(handshake["frames"]["response"][0]["flag_names"]
        .as_array()
        .unwrap()
        .contains(&"END_HEADERS".into()));
    assert_eq!(handshake["request_hex"], ws["request_hex"]);
}

#[tokio::test]
async fn over_h2_nothing_is_captured_unless_its_room_is_watched() {
    let server = TestServer::over(Wire::H2, quiet_config()).await;
    let poll = |room: &'static str| {
        let server = &server;
        async move {
            server
                .target(room)
                .send(&draft("ada", "unseen"))
                .await
                .unwrap();
            let path = format!("/rooms/{room}/poll?since=0");
            let (mut h2, _) = h2_get(server, &path).await;
            while next_on_stream_1(&mut h2).await.flags & raw_h2::END_STREAM == 0 {}
        }
    };
    // No view open anywhere: the poll's frames are only counted.
    poll("tap").await;
    let view = wire_view(&server).await; // from now on "tap" is watched
    assert!(view.get("poll").is_none(), "{view}");
    // "tap" watched, "elsewhere" not.
    poll("elsewhere").await;
    let view = server.get_json("/rooms/elsewhere/wire").await;
    assert!(view.get("poll").is_none(), "{view}");
}
