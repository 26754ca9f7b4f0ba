//! The one direction of dependencies inside the `firedrill` crate. Between crates the compiler
//! enforces it (`firedrill-core` cannot name `firedrill-net`); inside this crate this test
//! does: a module may use only the modules before it in [`LAYERS`], so a new back-edge (an
//! environment calling a renderer, the drill writing a report) fails here with its file.

use std::path::{Path, PathBuf};

use crate::common::repo;

/// The root crate's modules, lowest first. The crates below it (`firedrill-core`,
/// `firedrill-net`, `firedrill-stack`, re-exported under their module names) may be used
/// by any of them.
const LAYERS: [&str; 8] = ["env", "recover", "store", "engine", "drill", "simulate", "report", "tabletop"];

/// Modules re-exported from the crates below; always allowed.
const BELOW: [&str; 17] = [
    "dist", "duration", "journal", "metrics", "record", "redact", "rng", "sample", "scenario", "score", "text",
    "timeline", "word", "load", "probe", "process", "tls",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names through `crate::`, including inside `use crate::{…}`.
fn crate_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Only the group's top level names modules: `{a::b, c, d::{e, f}}`.
            let (mut depth, mut item) = (0, String::new());
            let mut names = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => names.push(std::mem::take(&mut item)),
                    _ if depth == 0 => item.push(c),
                    _ => {}
                }
            }
            names.push(item);
            for name in names {
                let name: String = name.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            found.push(name);
        }
    }
    found
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let src = repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut back_edges = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let top = relative.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or_default();
        let top = top.trim_end_matches(".rs");
        let Some(level) = LAYERS.iter().position(|l| *l == top) else {
            // lib.rs, main.rs and the command line sit above every layer.
            continue;
        };
        let text = std::fs::read_to_string(file).expect("a source file is readable");
        for used in crate_modules(&text) {
            if used == top || BELOW.contains(&used.as_str()) {
                continue;
            }
            match LAYERS.iter().position(|l| *l == used) {
                Some(to) if to < level => {}
                Some(_) => back_edges.push(format!("{}: `{top}` uses `{used}`, a layer above it", relative.display())),
                None => back_edges.push(format!("{}: `crate::{used}` is in no layer", relative.display())),
            }
        }
    }
    assert!(back_edges.is_empty(), "back-edges in the layering {LAYERS:?}:\n{}", back_edges.join("\n"));
}

#[test]
fn the_parser_sees_grouped_and_plain_paths() {
    let text = "use crate::{env::{A, B}, drill, report::x};\nlet _ = crate::simulate::run();";
    assert_eq!(crate_modules(text), ["env", "drill", "report", "simulate"]);
}
