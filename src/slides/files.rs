//! Read-only views of the repo files the talk points at, so every link on a
//! slide works offline from the same server.
//!
//! - `/results/{path}`: a file under `results/` as it is (tables, SVG and PNG
//!   charts, reports), for the slides' images and captions.
//! - `/source/{path}`: a source file as a page with numbered lines (link to
//!   `/source/src/room.rs#L230`), or a folder as a list. Only the folders an
//!   attendee should read are shown ([`SHOWN`]): not `target/`, not `.git/`,
//!   no hidden file.
//!
//! Every path goes through [`resolve`]: plain names only (no `..`, no
//! hidden component), a shown top-level folder, and a real path (symlinks
//! followed) that stays inside the repo. Anything else is the same JSON 404
//! as an unknown route.

use super::{escape, repo_root};
use crate::error::ApiError;
use axum::extract::Path as UrlPath;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use std::path::{Path, PathBuf};

/// The top of the repo as `/source` shows it.
pub const SHOWN: [&str; 10] = [
    "README.md",
    "Cargo.toml",
    "src",
    "tests",
    "examples",
    "benches",
    "static",
    "slides",
    "results",
    ".ci",
];

/// A repo path that may be shown.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub path: PathBuf,
    pub is_dir: bool,
}

/// The file or folder at `rel` (relative to `root`, `/`-separated, an
/// optional trailing `/`) if it exists and may be shown.
pub fn resolve(root: &Path, rel: &str) -> Option<Resolved> {
    let rel = rel.strip_suffix('/').unwrap_or(rel);
    let parts: Vec<&str> = rel.split('/').collect();
    if !SHOWN.contains(parts.first()?) {
        return None;
    }
    let plain = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    if !parts[1..].iter().all(|p| plain(p)) {
        return None;
    }
    let real = root.join(rel).canonicalize().ok()?;
    if !real.starts_with(root.canonicalize().ok()?) {
        return None;
    }
    let is_dir = std::fs::metadata(&real).ok()?.is_dir();
    Some(Resolved { path: real, is_dir })
}

/// `GET /results/{path}`: the file as it is.
pub async fn result(UrlPath(path): UrlPath<String>) -> Response {
    let rel = format!("results/{path}");
    match resolve(&repo_root(), &rel).filter(|r| !r.is_dir) {
        Some(file) => raw(&file.path).await,
        None => ApiError::not_found().into_response(),
    }
}

/// `GET /source/{path}`: a file with line numbers, or a folder's list.
pub async fn source(UrlPath(path): UrlPath<String>) -> Response {
    let Some(found) = resolve(&repo_root(), &path) else {
        return ApiError::not_found().into_response();
    };
    let rel = path.trim_end_matches('/');
    if found.is_dir {
        return listing(rel, &found.path).await;
    }
    match tokio::fs::read(&found.path).await {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Html(source_page(rel, &text)).into_response(),
            // An image or other binary file: show it as it is.
            Err(_) => raw(&found.path).await,
        },
        Err(_) => ApiError::not_found().into_response(),
    }
}

/// `GET /source/`: the shown top of the repo.
pub async fn source_index() -> Response {
    let root = repo_root();
    let entries = SHOWN
        .iter()
        .filter_map(|name| Some((name.to_string(), resolve(&root, name)?.is_dir)))
        .collect();
    Html(listing_page("", entries)).into_response()
}

async fn raw(path: &Path) -> Response {
    match tokio::fs::read(path).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                // Results change when a measurement is rerun: revalidate.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => ApiError::not_found().into_response(),
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "json" => "application/json",
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        // Markdown, CSV, logs and code: shown as text by any browser.
        "md" | "txt" | "csv" | "log" | "rs" | "toml" | "sh" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn listing(rel: &str, dir: &Path) -> Response {
    let root = repo_root();
    let mut entries = Vec::new();
    if let Ok(mut read) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(entry)) = read.next_entry().await {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if let Some(found) = resolve(&root, &format!("{rel}/{name}")) {
                entries.push((name, found.is_dir));
            }
        }
    }
    // Folders first, then files, each by name.
    entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Html(listing_page(rel, entries)).into_response()
}

fn listing_page(rel: &str, entries: Vec<(String, bool)>) -> String {
    let prefix = if rel.is_empty() {
        String::new()
    } else {
        format!("{rel}/")
    };
    let items: String = entries
        .iter()
        .map(|(name, is_dir)| {
            let slash = if *is_dir { "/" } else { "" };
            format!(
                "<li><a href=\"/source/{0}{1}{2}\">{1}{2}</a></li>\n",
                escape(&prefix),
                escape(name),
                slash
            )
        })
        .collect();
    page_shell(rel, &format!("<ul class=\"listing\">\n{items}</ul>"))
}

fn source_page(rel: &str, text: &str) -> String {
    let mut lines = String::with_capacity(text.len() * 2);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        lines.push_str(&format!(
            "<span class=\"line\" id=\"L{n}\"><a class=\"ln\" href=\"#L{n}\">{n}</a>{}\n</span>",
            escape(line)
        ));
    }
    page_shell(
        rel,
        &format!("<pre class=\"code\"><code>{lines}</code></pre>"),
    )
}

/// A page of the source view: a path with each folder linked, then `body`.
fn page_shell(rel: &str, body: &str) -> String {
    let mut crumbs = String::from("<a href=\"/source/\">repo</a>");
    let mut so_far = String::new();
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        so_far.push_str(part);
        so_far.push('/');
        if i + 1 < parts.len() {
            crumbs.push_str(&format!(
                " / <a href=\"/source/{}\">{}</a>",
                escape(&so_far),
                escape(part)
            ));
        } else {
            crumbs.push_str(&format!(" / {}", escape(part)));
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"/slides.css\">\n</head>\n\
         <body class=\"source-view\">\n<nav class=\"crumbs\">{crumbs} \
         <span class=\"back\"><a href=\"/slides\">back to the slides</a></span></nav>\n\
         {body}\n</body>\n</html>\n",
        title = escape(if rel.is_empty() {
            "Skyrocket source"
        } else {
            rel
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_shown_plain_paths_resolve() {
        let root = repo_root();
        assert!(resolve(&root, "src/room.rs").is_some_and(|r| !r.is_dir));
        assert!(resolve(&root, "src/").is_some_and(|r| r.is_dir));
        assert!(resolve(&root, ".ci/run").is_some());
        for bad in [
            "",
            "/etc/passwd",
            "src/../Cargo.lock",
            "target/debug",
            ".git/config",
            "src/.hidden",
            "src//room.rs",
            "src/nope.rs",
            "Cargo.lock",
        ] {
            assert!(resolve(&root, bad).is_none(), "{bad}");
        }
    }
}
