//! Every tunable of the server in one struct, with the defaults the README's
//! tables give. The binary fills it from flags; tests build it directly.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// Messages each room retains for resume.
    pub history: usize,
    /// The most messages replayed to one client that resumes; older ones
    /// it is owed become a `gap`.
    pub max_replay: usize,
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
    /// Time a client has to send a whole request head: the handshake of a
    /// WebSocket, and the idle time allowed between keep-alive requests.
    pub header_timeout: Duration,
    pub connections: ConnectionLimits,
    /// Messages one client may send (a WebSocket connection; an address
    /// over HTTP).
    pub send_rate: RateLimit,
    /// Origins allowed besides the server's own and loopback pages
    /// (`scheme://host[:port]`, or `*` for any).
    pub allowed_origins: Vec<String>,
    /// Host names a server bound to loopback answers besides loopback's
    /// own (`localhost`, `127.0.0.1`, `[::1]`): the public name a reverse
    /// proxy on the same host passes on, or `*` for any (see `host.rs`).
    pub allowed_hosts: Vec<String>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate; `None`
    /// serves plain HTTP/1.1.
    pub tls: Option<crate::tls::ServerTls>,
    pub rooms: RoomLimits,
}

/// How many rooms the server keeps, and for how long.
#[derive(Debug, Clone)]
pub struct RoomLimits {
    /// Rooms alive at once; a request that would create another gets 503.
    pub max: usize,
    /// A room with no client and no request for this long is removed,
    /// history included.
    pub idle_after: Duration,
    /// New rooms one address may create per minute (a burst of as many,
    /// refilled evenly over the minute); 0 turns it off. A per-address
    /// limit: loopback is exempt unless `limit_loopback`.
    pub creations_per_minute: u32,
}

impl Default for RoomLimits {
    fn default() -> Self {
        Self {
            // Empty rooms cost about a kilobyte each (tests/rooms.rs), so
            // the cap is about the history they may hold: see the README.
            max: 10_000,
            idle_after: Duration::from_secs(600),
            creations_per_minute: 60,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WsConfig {
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    /// A write (one batch of frames) that takes longer closes the socket:
    /// the peer is not reading, and its send queue is full.
    pub write_timeout: Duration,
    pub read_buffer: usize,
    pub write_buffer: usize,
    /// The most bytes of frames held for one socket (its send queue in
    /// user space); must exceed `max_message` plus a frame header.
    pub max_write_buffer: usize,
    /// The largest message and the largest frame a peer may send.
    pub max_message: usize,
    /// Frames of any kind (messages, pings, pongs) one peer may send; a
    /// peer over it is closed with 1008.
    pub inbound_rate: RateLimit,
}

#[derive(Debug, Clone)]
pub struct SseConfig {
    pub keepalive: Duration,
    /// The `retry:` hint, how long a browser waits before reconnecting.
    pub retry: Duration,
}

/// How many connections the server holds.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// All connections; beyond it a new one is answered 503 and closed.
    pub max: usize,
    /// Connections from one address; beyond it, 429 and closed.
    pub max_per_ip: usize,
    /// The kernel's send buffer for each accepted socket, in bytes (Linux
    /// doubles it for its own bookkeeping); 0 leaves it to the kernel,
    /// which grows it up to `tcp_wmem` (4 MiB here) for a peer that does
    /// not read. Part of each client's send queue, so it is bounded.
    pub send_buffer: usize,
    /// A write to any socket that makes no progress for this long fails
    /// and closes the connection: an SSE stream or a response whose
    /// reader stopped. Longer than `ws.write_timeout`, which acts first on
    /// a WebSocket with its own close frame.
    pub write_stall: Duration,
    /// hyper's buffer per HTTP connection, in bytes: the largest request
    /// head, and the most response bytes (an SSE stream's events) queued
    /// in user space for a peer that is not reading. hyper's default is
    /// about 400 KiB; at least 8 KiB.
    pub http_buffer: usize,
    /// Apply the per-address limits (`max_per_ip`, the send and frame
    /// rates) to loopback peers too. Off by default: on loopback are the
    /// presenter, `loadgen`, the benches and the conformance suite, which
    /// push rates on purpose. Turn it on behind a reverse proxy on the same
    /// host, where every client arrives from loopback.
    pub limit_loopback: bool,
    /// HTTP/2: streams one connection may have open at once (its
    /// SETTINGS_MAX_CONCURRENT_STREAMS); a stream beyond is refused.
    pub h2_max_streams: u32,
    /// HTTP/2: streams a client may reset (RST_STREAM); a client over the
    /// rate and burst ("rapid reset") is disconnected.
    pub h2_reset_rate: RateLimit,
    /// HTTP/2: a connection with no stream open for this long is closed
    /// (GOAWAY). HTTP/1.1's idle keep-alive connections are bounded by the
    /// header timeout; an HTTP/2 connection has no request head to wait
    /// for, so without this a client could hold a connection slot forever
    /// with nothing in it.
    pub h2_idle_timeout: Duration,
}

/// A token bucket: `per_second` sustained, `burst` at once; 0 turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    pub const OFF: Self = Self {
        per_second: 0,
        burst: 0,
    };

