//! The monitor's house rules, checked on its source: no module imports from one that imports it,
//! neither between its sub-modules (`judge`, `alerting`, `events`, ...) nor between the files of
//! one sub-module (`evaluate` and `lag` share their types through `state`, below both); and no
//! function is longer than a screen ([`LONGEST_FUNCTION`] lines), so that each decision reads in
//! one place. Test modules are left out: a test may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The most lines a function of the monitor may take, its signature and closing brace included.
const LONGEST_FUNCTION: usize = 100;

/// Every source file of `monitor/`, by its path under `src/`, without its test module.
fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.join("monitor")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("monitor/ is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a readable source file");
                let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_string();
                let name = path.strip_prefix(&src).unwrap_or(&path).display().to_string();
                files.push((name, code));
            }
        }
    }
    files.sort();
    files
}

/// The functions of `code` and their lengths in lines: from the `fn` line to the first line
/// after it that closes at the same indentation (rustfmt's layout).
fn function_lengths(code: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let Some(at) = trimmed.find("fn ") else { continue };
        let before = &trimmed[..at];
        if !before
            .split_whitespace()
            .all(|w| ["pub", "async", "const", "unsafe"].contains(&w) || w.starts_with("pub("))
        {
            continue;
        }
        let name: String = trimmed[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // The signature ends where the body opens; a declaration (a trait's) ends with `;`.
        let Some(open) = lines[i..].iter().position(|l| {
            let t = l.trim_end();
            t.ends_with('{') || t.ends_with(';') || t.ends_with('}')
        }) else {
            continue;
        };
        if !lines[i + open].trim_end().ends_with('{') {
            continue;
        }
        let closes = |l: &&str| {
            let t = l.trim_start();
            l.len() - t.len() == indent && t.starts_with('}')
        };
        if let Some(end) = lines[i + open + 1..].iter().position(closes) {
            found.push((name, open + end + 2));
        }
    }
    found
}

#[test]
fn no_function_of_the_monitor_is_longer_than_a_screen() {
    let files = sources();
    assert!(
        files.iter().any(|(f, _)| f.ends_with("run.rs")),
        "the walk found the monitor's files: {files:?}"
    );
    let long: Vec<String> = files
        .iter()
        .flat_map(|(file, code)| {
            function_lengths(code)
                .into_iter()
                .filter(|(_, n)| *n > LONGEST_FUNCTION)
                .map(move |(name, n)| format!("{file}: {name} is {n} lines"))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by question (at most {LONGEST_FUNCTION} lines each): {long:?}"
    );
}

#[test]
fn the_length_check_measures_bodies_and_skips_declarations() {
    let code = "pub async fn short() {\n    x();\n}\n\ntrait T {\n    fn declared(&self) -> u8;\n    fn with_body(&self) {\n        if a {\n        }\n    }\n}\n\nfn long(\n    a: u8,\n) -> u8\nwhere\n    T: X,\n{\n    a;\n    b\n}\nfn one() {}\n";
    assert_eq!(
        function_lengths(code),
        vec![
            ("short".to_string(), 3),
            ("with_body".to_string(), 4),
            ("long".to_string(), 9)
        ]
    );
}

/// Every module of `monitor/` (`judge::lag`, `run`, ...) and the modules it names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/monitor");
    let mut graph = BTreeMap::new();
    let mut dirs = vec![(root.clone(), String::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("monitor/ is readable").flatten() {
            let path = entry.path();
            let name = path
                .file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if path.is_dir() {
                dirs.push((path, format!("{prefix}{name}::")));
                continue;
            }
            let module = if name == "mod" {
                prefix.trim_end_matches("::").to_string()
            } else {
                format!("{prefix}{name}")
            };
            if module.is_empty() {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            // Code only: comments (doc links) name modules without importing them.
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let parent = prefix.trim_end_matches("::");
            graph.insert(module.clone(), referenced(&code, parent, &module));
        }
    }
    graph
}

/// The monitor modules `code` names: `crate::monitor::a::b` and, relative to `parent`,
/// `super::b` (down to the deepest path that is a module; resolved against the graph later).
fn referenced(code: &str, parent: &str, me: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (marker, base) in [("crate::monitor::", String::new()), ("super::", parent.to_string())] {
        for (i, _) in code.match_indices(marker) {
            // `super::` inside a longer path (`crate::x::super::`) is not relative to here.
            if marker == "super::" && code[..i].ends_with(':') {
                continue;
            }
            let rest = &code[i + marker.len()..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            if !base.is_empty() {
                parts.insert(0, &base);
            }
            let full = parts.join("::");
            if !full.is_empty() && full != me {
                out.insert(full);
            }
        }
    }
    out
}

/// `path` cut down to the longest prefix that is a module of the graph.
fn module_of(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|p| modules.contains(p))
}

/// Every pair of modules that reach each other, directly or through others.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = graph.get(from).into_iter().flatten().collect();
        while let Some(m) = todo.pop() {
            if seen.insert(m.clone()) {
                todo.extend(graph.get(m).into_iter().flatten());
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|m| (m, reach(m))).collect();
    let mut found = Vec::new();
    for (from, tos) in &reaches {
        for to in tos.iter().filter(|to| *from < *to) {
            if reaches.get(to).is_some_and(|back| back.contains(*from)) {
                found.push(format!("{from} <-> {to}"));
            }
        }
    }
    found
}

#[test]
fn no_module_of_the_monitor_imports_from_one_that_imports_it() {
    let raw = imports();
    let modules: BTreeSet<String> = raw.keys().cloned().collect();
    // Module level: each file's imports resolved to modules.
    let files: BTreeMap<String, BTreeSet<String>> = raw
        .iter()
        .map(|(m, refs)| {
            let to = refs
                .iter()
                .filter_map(|r| module_of(r, &modules))
                .filter(|t| t != m && !m.starts_with(&format!("{t}::")))
                .collect();
            (m.clone(), to)
        })
        .collect();
    assert!(
        files.contains_key("judge::evaluate") && files.contains_key("run"),
        "the walk found the monitor's modules: {:?}",
        files.keys()
    );
    // Sub-module level: `judge::lag` counts as `judge`.
    let top = |m: &str| m.split("::").next().unwrap_or_default().to_string();
    let mut tops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, tos) in &files {
        let entry = tops.entry(top(m)).or_default();
        entry.extend(tos.iter().map(|t| top(t)).filter(|t| *t != top(m)));
    }
    let mut found = circles(&files);
    found.extend(circles(&tops));
    assert!(found.is_empty(), "import circles in monitor/: {found:?}");
}

#[test]
fn the_circle_check_sees_circles_short_and_long() {
    let edge = |a: &str, b: &str| (a.to_string(), BTreeSet::from([b.to_string()]));
    let two = BTreeMap::from([
        edge("judge::evaluate", "judge::lag"),
        edge("judge::lag", "judge::evaluate"),
    ]);
    assert_eq!(circles(&two), vec!["judge::evaluate <-> judge::lag".to_string()]);
    let three = BTreeMap::from([edge("a", "b"), edge("b", "c"), edge("c", "a")]);
    assert_eq!(circles(&three).len(), 3, "{:?}", circles(&three));
    let line = BTreeMap::from([edge("a", "b"), edge("b", "c")]);
    assert!(circles(&line).is_empty());
}
