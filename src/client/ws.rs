//! WebSocket client: connect, read events, send `send` commands.
//!
//! Three ways in, one socket type: the HTTP/1.1 upgrade on plain TCP or
//! over TLS, and over HTTP/2 by RFC 8441's extended CONNECT (a `CONNECT`
//! request with `:protocol: websocket`, answered `200`, whose stream then
//! carries the WebSocket frames), which is what a browser uses when the
//! server's ALPN picked `h2` and its SETTINGS allow extended CONNECT.

use super::{parse_event, resume_query, ClientError, Result, Target};
use crate::message::{Draft, Event, Resume};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Any byte stream a WebSocket can run on: TCP, TLS, an HTTP/2 stream.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Socket = WebSocketStream<Box<dyn Io>>;

#[derive(Debug)]
pub struct WsClient {
    socket: Socket,
    /// When the server was last heard from (any frame, pings included).
    heard: Instant,
}

impl std::fmt::Debug for dyn Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Io")
    }
}

impl WsClient {
    pub async fn connect(target: &Target, resume: &Resume) -> Result<Self> {
        let url = target.url("ws", &resume_query(resume));
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| ClientError::Protocol(format!("url {url:?}: {e}")))?;
        let host = parsed.host_str().unwrap_or("localhost").to_owned();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
        let _ = tcp.set_nodelay(true);
        // tungstenite's default 128 KiB read buffer per socket would cost
        // loadgen 1.3 GB at 10,000 clients; chat frames are small, and a
        // larger message is still read whole, in 4 KiB steps.
        let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
        if !target.is_https() {
            let url = url.replacen("http", "ws", 1);
            return upgrade(url, Box::new(tcp), config).await;
        }
        let connector = tokio_rustls::TlsConnector::from(Arc::new(target.connect.tls_config()));
        let name = rustls::pki_types::ServerName::try_from(host)
            .map_err(|e| ClientError::Protocol(format!("server name: {e}")))?;
        let tls = connector.connect(name, tcp).await?;
        if tls.get_ref().1.alpn_protocol() == Some(super::tls::ALPN_H2) {
            return extended_connect(&url, tls, config).await;
        }
        upgrade(url.replacen("https", "wss", 1), Box::new(tls), config).await
    }

    /// The next JSON event; pings are answered by tungstenite as we read.
    pub async fn next_event(&mut self) -> Result<Event> {
        loop {
            let frame = self.socket.next().await;
            self.heard = Instant::now();
            match frame {
                Some(Ok(Message::Text(text))) => return parse_event(&text),
                Some(Ok(Message::Close(_))) | None => return Err(ClientError::Closed),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Sends a `send` command; the `ack` arrives as an event.
    pub async fn send(&mut self, draft: &Draft) -> Result<()> {
        let command = serde_json::json!({
            "type": "send",
            "user": draft.user,
            "text": draft.text,
            "client_id": draft.client_id,
        });
        self.socket.send(Message::text(command.to_string())).await?;
        Ok(())
    }

    /// Sends a raw frame, for tests of bad input.
    pub async fn send_raw(&mut self, message: Message) -> Result<()> {
        self.socket.send(message).await?;
        Ok(())
    }

    /// When the server was last heard from.
    pub fn heard(&self) -> Instant {
        self.heard
    }

    pub fn socket(&mut self) -> &mut Socket {
        &mut self.socket
    }
}

/// The HTTP/1.1 upgrade (RFC 6455) on `stream`.
async fn upgrade(url: String, stream: Box<dyn Io>, config: WebSocketConfig) -> Result<WsClient> {
    let (socket, _response) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    Ok(WsClient {
        socket,
        heard: Instant::now(),
    })
}

/// A WebSocket on an HTTP/2 stream (RFC 8441): one connection per socket,
/// driven by a task that ends when the socket does.
async fn extended_connect(
    url: &str,
    stream: impl Io + 'static,
    config: WebSocketConfig,
) -> Result<WsClient> {
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = axum::http::Request::builder()
        .method(axum::http::Method::CONNECT)
        .uri(url)
        .header("sec-websocket-version", "13")
        .body(axum::body::Body::empty())
        .map_err(|e| ClientError::Protocol(format!("request: {e}")))?;
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    if status != 200 {
        let body = axum::body::to_bytes(axum::body::Body::new(response.into_body()), 64 * 1024)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        return Err(ClientError::Status(status, body));
    }
    let upgraded = hyper::upgrade::on(response).await?;
    let stream: Box<dyn Io> = Box::new(TokioIo::new(upgraded));
    let socket = WebSocketStream::from_raw_socket(stream, Role::Client, Some(config)).await;
    Ok(WsClient {
        socket,
        heard: Instant::now(),
    })
}
