//! The engine's layers hold: every `crate::` path in `rules/src` names a
//! module of its own layer or of a layer below, and no two modules depend on
//! each other. The layers are declared once, by the comments that group the
//! module declarations in `rules/src/lib.rs` (`// Layer N — …`); ARCHITECTURE.md
//! explains them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level module → layer, from lib.rs. `lib` itself is the top layer.
fn layers(src: &Path) -> BTreeMap<String, u32> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut layer = None;
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        if let Some(rest) = line.strip_prefix("// Layer ") {
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            layer = Some(n.parse::<u32>().unwrap_or_else(|_| panic!("lib.rs: bad layer comment `{line}`")));
            continue;
        }
        let decl = line.trim_start_matches("pub ").trim_start_matches("pub(crate) ");
        if let Some(name) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            let layer = layer.unwrap_or_else(|| panic!("lib.rs: `mod {name}` comes before any `// Layer N` comment"));
            out.insert(name.to_string(), layer);
        }
    }
    let top = out.values().copied().max().unwrap_or(0);
    out.insert("lib".into(), top);
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_str().unwrap();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules a file names with `crate::…`, outside comments.
fn references(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let names: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a, b::c}`: the group may continue on later lines
                // in principle; the engine writes groups on one line.
                let inner = group.split('}').next().unwrap_or("");
                inner.split(',').map(|p| p.trim().split("::").next().unwrap_or("").to_string()).collect()
            } else {
                vec![rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()]
            };
            out.extend(names.into_iter().filter(|s| !s.is_empty()).map(|s| (n + 1, s)));
        }
    }
    out
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layers(&src);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut upward = Vec::new();
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        let Some(&from_layer) = layers.get(&from) else {
            panic!("{}: module `{from}` is not declared under a layer in lib.rs", file.display());
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, to) in references(&text) {
            let Some(&to_layer) = layers.get(&to) else { continue }; // an item of lib.rs (`crate::Input`)
            if to_layer > from_layer {
                upward.push(format!(
                    "{}:{line}: `{from}` (layer {from_layer}) imports `{to}` (layer {to_layer})",
                    file.strip_prefix(&src).unwrap().display()
                ));
            }
            if to != from {
                let e = edges.entry(from.clone()).or_default();
                if !e.contains(&to) {
                    e.push(to);
                }
            }
        }
    }
    assert!(upward.is_empty(), "imports that run upward:\n{}", upward.join("\n"));

    // No cycle between top-level modules, even within a layer.
    assert_no_cycle(&edges);
}

fn assert_no_cycle(edges: &BTreeMap<String, Vec<String>>) {
    let mut done = Vec::new();
    for m in edges.keys() {
        if let Some(cycle) = visit(m, edges, &mut Vec::new(), &mut done) {
            panic!("modules that depend on each other: {}", cycle.join(" → "));
        }
    }
}

/// Depth-first search for a cycle through `m`.
fn visit(
    m: &str,
    edges: &BTreeMap<String, Vec<String>>,
    path: &mut Vec<String>,
    done: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|p| p == m) {
        let mut cycle = path[at..].to_vec();
        cycle.push(m.to_string());
        return Some(cycle);
    }
    if done.iter().any(|d| d == m) {
        return None;
    }
    path.push(m.to_string());
    for next in edges.get(m).into_iter().flatten() {
        if let Some(c) = visit(next, edges, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.push(m.to_string());
    None
}

/// The language server's modules (`linter/src/lsp`, which name each other
/// as `super::x`) depend on each other in one direction too.
#[test]
fn the_language_server_modules_form_no_cycle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../linter/src/lsp");
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    for file in files {
        let from = module_of(&dir, &file);
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(at) = rest.find("super::") {
                rest = &rest[at + "super::".len()..];
                let to: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let e = edges.entry(from.clone()).or_default();
                if !to.is_empty() && to != from && to != "super" && !e.contains(&to) {
                    e.push(to);
                }
            }
        }
    }
    assert!(edges.len() > 5, "no modules found under {}", dir.display());
    assert_no_cycle(&edges);
}

#[test]
fn the_reference_scanner_sees_every_form() {
    let text = "use crate::a::B;\nuse crate::{c, d::E};\n// crate::f in a comment\nlet x = crate::g::h();";
    let names: Vec<String> = references(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["a", "c", "d", "g"]);
}
