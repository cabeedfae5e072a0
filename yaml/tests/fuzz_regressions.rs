//! Replays every input under `tests/fuzz-regressions/`: the crashers the
//! `load_stream` fuzz target found (see `fuzz/`) and its seed corpus.
//!
//! Each file loads with the default limits and with small ones, and must hold
//! the fuzz target's invariants: no panic, every span inside the input, line
//! and column lookups and `embedded_offset` safe on every offset.

mod invariants;

use apiload_yaml::{Limits, load_stream};
use invariants::{check, small_limits};
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn fuzz_regressions_load_and_keep_their_invariants() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).expect("fuzz-regressions folder").map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 7, "expected the seeds and crashers in {}", dir.display());
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        for limits in [Limits::default(), small_limits()] {
            let started = Instant::now();
            let docs = load_stream(&bytes, &limits);
            // Each of these is a few KB at most: anything slow is a regression of
            // a superlinear path (debug builds are slow, hence the wide margin).
            assert!(started.elapsed() < Duration::from_secs(20), "{name}: took {:?}", started.elapsed());
            check(&name, &bytes, &docs, &limits);
        }
    }
}

#[test]
fn seeds_load_as_expected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let load = |name: &str| load_stream(&std::fs::read(dir.join(name)).unwrap(), &Limits::default());
    let ds = load("seed-daemonset.yaml");
    assert_eq!(ds.len(), 1);
    let root = &ds[0].as_ref().unwrap().root;
    assert_eq!(root.get("kind").and_then(|n| n.as_str()), Some("DaemonSet"));
    let list = load("seed-list.json");
    assert_eq!(list[0].as_ref().unwrap().root.get("items").and_then(|n| n.as_seq()).map(<[_]>::len), Some(3));
    let docs = load("seed-multi-doc.yaml");
    let oks = docs.iter().filter(|d| d.is_ok()).count();
    assert_eq!((oks, docs.len() - oks), (3, 1), "{docs:?}");
    let anchors = load("seed-anchors.yaml");
    let containers = anchors[0].as_ref().unwrap().root.get("containers").unwrap().as_seq().unwrap().to_vec();
    assert_eq!(containers[0].get("image").and_then(|n| n.as_str()), Some("nginx:1.25"));
    assert_eq!(containers[1].get("env").and_then(|n| n.as_str()), Some("prod"));
    assert_eq!(containers[1].get("image").and_then(|n| n.as_str()), Some("envoy"));
}

#[test]
fn hostile_inputs_fail_with_the_right_error_and_spare_the_next_document() {
    use apiload_yaml::LoadErrorKind::*;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    for (name, want) in [
        ("alias-bomb-empty-collections.yaml", Some(TooManyNodes)),
        ("alias-bomb-long-strings.yaml", Some(TooLarge)),
        ("alias-depth.yaml", Some(TooDeep)),
        ("nested-anchors.yaml", Some(TooManyNodes)),
        ("merge-many-sources.yaml", None),
        ("long-non-ascii-line.yaml", None),
    ] {
        let docs = load_stream(&std::fs::read(dir.join(name)).unwrap(), &Limits::default());
        assert_eq!(docs.len(), 2, "{name}");
        match want {
            Some(kind) => assert_eq!(docs[0].as_ref().err().map(|e| e.kind), Some(kind), "{name}"),
            None => assert!(docs[0].is_ok(), "{name}: {:?}", docs[0].as_ref().err()),
        }
        let ok = docs[1].as_ref().expect("the next document loads");
        assert_eq!(ok.root.get("ok").and_then(|n| n.as_bool()), Some(true), "{name}");
    }
}
