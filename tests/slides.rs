//! The talk at `/slides`, served by a real server: every slide renders with
//! its title, every link and image on the deck answers 200, the presenter
//! view carries the notes, code excerpts still match their files, quoted
//! result files exist, the repo views refuse what they must not show, and
//! (in headless Chromium, when installed) the keys move through the deck
//! and every slide's content fits a 1280x720 window.
//!
//! The Markdown is read here with its own simple rules (a title is a line
//! starting `# ` outside fenced code), so the counts are not the renderer
//! checking itself.

mod common;

// The wire sample's own raw clients and close cases, so this test provokes
// exactly what `cargo run --release --example wire_sample` recorded.
#[allow(dead_code)]
#[path = "../examples/wire_sample/closes.rs"]
mod closes;
#[allow(dead_code)]
#[path = "../examples/wire_sample/frames.rs"]
mod frames;
#[allow(dead_code)]
#[path = "../examples/wire_sample/raw.rs"]
mod raw;

use common::*;
use skyrocket::slides::{excerpt, Deck};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Each deck file's text, in the order the deck shows them.
fn deck_sources() -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("slides"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".md") && n.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(repo().join("slides").join(&n)).unwrap();
            (n, text)
        })
        .collect()
}

/// The Markdown's prose lines (fenced code and HTML comments left out),
/// and its fenced blocks as (info string, body).
fn prose_and_code(text: &str) -> (Vec<&str>, Vec<(String, String)>) {
    let (mut prose, mut blocks) = (Vec::new(), Vec::new());
    let mut open: Option<(String, String)> = None;
    let mut in_comment = false;
    for line in text.lines() {
        if open.is_none() && (in_comment || line.starts_with("<!--")) {
            in_comment = !line.contains("-->");
            continue;
        }
        let fence = line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~");
        match (&mut open, fence) {
            (None, true) => open = Some((line.trim_start()[3..].trim().to_owned(), String::new())),
            (Some(_), true) => blocks.extend(open.take()),
            (Some((_, body)), false) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, false) => prose.push(line),
        }
    }
    (prose, blocks)
}