    pub fn is_off(&self) -> bool {
        self.per_second == 0
    }
}

/// A heartbeat interval that never comes round (`--no-heartbeats`): a
/// year, far enough never to fire, near enough that `Instant + NEVER`
/// cannot overflow.
pub const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);

impl Default for Config {
    fn default() -> Self {
        Self {
            history: 1000,
            max_replay: 1000,
            max_text_bytes: 4096,
            max_body_bytes: 64 * 1024,
            ws: WsConfig::default(),
            sse: SseConfig::default(),
            max_poll_wait: Duration::from_secs(30),
            presence_interval: Duration::from_secs(1),
            redis: None,
            header_timeout: Duration::from_secs(10),
            connections: ConnectionLimits::default(),
            send_rate: RateLimit {
                per_second: 10,
                burst: 20,
            },
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            tls: None,
            rooms: RoomLimits::default(),
        }
    }
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(1),
            // tungstenite's defaults (128 KiB read buffer per connection, an
            // unbounded write buffer) suit few large connections; a chat
            // server holds many small ones.
            read_buffer: 4 * 1024,
            write_buffer: 8 * 1024,
            max_write_buffer: 128 * 1024,
            max_message: 64 * 1024,
            inbound_rate: RateLimit {
                per_second: 50,
                burst: 100,
            },
        }
    }
}

impl WsConfig {
    /// `max_write_buffer`, raised if need be so that one frame of the
    /// largest message fits and it exceeds `write_buffer` (tungstenite
    /// refuses a configuration where it does not).
    pub fn effective_max_write_buffer(&self) -> usize {
        // A frame header is at most 14 bytes.
        self.max_write_buffer
            .max(self.max_message + 14)
            .max(self.write_buffer + 1)
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

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max: default_max_connections(open_file_limit()),
            max_per_ip: 256,
            send_buffer: 64 * 1024,
            write_stall: Duration::from_secs(10),
            http_buffer: 64 * 1024,
            limit_loopback: false,
            // Browsers open a handful of streams per page; 100 is what
            // RFC 9113 recommends as the least to allow.
            h2_max_streams: 100,
            // A page that navigates away cancels its streams, a few at a
            // time; a rapid-reset attack cancels thousands a second.
            h2_reset_rate: RateLimit {
                per_second: 100,
                burst: 200,
            },
            // A browser keeps an idle connection for a few minutes to
            // reuse it; a minute is enough for a page between polls.
            h2_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The connection limit for a process allowed `fd_limit` open files: all
/// but a reserve, which covers the listener, the runtime's own descriptors,
/// logs, the refusals being answered (at most [`crate::admission`]'s
/// `MAX_REFUSING` at a time) and backbone connections.
pub fn default_max_connections(fd_limit: u64) -> usize {
    // An unlimited process still needs a number; a million is beyond
    // what one process here can serve.
    let fd_limit = fd_limit.min(1 << 20);
    let reserve = (fd_limit / 10).clamp(32, 1024);
    fd_limit.saturating_sub(reserve).max(16) as usize
}

/// This process's limit on open files (the soft limit), or a conservative
/// guess where it cannot be read.
pub fn open_file_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes only into the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            return limit.rlim_cur;
        }
    }
    1024
}

/// Raises this process's soft open-file limit to its hard limit (what Go
/// does at startup), so the connection limit is not an accident of the
/// shell's `ulimit -n`. Returns the limit in force afterwards.
pub fn raise_open_file_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit read and write only this struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
                && limit.rlim_cur < limit.rlim_max
            {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                libc::setrlimit(libc::RLIMIT_NOFILE, &raised);
            }
        }
    }
    open_file_limit()
}
