//! DNS rebinding: a server bound to loopback answers only requests that
//! name a loopback host (`src/host.rs`). The attack is played for real: a
//! client resolves `evil.example` to the test server's loopback address,
//! as a rebinding page's browser would, and asks for it by that name.

mod common;

use common::*;
use skyrocket::client::Connect;
use std::net::SocketAddr;

/// A client on `wire` that resolves `evil.example` and `localhost` to
/// `addr`. It accepts any certificate: the test server's is for
/// `localhost`, and the attack here is on the Host, not on TLS.
fn rebinding_client(wire: Wire, addr: SocketAddr) -> reqwest::Client {
    Connect {
        http2: wire == Wire::H2,
        insecure: true,
        trusted: Vec::new(),
    }
    .http_builder()
    .resolve("evil.example", addr)
    .resolve("localhost", addr)
    .build()
    .unwrap()
}

async fn a_rebound_name_is_refused_and_loopback_names_are_served(wire: Wire) {
    let server = TestServer::over(wire, quiet_config()).await;
    let client = rebinding_client(wire, server.addr);
    let scheme = if wire == Wire::H1 { "http" } else { "https" };
    let port = server.addr.port();
    let expected_version = match wire {
        Wire::H2 => reqwest::Version::HTTP_2,
        _ => reqwest::Version::HTTP_11,
    };

    for path in ["/stats", "/rooms/lobby/poll", "/healthz"] {
        let refused = client
            .get(format!("{scheme}://evil.example:{port}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.version(), expected_version);
        assert_eq!(refused.status(), 403, "{path}");
        let body: serde_json::Value = refused.json().await.unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("DNS rebinding"), "{error}");
    }
    // A post for the rebound name stores nothing.
    let post = client
        .post(format!(
            "{scheme}://evil.example:{port}/rooms/lobby/messages"
        ))
        .json(&serde_json::json!({"user": "mallory", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 403);

    for host in ["localhost", "127.0.0.1"] {
        let served = client
            .get(format!("{scheme}://{host}:{port}/rooms/lobby/poll?since=0"))
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), 200, "{host}");
        let body: serde_json::Value = served.json().await.unwrap();
        assert_eq!(
            body["messages"],
            serde_json::json!([]),
            "nothing was posted"
        );
    }
    let stats = server.stats().await;
    assert_eq!(stats["limits"]["host_refused"], 4);
}

over_each_wire!(a_rebound_name_is_refused_and_loopback_names_are_served);

#[tokio::test]
async fn a_websocket_handshake_for_another_host_gets_403() {
    let server = TestServer::with_config(quiet_config()).await;
    let handshake = |host: &str| {
        format!(
            "GET /rooms/lobby/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
    };
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (status, body) = raw_http(tcp, &handshake("evil.example:3000")).await;
    assert_eq!(status, 403);
    assert!(body.contains(r#""error":"#), "{body}");
    // The same handshake for a loopback name is switched to a WebSocket.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = handshake(&format!("localhost:{}", server.addr.port()));
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut status_line = String::new();
    let mut reader = tokio::io::BufReader::new(tcp);
    within(PATIENCE, reader.read_line(&mut status_line))
        .await
        .unwrap();
    assert!(status_line.starts_with("HTTP/1.1 101"), "{status_line}");
}

#[tokio::test]
async fn allowed_hosts_are_served_on_loopback() {
    let server = TestServer::with_config(skyrocket::Config {
        allowed_hosts: vec!["chat.example".into()],
        ..quiet_config()
    })
    .await;
    let request =
        |host: &str| format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(raw_http(tcp, &request("chat.example:3000")).await.0, 200);
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(raw_http(tcp, &request("evil.example")).await.0, 403);
}
