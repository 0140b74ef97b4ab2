//! Every tunable of the server in one struct, with the defaults the README's
//! tables give. The binary fills it from flags; tests build it directly.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// Messages each room retains for resume.
    pub history: usize,
    /// Largest `text`, in bytes.
    pub max_text_bytes: usize,
    /// Largest POST body, in bytes.
    pub max_body_bytes: usize,
    pub ws: WsConfig,
    pub sse: SseConfig,
    /// The longest `wait` a long poll may ask for.
    pub max_poll_wait: Duration,
    /// How often presence changes are published (coalesced).
    pub presence_interval: Duration,
    /// Share rooms with other instances through this Redis
    /// (`redis://host:port`); `None` keeps them in this process's memory.
    pub redis: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WsConfig {
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    /// A write (one batch of frames) that takes longer closes the socket:
    /// the peer is not reading.
    pub write_timeout: Duration,
    pub read_buffer: usize,
    pub write_buffer: usize,
    pub max_write_buffer: usize,
    pub max_message: usize,
}

#[derive(Debug, Clone)]
pub struct SseConfig {
    pub keepalive: Duration,
    /// The `retry:` hint, how long a browser waits before reconnecting.
    pub retry: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            history: 1000,
            max_text_bytes: 4096,
            max_body_bytes: 64 * 1024,
            ws: WsConfig::default(),
            sse: SseConfig::default(),
            max_poll_wait: Duration::from_secs(30),
            presence_interval: Duration::from_secs(1),
            redis: None,
        }
    }
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(5),
            // tungstenite's defaults (128 KiB read buffer per connection, an
            // unbounded write buffer) suit few large connections; a chat
            // server holds many small ones.
            read_buffer: 4 * 1024,
            write_buffer: 8 * 1024,
            max_write_buffer: 128 * 1024,
            max_message: 64 * 1024,
        }
    }
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            keepalive: Duration::from_secs(15),
            retry: Duration::from_secs(2),
        }
    }
}
