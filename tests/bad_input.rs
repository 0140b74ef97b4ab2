//! Bad input gets the right status and a JSON error a person can read, and
//! the server goes on serving everyone else.

mod common;

use common::*;
use skyrocket::client::ws::WsClient;
use skyrocket::message::Transport;
use skyrocket::message::{Control, Event};
use tokio_tungstenite::tungstenite::Message;

/// Sends a request and returns the status and the `error` text, asserting
/// the body is the contract's JSON error.
async fn error_of(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {body:?}"));
    let error = json["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field in {body}"))
        .to_owned();
    assert!(!error.is_empty());
    (status, error)
}

#[tokio::test]
async fn bad_http_input_gets_a_clear_json_error() {
    let server = TestServer::start().await;
    let base = server.base();
    let http = skyrocket::client::tls::http_builder().build().unwrap();
    let post = |path: &str| http.post(format!("{base}{path}"));
    let json_post = |body: String| {
        post("/rooms/lobby/messages")
            .header("content-type", "application/json")
            .body(body)
    };

    let cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        ("malformed JSON", json_post(r#"{"user":"#.into()), 400),
        (
            "wrong types",
            json_post(r#"{"user":1,"text":"x"}"#.into()),
            400,
        ),
        ("missing text", json_post(r#"{"user":"ada"}"#.into()), 400),
        ("empty body", json_post(String::new()), 400),
        (
            "empty user",
            json_post(r#"{"user":"  ","text":"x"}"#.into()),
            400,
        ),
        (
            "empty text",
            json_post(r#"{"user":"ada","text":""}"#.into()),
            400,
        ),
        (
            "text over 4096 bytes",
            json_post(serde_json::json!({"user":"ada","text":"x".repeat(4097)}).to_string()),
            400,
        ),
        (
            "body over 64 KiB",
            json_post(serde_json::json!({"user":"ada","text":"x".repeat(70_000)}).to_string()),
            413,
        ),
        (
            "control character in text",
            json_post(r#"{"user":"ada","text":"bell\u0007"}"#.into()),
            400,
        ),
        (
            "control character in user",
            json_post(r#"{"user":"a\u0000da","text":"x"}"#.into()),
            400,
        ),
        (
            "client_id too long",
            json_post(
                serde_json::json!({"user":"ada","text":"x","client_id":"c".repeat(65)}).to_string(),
            ),
            400,
        ),
        (
            "not JSON content type",
            post("/rooms/lobby/messages")
                .header("content-type", "text/plain")
                .body(r#"{"user":"ada","text":"x"}"#),
            415,
        ),
        (
            "bad room name",
            post("/rooms/no%20spaces/messages")
                .header("content-type", "application/json")
                .body(r#"{"user":"ada","text":"x"}"#),
            404,
        ),
        (
            "room name too long",
            http.get(format!("{base}/rooms/{}/poll", "r".repeat(65))),
            404,
        ),
        ("unknown route", http.get(format!("{base}/nope")), 404),
        (
            "wrong method",
            http.delete(format!("{base}/rooms/lobby/messages")),
            405,
        ),
        (
            "wait too long",
            http.get(format!("{base}/rooms/lobby/poll?wait=31")),
            400,
        ),
        (
            "since not a number",
            http.get(format!("{base}/rooms/lobby/poll?since=abc")),
            400,
        ),
        (
            "Last-Event-ID not an id",
            http.get(format!("{base}/rooms/lobby/sse"))
                .header("last-event-id", "x"),
            400,
        ),
        (
            "plain GET on the WebSocket route",
            http.get(format!("{base}/rooms/lobby/ws")),
            400,
        ),
    ];
    for (what, request, expected) in cases {
        let (status, error) = error_of(request).await;
        assert_eq!(status, expected, "{what}: {error}");
    }

    // Nothing was accepted, and the server still serves.
    let target = server.target("lobby");
    assert_eq!(target.send(&draft("ada", "still here")).await.unwrap(), 1);
    let health = skyrocket::client::tls::get(&format!("{base}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn garbage_websocket_frames_get_error_events_and_the_socket_stays_open() {
    let server = TestServer::start().await;
    let target = server.target("lobby");
    let mut bystander = subscribe(Transport::Sse, &target, Default::default()).await;
    let mut socket = WsClient::connect(&target, &Default::default())
        .await
        .unwrap();

    let garbage = [
        Message::binary(vec![0u8, 159, 146, 150]),
        Message::text("not json"),
        Message::text(r#"{"type":"launch"}"#),
        Message::text(r#"{"type":"send","user":"ada"}"#),
        Message::text(r#"{"type":"send","user":"","text":"x"}"#),
        Message::text(r#"{"type":"send","user":"ada","text":"\u0007"}"#),
    ];
    for frame in garbage {
        let shown = format!("{frame:?}");
        socket.send_raw(frame).await.unwrap();
        loop {
            match within(PATIENCE, socket.next_event()).await.unwrap() {
                Event::Control(Control::Error { error }) => {
                    assert!(!error.is_empty(), "{shown}");
                    break;
                }
                Event::Control(Control::Hello { .. } | Control::Presence { .. }) => continue,
                other => panic!("{shown}: expected an error event, got {other:?}"),
            }
        }
    }
    // The same socket still sends, and others receive.
    socket.send(&draft("ada", "valid at last")).await.unwrap();
    let got = next_message(&mut bystander).await;
    assert_eq!((got.id, got.text.as_str()), (1, "valid at last"));
}
