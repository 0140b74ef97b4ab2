//! The demo page as the browser tests see it: open it on a room, wait for
//! panes to connect, read what a pane shows, send from a pane. Selectors
//! are the hooks listed at the top of `static/app.js`.

use super::driver::Browser;
use crate::common::TestServer;
use serde::Deserialize;

pub const TRANSPORTS: [&str; 4] = ["ws", "sse", "longpoll", "poll"];

/// One chat line of a pane: `.messages li[data-id]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Line {
    pub id: u64,
    pub epoch: String,
    pub user: String,
    pub text: String,
    /// Sent from this pane (class `mine`).
    pub mine: bool,
}

/// A browser with the demo page of one test server.
pub struct Demo {
    pub browser: Browser,
    base: String,
}

/// A JavaScript string literal for `text` (JSON is valid JavaScript).
pub fn js(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// The CSS selector of a pane: "single", or a transport in side-by-side.
pub fn pane(key: &str) -> String {
    format!("[data-pane=\"{key}\"]")
}

impl Demo {
    /// A fresh browser for `server`, or `None` when the test is skipped.
    pub async fn launch(server: &TestServer) -> Option<Demo> {
        Some(Demo {
            browser: Browser::launch().await?,
            base: server.base(),
        })
    }

    /// A fresh browser for a `--tls` server with a self-signed certificate:
    /// Chromium trusts it by its key's hash, as the server's start-up
    /// message tells a presenter to (`ServerTls::how_to_trust`).
    pub async fn launch_trusting(server: &TestServer) -> Option<Demo> {
        let tls = server.config().tls.as_ref().expect("a --tls server");
        let pin = format!(
            "--ignore-certificate-errors-spki-list={}",
            tls.identity.spki_hash()
        );
        Some(Demo {
            browser: Browser::launch_with(&[pin]).await?,
            base: server.base(),
        })
    }

    /// A fresh browser for the page at `base` (the network's port, say).
    pub async fn launch_at(base: String) -> Option<Demo> {
        Some(Demo {
            browser: Browser::launch().await?,
            base,
        })
    }

    /// A fresh server, and a browser showing its page on `room` with
    /// `query`, once `panes` are open. `None` when the test is skipped.
    pub async fn start(room: &str, query: &str, panes: &[&str]) -> Option<(TestServer, Demo)> {
        let server = TestServer::start().await;
        let page = Demo::launch(&server).await?;
        page.open(room, query).await;
        page.wait_open(panes).await;
        Some((server, page))
    }

    /// Loads the page on `room`; `query` adds URL parameters ("&mode=side").
    pub async fn open(&self, room: &str, query: &str) {
        self.browser
            .goto(&format!("{}/?room={room}{query}", self.base))
            .await;
    }

    /// Waits until each of `panes` shows the connection state "open".
    pub async fn wait_open(&self, panes: &[&str]) {
        let keys: Vec<String> = panes.iter().map(|p| js(p)).collect();
        self.browser
            .wait_for(
                &format!(
                    "[{}].every((key) => document.querySelector(`[data-pane=\"${{key}}\"] .state`).dataset.state === 'open')",
                    keys.join(",")
                ),
                &format!("panes {panes:?} to be open"),
            )
            .await;
    }

    /// Waits until the single pane uses `transport` and is open.
    pub async fn wait_single_open_on(&self, transport: &str) {
        self.browser
            .wait_for(
                &format!(
                    "document.querySelector('[data-pane=\"single\"]').dataset.transport === {}
                     && document.querySelector('[data-pane=\"single\"] .state').dataset.state === 'open'",
                    js(transport)
                ),
                &format!("the single pane open on {transport}"),
            )
            .await;
    }

    /// The chat lines `pane` shows now, top to bottom.
    pub async fn lines(&self, key: &str) -> Vec<Line> {
        self.browser
            .eval(&format!("{LINES_JS}({})", js(&pane(key))))
            .await
    }

    /// Waits until every one of `panes` shows a line with `text`, and
    /// returns that line from each, in the order of `panes`.
    pub async fn wait_for_text(&self, panes: &[&str], text: &str) -> Vec<Line> {
        let selectors: Vec<String> = panes.iter().map(|p| js(&pane(p))).collect();
        let found = self
            .browser
            .wait_for(
                &format!(
                    "(() => {{ const found = [{}].map((sel) => {LINES_JS}(sel).find((l) => l.text === {}));
                       return found.every(Boolean) && found; }})()",
                    selectors.join(","),
                    js(text)
                ),
                &format!("{text:?} in panes {panes:?}"),
            )
            .await;
        serde_json::from_value(found).expect("lines")
    }

    /// Waits until `pane` shows exactly `count` chat lines and returns them.
    pub async fn wait_for_count(&self, key: &str, count: usize) -> Vec<Line> {
        let found = self
            .browser
            .wait_for(
                &format!(
                    "(() => {{ const lines = {LINES_JS}({}); return lines.length === {count} && lines; }})()",
                    js(&pane(key))
                ),
                &format!("{count} lines in pane {key}"),
            )
            .await;
        serde_json::from_value(found).expect("lines")
    }

    /// Types `text` into a side-by-side pane's own compose box and sends it.
    pub async fn send_from(&self, key: &str, text: &str) {
        let form = format!("{} .compose", pane(key));
        self.browser.type_into(&format!("{form} input"), text).await;
        self.browser.click(&format!("{form} button")).await;
    }

    /// Types `text` into the main compose box (single mode) and sends it.
    pub async fn send_main(&self, text: &str) {
        self.browser.type_into("#text", text).await;
        self.browser.click("#send").await;
    }

    /// The nickname the page sends with.
    pub async fn nick(&self) -> String {
        self.browser
            .eval("document.querySelector('#nick').value")
            .await
    }
}

/// A JavaScript function: pane selector -> its chat lines as `Line`s.
const LINES_JS: &str =
    "((sel) => [...document.querySelectorAll(`${sel} .messages li[data-id]`)].map((li) => ({
    id: Number(li.dataset.id), epoch: li.dataset.epoch, user: li.querySelector('.user').textContent,
    text: li.querySelector('.text').textContent, mine: li.classList.contains('mine') })))";
