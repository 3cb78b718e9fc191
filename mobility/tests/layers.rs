//! The runtime's layers import one way only (see `src/lib.rs`):
//!
//! ```text
//! supervisor -> events -> node -> cell -> mailbox -> api -> proto
//! ```
//!
//! A lower layer reaches a higher one only through the traits it declares
//! itself (`api::host`, `mailbox::host`, `cell::host`), which the higher
//! layer implements. This test reads the sources and fails on any
//! `crate::<module>` path that points up, naming the file and line; and on
//! any source file of the runtime's crates over 800 lines.

use std::fs;
use std::path::{Path, PathBuf};

/// The crate's top-level modules, lowest first. `sync` is a leaf utility
/// that imports nothing of the crate. `fuzzing` (hidden entry points for
/// the fuzz targets of `fuzz/`) sits on top: it may reach any layer, and
/// none imports it.
const LAYERS: &[&str] = &[
    "sync",
    "proto",
    "api",
    "mailbox",
    "cell",
    "node",
    "events",
    "supervisor",
    "fuzzing",
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| *layer == module)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read the source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its unit tests (which may reach anywhere).
fn without_unit_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Every `crate::<name>` in `code`, with its line number.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in code.lines().enumerate() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((number + 1, name));
        }
    }
    found
}

#[test]
fn imports_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut upward = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative.components().next().expect("a path");
        let top = first.as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if top == "lib" {
            continue; // the crate root re-exports every layer
        }
        let Some(own) = rank(top) else {
            panic!(
                "{} is in no layer: add its top-level module to LAYERS in tests/layers.rs",
                relative.display()
            );
        };
        let text = fs::read_to_string(file).expect("read a source file");
        for (line, target) in crate_paths(without_unit_tests(&text)) {
            checked += 1;
            if let Some(target_rank) = rank(&target) {
                if target_rank > own {
                    upward.push(format!(
                        "{}:{line}: {top} imports {target}",
                        relative.display()
                    ));
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} crate paths found: is the parser broken?"
    );
    assert!(
        upward.is_empty(),
        "imports that point up the layers (reach the node through a trait of the lower layer instead):\n{}",
        upward.join("\n")
    );
}

#[test]
fn a_made_up_upward_import_is_caught() {
    // The checker itself: a path from `api` to `node` is seen, a path in a
    // comment or in unit tests is not.
    let code =
        "use crate::node::Node; // crate::cell\n#[cfg(test)]\nmod tests { use crate::node; }";
    let paths = crate_paths(without_unit_tests(code));
    assert_eq!(paths, vec![(1, "node".to_string())]);
    assert!(rank("node") > rank("api"));
}

#[test]
fn no_source_file_of_the_runtime_is_over_800_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in ["mobility", "mobility-proto", "mobility-macros"] {
        sources(&root.join(krate).join("src"), &mut files);
    }
    let mut long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = fs::read_to_string(file).ok()?.lines().count();
            (lines > 800).then(|| format!("{}: {lines} lines", file.display()))
        })
        .collect();
    long.sort();
    assert!(
        long.is_empty(),
        "split these files by job:\n{}",
        long.join("\n")
    );
}
