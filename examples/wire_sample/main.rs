//! Records the real bytes the slides show and writes `results/wire-sample.md`.
//!
//! `cargo run --release --example wire_sample`
//!
//! Starts a server in-process on 127.0.0.1:0 (in-memory backbone) and, against it:
//! - opens a WebSocket with tokio-tungstenite (an independent client that
//!   makes a random key and masks as browsers do) over a socket that records
//!   every byte; sends a message, answers a ping, closes. That gives the
//!   handshake, a server frame, a masked client frame, ping and pong, and the
//!   close handshake. The handshake and the server frame must equal what the
//!   server's own wire view (`GET /rooms/{room}/wire`) captured;
//! - works out `Sec-WebSocket-Accept` from the key the server saw, step by
//!   step, and checks it three ways (ours, tungstenite's, the header);
//! - provokes each close our server sends, with a raw client (the cases are
//!   in `closes.rs`, which `tests/slides.rs` runs again against a live
//!   server to catch a committed sample that no longer matches);
//! - records an SSE stream and a resume with `Last-Event-ID` on a raw socket;
//! - takes a short-poll exchange from the server's wire view.
//!
//! Anything inconsistent stops the run: the report holds only bytes that
//! crossed a socket. The slides quote its sections (`::include
//! results/wire-sample.md#server-text-frame`).

mod closes;
mod frames;
mod raw;

use frames::{describe, hexdump, Frame};
use futures_util::{SinkExt, StreamExt};
use raw::{Conn, Outcome};
use sha1::{Digest, Sha1};
use skyrocket::client::Target;
use skyrocket::conn::{Counted, Recorder};
use skyrocket::message::Draft;
use skyrocket::provenance::Provenance;
use skyrocket::wire_view::hex;
use skyrocket::{AppState, Config};
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

/// RFC 6455 section 1.3's fixed GUID, appended to every key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Fallible<()> {
    let config = closes::config();
    let max_message = config.ws.max_message;
    let server = Server::start(config).await?;

    let mut report = format!(
        "# Real bytes from a Skyrocket server\n\n{}\n\
         Everything below crossed a TCP socket on 127.0.0.1 between our server \
         and a client. The WebSocket session uses tokio-tungstenite, which picks a \
         random key and masks every frame as a browser does; a browser would add \
         more headers (`Origin`, `User-Agent`, cookies, an offer of compression). \
         HTTP heads are shown with their CR LF line ends as plain line breaks.\n",
        Provenance::here("cargo run --release --example wire_sample").to_markdown()
    );
    let mut sizes = String::from("| what | bytes |\n| --- | ---: |\n");

    websocket_session(&server, &mut report, &mut sizes).await?;
    sse_samples(&server, &mut report, &mut sizes).await?;
    short_poll(&server, &mut report, &mut sizes).await?;
    close_codes(server, max_message, &mut report).await?;
    section(&mut report, "Sizes", &sizes);

    print!("{report}");
    std::fs::create_dir_all("results")?;
    std::fs::write("results/wire-sample.md", &report)?;
    Ok(())
}

/// A server on 127.0.0.1:0, stopped on request.
struct Server {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(config: Config) -> Fallible<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(skyrocket::run(
            listener,
            AppState::in_memory(config),
            async {
                let _ = stopped.await;
            },
        ));
        Ok(Self { addr, stop, handle })
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The room's wire view; the first look arms its capture.
    async fn wire_view(&self, room: &str) -> Fallible<serde_json::Value> {
        let url = format!("{}/rooms/{room}/wire", self.base());
        Ok(skyrocket::client::tls::get(&url).await?.json().await?)
    }
}

async fn within<F: Future>(future: F) -> Fallible<F::Output> {
    tokio::time::timeout(PATIENCE, future)
        .await
        .map_err(|_| "the server did not answer in time".into())
}

fn draft(user: &str, text: &str) -> Draft {
    Draft {
        user: user.into(),
        text: text.into(),
        client_id: None,
    }
}

fn section(report: &mut String, title: &str, body: &str) {
    let _ = write!(report, "\n## {title}\n\n{}\n", body.trim_end());
}

/// An HTTP head or body as lines for a code block (CR LF shown as a break).
fn http_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n")
}

