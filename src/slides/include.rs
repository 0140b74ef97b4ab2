//! No hand-typed numbers: slides quote the result files under `results/`.
//!
//! Two directives, expanded before the Markdown is rendered (never inside
//! code blocks):
//! - a line `::include results/FILE.md#PART` puts that part of the file on
//!   the slide, with a caption naming the file (a link), and the command,
//!   machine and date it records (see [`crate::provenance`]). `PART` is
//!   `table` (the first table), `table-2` (the second) ..., a heading's slug
//!   (`#server-frame`: that section, up to the next heading of its level),
//!   `provenance` (the caption alone, under a chart), or absent (the whole
//!   file but its title);
//! - `{{results/FILE.md#PART[row][column]}}` anywhere in prose or a table
//!   puts one cell there: `PART`'s first table, the row whose first cell is
//!   `row` (or whose leading cells are `a & b`, where the first repeats),
//!   the column headed `column`. Hovering shows where it came from.
//!
//! A file that does not exist, a part or cell that is not there, or a
//! quoted report that does not say its command and machine is a problem on
//! the slide. Files are read once per render.

use super::{escape, slug, Fences};
use crate::provenance::Provenance;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The result files of one render, read on first use.
#[derive(Debug)]
pub struct ResultFiles<'a> {
    root: &'a Path,
    read: HashMap<String, Result<String, String>>,
    /// Files already captioned in the current `expand`: a slide that quotes
    /// one file twice (two columns of it, say) names it once.
    captioned: HashSet<String>,
}

impl<'a> ResultFiles<'a> {
    pub fn new(root: &'a Path) -> Self {
        Self {
            root,
            read: HashMap::new(),
            captioned: HashSet::new(),
        }
    }

    /// `markdown` with its `::include` lines and `{{...}}` cells replaced;
    /// what could not be quoted goes to `problems`.
    pub fn expand(&mut self, markdown: &str, problems: &mut Vec<String>) -> String {
        let mut out = String::with_capacity(markdown.len());
        let mut fences = Fences::default();
        self.captioned.clear();
        for line in markdown.lines() {
            if fences.code(line) {
                out.push_str(line);
            } else if let Some(spec) = line.strip_prefix("::include ") {
                match self.include(spec.trim()) {
                    Ok(quoted) => out.push_str(&quoted),
                    Err(e) => problems.push(e),
                }
            } else {
                out.push_str(&self.cells(line, problems));
            }
            out.push('\n');
        }
        out
    }

    /// The Markdown an `::include` line stands for.
    fn include(&mut self, spec: &str) -> Result<String, String> {
        let (path, part) = spec.split_once('#').unwrap_or((spec, ""));
        let text = self.file(path)?;
        let provenance = Provenance::parse(&text);
        if provenance.command.is_none() || provenance.machine.is_none() {
            return Err(format!(
                "{path} does not say the command and machine that produced it \
                 (`Command:` and `Machine:` lines; see src/provenance.rs)"
            ));
        }
        let quoted = select(&text, part).map_err(|e| format!("{path}: {e}"))?;
        if !self.captioned.insert(path.to_owned()) {
            return Ok(format!("{quoted}\n"));
        }
        Ok(format!(
            "{quoted}\n<div class=\"source\">\n\n{}\n\n</div>\n",
            caption(path, &provenance)
        ))
    }

    /// `line` with each `{{...}}` cell reference replaced by its value.
    fn cells(&mut self, line: &str, problems: &mut Vec<String>) -> String {
        let mut out = String::new();
        let mut rest = line;
        while let Some(start) = rest.find("{{results/") {
            let Some(len) = rest[start..].find("}}") else {
                break;
            };
            out.push_str(&rest[..start]);
            let spec = &rest[start + 2..start + len];
            match self.cell(spec) {
                Ok(html) => out.push_str(&html),
                Err(e) => {
                    problems.push(e);
                    out.push_str("<span class=\"num missing\">?</span>");
                }
            }
            rest = &rest[start + len + 2..];
        }
        out.push_str(rest);
        out
    }

