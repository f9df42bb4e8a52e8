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
