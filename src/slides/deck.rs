//! Reads `slides/` into a deck: which files, where each slide starts, its
//! title, its speaker notes and the lead's to-do comments.
//!
//! The format (also written at the top of `slides/00-title.md`):
//! - the deck is every `slides/*.md` whose name starts with a digit, in name
//!   order (one file per section of the talk);
//! - a slide starts at each line that begins with `# `: that heading is its
//!   title, so every slide has one; text before a file's first heading is a
//!   note to authors and is not shown;
//! - a line `???` starts the slide's speaker notes, which run to the next
//!   slide; they are shown only in the presenter view (`/slides?notes`);
//! - the notes open with the slide's share of the talk, `(1.5 min)`: the
//!   deck's length is the sum of them ([`Deck::minutes`]), so a re-cut that
//!   no longer fits its slot shows in `tests/slides.rs`, not on stage;
//! - a line starting `<!-- lead:` (to its `-->`) is a to-do for whoever
//!   completes the deck: it is not on the slide, and the presenter view
//!   lists it in a yellow box so it cannot be presented by accident.
//!
//! Headings, `???` and comments inside fenced code blocks are code, not
//! structure.

use super::include::ResultFiles;
use super::{markdown, Fences};
use std::path::Path;

/// The rendered talk.
#[derive(Debug, Clone)]
pub struct Deck {
    pub slides: Vec<Slide>,
}

/// One slide, rendered.
#[derive(Debug, Clone)]
pub struct Slide {
    /// 1-based, as in `/slides#12`.
    pub number: usize,
    /// The Markdown file, relative to the repo (`slides/06-websocket.md`).
    pub file: String,
    /// The line of its `# ` title in that file.
    pub line: usize,
    /// The title as plain text.
    pub title: String,
    pub html: String,
    pub notes_html: String,
    /// The `<!-- lead: ... -->` comments on this slide, as written.
    pub todos: Vec<String>,
    /// Minutes planned for this slide, from its notes' `(1.5 min)`.
    pub minutes: Option<f64>,
    /// What is wrong with this slide: a stale excerpt, a missing result
    /// file, a dead link. Empty in a deck fit to present.
    pub problems: Vec<String>,
}

/// A slide as written, before rendering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSlide {
    pub line: usize,
    pub title: String,
    pub body: String,
    pub notes: String,
    pub todos: Vec<String>,
}

impl Deck {
    /// Reads and renders the deck under `root` (a repo with a `slides/`
    /// folder). Fails only when the folder cannot be read or holds no slide;
    /// what is wrong inside a slide is in that slide's `problems`.
    pub fn load(root: &Path) -> std::io::Result<Self> {
        let mut results = ResultFiles::new(root);
        let mut slides = Vec::new();
        for file in deck_files(root)? {
            let text = std::fs::read_to_string(root.join(&file))?;
            for raw in split(&text) {
                let mut problems = Vec::new();
                let minutes = timing(&raw.notes);
                if minutes.is_none() {
                    problems.push(
                        "its speaker notes do not open with its timing, like `(1.5 min)`".into(),
                    );
                }
                let body = results.expand(&raw.body, &mut problems);
                let notes = results.expand(&raw.notes, &mut problems);
                let html = markdown::to_html(&body, root, &mut problems);
                let notes_html = markdown::to_html(&notes, root, &mut problems);
                slides.push(Slide {
                    number: slides.len() + 1,
                    file: file.clone(),
                    line: raw.line,
                    title: plain_title(&raw.title),
                    html,
                    notes_html,
                    todos: raw.todos,
                    minutes,
                    problems,
                });
            }
        }
        if slides.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "slides/ holds no slide (no .md file starting with a digit and a `# ` heading)",
            ));
        }
        Ok(Self { slides })
    }

    /// The planned length of the talk: the sum of the slides' timings.
    pub fn minutes(&self) -> f64 {
        self.slides.iter().filter_map(|s| s.minutes).sum()
    }

    /// The talk's title: the first slide's.
    pub fn title(&self) -> &str {
        self.slides.first().map_or("Slides", |s| s.title.as_str())
    }

    /// Every problem of every slide, each saying where it is.
    pub fn problems(&self) -> Vec<String> {
        self.slides
            .iter()
            .flat_map(|s| {
                s.problems
                    .iter()
                    .map(move |p| format!("slide {} ({}:{}): {p}", s.number, s.file, s.line))
            })
            .collect()
    }
}

