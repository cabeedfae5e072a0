//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `apiload` binary under test.
pub fn apiload() -> Command {
    Command::new(env!("CARGO_BIN_EXE_apiload"))
}

/// An empty folder of the test's own, under the target directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `../shared/<rel>` beside the checkout (the project's shared folder: the
/// labelled corpus and its tools), or `None` after one line on stderr saying
/// why the test skips it. `.ci/run` sets `APILOAD_REQUIRE_SHARED=1`, which
/// makes its absence a failure, so that CI never skips these tests.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared").join(rel);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("APILOAD_REQUIRE_SHARED").is_none_or(|v| v != "1"),
        "{} is absent and APILOAD_REQUIRE_SHARED=1 requires it",
        path.display()
    );
    skip(&format!("{} is absent (the project's shared folder beside the checkout; CI has it)", path.display()));
    None
}

/// Says on stderr, past libtest's capture (which takes only the print
/// macros), that a test skipped something and why.
pub fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// Whether something a test needs besides Rust is there. When it is not,
/// `APILOAD_REQUIRE_TOOLS=1` (set by `cargo xtask test`, which installs it)
/// makes that a failure; otherwise the test says it skips and why.
pub fn tool(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    assert!(
        std::env::var_os("APILOAD_REQUIRE_TOOLS").is_none_or(|v| v != "1"),
        "{what} is missing, and APILOAD_REQUIRE_TOOLS=1 requires it (`cargo xtask setup` installs it)"
    );
    skip(&format!("{what} is missing (`cargo xtask test` installs it)"));
    false
}

/// Whether python3 can import a module.
pub fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A published schema in `testdata/schemas/`.
#[derive(Clone, Copy)]
pub enum Schema {
    /// SARIF 2.1.0 (JSON Schema draft 4), with formats (`uri`, `uri-reference`) checked.
    Sarif,
    /// Jenkins' JUnit XSD.
    Junit,
}

/// Validates a document against its published schema with Python's
/// jsonschema or xmlschema: `None` when the validator is missing (and the
/// test may skip), else every violation.
pub fn validate(schema: Schema, text: &str, name: &str) -> Option<Result<(), String>> {
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/schemas");
    let (module, file, script) = match schema {
        Schema::Sarif => (
            "jsonschema",
            schemas.join("sarif-schema-2.1.0.json"),
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             doc = json.load(open(sys.argv[2]))\n\
             v = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())\n\
             errors = [f'{list(e.absolute_path)}: {e.message}' for e in v.iter_errors(doc)]\n\
             print('\\n'.join(errors)); sys.exit(1 if errors else 0)",
        ),
        Schema::Junit => (
            "xmlschema",
            schemas.join("jenkins-junit.xsd"),
            "import sys, xmlschema\n\
             errors = [str(e) for e in xmlschema.XMLSchema(sys.argv[1]).iter_errors(sys.argv[2])]\n\
             print('\\n'.join(errors)); sys.exit(1 if errors else 0)",
        ),
    };
    if !tool(&format!("the Python package {module}"), python_has(module)) {
        return None;
    }
    let doc = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&doc, text).unwrap();
    let out = Command::new("python3").args(["-c", script]).arg(&file).arg(&doc).output().unwrap();
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    })
}
