//! The demo page in a real browser (headless Chromium over WebDriver), used
//! the way the audience sees it used: choose a transport, type, click Send,
//! go side by side, switch transports mid-conversation, restart the server,
//! open the wire panel. Each test has its own server, browser and room.
//!
//! Without Chromium installed these tests print `SKIPPED` and pass, unless
//! `CI` is set. Every wait is on the page reaching a state (see
//! `Browser::wait_for`), never a sleep.

mod common;
mod browser {
    pub mod demo;
    pub mod driver;
}

use browser::demo::{js, pane, Demo, Line, TRANSPORTS};
use browser::driver::VIEWPORT;
use common::*;
use skyrocket::message::Transport;
use std::path::Path;

#[tokio::test]
async fn each_transport_on_its_own_shows_a_sent_message() {
    let server = TestServer::start().await;
    let Some(page) = Demo::launch(&server).await else {
        return;
    };
    for transport in TRANSPORTS {
        let room = format!("alone-{transport}");
        page.open(&room, "").await;
        page.browser.choose("#transport", transport).await;
        page.wait_single_open_on(transport).await;

        let text = format!("hello over {transport}");
        page.send_main(&text).await;
        let shown = page.wait_for_text(&["single"], &text).await;
        let nick = page.nick().await;
        assert_eq!(
            shown[0],
            Line {
                id: 1,
                epoch: shown[0].epoch.clone(),
                user: nick,
                text,
                mine: true
            },
            "{transport}"
        );
        assert_eq!(page.lines("single").await.len(), 1, "{transport}");
        page.browser
            .wait_for(
                "document.querySelector('#text').value === ''",
                "the compose box to empty once the server took the message",
            )
            .await;

        // The line came over the chosen transport: the server delivered it
        // in this room on that transport, and on no other.
        let stats = server.stats().await;
        for t in TRANSPORTS {
            let want = u64::from(t == transport);
            assert_eq!(
                stats["rooms"][&room]["delivered"][t], want,
                "{t} deliveries in room {room}"
            );
        }
    }
    page.browser.close().await;
}

#[tokio::test]
async fn side_by_side_every_pane_shows_each_message_with_the_same_id() {
    let room = "side";
    let Some((server, page)) = Demo::start(room, "&mode=side", &TRANSPORTS).await else {
        return;
    };
    page.browser.type_into("#nick", "ada").await;
    // A Rust client in the room, to learn each id from the server itself.
    let mut watcher = subscribe(Transport::Ws, &server.target(room), from_start()).await;

    // One message from each pane, each once the server has taken the one
    // before, so ids follow the panes' order; the panes catch up meanwhile.
    let mut assigned = Vec::new();
    for (n, from) in TRANSPORTS.into_iter().enumerate() {
        let text = format!("sent from the {from} pane");
        page.send_from(from, &text).await;
        let message = next_message(&mut watcher).await;
        assert_eq!((message.id, &*message.text), (n as u64 + 1, &*text));
        assigned.push((from, message));
    }
    for (from, message) in &assigned {
        let shown = page.wait_for_text(&TRANSPORTS, &message.text).await;
        for (line, key) in shown.iter().zip(TRANSPORTS) {
            assert_eq!(line.id, message.id, "id in the {key} pane");
            assert_eq!(line.epoch, shown[0].epoch, "epoch in the {key} pane");
            assert_eq!(line.mine, key == *from, "'mine' in the {key} pane");
        }
    }
    for key in TRANSPORTS {
        let ids: Vec<u64> = page.lines(key).await.iter().map(|l| l.id).collect();
        assert_eq!(ids, [1, 2, 3, 4], "the {key} pane shows each message once");
    }

    // The screenshot for the README and the slides: wait for the figures
    // that fill in from /stats, and for the totals bars to finish growing
    // (a CSS transition), so the picture shows them.
    page.browser
        .wait_for(
            &format!(
                "{TRANSPORTS_JS}.every((t) => /^↓\\d+ B$/.test(document.querySelector(`[data-pane=\"${{t}}\"] .wirecost [data-k=\"down\"]`).textContent)
                 && document.querySelector(`#totals [data-transport=\"${{t}}\"] .bpm`).textContent !== '–')
                 && document.getAnimations().length === 0"
            ),
            "cost figures in every pane and in the totals strip, at rest",
        )
        .await;
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("side-by-side.png");
    let size = page.browser.screenshot(&path).await;
    assert_eq!(size, VIEWPORT, "screenshot size");
    println!("screenshot: {}", path.display());
    page.browser.close().await;
}

