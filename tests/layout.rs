//! Dependencies run one way: no cycle between the crate's top-level modules.
//!
//! Reads every `src/**/*.rs`, takes each `crate::x` path (in `use` lines
//! and in code, `use crate::{x, y}` groups included) as an edge from the
//! file's top-level module to `x`, leaving out comments, string literals
//! and `#[cfg(test)]` items (a unit test may reach anywhere), and fails on
//! the first cycle it finds, naming it. The crate root (`lib.rs`) and the
//! binaries are not modules of the graph: they sit on top of it.
//!
//! `cargo test --test layout -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn top_level_modules_have_no_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&root, &mut files);
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|path| {
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy();
            (
                rel.replace('\\', "/"),
                std::fs::read_to_string(path).unwrap(),
            )
        })
        .collect();
    let graph = graph(&sources);
    assert!(graph.len() > 10, "too few modules found: {graph:?}");
    for (module, uses) in &graph {
        let uses: Vec<_> = uses.iter().map(String::as_str).collect();
        println!("{module} -> {}", uses.join(", "));
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle: {}", cycle.join(" -> "));
    }
    // DESIGN.md: the clients depend only on the message model.
    let client = graph.get("client").cloned().unwrap_or_default();
    assert!(
        client.iter().all(|m| m == "message"),
        "client uses more than the message model: {client:?}"
    );
}

#[test]
fn a_cycle_is_caught_and_test_code_and_comments_are_not_edges() {
    let files = [
        ("room.rs", "use crate::backbone::Log;\n// crate::stats in a comment\n"),
        (
            "backbone/mod.rs",
            "use crate::{message::Posted, room::Room};\nconst S: &str = \"crate::app\";\n",
        ),
        ("message.rs", "#[cfg(test)]\nmod tests {\n    use crate::room::Room;\n    fn f() { let _ = '{'; }\n}\n"),
        ("stats.rs", "/* crate::app */ fn f() -> crate::room::Rooms { todo!() }\n"),
    ]
    .map(|(p, s)| (p.to_owned(), s.to_owned()));
    let graph = graph(&files);
    assert_eq!(
        graph["message"],
        BTreeSet::new(),
        "a cfg(test) item is no edge"
    );
    assert_eq!(graph["room"], BTreeSet::from(["backbone".to_owned()]));
    assert_eq!(graph["stats"], BTreeSet::from(["room".to_owned()]));
    let cycle = find_cycle(&graph).expect("room -> backbone -> room is a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.contains(&"room".to_owned()) && cycle.contains(&"backbone".to_owned()));
    assert!(!cycle.contains(&"stats".to_owned()), "{cycle:?}");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to; `None` for the
/// crate root and the binaries.
fn module_of(rel: &str) -> Option<String> {
    if rel == "lib.rs" || rel == "main.rs" || rel.starts_with("bin/") {
        return None;
    }
    let first = rel.split('/').next()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

/// Edges between top-level modules, from `(path under src/, text)` pairs.
fn graph(files: &[(String, String)]) -> Graph {
    let mut graph = Graph::new();
    for (rel, text) in files {
        let Some(module) = module_of(rel) else {
            continue;
        };
        let code = without_test_items(&strip_comments_and_strings(text));
        let uses = graph.entry(module.clone()).or_default();
        for target in crate_paths(&code) {
            if target != module {
                uses.insert(target);
            }
        }
    }
    // `crate::run`-style re-exports of the root are not modules.
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for uses in graph.values_mut() {
        uses.retain(|m| modules.contains(m));
    }
    graph
}

/// Replaces comments and the insides of string and char literals with
/// spaces, so neither can make an edge (or unbalance a brace).
fn strip_comments_and_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if b[i] == b'"'
            || (b[i] == b'r' && b[i..].starts_with(b"r\""))
            || b[i..].starts_with(b"r#")
        {
            i = skip_string(b, i);
            out.push_str("\"\"");
        } else if b[i] == b'\'' && is_char_literal(b, i) {
            i = skip_char(b, i);
            out.push_str("' '");
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn skip_string(b: &[u8], mut i: usize) -> usize {
    if b[i] == b'r' {
        i += 1;
        let mut hashes = 0;
        while b.get(i) == Some(&b'#') {
            hashes += 1;
            i += 1;
        }
        i += 1; // the opening quote
        while i < b.len() {
            if b[i] == b'"'
                && b[i + 1..]
                    .iter()
                    .take(hashes)
                    .filter(|&&c| c == b'#')
                    .count()
                    == hashes
            {
                return i + 1 + hashes;
            }
            i += 1;
        }
        return i;
    }
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// A `'` opens a char literal, not a lifetime, when it closes within a
/// few bytes (`'a'`, `'\n'`, `'\u{1F600}'`).
fn is_char_literal(b: &[u8], i: usize) -> bool {
    match b.get(i + 1) {
        Some(b'\\') => true,
        Some(_) => {
            let len = std::str::from_utf8(&b[i + 1..])
                .ok()
                .or_else(|| std::str::from_utf8(&b[i + 1..(i + 5).min(b.len())]).ok())
                .and_then(|s| s.chars().next())
                .map_or(1, char::len_utf8);
            b.get(i + 1 + len) == Some(&b'\'')
        }
        None => false,
    }
}

fn skip_char(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Drops each item marked `#[cfg(test)]`: up to its `;`, or its balanced
/// `{...}` block.
fn without_test_items(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let end = match (item.find('{'), item.find(';')) {
            (Some(open), semi) if semi.is_none_or(|s| open < s) => {
                let mut depth = 0;
                let mut end = item.len();
                for (i, c) in item[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (_, Some(semi)) => semi + 1,
            _ => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The top-level modules named by `crate::x` paths, `crate::{x, y::z}`
/// groups included.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `skyrocket_crate::`, not ours
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if item_start && depth == 1 && (c.is_alphabetic() || c == '_') => {
                        found.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// A cycle as `[a, b, ..., a]`, if the graph has one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::OnPath);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::OnPath => {
                    let start = path.iter().position(|n| n == next).unwrap();
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(next, graph, marks, path) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}