/// Splits an HTTP message at the blank line: (head with it, the rest).
fn split_head(bytes: &[u8]) -> Fallible<(&[u8], &[u8])> {
    let at = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP head")?;
    Ok(bytes.split_at(at + 4))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn same<T: PartialEq + std::fmt::Debug>(what: &str, ours: T, servers: T) -> Fallible<()> {
    if ours == servers {
        Ok(())
    } else {
        Err(format!("{what}: the client saw {ours:?}, the server's wire view {servers:?}").into())
    }
}

/// A real WebSocket session: handshake, a message each way, ping and pong,
/// the close handshake.
async fn websocket_session(
    server: &Server,
    report: &mut String,
    sizes: &mut String,
) -> Fallible<()> {
    server.wire_view("lobby").await?;
    let recorder = Arc::new(Recorder::default());
    let tcp = TcpStream::connect(server.addr).await?;
    let url = format!("ws://{}/rooms/lobby/ws", server.addr);
    let (mut socket, _) =
        tokio_tungstenite::client_async(url, Counted::new(tcp, Arc::clone(&recorder))).await?;
    socket
        .send(Message::text(r#"{"type":"send","user":"ada","text":"hi"}"#))
        .await?;
    let (mut message, mut ack, mut ping) = (false, false, false);
    while !(message && ack && ping) {
        match within(socket.next()).await? {
            Some(Ok(Message::Text(text))) => {
                message |= text.contains(r#""type":"message""#);
                ack |= text.contains(r#""type":"ack""#);
            }
            Some(Ok(Message::Ping(_))) => ping = true,
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("the server closed the WebSocket early".into()),
        }
    }
    socket.flush().await?; // sends the pong tungstenite queued for the ping
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    socket.close(Some(bye)).await?;
    while let Some(Ok(_)) = within(socket.next()).await? {}
    let view = server.wire_view("lobby").await?;

    let (read, written) = (recorder.read(), recorder.written());
    let (response, from_server) = split_head(&read)?;
    let (request, from_client) = split_head(&written)?;
    let from_server = frames::parse_all(from_server);
    let from_client = frames::parse_all(from_client);
    let find = |frames: &[Frame], opcode: u8, text: &str| {
        frames
            .iter()
            .find(|f| f.opcode == opcode && f.text().contains(text))
            .cloned()
            .ok_or_else(|| format!("no frame with opcode {opcode:x} and {text:?} on the wire"))
    };
    let server_text = find(&from_server, 0x1, r#""type":"message""#)?;
    let client_text = find(&from_client, 0x1, r#""type":"send""#)?;
    let ping = find(&from_server, 0x9, "")?;
    let pong = find(&from_client, 0xA, "")?;
    let client_close = find(&from_client, 0x8, "")?;
    let server_close = find(&from_server, 0x8, "")?;

    let tap = &view["handshake"];
    same(
        "handshake request",
        hex(request),
        tap["request_hex"].as_str().unwrap_or("").into(),
    )?;
    same(
        "handshake response",
        hex(response),
        tap["response_hex"].as_str().unwrap_or("").into(),
    )?;
    same(
        "server text frame",
        hex(&server_text.bytes),
        view["ws"]["response_hex"].as_str().unwrap_or("").into(),
    )?;

    section(
        report,
        "Handshake request",
        &format!(
            "```http\n{}```\n\n{} bytes, sent by the client.",
            http_text(request),
            request.len()
        ),
    );
    section(
        report,
        "Handshake response",
        &format!(
            "```http\n{}```\n\n{} bytes, sent by the server. After the empty line, \
             the same TCP connection carries WebSocket frames.",
            http_text(response),
            response.len()
        ),
    );
    section(report, "Accept key", &accept_steps(tap)?);
    section(
        report,
        "Server text frame",
        &format!(
            "The chat message as our server sent it: not masked.\n\n{}\nThe payload:\n\n```json\n{}\n```",
            describe(&server_text),
            server_text.text()
        ),
    );
    section(
        report,
        "Client text frame",
        &format!(
            "The client's `send` command: masked, so the JSON is not visible on the wire.\n\n{}\n\
             Payload after unmasking: `{}`",
            describe(&client_text),
            client_text.text()
        ),
    );
    section(
        report,
        "Ping and pong",
        &format!(
            "Our server's ping (empty payload):\n\n```text\n{}```\n\n\
             The client's pong, masked like every client frame (it echoes the ping's empty payload):\n\n\
             ```text\n{}```",
            hexdump(&ping.bytes),
            hexdump(&pong.bytes)
        ),
    );
    let close_of = |f: &Frame| {
        f.close()
            .map(|(c, r)| format!("code {c}, reason \"{r}\""))
            .unwrap_or_else(|| "no code".into())
    };
    section(
        report,
        "Close handshake",
        &format!(
            "Client to server ({}):\n\n```text\n{}```\n\n\
             Our server's answer ({}):\n\n```text\n{}```\n\n\
             Then the server closes TCP.",
            close_of(&client_close),
            hexdump(&client_close.bytes),
            close_of(&server_close),
            hexdump(&server_close.bytes)
        ),
    );
    let rows = [
        ("handshake request", request.len()),
        ("handshake response", response.len()),
        ("server text frame", server_text.bytes.len()),
        ("server text frame header", server_text.header_len),
        ("client text frame", client_text.bytes.len()),
        ("client text frame header", client_text.header_len),
        ("ping", ping.bytes.len()),
        ("pong", pong.bytes.len()),
    ];
    for (what, n) in rows {
        let _ = writeln!(sizes, "| {what} | {n} |");
    }
    Ok(())
}

/// `Sec-WebSocket-Accept` from the key the server saw, step by step.
fn accept_steps(tap: &serde_json::Value) -> Fallible<String> {
    let request = tap["request_text"]
        .as_str()
        .ok_or("no handshake captured")?;
    let response = tap["response_text"]
        .as_str()
        .ok_or("no handshake captured")?;
    let key = header(request, "sec-websocket-key").ok_or("no key")?;
    let sent = header(response, "sec-websocket-accept").ok_or("no accept")?;
    let joined = format!("{key}{GUID}");
    let digest = Sha1::digest(joined.as_bytes());
    let ours = frames::base64(&digest);
    if ours != sent || derive_accept_key(key.as_bytes()) != sent {
        return Err(format!("accept {sent} is not base64(sha1(key + GUID)) = {ours}").into());
    }
    Ok(format!(
        "| step | value |\n| --- | --- |\n\
         | 1. `Sec-WebSocket-Key` the client sent | `{key}` |\n\
         | 2. append the GUID | `{joined}` |\n\
         | 3. SHA-1 of those {} bytes | `{}` |\n\
         | 4. base64 of the 20-byte digest | `{ours}` |\n\
         | `Sec-WebSocket-Accept` the server sent | `{sent}` |\n",
        joined.len(),
        hex(&digest).replace(' ', ""),
    ))
}

/// An SSE stream on a raw socket, then a resume with `Last-Event-ID`.
async fn sse_samples(server: &Server, report: &mut String, sizes: &mut String) -> Fallible<()> {
    let target = Target::new(server.base(), "news");
    let addr = server.addr;
    let open = format!(
        "GET /rooms/news/sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    );
    let mut stream = Conn::open(addr, &open).await?;
    let head = stream.head().await?;
    let mut body = Vec::new();
    while !String::from_utf8_lossy(&body).contains("event: hello") {
        body.extend(stream.chunk().await?.1);
    }
    let id = target.send(&draft("ada", "first")).await?;
    let (chunk, event) = loop {
        let (chunk, data) = stream.chunk().await?;
        body.extend_from_slice(&data);
        if String::from_utf8_lossy(&data).contains(r#""text":"first""#) {
            break (chunk, data);
        }
    };
    drop(stream);
    target.send(&draft("bob", "second")).await?;

    let resume = format!(
        "GET /rooms/news/sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nLast-Event-ID: {id}\r\n\r\n"
    );
    let mut again = Conn::open(addr, &resume).await?;
    again.head().await?;
    let mut resumed = Vec::new();
    while !String::from_utf8_lossy(&resumed).contains(r#""text":"second""#) {
        resumed.extend(again.chunk().await?.1);
    }

    section(
        report,
        "SSE response head",
        &format!("```http\n{}```", http_text(&head)),
    );
    section(
        report,
        "SSE stream body",
        &format!(
            "The body with the chunked framing taken off: a `retry:` hint and the `hello` \
             event in the first chunk, then each message in a chunk of its own.\n\n```text\n{}```",
            String::from_utf8_lossy(&body)
        ),
    );
    section(
        report,
        "SSE event bytes",
        &sse_event_parts(&chunk, &event, id)?,
    );
    let _ = writeln!(
        sizes,
        "| SSE message event, with chunk framing | {} |",
        chunk.len()
    );
    section(
        report,
        "SSE resume",
        &format!(
            "The client reconnects after message {id} (a browser does this by itself, sending the \
             last `id:` it saw); message {} was posted while it was away.\n\n```http\n{}```\n\n\
             What the server streams back: the hello, then exactly the missed message.\n\n```text\n{}```",
            id + 1,
            http_text(resume.as_bytes()),
            String::from_utf8_lossy(&resumed)
        ),
    );
    Ok(())
}

/// One message event, part by part, adding up to the chunk on the wire.
fn sse_event_parts(chunk: &[u8], event: &[u8], id: u64) -> Fallible<String> {
    let text = String::from_utf8_lossy(event);
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .ok_or("no data line")?;
    let size_line = chunk.len() - event.len() - 2;
    let parts = [
        (
            "chunk size line",
            format!("`{:x}` CR LF", event.len()),
            size_line,
        ),
        (
            "`id:` line",
            format!("`id: {id}` LF"),
            format!("id: {id}\n").len(),
        ),
        ("`data:` field name", "`data: `".to_owned(), 6),
        (
            "the message JSON",
            "(as on every transport)".to_owned(),
            json.len(),
        ),
        ("end of line, blank line", "LF LF".to_owned(), 2),
        ("end of chunk", "CR LF".to_owned(), 2),
    ];
    let total: usize = parts.iter().map(|p| p.2).sum();
    if total != chunk.len() {
        return Err(format!("SSE parts add up to {total}, the chunk is {}", chunk.len()).into());
    }
    let mut table = String::from("| part | bytes on the wire | count |\n| --- | --- | ---: |\n");
    for (what, shown, n) in parts {
        let _ = writeln!(table, "| {what} | {shown} | {n} |");
    }
    let _ = writeln!(table, "| total | | {total} |");
    Ok(format!(
        "The chunk that carried message {id}:\n\n```text\n{}```\n\n{table}",
        hexdump(chunk)
    ))
}

/// A short poll as the server's wire view captured it.
async fn short_poll(server: &Server, report: &mut String, sizes: &mut String) -> Fallible<()> {
    server.wire_view("board").await?;
    let target = Target::new(server.base(), "board");
    target.send(&draft("ada", "hi")).await?;
    let url = format!("{}/rooms/board/poll?since=0", server.base());
    target.http.get(url).send().await?.text().await?;
    let view = server.wire_view("board").await?;
    let sample = &view["poll"];
    let request = sample["request_text"].as_str().ok_or("no poll captured")?;
    let response = sample["response_text"].as_str().ok_or("no poll captured")?;
    let (head, body) = split_head(response.as_bytes())?;
    section(
        report,
        "Short poll request",
        &format!(
            "```http\n{}```\n\n{} bytes, from our Rust client (reqwest).",
            http_text(request.as_bytes()),
            request.len()
        ),
    );
    section(
        report,
        "Short poll response head",
        &format!(
            "```http\n{}```\n\n{} bytes of head before the body.",
            http_text(head),
            head.len()
        ),
    );
    section(
        report,
        "Short poll response body",
        &format!("```json\n{}\n```\n\n{} bytes.", http_text(body), body.len()),
    );
    let rows = [
        ("short poll request", request.len()),
        ("short poll response head", head.len()),
        ("short poll response body", body.len()),
    ];
    for (what, n) in rows {
        let _ = writeln!(sizes, "| {what} | {n} |");
    }
    Ok(())
}

/// What our server closes with, provoked case by case with a raw client;
/// the last case stops the server.
async fn close_codes(server: Server, max_message: usize, report: &mut String) -> Fallible<()> {
    let rows = closes::rows(server.addr, max_message).await?;
    let mut conn = closes::at_shutdown(server.addr).await?;
    let _ = server.stop.send(());
    let (last, ended) = closes::shutdown_row(&mut conn).await?;
    server.handle.await??;
    if !matches!(ended, Outcome::Closed(1001, _)) {
        return Err(format!("shutdown closed with {ended:?}, not 1001").into());
    }
    section(report, closes::TITLE, &closes::section(&rows, &last));
    Ok(())
}