/// The deck's files, relative to the repo, in the order they are shown.
pub fn deck_files(root: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("slides"))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(|c: char| c.is_ascii_digit()) && name.ends_with(".md"))
        .collect();
    names.sort();
    Ok(names.into_iter().map(|n| format!("slides/{n}")).collect())
}

/// Cuts one file into slides (see the module header for the rules).
pub fn split(text: &str) -> Vec<RawSlide> {
    let mut slides: Vec<RawSlide> = Vec::new();
    let mut fences = Fences::default();
    let mut in_notes = false;
    let mut open_todo: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let code = fences.code(line);
        if let Some(todo) = open_todo.as_mut() {
            todo.push('\n');
            todo.push_str(line);
            if line.contains("-->") {
                if let (Some(slide), Some(todo)) = (slides.last_mut(), open_todo.take()) {
                    slide.todos.push(todo);
                }
            }
            continue;
        }
        if !code {
            if let Some(title) = line.strip_prefix("# ") {
                slides.push(RawSlide {
                    line: i + 1,
                    title: title.trim().trim_end_matches('#').trim().to_owned(),
                    ..RawSlide::default()
                });
                in_notes = false;
            } else if line.trim() == "???" {
                in_notes = true;
                continue;
            } else if line.trim_start().starts_with("<!-- lead:") {
                if line.contains("-->") {
                    if let Some(slide) = slides.last_mut() {
                        slide.todos.push(line.trim().to_owned());
                    }
                } else {
                    open_todo = Some(line.trim().to_owned());
                }
                continue;
            }
        }
        let Some(slide) = slides.last_mut() else {
            continue; // the file's preamble
        };
        let part = if in_notes {
            &mut slide.notes
        } else {
            &mut slide.body
        };
        part.push_str(line);
        part.push('\n');
    }
    slides
}

/// The `(1.5 min)` that opens a slide's notes, in minutes.
pub fn timing(notes: &str) -> Option<f64> {
    let first = notes.lines().find(|l| !l.trim().is_empty())?.trim();
    let inner = first.strip_prefix('(')?.split_once(" min)")?.0;
    inner.parse::<f64>().ok().filter(|m| *m > 0.0)
}

/// A title without its inline Markdown marks, for attributes and lists.
fn plain_title(title: &str) -> String {
    title.replace(['`', '*'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slides_start_at_titles_and_notes_at_question_marks() {
        let text = "preamble, not shown\n\
                    # One\nbody one\n???\nnotes one\n\
                    # `Two`\n```sh\n# a shell comment\n???\n```\n\
                    <!-- lead: add the table -->\nafter\n";
        let slides = split(text);
        assert_eq!(slides.len(), 2);
        assert_eq!((slides[0].line, slides[0].title.as_str()), (2, "One"));
        assert_eq!(slides[0].body, "# One\nbody one\n");
        assert_eq!(slides[0].notes, "notes one\n");
        assert_eq!(slides[1].title, "`Two`");
        assert!(slides[1].body.contains("# a shell comment\n???\n"));
        assert!(slides[1].body.ends_with("after\n"));
        assert_eq!(slides[1].todos, ["<!-- lead: add the table -->"]);
        assert_eq!(plain_title(&slides[1].title), "Two");
    }

    #[test]
    fn notes_open_with_their_timing() {
        assert_eq!(timing("\n(1.5 min) The loop.\n"), Some(1.5));
        assert_eq!(timing("(6 min)\nScript:"), Some(6.0));
        assert_eq!(timing("About 2 minutes."), None);
        assert_eq!(timing("Text first.\n(2 min)"), None);
        assert_eq!(timing("(0 min)"), None);
    }

    #[test]
    fn a_lead_comment_may_span_lines() {
        let slides = split("# A\n<!-- lead: one\ntwo -->\ntext\n");
        assert_eq!(slides[0].todos, ["<!-- lead: one\ntwo -->"]);
        assert_eq!(slides[0].body, "# A\ntext\n");
    }
}