/// Sends `text` to the room as another user would, and notes it in `sent`.
async fn post(target: &skyrocket::client::Target, sent: &mut Vec<String>, text: String) {
    target.send(&draft("bob", &text)).await.unwrap();
    sent.push(text);
}

/// The four transports as a JavaScript array literal.
const TRANSPORTS_JS: &str = "['ws', 'sse', 'longpoll', 'poll']";

#[tokio::test]
async fn switching_transport_mid_conversation_loses_and_repeats_nothing() {
    let room = "switch";
    let Some((server, page)) = Demo::start(room, "", &["single"]).await else {
        return;
    };
    let target = server.target(room);

    let mut sent = Vec::new();
    post(&target, &mut sent, "on ws, before any switch".into()).await;
    // From ws through every other transport and back to ws. Two messages
    // go out right after each switch, while the old connection is closed
    // and the new one is still being made: the pane must fetch them when
    // it resumes. One more goes out once it is open, to be delivered live.
    for transport in ["sse", "longpoll", "poll", "ws"] {
        page.browser.choose("#transport", transport).await;
        for n in 1..=2 {
            let text = format!("while switching to {transport} ({n})");
            post(&target, &mut sent, text).await;
        }
        page.wait_single_open_on(transport).await;
        post(&target, &mut sent, format!("live on {transport}")).await;
    }

    // The last one was sent live, after all the others: once it shows,
    // everything before it has had its chance to show too.
    page.wait_for_text(&["single"], "live on ws").await;
    let lines = page.lines("single").await;
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, sent, "every message once, in order");
    let ids: Vec<u64> = lines.iter().map(|l| l.id).collect();
    let expected: Vec<u64> = (1..=sent.len() as u64).collect();
    assert_eq!(ids, expected);
    assert!(lines.iter().all(|l| l.epoch == lines[0].epoch));
    let switches: u64 = page
        .browser
        .eval(&format!(
            "document.querySelectorAll('{} .messages li.note.switch').length",
            pane("single")
        ))
        .await;
    assert_eq!(switches, 4, "one note per switch");
    page.browser.close().await;
}

#[tokio::test]
async fn after_a_server_restart_every_pane_reconnects_and_catches_up() {
    let room = "restart";
    let Some((mut server, page)) = Demo::start(room, "&mode=side", &TRANSPORTS).await else {
        return;
    };
    for n in 1..=3 {
        server
            .target(room)
            .send(&draft("bob", &format!("old life {n}")))
            .await
            .unwrap();
    }
    let old = page.wait_for_text(&TRANSPORTS, "old life 3").await;

    // Same port, fresh state: the room starts a new life with ids from 1.
    // Messages go out at once, while the panes are still reconnecting.
    server.restart().await;
    for n in 1..=3 {
        server
            .target(room)
            .send(&draft("bob", &format!("new life {n}")))
            .await
            .unwrap();
    }
    page.wait_for_text(&TRANSPORTS, "new life 3").await;
    page.wait_open(&TRANSPORTS).await;
    // And they are live again: one more, sent over the new WebSocket.
    page.send_from("ws", "after the restart").await;
    let live = page.wait_for_text(&TRANSPORTS, "after the restart").await;

    for (key, (old, live)) in TRANSPORTS.into_iter().zip(old.iter().zip(&live)) {
        assert_ne!(old.epoch, live.epoch, "a new epoch in the {key} pane");
        let got: Vec<(String, u64, String)> = page
            .lines(key)
            .await
            .into_iter()
            .map(|l| (l.epoch, l.id, l.text))
            .collect();
        let mut want = Vec::new();
        for n in 1..=3 {
            want.push((old.epoch.clone(), n, format!("old life {n}")));
        }
        for n in 1..=3 {
            want.push((live.epoch.clone(), n, format!("new life {n}")));
        }
        want.push((live.epoch.clone(), 4, "after the restart".into()));
        assert_eq!(got, want, "the {key} pane: nothing lost or doubled");
        let resets: u64 = page
            .browser
            .eval(&format!(
                "document.querySelectorAll('{} .messages li.note.reset').length",
                pane(key)
            ))
            .await;
        assert_eq!(resets, 1, "one reset note in the {key} pane");
    }
    page.browser.close().await;
}

