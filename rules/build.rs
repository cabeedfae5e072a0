//! Embeds every `profiles/*.yaml` into the engine, and writes one test
//! function per fixture folder of `testdata/rules/` and `testdata/profiles/`
//! (included by `tests/fixtures.rs` and `tests/profiles.rs`), so that one
//! rule's or one profile's fixtures run alone: `cargo test per_node_cluster_watch`.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let out_dir = std::env::var("OUT_DIR").unwrap();
    // Read when the script runs, not when it is compiled: a compiled build
    // script reused from a shared target directory must not point at the
    // checkout it was first built in.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let root = Path::new(&manifest_dir);
    let dir = root.join("profiles");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files = entries(&dir);
    files.retain(|p| p.extension().is_some_and(|x| x == "yaml"));
    let mut out =
        String::from("/// Built-in profiles: (file name, text).\npub static BUILTIN_PROFILES: &[(&str, &str)] = &[\n");
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        writeln!(out, "    ({name:?}, include_str!({:?})),", f.display().to_string()).unwrap();
    }
    out.push_str("];\n");
    std::fs::write(Path::new(&out_dir).join("builtin_profiles.rs"), out).unwrap();

    for (group, check) in [("rules", "rule_fixtures"), ("profiles", "profile_fixtures")] {
        let dir = root.join("../testdata").join(group);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut tests = String::new();
        for folder in entries(&dir).into_iter().filter(|p| p.is_dir()) {
            let name = folder.file_name().unwrap().to_string_lossy().to_string();
            let function: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
            writeln!(tests, "#[test]\nfn {function}() {{\n    {check}({name:?});\n}}\n").unwrap();
        }
        std::fs::write(Path::new(&out_dir).join(format!("{group}_fixture_tests.rs")), tests).unwrap();
    }
}

/// The entries of a folder, sorted (none when it does not exist: the
/// fixtures are not part of a published crate).
fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> =
        std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    paths.sort();
    paths
}
