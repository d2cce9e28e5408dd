//! The server's crates have no import cycle inside them: each module uses only modules below it, so
//! the layers stay visible in the code. Between crates, cargo already forbids cycles (runtime → proxy →
//! admin → gateway); inside each, the graph is read from the sources: every `crate::...` and
//! `super::...` path outside comments and test modules is an edge from the file's module to the module
//! it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn module_name(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|p| p != "mod")
        .collect();
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` module (which sits last).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The longest known module that `path` (`a::b::c`) starts with.
fn resolve<'m>(modules: &'m BTreeSet<String>, path: &str) -> Option<&'m String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| modules.get(&parts[..n].join("::")))
}

fn ident_end(s: &str) -> usize {
    s.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len())
}

/// The module paths a file's code names: `crate::a::b`, `crate::{a, b::c}`, `super::x`.
fn named_paths(module: &str, code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item = item.trim();
                out.push(item[..ident_end(item)].to_owned());
            }
        } else {
            let path = rest[..ident_end(rest)].trim_end_matches(':');
            if let Some((head, _)) = path.rsplit_once("::{") {
                out.push(head.to_owned());
            }
            out.push(path.to_owned());
        }
    }
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    for (i, _) in code.match_indices("super::") {
        let rest = &code[i + "super::".len()..];
        let name = &rest[..ident_end(rest)];
        let name = name.split("::").next().unwrap_or("");
        if !name.is_empty() {
            out.push(if parent.is_empty() {
                name.to_owned()
            } else {
                format!("{parent}::{name}")
            });
        }
    }
    out
}

/// The crates of the server, each checked on its own.
const CRATES: [&str; 4] = [
    "switchyard-runtime",
    "switchyard-proxy",
    "switchyard-admin",
    "switchyard-gateway",
];

fn graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let sources: BTreeMap<String, String> = files
        .iter()
        .map(|f| (module_name(&src, f), std::fs::read_to_string(f).unwrap()))
        .filter(|(m, _)| m != "lib")
        .collect();
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (module, text) in &sources {
        let targets: BTreeSet<String> = named_paths(module, &code_of(text))
            .iter()
            .filter_map(|p| resolve(&modules, p))
            // A module may use its own children and its ancestors' items (mod.rs declares them).
            .filter(|t| *t != module && !module.starts_with(&format!("{t}::")))
            .cloned()
            .collect();
        edges.insert(module.clone(), targets);
    }
    edges
}

/// A cycle through `start`, if there is one (depth-first search).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

#[test]
fn the_server_crates_import_no_cycle_between_their_modules() {
    for krate in CRATES {
        let edges = graph(krate);
        assert!(
            edges.len() >= 4,
            "the source tree of {krate} was not found: {edges:?}"
        );
        if let Some(cycle) = find_cycle(&edges) {
            panic!("import cycle between {krate}'s modules: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_graph_reader_sees_real_edges() {
    // So that an empty graph cannot pass by accident.
    let proxy = graph("switchyard-proxy");
    assert!(
        proxy["pipeline::respond"].contains("pipeline::dispatch"),
        "{:?}",
        proxy["pipeline::respond"]
    );
    assert!(
        proxy["routes::chat"].contains("pipeline"),
        "{:?}",
        proxy["routes::chat"]
    );
    let runtime = graph("switchyard-runtime");
    assert!(runtime["state"].contains("governance"), "{:?}", runtime["state"]);
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut edges = BTreeMap::new();
    edges.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    edges.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    edges.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(find_cycle(&edges).unwrap(), ["a", "b", "c", "a"]);
    edges.insert("c".to_owned(), BTreeSet::new());
    assert_eq!(find_cycle(&edges), None);
}

#[test]
fn paths_in_use_groups_and_super_are_read() {
    let code = "use crate::{error::ApiError, state};\nuse super::finish::ObsHandle;\nlet x = crate::trail::upstream_ms(t);";
    let paths = named_paths("pipeline::respond", code);
    for p in [
        "error::ApiError",
        "state",
        "pipeline::finish",
        "trail::upstream_ms",
    ] {
        assert!(paths.iter().any(|x| x == p), "{p} missing from {paths:?}");
    }
}
