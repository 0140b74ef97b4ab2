//! A headless Chromium for one test, driven over WebDriver: Debian's
//! `chromedriver` starts `chromium`, and fantoccini speaks the W3C protocol
//! to it. Also `wait_for`, which waits in the page for a condition to hold.
//!
//! Why WebDriver rather than the DevTools protocol (chromiumoxide): the
//! DevTools bindings are generated from one Chromium's protocol, and newer
//! Chromiums have broken them (chromiumoxide issues #229, #243), while
//! Debian moves `chromium` on with every security release. WebDriver is a
//! standard, and `chromium-driver` is built from the same source package
//! as `chromium`, so the two always match.
//!
//! Each test gets its own chromedriver and browser (about half a second to
//! start), so tests share nothing and can run in parallel. chromedriver
//! runs in a process group of its own, and dropping a [`Browser`] kills
//! that group: a failed test leaves no Chromium behind.

use crate::common::PATIENCE;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The viewport every test uses, and the screenshot's size.
pub const VIEWPORT: (u32, u32) = (1280, 720);

/// The flags this machine needs: no sandbox (we run as root in a VM), no
/// GPU, and nothing that reaches out to the network by itself (its closed
/// network refuses those connections over and over, which slows start-up).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The longest one in-page wait runs before reporting back; well under
/// WebDriver's default 30 s script timeout. `wait_for` loops on it.
const IN_PAGE_WAIT: Duration = Duration::from_secs(5);

pub struct Browser {
    client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium. `None` when they
    /// are not installed (after printing SKIPPED), unless `CI` is set:
    /// there a missing browser is a failure, not a skip.
    pub async fn launch() -> Option<Browser> {
        Self::launch_with(&[]).await
    }

    /// The same, with more Chromium flags (`extra`).
    pub async fn launch_with(extra: &[String]) -> Option<Browser> {
        let chromium = find_program("CHROMIUM", &["chromium", "chromium-browser"]);
        let chromedriver = find_program("CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(chromedriver)) = (chromium.clone(), chromedriver) else {
            let missing = if chromium.is_none() {
                "chromium"
            } else {
                "chromedriver"
            };
            let why = format!(
                "{missing} not found (install the Debian packages chromium and \
                 chromium-driver, or set CHROMIUM and CHROMEDRIVER to their paths)"
            );
            if std::env::var_os("CI").is_some() {
                panic!("{why}; CI is set, so this is a failure");
            }
            // Straight to stderr: libtest would capture println! and hide it.
            let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
            return None;
        };
        let profile = fresh_profile_dir();
        let log = profile.join("chromedriver.log");
        let (driver, port) = start_chromedriver(&chromedriver, &log).await;

        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--window-size={},{}", VIEWPORT.0, VIEWPORT.1));
        // Chromium honours --ignore-certificate-errors-spki-list only with
        // a --user-data-dir of its own, which every browser here has.
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(extra.iter().cloned());
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": args }),
        );
        let client = crate::common::within(
            PATIENCE,
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .unwrap_or_else(|e| panic!("opening a WebDriver session: {e}"));
        let browser = Browser {
            client,
            driver,
            profile,
        };
        browser.fit_viewport().await;
        Some(browser)
    }