    fn cell(&mut self, spec: &str) -> Result<String, String> {
        let bad = || format!("{{{{{spec}}}}} is not `{{{{results/FILE#PART[row][column]}}}}`");
        let (file, keys) = spec.split_once('[').ok_or_else(bad)?;
        let (row, column) = keys
            .strip_suffix(']')
            .and_then(|k| k.split_once("]["))
            .ok_or_else(bad)?;
        let (path, part) = file.split_once('#').unwrap_or((file, "table"));
        let text = self.file(path)?;
        let selected = select(&text, part).map_err(|e| format!("{path}: {e}"))?;
        let table = tables(&selected)
            .into_iter()
            .next()
            .ok_or_else(|| format!("{path}#{part} has no table"))?;
        let value = lookup(&table, row, column).map_err(|e| format!("{path}#{part}: {e}"))?;
        Ok(format!(
            "<span class=\"num\" title=\"{}\">{}</span>",
            escape(&format!("{path}: {row}, {column}")),
            value.trim()
        ))
    }

    fn file(&mut self, path: &str) -> Result<String, String> {
        let root = self.root;
        self.read
            .entry(path.to_owned())
            .or_insert_with(|| read_result(root, path))
            .clone()
    }
}

fn read_result(root: &Path, path: &str) -> Result<String, String> {
    if !path.starts_with("results/") {
        return Err(format!("{path}: slides quote files under results/ only"));
    }
    let resolved = super::files::resolve(root, path)
        .filter(|r| !r.is_dir)
        .ok_or_else(|| format!("{path} does not exist (quoted by a slide)"))?;
    std::fs::read_to_string(&resolved.path).map_err(|e| format!("{path}: {e}"))
}

/// "from results/x.md: `command`, on MACHINE, DATE", with the file linked.
fn caption(path: &str, provenance: &Provenance) -> String {
    let mut caption = format!("from [{path}](/{path})");
    if let Some(command) = &provenance.command {
        caption.push_str(&format!(" · made by {command}"));
    }
    if let Some(machine) = &provenance.machine {
        caption.push_str(&format!(" · on {machine}"));
    }
    if let Some(date) = &provenance.date {
        caption.push_str(&format!(" · {date}"));
    }
    if let Some(commit) = &provenance.commit {
        caption.push_str(&format!(" · commit {commit}"));
    }
    caption
}

/// The part of a result file a fragment names.
pub fn select(text: &str, part: &str) -> Result<String, String> {
    match part {
        "" => Ok(text
            .lines()
            .skip_while(|l| !l.starts_with("# "))
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n")),
        "provenance" => Ok(String::new()),
        "table" => nth_table(text, 1),
        _ => match part.strip_prefix("table-").map(str::parse::<usize>) {
            Some(Ok(n)) if n >= 1 => nth_table(text, n),
            _ => section(text, part),
        },
    }
}

fn nth_table(text: &str, n: usize) -> Result<String, String> {
    tables(text)
        .into_iter()
        .nth(n - 1)
        .ok_or_else(|| format!("has no table number {n}"))
}

/// Every Markdown table in `text` (outside code), each as its lines.
pub fn tables(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut fences = Fences::default();
    for line in text.lines().chain([""]) {
        let row = !fences.code(line) && line.trim_start().starts_with('|');
        if row {
            current.push(line);
            continue;
        }
        if current.len() >= 2 && is_delimiter_row(current[1]) {
            found.push(current.join("\n"));
        }
        current.clear();
    }
    found
}

fn is_delimiter_row(line: &str) -> bool {
    line.contains('-') && line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// The section under the heading whose slug is `wanted`, without the
/// heading, up to the next heading of the same or a higher level.
fn section(text: &str, wanted: &str) -> Result<String, String> {
    let mut fences = Fences::default();
    let mut level_open: Option<usize> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let heading = (!fences.code(line)).then(|| heading(line)).flatten();
        match (level_open, heading) {
            (Some(open), Some((level, _))) if level <= open => break,
            (Some(_), _) => out.push(line),
            (None, Some((level, title))) if slug(title) == wanted => level_open = Some(level),
            (None, _) => {}
        }
    }
    match level_open {
        Some(_) => Ok(out.join("\n").trim().to_owned()),
        None => Err(format!(
            "no part `#{wanted}` (a heading with that slug, `table` or `table-N`)"
        )),
    }
}

/// `(level, text)` of an ATX heading line.
fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    let text = line.get(level..)?;
    ((1..=6).contains(&level) && text.starts_with(' ')).then(|| (level, text.trim()))
}

