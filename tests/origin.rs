//! RFC 6455 section 10.2: a page from another site cannot use the rooms
//! with the visitor's cookies. WebSocket upgrades, SSE streams, polls and
//! sends from an origin that is not allowed get `403` and a JSON error;
//! the server's own origin, loopback pages, `--allow-origin` and requests
//! without an `Origin` (programs, not pages) are served.

mod common;

use common::*;
use skyrocket::Config;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

const EVIL: &str = "http://evil.example";

fn config() -> Config {
    Config {
        allowed_origins: vec!["https://chat.example.com".into()],
        // The cases below serve the rooms under a public name on this
        // loopback server, as behind a reverse proxy on the same host.
        allowed_hosts: vec!["chat.internal".into()],
        ..Config::default()
    }
}

/// The status of each guarded route for a request with these headers.
async fn statuses(server: &TestServer, headers: &[(&str, &str)]) -> Vec<(String, u16)> {
    let http = skyrocket::client::tls::http_builder().build().unwrap();
    let base = server.base();
    let with = |mut request: reqwest::RequestBuilder| {
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    };
    let mut out = Vec::new();
    let send = with(http.post(format!("{base}/rooms/o/messages")))
        .json(&serde_json::json!({"user": "ada", "text": "hi"}));
    let poll = with(http.get(format!("{base}/rooms/o/poll")));
    let sse = with(http.get(format!("{base}/rooms/o/sse")));
    for (name, request) in [("send", send), ("poll", poll), ("sse", sse)] {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        if status == 403 {
            let body: serde_json::Value = response.json().await.unwrap();
            let error = body["error"].as_str().unwrap();
            assert!(error.contains("not allowed"), "{error}");
        }
        out.push((name.to_owned(), status));
    }
    for path in ["/rooms/o/ws", "/echo/ws"] {
        let mut request = format!("ws://{}{path}", server.addr)
            .into_client_request()
            .unwrap();
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap();
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        let status = match tokio_tungstenite::connect_async(request).await {
            Ok((_, response)) => response.status().as_u16(),
            Err(WsError::Http(response)) => {
                let body =
                    String::from_utf8_lossy(response.body().as_deref().unwrap_or(b"")).into_owned();
                assert!(body.contains("not allowed"), "{body}");
                response.status().as_u16()
            }
            Err(e) => panic!("{path}: {e}"),
        };
        out.push((path.to_owned(), status));
    }
    out
}

fn all(statuses: &[(String, u16)], allowed: bool) -> bool {
    statuses.iter().all(|(route, status)| match route.as_str() {
        "send" => *status == if allowed { 201 } else { 403 },
        "poll" | "sse" => *status == if allowed { 200 } else { 403 },
        _ => *status == if allowed { 101 } else { 403 },
    })
}

#[tokio::test]
async fn pages_from_other_origins_get_403_on_every_room_route() {
    let server = TestServer::with_config(config()).await;
    for origin in [
        EVIL,
        "null",
        "https://chat.example.com.evil.example",
        "http://localhost.evil.example",
    ] {
        let got = statuses(&server, &[("origin", origin)]).await;
        assert!(all(&got, false), "{origin}: {got:?}");
    }
    let stats = server.stats().await;
    assert_eq!(stats["limits"]["origin_refused"], 4 * 5);
}

#[tokio::test]
async fn own_loopback_listed_and_absent_origins_are_served() {
    let server = TestServer::with_config(config()).await;
    let own = server.base();
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("origin", own.as_str())],
        vec![("origin", "http://localhost:5173")],
        vec![("origin", "http://127.0.0.1:9")],
        vec![("origin", "https://chat.example.com")],
        // Served under a public name: the page's origin names that host.
        vec![
            ("host", "chat.internal:3000"),
            ("origin", "http://chat.internal:3000"),
        ],
    ];
    for headers in cases {
        let got = statuses(&server, &headers).await;
        assert!(all(&got, true), "{headers:?}: {got:?}");
    }
    // The same public name, but a page from a sibling host: refused.
    let got = statuses(
        &server,
        &[
            ("host", "chat.internal:3000"),
            ("origin", "http://other.internal:3000"),
        ],
    )
    .await;
    assert!(all(&got, false), "{got:?}");
}

#[tokio::test]
async fn star_allows_any_origin() {
    let server = TestServer::with_config(Config {
        allowed_origins: vec!["*".into()],
        ..Config::default()
    })
    .await;
    let got = statuses(&server, &[("origin", EVIL)]).await;
    assert!(all(&got, true), "{got:?}");
}