/// Slide titles as the Markdown has them, inline marks removed.
fn markdown_titles() -> Vec<String> {
    deck_sources()
        .iter()
        .flat_map(|(_, text)| {
            prose_and_code(text)
                .0
                .into_iter()
                .filter_map(|l| l.strip_prefix("# "))
                .map(|t| t.replace(['`', '*'], "").trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn get_text(server: &TestServer, path: &str) -> (u16, String, String) {
    let response = within(
        PATIENCE,
        skyrocket::client::tls::get(&format!("{}{path}", server.base())),
    )
    .await
    .unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every value of `attr="..."` in the page.
fn attributes(html: &str, attr: &str) -> Vec<String> {
    let needle = format!(" {attr}=\"");
    html.split(&needle)
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(v, _)| unescape(v)))
        .collect()
}

#[tokio::test]
async fn every_slide_renders_with_its_title() {
    let server = TestServer::start().await;
    let (status, kind, html) = get_text(&server, "/slides").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");

    let titles = markdown_titles();
    assert!(
        SLIDES.contains(&titles.len()),
        "the talk should be {SLIDES:?} slides, it is {}",
        titles.len()
    );
    let sections: Vec<&str> = html.split("<section class=\"slide\"").skip(1).collect();
    assert_eq!(sections.len(), titles.len(), "one section per `# ` title");
    assert_eq!(attributes(&html, "data-title"), titles);
    for (i, section) in sections.iter().enumerate() {
        assert!(
            section.starts_with(&format!(" id=\"{}\"", i + 1)),
            "slide {} is numbered {section:.20}",
            i + 1
        );
        assert!(
            section.contains("<h1>"),
            "slide {} has no title heading",
            i + 1
        );
    }
    assert!(
        !html.contains("class=\"problem\"") && !html.contains("deck-problems"),
        "the deck shows problems: {:?}",
        Deck::load(&repo()).unwrap().problems()
    );
}

/// The slot: 45 minutes, the live demo's included, in 30 to 34 slides.
const SLOT_MINUTES: f64 = 45.0;
const SLIDES: std::ops::RangeInclusive<usize> = 30..=34;

/// Each slide's notes as the Markdown has them: from its `???` line to
/// the next title (empty when it has none).
fn markdown_notes() -> Vec<String> {
    let mut notes: Vec<Option<String>> = Vec::new();
    for (_, text) in deck_sources() {
        let mut open = false;
        for line in prose_and_code(&text).0 {
            if line.starts_with("# ") {
                notes.push(None);
                open = false;
            } else if line.trim() == "???" {
                open = true;
                if let Some(last) = notes.last_mut() {
                    *last = Some(String::new());
                }
            } else if open {
                if let Some(Some(n)) = notes.last_mut() {
                    n.push_str(line);
                    n.push('\n');
                }
            }
        }
    }
    notes.into_iter().map(Option::unwrap_or_default).collect()
}

/// The notes' timings, `(1.5 min)` at their start, add up to the slot,
/// and the live demo has its time in it.
#[test]
fn the_talk_fits_its_slot() {
    let titles = markdown_titles();
    let notes = markdown_notes();
    assert_eq!(notes.len(), titles.len());
    let mut total = 0.0;
    for (title, note) in titles.iter().zip(&notes) {
        let first = note.trim_start().lines().next().unwrap_or("");
        let minutes: f64 = first
            .strip_prefix('(')
            .and_then(|rest| rest.split_once(" min)"))
            .and_then(|(m, _)| m.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "the notes of \"{title}\" do not open with a timing like (1.5 min): {first:?}"
                )
            });
        assert!(minutes > 0.0, "\"{title}\": {minutes} min");
        if title.to_lowercase().contains("demo") {
            assert!(
                minutes >= 5.0,
                "the live demo needs about 6 minutes, not {minutes}"
            );
        }
        total += minutes;
    }
    assert!(
        total <= SLOT_MINUTES,
        "the notes' timings add up to {total} minutes, over the {SLOT_MINUTES}-minute slot"
    );
    assert!(SLIDES.contains(&titles.len()), "{} slides", titles.len());
    // The renderer reads the same timings.
    let deck = Deck::load(&repo()).unwrap();
    assert!(
        (deck.minutes() - total).abs() < 1e-9,
        "{} against {total}",
        deck.minutes()
    );
}

#[tokio::test]
async fn every_link_and_image_on_the_deck_resolves() {
    let server = TestServer::start().await;
    let count = markdown_titles().len();
    let mut checked = 0;
    for view in ["/slides", "/slides?notes"] {
        let (_, _, html) = get_text(&server, view).await;
        let mut targets = attributes(&html, "href");
        targets.extend(attributes(&html, "src"));
        for target in targets {
            if let Some(n) = target.strip_prefix('#') {
                let n: usize = n
                    .parse()
                    .unwrap_or_else(|_| panic!("{target} is not a slide"));
                assert!((1..=count).contains(&n), "{target}: no such slide");
                continue;
            }
            assert!(
                target.starts_with('/') && !target.starts_with("//"),
                "{target}: the talk runs offline, so every link must be on this server"
            );
            let (status, _, _) = get_text(&server, &target).await;
            assert_eq!(status, 200, "{target} (on {view})");
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} links and images found");
}

#[tokio::test]
async fn the_presenter_view_shows_every_slides_notes_and_the_audience_none() {
    let server = TestServer::start().await;
    let count = markdown_titles().len();
    let (_, _, presenter) = get_text(&server, "/slides?notes").await;
    let (_, _, audience) = get_text(&server, "/slides").await;

    let notes: Vec<&str> = presenter.split("<aside class=\"notes\">").skip(1).collect();
    assert_eq!(notes.len(), count, "every slide has speaker notes");
    for (i, note) in notes.iter().enumerate() {
        let body = note.split("</aside>").next().unwrap();
        assert!(body.contains("<p>"), "slide {} has empty notes", i + 1);
    }
    assert!(presenter.contains("id=\"pv-notes\"") && presenter.contains("id=\"pv-timer\""));
    assert!(presenter.contains("data-view=\"presenter\""));
    assert!(!audience.contains("class=\"notes\"") && !audience.contains("id=\"presenter\""));

    // A sentence from the Markdown's first notes is in one view only.
    let (_, first) = &deck_sources()[0];
    let sentence = first
        .split("\n???\n")
        .nth(1)
        .and_then(|n| n.lines().find(|l| !l.trim().is_empty()))
        .expect("the first slide has notes");
    assert!(presenter.contains(sentence.trim()), "{sentence}");
    assert!(!audience.contains(sentence.trim()));

    // The lead's to-dos are listed for the presenter, never shown to the room.
    let todos: usize = deck_sources()
        .iter()
        .map(|(_, t)| t.lines().filter(|l| l.starts_with("<!-- lead:")).count())
        .sum();
    assert_eq!(
        presenter.matches("<aside class=\"todo\">").count() > 0,
        todos > 0
    );
    let listed: usize = presenter
        .split("<aside class=\"todo\">")
        .skip(1)
        .map(|a| a.split("</aside>").next().unwrap().matches("<pre>").count())
        .sum();
    assert_eq!(listed, todos);
    assert!(!audience.contains("class=\"todo\""));
}

#[tokio::test]
async fn every_code_excerpt_matches_its_file() {
    let server = TestServer::start().await;
    let mut excerpts = 0;
    for (name, text) in deck_sources() {
        for (info, body) in prose_and_code(&text).1 {
            let Some((_, path)) = excerpt::parse_info(&info) else {
                continue;
            };
            let file = std::fs::read_to_string(repo().join(path))
                .unwrap_or_else(|e| panic!("{name}: excerpt of {path}: {e}"));
            if let Err(e) = excerpt::locate(&file, &body) {
                panic!("{name}: the excerpt of {path} {e}");
            }
            excerpts += 1;
        }
    }
    assert!(excerpts >= 6, "only {excerpts} excerpts of project code");
    let (_, _, html) = get_text(&server, "/slides").await;
    assert_eq!(html.matches("<figure class=\"excerpt\">").count(), excerpts);
}

#[tokio::test]
async fn every_quoted_result_file_exists_and_is_served() {
    let server = TestServer::start().await;
    let mut quoted = Vec::new();
    for (_, text) in deck_sources() {
        // Comments are left out: the lead's to-dos name files not committed yet.
        for line in prose_and_code(&text).0 {
            if let Some(spec) = line.strip_prefix("::include ") {
                quoted.push(spec.split('#').next().unwrap().trim().to_owned());
            }
            for cell in line.split("{{").skip(1) {
                quoted.push(cell.split(['#', '[']).next().unwrap().to_owned());
            }
            for link in line.split("](").skip(1) {
                let target = link.split([')', '#']).next().unwrap();
                if let Some(rel) = target.trim_start_matches('/').strip_prefix("results/") {
                    quoted.push(format!("results/{rel}"));
                }
            }
        }
    }
    quoted.sort();
    quoted.dedup();
    assert!(
        quoted.len() >= 2,
        "the slides quote no result file: {quoted:?}"
    );
    for path in &quoted {
        assert!(
            repo().join(path).is_file(),
            "a slide quotes {path}, which does not exist"
        );
        // Bytes, not text: a slide may quote a chart or a screenshot.
        let response = skyrocket::client::tls::get(&format!("{}/{path}", server.base()))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "/{path}");
        let body = response.bytes().await.unwrap();
        assert_eq!(body, std::fs::read(repo().join(path)).unwrap(), "/{path}");
    }
}

#[test]
fn a_stale_excerpt_or_a_missing_result_file_is_a_problem() {
    let root = std::env::temp_dir().join(format!("skyrocket-deck-{}", std::process::id()));
    std::fs::create_dir_all(root.join("slides")).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/a.rs"), "fn main() {\n    run();\n}\n").unwrap();
    let deck = "# Fine\n```rust src/a.rs\nfn main() {\n    run();\n```\n???\n(1 min) notes\n\
                # Stale\n```rust src/a.rs\nfn main() {\n    walk();\n```\n???\n(1 min)\n\
                # Missing\n::include results/gone.md#table\n???\n(1 min)\n\
                # Dead link\n[gone](src/gone.rs)\n???\n(1 min)\n\
                # Untimed\n???\nAbout a minute.\n";
    std::fs::write(root.join("slides/01-test.md"), deck).unwrap();
    let loaded = Deck::load(&root).unwrap();
    let problems: Vec<usize> = loaded.slides.iter().map(|s| s.problems.len()).collect();
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(problems, [0, 1, 1, 1, 1], "{:?}", loaded.problems());
    assert!(loaded.slides[1].problems[0].contains("no longer matches"));
    assert!(loaded.slides[2].problems[0].contains("does not exist"));
    assert!(loaded.slides[4].problems[0].contains("(1.5 min)"));
    assert_eq!(loaded.minutes(), 4.0);
}

#[tokio::test]
async fn the_repo_views_show_source_and_results_and_nothing_else() {
    let server = TestServer::start().await;
    let (status, kind, page) = get_text(&server, "/source/src/room.rs").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"));
    assert!(page.contains("id=\"L1\"") && page.contains("Subscription"));
    let (_, _, index) = get_text(&server, "/source/").await;
    assert!(index.contains("href=\"/source/src/\""), "{index}");
    assert!(!index.contains("target") && !index.contains(".git"));

    let (status, kind, table) = get_text(&server, "/results/wire-cost.md").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/plain"));
    assert_eq!(
        table,
        std::fs::read_to_string(repo().join("results/wire-cost.md")).unwrap()
    );

    for path in [
        "/source/target/debug/skyrocket",
        "/source/.git/config",
        "/source/src/..%2F..%2FCargo.lock",
        "/source/Cargo.lock",
        "/results/..%2FCargo.toml",
        "/results/nope.md",
    ] {
        let (status, kind, body) = get_text(&server, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            kind.starts_with("application/json") && body.contains("\"error\""),
            "{path}"
        );
    }
}

/// The lines of the fenced block right after `## {heading}` in a report.
fn report_block<'a>(report: &'a str, heading: &str) -> Vec<&'a str> {
    let section = report
        .split(&format!("\n## {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no section {heading}"));
    section
        .split("```")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .collect()
}

