//! Replays every input under `tests/fuzz-regressions/`: the crashers the
//! `load_stream` fuzz target found (see `fuzz/`) and its seed corpus.
//!
//! Each file loads with the default limits and with small ones, and must hold
//! the fuzz target's invariants: no panic, every span inside the input, line
//! and column lookups and `embedded_offset` safe on every offset.

use apiload_yaml::{ColumnUnit, Document, Limits, LineIndex, LoadError, Value, embedded_offset, load_stream};
use std::path::Path;
use std::time::{Duration, Instant};

fn small_limits() -> Limits {
    Limits { max_bytes: 64 * 1024, max_depth: 8, max_nodes: 200 }
}

fn check(name: &str, bytes: &[u8], docs: &[Result<Document, LoadError>], limits: &Limits) {
    let len = bytes.len() as u32;
    let index = LineIndex::new(bytes);
    let text = std::str::from_utf8(bytes).ok();
    // Column and embedded-offset lookups cost up to a line each: check the
    // first few hundred nodes only, so that long lines do not time out here.
    let mut lookups = 512usize;
    for doc in docs {
        if let Ok(doc) = doc {
            let count = doc.root.count();
            assert!(count <= limits.max_nodes, "{name}: {count} nodes over {}", limits.max_nodes);
        }
        match doc {
            Ok(doc) => doc.root.walk(&mut |path, node| {
                let nesting = path.len() + usize::from(matches!(node.value, Value::Seq(_) | Value::Map(_)));
                assert!(nesting <= limits.max_depth, "{name}: nesting {nesting} over {}", limits.max_depth);
                let span = node.span;
                assert!(span.start <= span.end && span.end <= len, "{name}: node span {span:?} outside 0..{len}");
                assert!(index.line_col(span.start) <= index.line_col(span.end), "{name}: {span:?}");
                if let Value::Map(entries) = &node.value {
                    for e in entries {
                        let k = e.key_span;
                        assert!(k.start <= k.end && k.end <= len, "{name}: key span {k:?} outside 0..{len}");
                    }
                }
                let text = text.filter(|_| lookups > 0);
                lookups = lookups.saturating_sub(1);
                if let Some(text) = text {
                    for unit in [ColumnUnit::Utf16, ColumnUnit::Chars] {
                        let lc = index.line_col_in(text, span.start, unit);
                        assert!(index.offset_of(text, lc, unit) <= len);
                    }
                }
                if let (Some(text), Value::Str(value)) = (text, &node.value) {
                    for inner in [0, value.len() / 2, value.len(), value.len() + 1] {
                        let at = embedded_offset(text, span, value, inner);
                        assert!(at <= len, "{name}: embedded_offset {at} outside 0..{len}");
                    }
                }
            }),
            Err(e) => {
                assert!(e.span.start <= len, "{name}: error span {:?} outside 0..{len}", e.span);
                index.line_col(e.span.start);
                for (span, _) in &e.related {
                    assert!(span.start <= len, "{name}: related span {span:?} outside 0..{len}");
                }
            }
        }
    }
}

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