#[tokio::test]
async fn a_message_that_looks_like_html_is_shown_as_text_and_runs_nothing() {
    let room = "xss";
    let Some((server, page)) = Demo::start(room, "", &["single"]).await else {
        return;
    };
    // Anything the payloads could run ends up calling alert(): count calls.
    page.browser
        .eval::<serde_json::Value>(
            "(() => { window.ran = []; window.alert = (what) => { window.ran.push(String(what)); }; })()",
        )
        .await;
    // The wire panel shows the same message again, as bytes and text.
    page.browser.click("#wire-toggle").await;
    page.browser
        .wait_for(
            "document.querySelector('#wire-status').dataset.state === 'armed'",
            "the wire panel armed",
        )
        .await;

    let typed = "<img src=x onerror=alert(1)>";
    page.send_main(typed).await;
    let lines = page.wait_for_count("single", 1).await;
    assert_eq!(lines[0].text, typed, "shown as the characters typed");
    let (user, text) = ("<img src=y onerror=alert(2)>", "<script>alert(3)</script>");
    server.target(room).send(&draft(user, text)).await.unwrap();
    let lines = page.wait_for_count("single", 2).await;
    assert_eq!((&*lines[1].user, &*lines[1].text), (user, text));
    page.browser
        .wait_for(
            &format!(
                "document.querySelector('#wire-body .payload')?.textContent.includes({})",
                js(&serde_json::to_string(text).unwrap())
            ),
            "the last WebSocket frame in the wire panel",
        )
        .await;

    let elements: u64 = page
        .browser
        .eval("document.querySelectorAll('#panes img, #panes script, #wire img, #wire script').length + document.images.length")
        .await;
    assert_eq!(elements, 0, "no element was made from a message");
    // A control: an image made on purpose does run its handler, and the
    // hook sees it. It loads after the messages' lines were made, so had
    // they made an image, its handler would have run by now too.
    page.browser
        .eval::<serde_json::Value>(
            "document.body.insertAdjacentHTML('beforeend', '<img id=control src=control-x onerror=alert(\"control\")>')",
        )
        .await;
    let ran = page
        .browser
        .wait_for(
            "window.ran.length > 0 && window.ran",
            "the control's handler",
        )
        .await;
    assert_eq!(ran, serde_json::json!(["control"]), "only the control ran");
    // And on the network: the browser fetched the control's image, and
    // never the payloads' (an <img src=x> would have asked for /x).
    let fetched: Vec<String> = page
        .browser
        .eval("performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)")
        .await;
    assert!(fetched.iter().any(|p| p == "/control-x"), "{fetched:?}");
    assert!(
        !fetched.iter().any(|p| p == "/x" || p == "/y"),
        "{fetched:?}"
    );
    page.browser.close().await;
}