#[test]
fn the_wire_sample_on_the_slides_is_consistent() {
    let report = std::fs::read_to_string(repo().join("results/wire-sample.md")).unwrap();
    // The accept key: the server's header is base64(sha1(key + GUID)).
    let request = report_block(&report, "Handshake request").join("\n");
    let response = report_block(&report, "Handshake response").join("\n");
    let value = |head: &str, name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let key = value(&request, "sec-websocket-key");
    let accept = value(&response, "sec-websocket-accept");
    assert_eq!(
        tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
        accept
    );
    assert!(
        report.contains(&format!("| `{accept}` |")),
        "the worked example ends in the header"
    );

    // The server frame's hex dump decodes to the payload the report shows.
    let bytes: Vec<u8> = report_block(&report, "Server text frame")
        .iter()
        .flat_map(|line| line[6..].split("  ").next().unwrap().split_whitespace())
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let header = skyrocket::wire_view::decode_frame(&bytes).unwrap();
    assert!(header.fin && !header.masked && header.opcode == 1);
    let payload = std::str::from_utf8(&bytes[header.header_len..]).unwrap();
    assert_eq!(payload.len() as u64, header.payload_len);
    assert!(report.contains(&format!("The payload:\n\n```json\n{payload}\n```")));
}

/// A response head as lines, with the values that change from run to run
/// (the date, a body's length) blanked.
fn head_lines(head: &str) -> Vec<String> {
    head.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((name, _))
                if ["date", "content-length"].contains(&name.to_lowercase().as_str()) =>
            {
                format!("{}: ...", name.to_lowercase())
            }
            _ => l.to_owned(),
        })
        .collect()
}

