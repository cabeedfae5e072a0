//! Paths as findings show them: relative to the repository root, so that a
//! SARIF upload, a `::error file=` annotation or a JUnit report lands on the
//! file in the repository whatever folder apiload ran in.

use std::path::{Component, Path, PathBuf};

/// Removes `.` and `a/..` without touching the file system (symbolic links
/// are not resolved: the path is the one the user wrote, made canonical in form).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The repository root: `--root`, else the nearest folder from the working
/// directory up that holds `.git` (a folder, or a file in a worktree), else
/// the working directory. Absolute and normalized.
pub fn root(flag: Option<&str>) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    if let Some(dir) = flag {
        return normalize(&cwd.join(dir));
    }
    let mut dir = cwd.clone();
    loop {
        if dir.join(".git").exists() {
            return normalize(&dir);
        }
        if !dir.pop() {
            return normalize(&cwd);
        }
    }
}

/// How a path is shown: relative to `root` with `/` separators when it lies
/// under it, else absolute; normalized either way. Names that are not paths
/// (`<stdin>`) are kept as they are.
pub fn display(root: &Path, name: &str) -> String {
    if name.starts_with('<') {
        return name.to_string();
    }
    let p = Path::new(name);
    let absolute =
        if p.is_absolute() { normalize(p) } else { normalize(&std::env::current_dir().unwrap_or_default().join(p)) };
    match absolute.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
        Ok(rel) => rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"),
        Err(_) => absolute.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(Path::new("a/../a/./x.yaml")), PathBuf::from("a/x.yaml"));
        assert_eq!(normalize(Path::new("../b/../c")), PathBuf::from("../c"));
        assert_eq!(normalize(Path::new("/../x")), PathBuf::from("/x"));
    }

    #[test]
    fn shows_paths_relative_to_the_root() {
        let root = Path::new("/repo");
        assert_eq!(display(root, "/repo/charts/a/../a/templates/x.yaml"), "charts/a/templates/x.yaml");
        assert_eq!(display(root, "/elsewhere/x.yaml"), "/elsewhere/x.yaml");
        assert_eq!(display(root, "<stdin>"), "<stdin>");
    }
}
