//! One slide's Markdown to HTML (pulldown-cmark, with tables), checking as
//! it goes what the slide points at.
//!
//! Three things are rewritten on the way through:
//! - a code block that names a file (```` ```rust src/room.rs ````) is
//!   checked against that file ([`super::excerpt`]) and shown with a caption
//!   linking to the lines it came from (`/source/src/room.rs#L230`);
//! - a link or image to a repo path (`src/room.rs`, `results/x.svg`) goes to
//!   the server's read-only view of it (`/source/...`, `/results/...`), and
//!   the file must exist;
//! - a link that leaves this server is refused: the talk runs offline.
//!
//! Links to the server's own routes (`/`, `/stats`) and to other slides
//! (`#12`) are kept as they are; `tests/slides.rs` fetches every one.

use super::excerpt;
use super::files::resolve;
use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};
use std::path::Path;

/// Renders `markdown`; what is wrong goes to `problems`.
pub fn to_html(markdown: &str, root: &Path, problems: &mut Vec<String>) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut events = Vec::new();
    // The info string and text of the excerpt being read, if any.
    let mut excerpt: Option<(String, String)> = None;
    for event in Parser::new_ext(markdown, options) {
        if let Some((info, code)) = excerpt.as_mut() {
            match event {
                Event::Text(text) => code.push_str(&text),
                Event::End(TagEnd::CodeBlock) => {
                    events.extend(excerpt_block(info, code, root, problems));
                    excerpt = None;
                }
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info)))
                if excerpt::parse_info(&info).is_some() =>
            {
                excerpt = Some((info.to_string(), String::new()));
            }
            Event::Start(mut tag @ (Tag::Link { .. } | Tag::Image { .. })) => {
                if let Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } = &mut tag {
                    *dest_url = target(dest_url, root, problems).into();
                }
                events.push(Event::Start(tag));
            }
            other => events.push(other),
        }
    }
    let mut html = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    html
}

/// Where a link on a slide goes, checked: a repo path becomes its view on
/// this server; a server route or slide number stays; the outside world is
/// a problem (kept as written, so the slide still says where it pointed).
fn target(url: &str, root: &Path, problems: &mut Vec<String>) -> String {
    if url.contains("://") || url.starts_with("//") || url.starts_with("mailto:") {
        problems.push(format!(
            "{url}: the talk runs offline; link to a file in this repo or a route of this server"
        ));
        return url.to_owned();
    }
    if url.starts_with('#') {
        return url.to_owned();
    }
    // A repo path becomes its view on this server.
    let href = if url.starts_with('/') {
        url.to_owned()
    } else if url.starts_with("results/") {
        format!("/{url}")
    } else {
        format!("/source/{url}")
    };
    let path = href.split(['#', '?']).next().unwrap_or("");
    let shown = match (
        path.strip_prefix("/results/"),
        path.strip_prefix("/source/"),
    ) {
        (Some(rel), _) => Some(format!("results/{rel}")),
        (_, Some(rel)) if !rel.is_empty() => Some(rel.to_owned()),
        _ => None,
    };
    if let Some(rel) = shown {
        if resolve(root, &rel).is_none() {
            problems.push(format!(
                "{url}: no such file in the repo (or not one /source shows)"
            ));
        }
    }
    href
}