/// The committed sample still says what the server does: the close cases
/// run again against a live server must give the committed table row for
/// row, and the response heads the slides show must carry the same
/// headers. A change to the close handling or to the heads fails here
/// until `cargo run --release --example wire_sample` is run again.
#[tokio::test]
async fn the_committed_wire_sample_is_what_the_server_does_now() {
    let report = std::fs::read_to_string(repo().join("results/wire-sample.md")).unwrap();
    let config = closes::config();
    let max_message = config.ws.max_message;
    let mut server = TestServer::with_config(config).await;

    server
        .target("board")
        .send(&draft("ada", "hi"))
        .await
        .unwrap();
    for (section, request) in [
        (
            "SSE response head",
            "GET /rooms/news/sse HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
        ),
        (
            "Short poll response head",
            "GET /rooms/board/poll?since=0 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ),
    ] {
        let mut conn = raw::Conn::open(server.addr, request).await.unwrap();
        let head = within(PATIENCE, conn.head()).await.unwrap();
        assert_eq!(
            head_lines(&String::from_utf8_lossy(&head)),
            head_lines(&report_block(&report, section).join("\n")),
            "the {section} changed: run the wire_sample example again"
        );
    }

    let rows = within(PATIENCE, closes::rows(server.addr, max_message))
        .await
        .unwrap();
    let mut conn = closes::at_shutdown(server.addr).await.unwrap();
    let (_, last) = tokio::join!(server.shutdown(), closes::shutdown_row(&mut conn));
    let (last, _) = last.unwrap();
    let now = closes::section(&rows, &last);
    let committed = skyrocket::slides::include::select(&report, "close-codes-our-server-sent")
        .expect("results/wire-sample.md has its close codes section");
    assert_eq!(
        committed.trim(),
        now.trim(),
        "results/wire-sample.md no longer says how the server closes: \
         run `cargo run --release --example wire_sample` again"
    );
    // What the slides say of it holds: the errors a peer causes get a code.
    for code in ["| 1007 |", "| 1009 |", "| 1002 |", "| 1008 |", "| 1001 |"] {
        assert!(now.contains(code), "no {code} row in\n{now}");
    }
}

/// Runs headless Chromium on `url` and returns the DOM after its scripts
/// ran; `None` (after saying why) when Chromium is not installed outside CI.
async fn chromium_dom(url: &str) -> Option<String> {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed, and CI is set"
        );
        println!("SKIPPED: chromium is not installed (apt-get install chromium)");
        return None;
    };
    let profile = tempdir("chromium");
    let output = within(
        Duration::from_secs(90),
        tokio::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--window-size=1280,720",
                "--virtual-time-budget=20000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).unwrap())
}

fn tempdir(what: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("skyrocket-{what}-{}-{n}", std::process::id()))
}

#[tokio::test]
async fn in_chromium_the_keys_move_through_the_deck_and_every_slide_fits() {
    let server = TestServer::start().await;
    let count = markdown_titles().len();
    let Some(dom) = chromium_dom(&format!("{}/slides?check", server.base())).await else {
        return;
    };
    let json = attributes(&dom, "data-check")
        .into_iter()
        .next()
        .expect("the page's check did not run");
    let check: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(check["slides"], count);
    assert_eq!(
        check["keys_ok"], true,
        "keys went wrong: {}",
        check["wrong"]
    );
    assert_eq!(
        check["misfits"].as_array().unwrap().len(),
        0,
        "slides that do not fit 1280x720: {:#}",
        check["misfits"]
    );

    // A slide number in the URL opens the deck on that slide.
    let dom = chromium_dom(&format!("{}/slides#7", server.base()))
        .await
        .unwrap();
    assert!(
        dom.contains("<section class=\"slide current\" id=\"7\""),
        "slide 7 is not the one shown"
    );
}
