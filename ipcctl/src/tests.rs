//! Tests of the crate's shape: imports between ipcctl's modules go one way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of the crate (`cmd::mq`, `output`, …; `cmd` is `cmd/mod.rs`)
/// with its source, test modules cut off (their `use super::*` is no import).
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap().with_extension("");
            let name = rel.to_string_lossy().replace('/', "::");
            let name = name.strip_suffix("::mod").unwrap_or(&name).to_owned();
            if name == "main" || name == "tests" || name.ends_with("::tests") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap().to_owned();
            found.insert(name, code);
        }
    }
    found
}

/// The first names of each path after `prefix` (`super::{a, b::c}` gives a, b).
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let ident = |s: &'a str| s.split(|c: char| !c.is_alphanumeric() && c != '_').next();
    let mut out = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(
                group
                    .split(',')
                    .filter_map(|p| ident(p.trim()))
                    .map(|n| vec![n]),
            );
        } else {
            out.push(rest.split("::").map_while(ident).collect());
        }
    }
    out
}

/// The modules each module imports (by `crate::` or `super::` paths, or a
/// child's bare name).
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut graph = BTreeMap::new();
    for (name, code) in modules {
        let parent = name.rsplit_once("::").map_or("", |(p, _)| p);
        let mut uses = BTreeSet::new();
        for (base, prefix) in [("", "crate::"), (parent, "super::")] {
            for path in paths_after(code, prefix) {
                // The longest module the path names.
                let mut target = base.to_owned();
                for part in path {
                    let deeper = if target.is_empty() {
                        part.to_owned()
                    } else {
                        format!("{target}::{part}")
                    };
                    match modules.get_key_value(&deeper) {
                        Some((key, _)) => target = key.clone(),
                        None => break,
                    }
                }
                if let Some((key, _)) = modules.get_key_value(&target)
                    && key != name
                {
                    uses.insert(key.as_str());
                }
            }
        }
        // A child module named by its bare name (`mq::send(…)` in `cmd`).
        for child in modules.keys() {
            let bare = child
                .strip_prefix(name.as_str())
                .and_then(|c| c.strip_prefix("::"));
            if let Some(bare) = bare.filter(|b| !b.contains("::"))
                && code.match_indices(&format!("{bare}::")).any(|(at, _)| {
                    !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
                })
            {
                uses.insert(child.as_str());
            }
        }
        graph.insert(name.as_str(), uses);
    }
    graph
}

/// A cycle through `at`, if the imports from it lead back to one.
fn cycle<'a>(
    graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    at: &'a str,
    path: &mut Vec<&'a str>,
) -> Option<Vec<&'a str>> {
    if let Some(i) = path.iter().position(|m| *m == at) {
        return Some(path[i..].iter().copied().chain([at]).collect());
    }
    path.push(at);
    for next in &graph[at] {
        if let Some(c) = cycle(graph, next, path) {
            return Some(c);
        }
    }
    path.pop();
    None
}

#[test]
fn imports_between_modules_go_one_way() {
    let modules = modules();
    let graph = imports(&modules);
    // The layering this test keeps: output imports no command module.
    assert!(
        graph["output"].is_empty(),
        "output imports {:?}",
        graph["output"]
    );
    assert!(graph["cmd::objects"].contains("cmd::mq"), "{graph:?}");
    for start in graph.keys() {
        if let Some(c) = cycle(&graph, start, &mut Vec::new()) {
            panic!("import cycle: {}", c.join(" -> "));
        }
    }
}
