//! The layers, checked: the HTTP API (`src/api/`) sits on top, with the app that builds it
//! and the command line above it; nothing below the API names it (or the app), so the
//! actors, engines, database, auth and outbox can be used and tested without HTTP.

use std::path::{Path, PathBuf};

/// What may name the API: the API itself and the layers above it.
const TOP: [&str; 5] = ["api/", "app.rs", "cli.rs", "main.rs", "lib.rs"];
const UPWARD: [&str; 3] = ["crate::api", "crate::app", "crate::cli"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn nothing_below_the_api_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if TOP.iter().any(|top| relative.starts_with(top)) {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if UPWARD.iter().any(|name| code.contains(name)) {
                upward.push(format!("src/{relative}:{}: {}", n + 1, code));
            }
        }
    }
    assert!(files.len() > 50, "the sources were not found: {}", src.display());
    assert!(
        upward.is_empty(),
        "below the API, naming a layer above it:\n{}",
        upward.join("\n")
    );
}

/// The top-level modules a file names through `crate::…` (`use crate::{a, b::c}` included).
fn named_modules(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    out.push(item.trim().to_owned());
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else if depth >= 1 {
                    item.push(c);
                }
            }
        } else {
            out.push(rest.to_owned());
        }
    }
    out.into_iter()
        .filter_map(|item| {
            let name: String = item
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty() && name != "self").then_some(name)
        })
        .collect()
}

/// Which top-level module (`src/x.rs` or `src/x/…`) names which.
fn module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let top = relative.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
        let code: String = std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let deps = graph.entry(top.clone()).or_default();
        deps.extend(named_modules(&code).into_iter().filter(|m| *m != top));
    }
    graph
}

/// A cycle through `start`, if any: the path back to it.
fn cycle_from(
    graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    start: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = std::collections::BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in graph.get(&at).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_owned());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn the_modules_import_each_other_without_a_cycle() {
    let graph = module_graph();
    for layer in ["api", "gateway", "auth", "actors", "db", "engine", "metrics", "events"] {
        assert!(graph.contains_key(layer), "no module {layer}: {:?}", graph.keys());
    }
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|module| cycle_from(&graph, module))
        .map(|cycle| cycle.join(" -> "))
        .collect();
    assert!(
        cycles.is_empty(),
        "modules that import each other:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let graph = [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec!["a"])]
        .into_iter()
        .map(|(m, deps)| (m.to_owned(), deps.into_iter().map(str::to_owned).collect()))
        .collect();
    assert_eq!(cycle_from(&graph, "a").unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(cycle_from(&graph, "d"), None);
    assert_eq!(
        named_modules("use crate::{actors::{Phones, call}, db};\nlet x = crate::events::data(1);"),
        ["actors", "db", "events"]
    );
}

#[test]
fn handlers_reach_phones_and_data_through_the_gateway_only() {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut files = Vec::new();
    sources(&api, &mut files);
    // The actors' messages and call, the database handle and its rows, the outbox and the
    // actors' shared state are the gateway's to use: views are built from domain types.
    let forbidden = [
        "state.db",
        "::Model",
        "crate::db::",
        "actors::call",
        "CacheMsg",
        "PhoneMsg",
        "DispatcherMsg",
        ".shared()",
        "outbox",
    ];
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            // The one database type the API knows: how a failure maps to a status.
            let code = code.replace("crate::db::Failure", "");
            for name in forbidden.iter().filter(|name| code.contains(*name)) {
                found.push(format!("{}:{}: {name}: {code}", file.display(), n + 1));
            }
        }
    }
    assert!(files.len() > 10, "the API's sources were not found");
    assert!(found.is_empty(), "handlers around the gateway:\n{}", found.join("\n"));
}