#[tokio::test]
async fn the_wire_panel_and_the_cost_figures_fill_in() {
    let room = "wire";
    let Some((_server, page)) = Demo::start(room, "&mode=side&wire=open", &TRANSPORTS).await else {
        return;
    };
    page.browser
        .wait_for(
            "document.body.dataset.wire === 'open' && !document.querySelector('#wire').hidden
             && document.querySelector('#wire-status').dataset.state === 'armed'",
            "the wire panel open and armed",
        )
        .await;
    page.browser.click("#wire-send").await;
    for key in TRANSPORTS {
        let lines = page.wait_for_count(key, 1).await;
        assert!(lines[0].text.starts_with("wire test"), "{key}: {lines:?}");
    }

    // The WebSocket view: the frame header decoded, and the payload.
    let frame = show_wire_view(&page, "ws").await;
    let field = |name: &str| {
        frame["fields"][name]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        [field("fin"), field("opcode"), field("mask")],
        ["1", "0x1", "0"],
        "a final, unmasked text frame"
    );
    let payload = frame["payload"].as_str().expect("payload text").to_owned();
    let payload_len: u64 = field("payload_len").parse().expect("payload_len");
    let header_len: u64 = field("header_len")
        .trim_end_matches(" B")
        .parse()
        .expect("header_len");
    assert_eq!(payload_len, payload.len() as u64);
    assert_eq!(frame["len"], header_len + payload_len, "header + payload");
    let message: serde_json::Value = serde_json::from_str(&payload).expect("payload is JSON");
    assert_eq!(
        (&message["type"], &message["id"]),
        (&"message".into(), &1.into())
    );

    // The other views carry the very same JSON bytes in their own framing.
    let sse = show_wire_view(&page, "sse").await;
    let sse_text = sse["texts"][0].as_str().unwrap_or_default();
    assert!(sse_text.contains("id: 1"), "{sse_text}");
    assert!(sse_text.contains(&format!("data: {payload}")), "{sse_text}");
    for view in ["longpoll", "poll"] {
        let exchange = show_wire_view(&page, view).await;
        let texts = exchange["texts"].as_array().cloned().unwrap_or_default();
        let response = texts
            .iter()
            .filter_map(|t| t.as_str())
            .find(|t| t.starts_with("HTTP/1.1 200 OK"))
            .unwrap_or_else(|| panic!("{view}: no response in {texts:?}"));
        assert!(response.contains(&payload), "{view}: {response}");
    }

    // The handshake view, with a handshake made on demand; the page works
    // Sec-WebSocket-Accept out again with WebCrypto and agrees.
    page.browser.choose("#wire-transport", "handshake").await;
    page.browser.click("#wire-handshake").await;
    page.browser
        .wait_for(
            "document.querySelector('#wire-body .accept')?.dataset.match === 'true'
             && document.querySelector('#wire-body .accept .check').textContent === '✓'
             && document.querySelector('#wire-body .browser-check')?.dataset.match === 'true'",
            "a handshake whose Sec-WebSocket-Accept checks out",
        )
        .await;

    // The per-pane figures (from /stats, refreshed every 2 s) and the
    // totals strip fill in for every transport.
    let figures = page
        .browser
        .wait_for(
            &format!(
                r#"(() => {{
                   const text = (sel) => document.querySelector(sel)?.textContent ?? '';
                   const ok = {TRANSPORTS_JS}.every((t) => {{
                     const p = `[data-pane="${{t}}"]`;
                     return /^↓\d+ B$/.test(text(`${{p}} .wirecost [data-k="down"]`))
                       && /^↑\d+ B$/.test(text(`${{p}} .wirecost [data-k="up"]`))
                       && /^\d+\.\d\d req$/.test(text(`${{p}} .wirecost [data-k="rpm"]`))
                       && /^\d+ B$/.test(text(`#totals [data-transport="${{t}}"] .bpm`));
                   }});
                   return ok && {TRANSPORTS_JS}.map((t) => ({{
                     messages: text(`[data-pane="${{t}}"] .cost [data-k="messages"]`),
                     bars: document.querySelector(`[data-pane="${{t}}"] .spark`).dataset.count,
                     width: parseFloat(document.querySelector(`#totals [data-transport="${{t}}"] .tbar.bytes i`).style.width),
                   }}));
                 }})()"#
            ),
            "cost figures in every pane and in the totals strip",
        )
        .await;
    for (key, pane) in TRANSPORTS.iter().zip(figures.as_array().expect("figures")) {
        assert_eq!(pane["messages"], "1 msgs", "{key}");
        assert_eq!(pane["bars"], "1", "{key}: one bar in the latency sparkline");
        assert!(
            pane["width"].as_f64().unwrap_or(0.0) > 0.0,
            "{key}: a bytes bar"
        );
    }
    page.browser.close().await;
}