/// The cell in the row whose first cell is `row` and the column headed
/// `column` (both compared without case and inline marks). Where the first
/// cell repeats (a table per count, then per case), `row` may name the
/// leading cells joined by ` & `: `2000 & redis, other instance`.
fn lookup(table: &str, row: &str, column: &str) -> Result<String, String> {
    let rows: Vec<Vec<&str>> = table.lines().map(cells_of).collect();
    let header = rows.first().ok_or("empty table")?;
    let col = header
        .iter()
        .position(|h| same(h, column))
        .ok_or_else(|| format!("no column `{column}` (columns: {})", header.join(", ")))?;
    let found = rows
        .iter()
        .skip(2)
        .find(|r| {
            let keys: Vec<&str> = row.split(" & ").collect();
            keys.len() <= r.len() && keys.iter().zip(r.iter()).all(|(k, c)| same(c, k))
        })
        .ok_or_else(|| format!("no row `{row}`"))?;
    found
        .get(col)
        .filter(|v| !v.is_empty())
        .map(|v| v.to_string())
        .ok_or_else(|| format!("row `{row}` has no value under `{column}`"))
}

fn cells_of(line: &str) -> Vec<&str> {
    let line = line.trim();
    let line = line.strip_prefix('|').unwrap_or(line);
    let line = line.strip_suffix('|').unwrap_or(line);
    line.split('|').map(str::trim).collect()
}

fn same(cell: &str, key: &str) -> bool {
    let plain = |s: &str| s.replace(['`', '*'], "").trim().to_lowercase();
    plain(cell) == plain(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "# Report\n\nCommand: `make it`  \nMachine: 2 cores\n\n\
        | transport | B/msg |\n| --- | ---: |\n| ws | 4.0 |\n| sse | 27.6 |\n\n\
        ## Frames\n\n```text\n| not | a table |\n| --- | --- |\n```\n\n### Detail\nx\n\n\
        | byte | meaning |\n| --- | --- |\n| 0 | FIN |\n\n## Other\ny\n";

    #[test]
    fn parts_select_tables_and_sections() {
        assert!(select(REPORT, "table").unwrap().contains("| ws | 4.0 |"));
        assert!(select(REPORT, "table-2").unwrap().contains("| 0 | FIN |"));
        assert!(select(REPORT, "table-3").is_err(), "the fenced one is code");
        let frames = select(REPORT, "frames").unwrap();
        assert!(frames.starts_with("```text") && frames.contains("### Detail"));
        assert!(!frames.contains("## Other"));
        assert!(select(REPORT, "nowhere").is_err());
        assert!(select(REPORT, "").unwrap().starts_with("\nCommand:"));
    }

    #[test]
    fn cells_are_found_by_row_and_column() {
        let table = select(REPORT, "table").unwrap();
        assert_eq!(lookup(&table, "sse", "b/msg").unwrap(), "27.6");
        assert!(lookup(&table, "poll", "B/msg").is_err());
        assert!(lookup(&table, "ws", "latency").is_err());
        let repeated = "| n | case | p50 |\n| - | - | - |\n| 1 | memory | 0.1 |\n| 1 | redis | 0.3 |\n| 9 | redis | 0.4 |\n";
        assert_eq!(lookup(repeated, "1", "p50").unwrap(), "0.1");
        assert_eq!(lookup(repeated, "1 & redis", "p50").unwrap(), "0.3");
        assert_eq!(lookup(repeated, "9 & Redis", "p50").unwrap(), "0.4");
        assert!(lookup(repeated, "9 & memory", "p50").is_err());
    }

    #[test]
    fn directives_expand_from_files_and_report_what_is_missing() {
        let dir = std::env::temp_dir().join(format!("skyrocket-include-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("results")).unwrap();
        std::fs::write(dir.join("results/r.md"), REPORT).unwrap();
        std::fs::write(
            dir.join("results/bare.md"),
            "| a | b |\n| - | - |\n| 1 | 2 |\n",
        )
        .unwrap();
        let mut files = ResultFiles::new(&dir);
        let mut problems = Vec::new();
        let md = "::include results/r.md#table\n::include results/r.md#frames\nws adds {{results/r.md#table[ws][B/msg]}} bytes\n\
                  ```\n::include results/none.md\n```\n";
        let out = files.expand(md, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(out.contains("| sse | 27.6 |"));
        assert_eq!(out.matches("made by `make it` · on 2 cores").count(), 1);
        assert!(out.contains(">4.0</span> bytes"));
        assert!(
            out.contains("::include results/none.md"),
            "code is left alone"
        );

        let bad = "::include results/none.md\n::include results/bare.md\n{{results/r.md[ws][x]}}\n";
        files.expand(bad, &mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("does not exist"));
        assert!(problems[1].contains("command and machine"));
        assert!(problems[2].contains("no column `x`"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
