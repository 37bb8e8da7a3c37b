//! Documentation that must not drift from the code: every stable error code a crate can
//! return appears in `docs/errors.md`, and the README opens with the two commands.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Codes are the string literals a `code()` match arm returns: `=> "SOME_CODE",`.
fn codes_in(text: &str) -> Vec<String> {
    let mut codes = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.split("=> \"").nth(1) else {
            continue;
        };
        let Some(code) = rest.split('"').next() else {
            continue;
        };
        let is_code = code.len() >= 3
            && code.contains('_')
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        // A closing quote must follow, or this was not a complete literal.
        if is_code && rest.len() > code.len() {
            codes.push(code.to_string());
        }
    }
    codes
}

#[test]
fn every_error_code_is_documented() {
    let root = workspace_root();
    let doc = fs::read_to_string(root.join("docs/errors.md")).expect("docs/errors.md exists");
    let mut missing = Vec::new();
    let mut seen = 0;
    for krate in [
        "storage", "sort", "stream", "ingest", "bus", "tools", "benches",
    ] {
        let mut files = Vec::new();
        rust_files(&root.join(krate).join("src"), &mut files);
        for f in files {
            let text = fs::read_to_string(&f).unwrap();
            if !text.contains("fn code(") {
                continue;
            }
            for code in codes_in(&text) {
                seen += 1;
                if !doc.contains(&format!("`{code}`")) {
                    missing.push(format!("{code} ({})", f.display()));
                }
            }
        }
    }
    assert!(seen > 5, "found only {seen} codes: the scan is broken");
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "codes missing from docs/errors.md:\n{}",
        missing.join("\n")
    );
}

#[test]
fn readme_opens_with_demo_and_test_commands() {
    let readme = fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let head: String = readme.lines().take(12).collect::<Vec<_>>().join("\n");
    assert!(
        head.contains("-- demo"),
        "README must open with the demo command"
    );
    assert!(
        head.contains("bash .ci/run"),
        "README must open with the test command"
    );
    let ci = fs::read_to_string(workspace_root().join(".ci/run")).unwrap();
    assert!(ci.contains("cargo test --workspace"));
}

#[test]
fn code_scanner_finds_arm_literals() {
    let sample = "match self {\n  E::A => \"OUTPUT_PATHS_EMPTY\",\n  E::B { .. } => \"BUS_CORRUPT\",\n  _ => \"x\",\n}";
    assert_eq!(codes_in(sample), ["OUTPUT_PATHS_EMPTY", "BUS_CORRUPT"]);
}