/// A corporate proxy that refuses WebSocket upgrades: the page, opened
/// through the network in between, in auto mode, settles on SSE, says
/// why, and chats; the network panel shows the fault that is on.
#[tokio::test]
async fn auto_mode_falls_back_to_sse_when_the_network_refuses_upgrades() {
    use common::network::NetServer;
    use skyrocket::network::Conditions;
    let net = NetServer::start(
        skyrocket::Config::default(),
        Conditions::parse("upgrade=403").unwrap(),
    )
    .await;
    let Some(page) = Demo::launch_at(net.base.clone()).await else {
        return;
    };
    page.open("corp", "&transport=auto").await;
    page.wait_single_open_on("sse").await;
    let why: String = page
        .browser
        .eval("document.querySelector('[data-pane=\"single\"]').dataset.why")
        .await;
    assert!(why.contains("WebSocket failed"), "{why}");
    // The pane draws its notes on the next animation frame, which may come
    // after the SSE stream opened: wait for the switch note to be drawn.
    const SWITCH_NOTES: &str = "[...document.querySelectorAll('[data-pane=\"single\"] li.note.switch')].map((li) => li.textContent)";
    page.browser
        .wait_for(
            &format!("{SWITCH_NOTES}.length > 0"),
            "the pane's note of its switch to SSE",
        )
        .await;

    page.send_main("through the proxy").await;
    let shown = page.wait_for_text(&["single"], "through the proxy").await;
    assert_eq!(shown[0].id, 1);
    // Drawn in order, so by the message's line every earlier note is drawn:
    // exactly one switch, WebSocket to SSE, and no further fallback.
    let notes: Vec<String> = page.browser.eval(SWITCH_NOTES).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(page.lines("single").await.len(), 1);
    assert!(net.counters().upgrades_refused >= 1);

    // The network panel is there, knows the page came through it, and
    // shows the refusal switched on.
    page.browser
        .wait_for(
            "document.querySelector('#netbar').dataset.through === 'yes'
             && document.querySelector('#netbar [data-fault=\"upgrade403\"]').getAttribute('aria-pressed') === 'true'",
            "the network panel to show upgrade=403",
        )
        .await;
    // One click turns the fault off, for the server too.
    page.browser
        .click("#netbar [data-fault=\"upgrade403\"]")
        .await;
    page.browser
        .wait_for(
            "document.querySelector('#netbar [data-fault=\"upgrade403\"]').getAttribute('aria-pressed') === 'false'",
            "the refusal to be off",
        )
        .await;
    assert_eq!(net.network.conditions(), Conditions::NONE);
    page.browser.close().await;
}

/// Chooses `view` in the wire panel, waits for its sample, and returns
/// what it shows: `len` (bytes in the first hex dump), `texts` (each HTTP
/// or SSE text block, line-end markers removed), and for WebSocket
/// `payload` and the decoded header `fields`.
async fn show_wire_view(page: &Demo, view: &str) -> serde_json::Value {
    page.browser.choose("#wire-transport", view).await;
    page.browser
        .wait_for(
            &format!(
                "(() => {{
                   const body = document.querySelector('#wire-body');
                   if (document.querySelector('#wire').dataset.transport !== {v} || body.dataset.sample !== 'yes') return false;
                   const texts = [...body.querySelectorAll('pre.wiretext:not(.payload)')].map((pre) =>
                     [...pre.childNodes].filter((n) => !n.classList?.contains('eol')).map((n) => n.textContent).join(''));
                   const fields = {{}};
                   for (const f of body.querySelectorAll('.frame-fields [data-field]')) fields[f.dataset.field] = f.querySelector('dd b').textContent;
                   return {{ len: Number(body.querySelector('.hexdump').dataset.len), texts,
                             payload: body.querySelector('.payload')?.textContent, fields }};
                 }})()",
                v = js(view)
            ),
            &format!("a {view} sample in the wire panel"),
        )
        .await
}

