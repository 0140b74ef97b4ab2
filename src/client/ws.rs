//! WebSocket client: connect, read events, send `send` commands.

use super::{parse_event, resume_query, ClientError, Result, Target};
use crate::message::{Draft, Event, Resume};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug)]
pub struct WsClient {
    socket: Socket,
}

impl WsClient {
    pub async fn connect(target: &Target, resume: &Resume) -> Result<Self> {
        let url = target
            .url("ws", &resume_query(resume))
            .replacen("http", "ws", 1);
        // tungstenite's default 128 KiB read buffer per socket would cost
        // loadgen 1.3 GB at 10,000 clients; chat frames are small, and a
        // larger message is still read whole, in 4 KiB steps.
        let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
        let (socket, _response) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
        Ok(Self { socket })
    }

    /// The next JSON event; pings are answered by tungstenite as we read.
    pub async fn next_event(&mut self) -> Result<Event> {
        loop {
            match self.socket.next().await {
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

    pub fn socket(&mut self) -> &mut Socket {
        &mut self.socket
    }
}