    /// Sizes the window so that the page itself gets `VIEWPORT`: even
    /// headless, `--window-size` counts the window's frame and toolbar.
    async fn fit_viewport(&self) {
        let (frame_w, frame_h): (u32, u32) = self
            .eval(
                "[window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]",
            )
            .await;
        self.client
            .set_window_size(VIEWPORT.0 + frame_w, VIEWPORT.1 + frame_h)
            .await
            .unwrap_or_else(|e| panic!("sizing the window: {e}"));
        let inner: (u32, u32) = self.eval("[window.innerWidth, window.innerHeight]").await;
        assert_eq!(inner, VIEWPORT, "the page's viewport");
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Evaluates a JavaScript expression in the page.
    pub async fn eval<T: DeserializeOwned>(&self, expression: &str) -> T {
        let value = self
            .client
            .execute(&format!("return ({expression});"), vec![])
            .await
            .unwrap_or_else(|e| panic!("evaluating {expression}: {e}"));
        serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{expression} gave {value}: {e}"))
    }

    /// Waits until the JavaScript expression `condition` is truthy, and
    /// returns its value. The waiting happens in the page: it checks again
    /// on every DOM change (a MutationObserver), and every 100 ms for state
    /// outside the DOM, so it answers as soon as the page gets there.
    /// Fails the test after `PATIENCE`, saying `what` it waited for.
    pub async fn wait_for(&self, condition: &str, what: &str) -> Value {
        let script = format!(
            r#"
            const done = arguments[arguments.length - 1];
            const check = () => ({condition});
            const first = check();
            if (first) return done(first);
            let finished = false, lastError = null;
            const finish = (value) => {{
              if (finished) return;
              finished = true;
              observer.disconnect(); clearInterval(timer); clearTimeout(cap);
              done(value);
            }};
            const recheck = () => {{
              try {{ const value = check(); if (value) finish(value); }}
              catch (e) {{ lastError = String(e); }}
            }};
            const observer = new MutationObserver(recheck);
            observer.observe(document, {{ subtree: true, childList: true, attributes: true, characterData: true }});
            const timer = setInterval(recheck, 100);
            const cap = setTimeout(() => finish({{ timedOut: true, lastError }}), {cap});
            "#,
            cap = IN_PAGE_WAIT.as_millis()
        );
        let started = Instant::now();
        loop {
            let value = self
                .client
                .execute_async(&script, vec![])
                .await
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
            if value.get("timedOut").is_none() {
                return value;
            }
            if started.elapsed() >= PATIENCE {
                panic!(
                    "timed out after {PATIENCE:?} waiting for {what}\n  condition: {condition}\n  \
                     last error: {}\n  page: {}",
                    value["lastError"],
                    self.snapshot().await
                );
            }
        }
    }

    /// What the demo page shows, in short, for failure messages.
    async fn snapshot(&self) -> Value {
        self.client
            .execute(
                "return [...document.querySelectorAll('[data-pane]')].filter((p) => !p.hidden).map((p) => ({
                   pane: p.dataset.pane, transport: p.dataset.transport,
                   state: p.querySelector('.state')?.dataset.state,
                   lines: [...p.querySelectorAll('.messages li')].map((li) => li.dataset.id
                     ? `#${li.dataset.id}@${li.dataset.epoch} ${li.querySelector('.text').textContent}`
                     : `note: ${li.textContent}`),
                 }));",
                vec![],
            )
            .await
            .unwrap_or_else(|e| json!(format!("(no snapshot: {e})")))
    }

    pub async fn click(&self, selector: &str) {
        self.find(selector)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
    }

    /// Empties the input at `selector` and types `text`, as keystrokes.
    pub async fn type_into(&self, selector: &str, text: &str) {
        let input = self.find(selector).await;
        input
            .clear()
            .await
            .unwrap_or_else(|e| panic!("emptying {selector}: {e}"));
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {selector}: {e}"));
    }

    /// Chooses `value` in the `<select>` at `selector`, as a user would.
    pub async fn choose(&self, selector: &str, value: &str) {
        self.find(selector)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("choosing {value} in {selector}: {e}"));
    }

    async fn find(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("finding {selector}: {e}"))
    }

    /// Saves a PNG of the viewport to `path` and returns its size in pixels.
    pub async fn screenshot(&self, path: &Path) -> (u32, u32) {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("taking a screenshot: {e}"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        png_size(&png)
    }

    /// Ends the session (chromedriver quits Chromium), then whatever is
    /// left of the process group, and reaps chromedriver.
    pub async fn close(mut self) {
        let client = self.client.clone();
        crate::common::within(PATIENCE, client.close())
            .await
            .unwrap_or_else(|e| panic!("closing the browser: {e}"));
        self.kill_group();
        let _ = self.driver.wait().await;
    }

    /// Kills chromedriver's process group, which Chromium and its helpers
    /// joined: killing chromedriver alone would leave Chromium running.
    fn kill_group(&self) {
        if let Some(pid) = self.driver.id() {
            // SAFETY: killpg only sends a signal. The group id is the pid of
            // the chromedriver we started as a group leader and have not
            // reaped yet (`id()` is None once reaped), so no other process
            // or group can have it.
            unsafe {
                libc::killpg(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Browser {
    /// After `close` there is nothing left to kill; after a failed test
    /// this is what stops chromedriver and Chromium.
    fn drop(&mut self) {
        self.kill_group();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Starts chromedriver on a port it picks, and returns it with that port.
///
/// With `--port=0` chromedriver takes a free IPv4 port, then binds the same
/// number on IPv6 (::1), and exits ("IPv6 port not available") when that
/// one is in use: the kernel picked the port for IPv4 only. On a busy
/// machine that happens now and then, so it is started again (a new port)
/// a few times. chromedriver runs as the leader of a new process group,
/// which the Chromium it starts joins (see `Drop`).
async fn start_chromedriver(program: &Path, log: &Path) -> (Child, u16) {
    const ATTEMPTS: usize = 5;
    let mut failures = Vec::new();
    for _ in 0..ATTEMPTS {
        let mut driver = Command::new(program)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        match crate::common::within(PATIENCE, driver_port(&mut driver, log)).await {
            Ok(port) => return (driver, port),
            Err(why) if why.contains("port not available") => failures.push(why),
            Err(why) => panic!("{why}"),
        }
    }
    panic!("chromedriver found no free port in {ATTEMPTS} tries: {failures:#?}");
}

/// Reads chromedriver's "started successfully on port N." line, then keeps
/// draining its output so it never blocks on a full pipe. If it exits
/// first: what it printed and logged.
async fn driver_port(driver: &mut Child, log: &Path) -> Result<u16, String> {
    let stdout = driver.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(rest) = line.split("started successfully on port ").nth(1) {
            let port = rest
                .trim()
                .trim_end_matches('.')
                .parse()
                .unwrap_or_else(|e| panic!("chromedriver's port in {line:?}: {e}"));
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(port);
        }
        printed.push(line);
    }
    Err(format!(
        "chromedriver stopped ({:?}) before saying its port; it printed {printed:?} and logged:\n{}",
        driver.wait().await,
        std::fs::read_to_string(log).unwrap_or_default()
    ))
}

/// `$VAR` if set, else the first of `names` found on `PATH`.
fn find_program(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A new, empty Chromium profile directory for this browser.
fn fresh_profile_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "skyrocket-browser-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Width and height from a PNG's IHDR chunk (bytes 16..24, big-endian).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG"
    );
    let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}
