//! What an operator relies on, through the real binary as a child
//! process: every option from an environment variable (a flag wins over
//! it, and `--help` names them), and refusals in a JSON log with the peer
//! and the room.

mod common;

use common::*;
use futures_util::StreamExt;

/// The status of `POST /rooms/{room}/messages` on the child at `base`.
async fn post(base: &str, room: &str) -> u16 {
    skyrocket::client::tls::http_builder()
        .build()
        .unwrap()
        .post(format!("{base}/rooms/{room}/messages"))
        .json(&serde_json::json!({"user": "ops", "text": "hello"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_environment_variable_sets_an_option_and_a_flag_beats_it() {
    let env = [
        // The address from the environment too: no --addr flag at all.
        ("SKYROCKET_ADDR", "127.0.0.1:0"),
        ("SKYROCKET_MAX_ROOMS", "1"),
    ];
    let server = ChildServer::start_with_env(&env, &[]).await;
    assert_eq!(post(&server.base, "first").await, 201);
    assert_eq!(post(&server.base, "second").await, 503, "a cap of 1 room");
    drop(server);

    let server = ChildServer::start_with_env(&env, &["--max-rooms", "2"]).await;
    assert_eq!(post(&server.base, "first").await, 201);
    assert_eq!(
        post(&server.base, "second").await,
        201,
        "the flag's 2 rooms"
    );
    assert_eq!(post(&server.base, "third").await, 503);
}

#[test]
fn help_names_the_environment_variables() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skyrocket"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "SKYROCKET_ADDR",
        "SKYROCKET_MAX_ROOMS",
        "SKYROCKET_REDIS",
        "SKYROCKET_LOG_FORMAT",
        "SKYROCKET_ALLOW_HOST",
    ] {
        assert!(help.contains(&format!("[env: {var}=")), "{var} in:\n{help}");
    }
    // One variable per option: every flag's line but -h and -V's.
    let options = help
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .count();
    assert_eq!(help.matches("[env: SKYROCKET_").count(), options - 2);
}

#[tokio::test]
async fn refusals_are_logged_as_json_with_peer_and_room() {
    let env = [
        ("RUST_LOG", "skyrocket=debug"),
        ("SKYROCKET_LOG_FORMAT", "json"),
    ];
    let mut server =
        ChildServer::start_with_env(&env, &["--addr", "127.0.0.1:0", "--max-rooms", "1"]).await;
    assert_eq!(post(&server.base, "kept").await, 201);
    assert_eq!(post(&server.base, "over").await, 503);
    let line = server.log_line(|l| l.contains(r#""room":"over""#)).await;
    let entry: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(entry["level"], "DEBUG", "{entry}");
    let fields = &entry["fields"];
    assert_eq!(fields["message"], "refused", "{entry}");
    assert!(
        fields["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{entry}"
    );
    let refusal = fields["refusal"].as_str().unwrap();
    assert!(refusal.starts_with("503"), "{entry}");

    // A WebSocket refused the same way is closed 1013, and logged so.
    let url = format!("{}/rooms/over-ws/ws", server.base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let close = within(PATIENCE, async {
        while let Some(Ok(frame)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Close(close) = frame {
                return close;
            }
        }
        None
    })
    .await
    .expect("a close frame");
    assert_eq!(u16::from(close.code), 1013);
    let line = server.log_line(|l| l.contains(r#""room":"over-ws""#)).await;
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    let refusal = entry["fields"]["refusal"].as_str().unwrap();
    assert!(refusal.starts_with("close 1013"), "{entry}");
}
