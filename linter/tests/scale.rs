//! The generated corpus of `../shared/tools/gen-scale-corpus.py`, scored by
//! `eval-scale.py`: RBAC resolution across files at 10,000 objects must be exact.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn generated_corpus_scores_exactly() {
    let Some(tools) = common::shared("tools") else { return };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scale-10k");
    if !dir.join("ground-truth.json").is_file() {
        let generated = Command::new("python3")
            .arg(tools.join("gen-scale-corpus.py"))
            .args(["--objects", "10000", "--files", "200", "--seed", "1", "--out"])
            .arg(&dir)
            .output()
            .expect("python3");
        assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    }
    let eval = Command::new("python3")
        .arg(tools.join("eval-scale.py"))
        .arg("--corpus")
        .arg(&dir)
        .args(["--", env!("CARGO_BIN_EXE_apiload"), "lint", "--no-config", "--format", "json"])
        .output()
        .expect("python3");
    let out = String::from_utf8_lossy(&eval.stdout);
    assert!(
        eval.status.success() && out.contains("precision=1.000 recall=1.000"),
        "{out}{}",
        String::from_utf8_lossy(&eval.stderr)
    );
}
