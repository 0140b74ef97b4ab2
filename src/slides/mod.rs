//! The talk, "Skyrocket with WebSockets", served at `/slides` from the
//! Markdown in `slides/`, with the repo files the slides quote.
//!
//! How a request becomes a deck:
//! - [`deck`] reads `slides/NN-*.md` in name order and cuts them into slides
//!   (a slide starts at each `# ` heading, its speaker notes at a `???` line);
//! - [`include`] replaces `::include results/...` lines and
//!   `{{results/...#table[row][column]}}` cells with what the result files
//!   say, so no measured number is typed by hand;
//! - [`markdown`] renders each slide with pulldown-cmark, checking every code
//!   excerpt against its file ([`excerpt`]) and every link and image against
//!   the repo ([`files`]);
//! - [`page`] lays the slides out as one HTML page; `static/slides.js` does
//!   the keyboard, the URL (`/slides#12`), the presenter view
//!   (`/slides?notes`), fullscreen and the layout check (`/slides?check`).
//!
//! The deck is read from the repo on every request rather than compiled in:
//! result files land in `results/` after the binary is built, and a presenter
//! can edit a slide and reload. The repo is the checkout the binary was built
//! from (`CARGO_MANIFEST_DIR`), so `cargo run --release` finds it from any
//! directory, offline. The CSS and JS are compiled in, like the demo page.
//!
//! Whatever a slide gets wrong (an excerpt that no longer matches its file, a
//! result file that does not exist, a dead link) is listed on that slide in
//! a red box, and `tests/slides.rs` fails on it.

pub mod deck;
pub mod excerpt;
pub mod files;
pub mod include;
pub mod markdown;
pub mod page;

use axum::extract::RawQuery;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::path::{Path, PathBuf};

pub use deck::{Deck, Slide};
pub use page::View;

/// The repo the deck, the result files and the quoted sources are read from.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The talk's routes: the deck, its CSS and JS, and read-only views of the
/// repo files the slides link to (`/results/...` as they are, `/source/...`
/// as pages with line numbers).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/slides", get(deck_page))
        .route("/slides.css", get(css))
        .route("/slides.js", get(js))
        .route("/results/{*path}", get(files::result))
        .route("/source", get(files::source_index))
        .route("/source/", get(files::source_index))
        .route("/source/{*path}", get(files::source))
}

async fn deck_page(RawQuery(query): RawQuery) -> Response {
    let view = View::from_query(query.as_deref());
    let root = repo_root();
    match tokio::task::spawn_blocking(move || Deck::load(&root)).await {
        Ok(Ok(deck)) => (
            [(header::CACHE_CONTROL, "no-store")],
            Html(page::render(&deck, view)),
        )
            .into_response(),
        Ok(Err(e)) => unavailable(&repo_root(), &e.to_string()),
        Err(e) => unavailable(&repo_root(), &format!("the deck could not be read: {e}")),
    }
}

/// The deck's folder is missing or unreadable: a page that says where the
/// server looked, for a presenter who moved the binary away from the repo.
fn unavailable(root: &Path, why: &str) -> Response {
    let body = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>Slides unavailable</title>\
         <h1>The slides could not be read</h1><p>{}</p>\
         <p>The server reads them from <code>{}</code>, the checkout it was built \
         from: run it from the repo with <code>cargo run --release</code>.</p>",
        escape(why),
        escape(&root.join("slides").display().to_string()),
    );
    (StatusCode::SERVICE_UNAVAILABLE, Html(body)).into_response()
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/slides.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/slides.js"),
    )
}

/// Text made safe for HTML content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Tells, line by line, whether a Markdown line is code (inside a fenced
/// block, or a fence itself), so directives and headings are only looked
/// for in prose.
#[derive(Debug, Default)]
pub(crate) struct Fences {
    /// The open fence's character and length.
    open: Option<(u8, usize)>,
}

impl Fences {
    /// Feeds the next line; true when it is code or a fence line.
    pub fn code(&mut self, line: &str) -> bool {
        let text = line.trim_start();
        // CommonMark: a fence may be indented by up to three spaces.
        if line.len() - text.len() > 3 {
            return self.open.is_some();
        }
        let run = |c: u8| text.bytes().take_while(|&b| b == c).count();
        match self.open {
            Some((c, n)) => {
                if run(c) >= n && text.trim_end().bytes().all(|b| b == c) {
                    self.open = None;
                }
                true
            }
            None => {
                for c in [b'`', b'~'] {
                    if run(c) >= 3 {
                        self.open = Some((c, run(c)));
                        return true;
                    }
                }
                false
            }
        }
    }
}

/// A heading's anchor name: lower case, words joined by `-`.
pub(crate) fn slug(heading: &str) -> String {
    let mut out = String::new();
    for c in heading.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_hide_code_lines_only() {
        let text = "# a\n```rust\n# not a heading\n```\n# b\n~~~~\n```\n~~~~\nc";
        let mut fences = Fences::default();
        let prose: Vec<&str> = text.lines().filter(|l| !fences.code(l)).collect();
        assert_eq!(prose, ["# a", "# b", "c"]);
    }

    #[test]
    fn slugs_join_words() {
        assert_eq!(slug("Handshake request"), "handshake-request");
        assert_eq!(
            slug("Close codes: what we sent!"),
            "close-codes-what-we-sent"
        );
    }
}
