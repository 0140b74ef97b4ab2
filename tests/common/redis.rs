//! A real `redis-server` for a test: on a free port, in a directory of its
//! own, killed and removed when dropped, and killable and restartable on the
//! same port and data directory mid-test.
//!
//! When `redis-server` is not installed, [`RedisServer::start`] prints a
//! `SKIPPED:` line and returns `None`, so the test passes locally; under CI
//! (`CI` set) a missing server is a failure instead.

use super::{within, PATIENCE};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Whether Redis keeps its data across a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing saved (`--save '' --appendonly no`): a restart starts empty.
    None,
    /// An append-only file fsynced on every write (`appendfsync always`):
    /// every acknowledged write survives a kill.
    EveryWrite,
}

pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    persistence: Persistence,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server for the test named `test`, or `None` (after printing
    /// why) when `redis-server` is not installed outside CI.
    pub async fn start(test: &str, persistence: Persistence) -> Option<Self> {
        if !installed() {
            let why = "redis-server is not installed (apt-get install redis-server)";
            if std::env::var_os("CI").is_some() {
                panic!("{why}; CI must have it (.ci/run installs it)");
            }
            println!("SKIPPED: {test}: {why}");
            return None;
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "skyrocket-redis-{}-{port}-{test}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the redis data directory");
        let mut server = Self {
            port,
            dir,
            persistence,
            child: None,
        };
        server.launch().await;
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown save, no goodbye to clients, as in a crash.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = within(PATIENCE, child.wait()).await;
        }
    }

    /// Starts it again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.launch().await;
    }

    async fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log", "--save", ""]);
        match self.persistence {
            Persistence::None => command.args(["--appendonly", "no"]),
            Persistence::EveryWrite => {
                command.args(["--appendonly", "yes", "--appendfsync", "always"])
            }
        };
        let child = command
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        self.wait_until_it_answers().await;
    }

    /// Waits for `PING` to be answered: the event that says it is ready.
    async fn wait_until_it_answers(&mut self) {
        let port = self.port;
        let log = self.dir.join("redis.log");
        let child = self.child.as_mut().expect("just started");
        let ready = async {
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!("redis-server exited ({status}) before answering:\n{log}");
                }
                if ping(port).await {
                    return;
                }
                // The pause between attempts, not a guess that it is ready.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        within(PATIENCE, ready).await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn installed() -> bool {
    std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// A port nothing listens on now (the OS picks it; the listener is closed
/// again at once, so redis-server can bind it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn ping(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut reply = [0u8; 16];
    matches!(stream.read(&mut reply).await, Ok(n) if reply[..n].starts_with(b"+PONG"))
}
