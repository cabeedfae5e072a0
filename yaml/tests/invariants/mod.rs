//! The loader's invariants on any input, shared by the `load_stream` fuzz
//! target (`fuzz/`) and the replay of its findings (`fuzz_regressions.rs`):
//! nodes and depth within the limits, every span inside the input, line and
//! column lookups and `embedded_offset` safe on every offset.

use apiload_yaml::{ColumnUnit, Document, Limits, LineIndex, LoadError, Value, embedded_offset};

/// Limits tight enough that small inputs reach them.
pub fn small_limits() -> Limits {
    Limits { max_bytes: 64 * 1024, max_depth: 8, max_nodes: 200 }
}

pub fn check(name: &str, bytes: &[u8], docs: &[Result<Document, LoadError>], limits: &Limits) {
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
                let (a, b) = (index.line_col(span.start), index.line_col(span.end));
                assert!(a <= b, "{name}: line/col of {span:?} out of order: {a:?} > {b:?}");
                if let Value::Map(entries) = &node.value {
                    for e in entries {
                        let k = e.key_span;
                        assert!(k.start <= k.end && k.end <= len, "{name}: key span {k:?} outside 0..{len}");
                        index.line_col(k.start);
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
