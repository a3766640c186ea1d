//! The repository is self-contained: README.md, ARCHITECTURE.md and every page under docs/
//! link only to files inside the repository (no web links, nothing above the repository root),
//! and every relative link resolves.

use std::path::{Component, Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("core/ has a parent")
        .to_path_buf()
}

fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("docs/ is readable") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    out
}

/// The targets of the inline links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after.find(')').unwrap_or(after.len());
        out.push(after[..end].trim().to_string());
        rest = &after[end..];
    }
    out
}

/// Why `target` (linked from `file`) leaves the repository or does not exist, if it does.
fn problem(root: &Path, file: &Path, target: &str) -> Option<String> {
    let lower = target.to_ascii_lowercase();
    if lower.contains("://") || lower.starts_with("mailto:") || lower.starts_with("//") {
        return Some("links outside the repository".into());
    }
    let path = target.split('#').next().unwrap_or("");
    if path.is_empty() {
        return None; // an anchor on the same page
    }
    if path.starts_with('/') {
        return Some("absolute path".into());
    }
    let mut resolved = file.parent().expect("file has a directory").to_path_buf();
    for c in Path::new(path).components() {
        match c {
            Component::ParentDir if !resolved.pop() || !resolved.starts_with(root) => {
                return Some("leaves the repository".into());
            }
            Component::ParentDir => {}
            Component::Normal(n) => resolved.push(n),
            _ => {}
        }
    }
    if !resolved.starts_with(root) {
        return Some("leaves the repository".into());
    }
    (!resolved.exists()).then(|| "does not exist".into())
}

#[test]
fn readme_architecture_and_docs_link_only_inside_the_repository() {
    let root = repo_root();
    let mut problems = Vec::new();
    for file in markdown_files(&root) {
        let text = std::fs::read_to_string(&file).expect("readable markdown");
        for target in link_targets(&text) {
            if let Some(why) = problem(&root, &file, &target) {
                problems.push(format!("{}: ({target}) {why}", file.display()));
            }
        }
        for (n, line) in text.lines().enumerate() {
            if line.contains("../shared") || line.contains("http://") || line.contains("https://") {
                problems.push(format!(
                    "{}:{}: refers outside: {line}",
                    file.display(),
                    n + 1
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_catches_what_it_must() {
    let root = repo_root();
    let readme = root.join("README.md");
    assert!(problem(&root, &readme, "https://github.com/x/y").is_some());
    assert!(problem(&root, &readme, "../shared/JOURNALKEEPER.md").is_some());
    assert!(problem(&root, &readme, "docs/no-such-page.md").is_some());
    assert!(problem(&root, &readme, "docs/semantics.md").is_none());
    assert!(problem(&root, &readme, "#the-demo").is_none());
    let page = root.join("docs/architecture/ffi.md");
    assert!(problem(&root, &page, "../semantics.md#roles").is_none());
    assert!(problem(&root, &page, "../../../x.md").is_some());
    assert_eq!(link_targets("a [b](c.md) d [e](f#g)"), ["c.md", "f#g"]);
}
