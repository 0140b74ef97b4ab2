//! Code on a slide is real project code, checked on every render.
//!
//! A fenced block whose info string is a language and then a repo path,
//! ```` ```rust src/room.rs ````, is an excerpt of that file. Its lines must
//! stand in the file one after another, in order, with two allowances:
//! - a line that is only `...`, `// ...` or `# ...` is an elision: the
//!   excerpt skips file lines there, and the next lines are looked for
//!   further down;
//! - the excerpt may be indented less than the file (a method shown without
//!   its `impl` block), by the same amount for every line of a run, and
//!   trailing spaces do not count.
//!
//! An excerpt that no longer matches its file is a problem on the slide, so
//! an edit to the code that the slide quotes fails `tests/slides.rs` until
//! the slide is brought up to date. Excerpts are also kept short: at most
//! [`MAX_LINES`] lines fit on a slide in a size the back row can read.

/// The most lines an excerpt may have.
pub const MAX_LINES: usize = 18;

/// `(language, path)` when a fence's info string names a file.
pub fn parse_info(info: &str) -> Option<(&str, &str)> {
    let mut words = info.split_whitespace();
    let (lang, path) = (words.next()?, words.next()?);
    path.contains(['/', '.']).then_some((lang, path))
}

pub fn is_elision(line: &str) -> bool {
    matches!(line.trim(), "..." | "// ..." | "# ...")
}

/// Where an excerpt stands in its file: its first and last line, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first: usize,
    pub last: usize,
}

/// Finds `excerpt` in `file` (see the module header for the rules).
pub fn locate(file: &str, excerpt: &str) -> Result<Span, String> {
    let file: Vec<&str> = file.lines().collect();
    let lines: Vec<&str> = excerpt.lines().collect();
    if lines.len() > MAX_LINES {
        return Err(format!(
            "is {} lines; a slide shows at most {MAX_LINES} (elide with `// ...`)",
            lines.len()
        ));
    }
    let mut from = 0;
    let mut span: Option<Span> = None;
    for run in lines.split(|l| is_elision(l)) {
        let run = trim_blank(run);
        if run.is_empty() {
            continue;
        }
        let start = (from..file.len())
            .find(|&at| run_matches(&file, at, run))
            .ok_or_else(|| {
                format!(
                    "no longer matches its file: `{}` (and the lines after it) not found{}",
                    run[0].trim(),
                    if from > 0 {
                        " after the previous part"
                    } else {
                        ""
                    }
                )
            })?;
        from = start + run.len();
        span = Some(Span {
            first: span.map_or(start + 1, |s| s.first),
            last: from,
        });
    }
    span.ok_or_else(|| "is empty".to_owned())
}

fn trim_blank<'a>(run: &'a [&'a str]) -> &'a [&'a str] {
    let start = run
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(run.len());
    let end = run
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(start, |e| e + 1);
    &run[start..end]
}

/// Whether `run` stands in `file` from line index `at`, every line shifted
/// right by the same indentation.
fn run_matches(file: &[&str], at: usize, run: &[&str]) -> bool {
    let Some(window) = file.get(at..at + run.len()) else {
        return false;
    };
    let indent = |l: &str| l.len() - l.trim_start().len();
    let Some(shift) = indent(window[0]).checked_sub(indent(run[0])) else {
        return false;
    };
    window.iter().zip(run).all(|(have, want)| {
        if want.trim().is_empty() {
            return have.trim().is_empty();
        }
        have.get(..shift).is_some_and(|pad| pad.trim().is_empty())
            && have[shift..].trim_end() == want.trim_end()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "impl Room {\n    pub fn a(&self) {\n        one();\n\n        two();\n    }\n\n    pub fn b(&self) {\n        three();\n    }\n}\n";

    #[test]
    fn dedented_runs_with_elisions_are_found_in_order() {
        let excerpt = "pub fn a(&self) {\n    one();\n\n// ...\npub fn b(&self) {\n    three();\n";
        assert_eq!(locate(FILE, excerpt), Ok(Span { first: 2, last: 9 }));
        assert_eq!(
            locate(FILE, "    two();  \n}\n"),
            Ok(Span { first: 5, last: 6 })
        );
    }

    #[test]
    fn changed_reordered_or_long_excerpts_are_refused() {
        assert!(locate(FILE, "pub fn a(&self) {\n    uno();\n").is_err());
        let reordered = "pub fn b(&self) {\n// ...\npub fn a(&self) {\n";
        assert!(locate(FILE, reordered)
            .unwrap_err()
            .contains("after the previous part"));
        // Deeper than the file is not a match: indentation only shrinks.
        assert!(locate(FILE, "            one();\n").is_err());
        assert!(locate(FILE, &"one();\n".repeat(MAX_LINES + 1)).is_err());
        assert!(locate(FILE, "// ...\n").is_err());
    }

    #[test]
    fn info_strings_name_files() {
        assert_eq!(
            parse_info("rust src/room.rs"),
            Some(("rust", "src/room.rs"))
        );
        assert_eq!(parse_info("toml Cargo.toml"), Some(("toml", "Cargo.toml")));
        assert_eq!(parse_info("rust"), None);
        assert_eq!(parse_info("http"), None);
    }
}
