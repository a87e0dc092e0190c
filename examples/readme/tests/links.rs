//! Keeps the documents' links working: every relative link of README.md,
//! CHANGELOG.md and docs/*.md names a file or folder of the repository,
//! and every `#anchor` a heading of the page it points to. Files move (the
//! source tree is regrouped, a page is split); this fails until the links
//! follow them.

use std::path::{Path, PathBuf};

/// The repository's root (this crate is examples/readme).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The pages whose links are checked, relative to the root.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![PathBuf::from("README.md"), PathBuf::from("CHANGELOG.md")];
    let docs = std::fs::read_dir(root().join("docs")).expect("docs/ exists");
    for entry in docs.map(|e| e.expect("docs/ is readable").path()) {
        if entry.extension().is_some_and(|ext| ext == "md") {
            pages.push(Path::new("docs").join(entry.file_name().unwrap()));
        }
    }
    pages.sort();
    pages
}

/// `text` without its fenced code blocks (their brackets are code).
fn prose(text: &str) -> String {
    let mut inside = false;
    let mut kept = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
        } else if !inside {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped,
/// spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect::<String>()
        .to_lowercase()
}

fn anchors(page: &str) -> Vec<String> {
    prose(page)
        .lines()
        .filter(|line| line.starts_with('#'))
        .map(|heading| anchor(heading.trim_start_matches('#')))
        .collect()
}

/// The targets of the page's `[text](target)` links.
fn links(page: &str) -> Vec<String> {
    let text = prose(page);
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(target, _)| target.to_owned()))
        .filter(|target| !target.contains("://") && !target.starts_with("mailto:"))
        .collect()
}

#[test]
fn every_relative_link_of_the_documents_resolves() {
    let root = root();
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(root.join(&page)).expect("page is readable");
        for link in links(&text) {
            checked += 1;
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !root.join(&target).exists() {
                broken.push(format!("{}: {link}: no such file", page.display()));
                continue;
            }
            let is_page = target.extension().is_some_and(|ext| ext == "md");
            if !fragment.is_empty() && is_page {
                let target_text = std::fs::read_to_string(root.join(&target)).unwrap();
                if !anchors(&target_text).iter().any(|a| a == fragment) {
                    broken.push(format!("{}: {link}: no such heading", page.display()));
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} links found: is the parser right?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn anchors_are_spelled_as_github_spells_them() {
    assert_eq!(anchor("Migrating from C++ mprpc"), "migrating-from-c-mprpc");
    assert_eq!(
        anchor("The comparison: `scripts/compare.sh`"),
        "the-comparison-scriptscomparesh"
    );
    assert_eq!(
        anchor("A gateway: one call across three processes"),
        "a-gateway-one-call-across-three-processes"
    );
}
