//! The library's top-level modules form layers: no chain of `crate::`
//! paths in non-test code leads from a module back to itself.
//!
//! Read from the source: every `crate::name` outside comments, in each
//! top-level module's files, up to its first `#[cfg(test)] mod` (test
//! modules, and files named `tests.rs` or `*_tests.rs`, may reach across).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module → module it names → the first place it does.
type Edges = BTreeMap<String, BTreeMap<String, String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_file(path: &Path) -> bool {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    stem == "tests" || stem.ends_with("_tests")
}

/// The top-level modules each non-test line of `text` names.
fn named(text: &str, modules: &BTreeSet<String>) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let code = line.split("//").next().unwrap_or("").trim();
        let next = lines.peek().map_or("", |(_, l)| l.trim());
        if code == "#[cfg(test)]" && next.starts_with("mod ") {
            break;
        }
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) {
                found.push((n + 1, name));
            }
        }
    }
    found
}

fn edges() -> Edges {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(&src).expect("src") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).expect("name");
        if !matches!(name, "lib" | "main") {
            modules.insert(name.to_owned());
        }
    }
    let mut edges = Edges::new();
    for module in &modules {
        let mut files = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(src.join(format!("{module}.rs")));
        }
        for file in files.iter().filter(|f| !is_test_file(f)) {
            let text = std::fs::read_to_string(file).expect("source file");
            for (line, to) in named(&text, &modules) {
                if &to != module {
                    let at = file.strip_prefix(&src).unwrap_or(file).display();
                    edges
                        .entry(module.clone())
                        .or_default()
                        .entry(to)
                        .or_insert_with(|| format!("{at}:{line}"));
                }
            }
        }
    }
    edges
}

/// A path from `from` back to `from`, if there is one.
fn cycle_through(edges: &Edges, from: &str) -> Option<Vec<String>> {
    fn walk(
        edges: &Edges,
        goal: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in edges.get(at).into_iter().flat_map(|m| m.keys()) {
            path.push(next.clone());
            if next == goal || (seen.insert(next.clone()) && walk(edges, goal, next, path, seen)) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = vec![from.to_owned()];
    walk(edges, from, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_top_level_module_reaches_itself() {
    let edges = edges();
    // The scan sees the layers it guards (so an empty graph cannot pass).
    for (from, to) in [
        ("tracker", "extractor"),
        ("pipeline", "tracker"),
        ("runtime", "output"),
    ] {
        assert!(
            edges.get(from).is_some_and(|m| m.contains_key(to)),
            "the scan missed {from} -> {to}"
        );
    }
    for from in edges.keys() {
        if let Some(cycle) = cycle_through(&edges, from) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} -> {} ({})", w[0], w[1], edges[&w[0]][&w[1]]))
                .collect();
            panic!("import cycle: {}", steps.join(", "));
        }
    }
}