/// The HTML of a checked excerpt: a caption linking to its lines, then the
/// code, with elision lines marked.
fn excerpt_block(
    info: &str,
    code: &str,
    root: &Path,
    problems: &mut Vec<String>,
) -> Vec<Event<'static>> {
    let Some((lang, path)) = excerpt::parse_info(info) else {
        return Vec::new();
    };
    let file = resolve(root, path)
        .filter(|r| !r.is_dir)
        .and_then(|r| std::fs::read_to_string(r.path).ok());
    let span = match file {
        Some(text) => excerpt::locate(&text, code).map_err(|e| format!("excerpt of {path} {e}")),
        None => Err(format!("excerpt of {path}: no such file in the repo")),
    };
    let lines = match span {
        Ok(span) => format!(
            "<a href=\"/source/{path}#L{first}\">{path}</a> \
             <span class=\"lines\">lines {first}–{last}</span>",
            first = span.first,
            last = span.last,
        ),
        Err(problem) => {
            problems.push(problem);
            format!("{path} <span class=\"lines\">(does not match)</span>")
        }
    };
    let mut events = vec![Event::Html(CowStr::from(format!(
        "<figure class=\"excerpt\"><figcaption>{lines}</figcaption>\
         <pre><code class=\"language-{lang}\">"
    )))];
    for (line, elided) in displayed(code) {
        if elided {
            events.push(Event::Html("<span class=\"elided\">".into()));
            events.push(Event::Text(CowStr::from(line)));
            events.push(Event::Html("</span>\n".into()));
        } else {
            events.push(Event::Text(CowStr::from(format!("{line}\n"))));
        }
    }
    events.push(Event::Html("</code></pre></figure>\n".into()));
    events
}

/// An excerpt's lines as shown: the indentation they all share taken off
/// (an excerpt may keep its file's indentation), and each elision marker
/// indented like the code it stands in for. `(line, is an elision)`.
fn displayed(code: &str) -> Vec<(String, bool)> {
    let lines: Vec<&str> = code.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let common = lines
        .iter()
        .filter(|l| !l.trim().is_empty() && !excerpt::is_elision(l))
        .map(|l| indent(l))
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            if excerpt::is_elision(line) {
                let next = lines[i + 1..]
                    .iter()
                    .find(|l| !l.trim().is_empty() && !excerpt::is_elision(l))
                    .map_or(common, |l| indent(l));
                let pad = " ".repeat(next.saturating_sub(common));
                (format!("{pad}{}", line.trim()), true)
            } else {
                (
                    line.get(common..).unwrap_or(line.trim_start()).to_owned(),
                    false,
                )
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slides::repo_root;

    #[test]
    fn links_go_to_the_repo_views_and_the_outside_is_refused() {
        let root = repo_root();
        let mut problems = Vec::new();
        let md = "[room](src/room.rs#L10) [cost](results/wire-cost.md) [demo](/) \
                  [slide](#3) [gone](src/gone.rs) [web](https://example.com) \
                  ![chart](/results/none.svg)";
        let html = to_html(md, &root, &mut problems);
        assert!(html.contains("href=\"/source/src/room.rs#L10\""), "{html}");
        assert!(html.contains("href=\"/results/wire-cost.md\""));
        assert!(html.contains("href=\"/\"") && html.contains("href=\"#3\""));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("src/gone.rs"));
        assert!(problems[1].contains("offline"));
        assert!(problems[2].starts_with("/results/none.svg"));
    }

    #[test]
    fn excerpts_lose_their_shared_indent_and_elisions_line_up() {
        let code = "        loop {\n            one();\n// ...\n            two();\n        }\n";
        let shown: Vec<String> = displayed(code).into_iter().map(|(l, _)| l).collect();
        assert_eq!(
            shown,
            ["loop {", "    one();", "    // ...", "    two();", "}"]
        );
    }

    #[test]
    fn excerpts_are_captioned_with_their_lines_or_flagged() {
        let root = repo_root();
        let mut problems = Vec::new();
        let good = "```rust src/slides/excerpt.rs\npub const MAX_LINES: usize = 18;\n```\n";
        let html = to_html(good, &root, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(
            html.contains("href=\"/source/src/slides/excerpt.rs#L"),
            "{html}"
        );
        assert!(html.contains("<code class=\"language-rust\">pub const MAX_LINES"));

        let stale = "```rust src/slides/excerpt.rs\npub const MAX_LINES: usize = 99;\n```\n";
        to_html(stale, &root, &mut problems);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("no longer matches"), "{problems:?}");
    }
}
