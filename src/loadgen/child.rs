//! The server under test, started as a child process on a free loopback
//! port and stopped with SIGTERM, the way an operator would.

use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How to start a server: a program and its arguments. The default is this
/// very executable with `serve --addr 127.0.0.1:0`, so loadgen measures
/// the server it was built with (see `skyrocket::cli`).
#[derive(Debug, Clone)]
pub struct ServerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl ServerCommand {
    /// `loadgen serve --addr 127.0.0.1:0 EXTRA...`.
    pub fn this_executable(extra: &[String]) -> io::Result<Self> {
        let mut args = vec!["serve".to_owned(), "--addr".into(), "127.0.0.1:0".into()];
        args.extend_from_slice(extra);
        Ok(Self {
            program: std::env::current_exe()?,
            args,
        })
    }

    /// `loadgen SUBCOMMAND --addr 127.0.0.1:0`: a server to measure ours
    /// against (`floor`, `axum-shape`), from this very executable.
    pub fn baseline(subcommand: &str) -> io::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?,
            args: vec![subcommand.to_owned(), "--addr".into(), "127.0.0.1:0".into()],
        })
    }

    /// Another server binary (an older build, say), given the same flags.
    pub fn binary(program: PathBuf, extra: &[String]) -> Self {
        let mut args = vec!["--addr".to_owned(), "127.0.0.1:0".into()];
        args.extend_from_slice(extra);
        Self { program, args }
    }
}

/// How each server loadgen starts names its address on stdout: the
/// server's first URL line, the floor's, the axum shape's.
const ADDRESS_LINES: [&str; 3] = ["demo page:", "floor:", "axum-shape:"];

/// A running child server.
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:PORT`, as the server printed it.
    pub base: String,
}

impl ChildServer {
    /// Starts the server and waits until it has printed its address, which
    /// it does after binding, so it accepts connections from then on.
    pub async fn start(command: &ServerCommand) -> io::Result<Self> {
        let mut child = Command::new(&command.program)
            .args(&command.args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            // Its own process group, so the Ctrl-C meant for loadgen does
            // not stop the server before loadgen has read its figures.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start {}: {e}", command.program.display()),
                )
            })?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the server exited at once"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout pipe"))?;
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = lines.next_line().await? {
                let url = ADDRESS_LINES.iter().find_map(|m| line.split(m).nth(1));
                if let Some(url) = url {
                    return Ok(url.trim().trim_end_matches('/').to_owned());
                }
            }
            Err(io::Error::other(
                "the server exited before printing its address",
            ))
        })
        .await
        .map_err(|_| io::Error::other("the server did not print its address within 10 s"))??;
        // Keep reading so the child never blocks on a full stdout pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, pid, base })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGTERM, then up to 5 s for a graceful exit, then SIGKILL.
    pub async fn stop(mut self) -> io::Result<()> {
        // SAFETY: kill(2) with a pid we spawned and have not yet reaped, so
        // it cannot name another process.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(status) => status.map(drop),
            Err(_) => self.child.kill().await,
        }
    }
}