#[tokio::test]
async fn a_websocket_send_the_server_refuses_keeps_its_text_and_one_pane_speaks() {
    let Some((server, page)) = Demo::start("refused", "", &["single"]).await else {
        return;
    };
    page.wait_single_open_on("ws").await;
    // 3000 two-byte characters: within the input's maxlength, over the
    // server's 4096-byte text limit, so the socket answers an error frame.
    let text = "é".repeat(3000);
    page.browser
        .eval::<serde_json::Value>(&format!(
            "document.querySelector('#text').value = {}",
            js(&text)
        ))
        .await;
    page.browser.click("#send").await;
    page.browser
        .wait_for(
            "[...document.querySelectorAll('[data-pane=\"single\"] .note')].some((n) => n.textContent.includes('at most 4096 bytes'))",
            "the server's refusal to show in the pane",
        )
        .await;
    let kept: String = page
        .browser
        .eval("document.querySelector('#text').value")
        .await;
    assert_eq!(kept, text, "the refused text stays in the input");
    assert_eq!(
        server.stats().await["rooms"]["refused"]["delivered"]["ws"],
        0
    );

    // One live region on the page, whichever mode: not one per pane.
    for mode in ["single", "side"] {
        let live: Vec<String> = page
            .browser
            .eval("[...document.querySelectorAll('[aria-live]')].map((e) => e.closest('[data-pane]')?.dataset.pane ?? e.id)")
            .await;
        assert_eq!(live.len(), 1, "{mode}: {live:?}");
        page.browser.click("#mode").await;
    }
    page.browser.close().await;
}

/// The panes of the 8 x SSE mode, in the order the page opens them.
const SSE8: [&str; 8] = [
    "sse-1", "sse-2", "sse-3", "sse-4", "sse-5", "sse-6", "sse-7", "sse-8",
];

/// A `--tls` server (`--http1-only` if asked) with its generated
/// certificate, a browser that trusts it by its key's hash, the page in
/// 8 x SSE mode on `room`, and a Rust client that trusts it too.
async fn eight_sse_panes(room: &str, http1_only: bool) -> Option<(TestServer, Demo)> {
    let config = skyrocket::Config {
        tls: Some(skyrocket::tls::ServerTls::self_signed(http1_only).unwrap()),
        ..Default::default()
    };
    let mut server = TestServer::with_config(config).await;
    server.connect = Wire::H1Tls.connect(server.config());
    let page = Demo::launch_trusting(&server).await?;
    page.open(room, "&mode=sse8").await;
    Some((server, page))
}

/// A picture of the page for the README (`results/screenshots/`), in the
/// test's target directory.
async fn screenshot(page: &Demo, name: &str) {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    assert_eq!(page.browser.screenshot(&path).await, VIEWPORT);
    println!("screenshot: {}", path.display());
}

/// What each of `panes` says of the HTTP the browser used: `.proto`'s
/// `data-proto`.
async fn protocols(page: &Demo, panes: &[&str]) -> Vec<String> {
    let keys: Vec<String> = panes.iter().map(|p| js(&pane(p))).collect();
    page.browser
        .eval(&format!(
            "[{}].map((sel) => document.querySelector(`${{sel}} .proto`).dataset.proto)",
            keys.join(",")
        ))
        .await
}

/// Over HTTP/2 a browser runs every request to an origin on one
/// connection, so eight SSE streams from one page all open and all
/// deliver, and the page says it used h2.
#[tokio::test]
async fn eight_sse_streams_all_run_on_one_http2_connection() {
    let room = "sse8-h2";
    let Some((server, page)) = eight_sse_panes(room, false).await else {
        return;
    };
    page.wait_open(&SSE8).await;
    server
        .target(room)
        .send(&draft("bob", "to all eight"))
        .await
        .unwrap();
    let shown = page.wait_for_text(&SSE8, "to all eight").await;
    assert!(shown.iter().all(|l| l.id == 1), "{shown:?}");
    assert_eq!(protocols(&page, &SSE8).await, ["h2"; 8]);
    screenshot(&page, "sse8-h2.png").await;
    page.browser
        .wait_for(
            "document.querySelector('#conn-limit').dataset.limit === 'none'",
            "the page to say no connection limit applies",
        )
        .await;
    // The wire view shows an SSE delivery as the stream's HTTP/2 DATA
    // frame, decrypted, and says TLS records carry it on the wire.
    page.browser.click("#wire-toggle").await;
    page.browser
        .wait_for(
            "!document.querySelector('#wire-tls').hidden && document.querySelector('#wire-tls').dataset.h2 === 'yes'
             && document.querySelector('#wire-tls').textContent.includes('decrypted HTTP/2 frames')
             && document.querySelector('#wire-status').dataset.state === 'armed'",
            "the wire panel armed, saying it shows decrypted HTTP/2 frames",
        )
        .await;
    page.browser.choose("#wire-transport", "sse").await;
    server
        .target(room)
        .send(&draft("bob", "framed for the panel"))
        .await
        .unwrap();
    page.browser
        .wait_for(
            "(() => {
               const body = document.querySelector('#wire-body');
               return body.dataset.http === 'h2'
                 && body.querySelector('.h2-frames tr[data-dir=\"response\"][data-type=\"DATA\"]') !== null
                 && body.querySelector('.payload')?.textContent.includes('framed for the panel');
             })()",
            "the SSE delivery shown as an HTTP/2 DATA frame",
        )
        .await;
    screenshot(&page, "wire-h2.png").await;
    // The server saw the same: eight SSE requests, one connection.
    let sse = &server.stats().await["transports"]["sse"];
    assert_eq!(
        (&sse["requests"], &sse["connections_open"]),
        (&8.into(), &1.into()),
        "{sse}"
    );
    page.browser.close().await;
}

/// Over HTTP/1.1 a browser opens at most six connections to an origin and
/// an open SSE stream keeps its connection: the seventh and eighth streams
/// never start, the page shows them waiting, and they miss a message the
/// six others get. That is the limit the talk's slide warns about.
#[tokio::test]
async fn over_http1_the_seventh_and_eighth_sse_streams_wait_for_a_connection() {
    let room = "sse8-h1";
    let Some((server, page)) = eight_sse_panes(room, true).await else {
        return;
    };
    let (open, stalled) = SSE8.split_at(6);
    page.wait_open(open).await;
    page.browser
        .wait_for(
            "document.querySelector('#conn-limit').dataset.limit === 'hit'
             && ['sse-7', 'sse-8'].every((k) => document.querySelector(`[data-pane=\"${k}\"]`).dataset.waiting === 'yes')",
            "the page to show panes 7 and 8 waiting for a connection",
        )
        .await;
    server
        .target(room)
        .send(&draft("bob", "to the six"))
        .await
        .unwrap();
    page.wait_for_text(open, "to the six").await;
    assert_eq!(protocols(&page, open).await, ["http/1.1"; 6]);
    screenshot(&page, "sse8-h1.png").await;
    // The six have the message; the other two have no connection at all,
    // so they cannot have it, and still wait.
    for key in stalled {
        assert!(page.lines(key).await.is_empty(), "{key} got a line");
        let state: (String, String) = page
            .browser
            .eval(&format!(
                "[document.querySelector('{0}').dataset.waiting, document.querySelector('{0} .state').dataset.state]",
                pane(key)
            ))
            .await;
        assert_eq!(state, ("yes".into(), "connecting".into()), "{key}");
    }
    let status: String = page
        .browser
        .eval("document.querySelector('#conn-limit').textContent")
        .await;
    assert!(
        status.contains("7, 8 are waiting") && status.contains("at most 6 connections"),
        "{status}"
    );
    // The server agrees: six SSE requests reached it, on six connections.
    let sse = &server.stats().await["transports"]["sse"];
    assert_eq!(
        (&sse["requests"], &sse["connections_open"]),
        (&6.into(), &6.into()),
        "{sse}"
    );
    page.browser.close().await;
}
