use super::*;

fn load(text: &str) -> Vec<Result<Document, LoadError>> {
    load_str(text, &Limits::default())
}

fn one(text: &str) -> Node {
    let mut docs = load(text);
    assert_eq!(docs.len(), 1, "{docs:?}");
    docs.remove(0).expect("loads").root
}

fn at(text: &str, span: Span) -> &str {
    &text[span.start as usize..span.end as usize]
}

#[test]
fn keys_and_values_keep_their_spans() {
    let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: app\n    args: [\"--x\", y]\n";
    let root = one(text);
    let entry = root.get("spec").unwrap().get("containers").unwrap().as_seq().unwrap()[0].entry("name").unwrap();
    assert_eq!(at(text, entry.key_span), "name");
    assert_eq!(at(text, entry.value.span), "app");
    let args = root.path(&["spec", "containers"]).unwrap().as_seq().unwrap()[0].get("args").unwrap();
    let items = args.as_seq().unwrap();
    assert_eq!(at(text, items[0].span), "\"--x\"");
    assert_eq!(at(text, items[1].span), "y");
    let idx = LineIndex::new(text.as_bytes());
    assert_eq!(idx.line_col(entry.key_span.start), LineCol { line: 5, column: 5 });
}

#[test]
fn spans_are_bytes_even_after_non_ascii_text() {
    let text = "a: \"é😀\"\nb: x\n";
    let root = one(text);
    let b = root.entry("b").unwrap();
    assert_eq!(at(text, b.key_span), "b");
    assert_eq!(at(text, b.value.span), "x");
}

#[test]
fn yaml11_scalars_as_the_api_server_reads_them() {
    let root = one("a: yes\nb: \"yes\"\nc: off\nd: 0755\ne: '0755'\nf: ~\ng: !!str on\nh: 1.5\ni: |\n  on\n");
    assert_eq!(root.get("a").unwrap().value, Value::Bool(true));
    assert_eq!(root.get("b").unwrap().value, Value::Str("yes".into()));
    assert_eq!(root.get("c").unwrap().value, Value::Bool(false));
    assert_eq!(root.get("d").unwrap().value, Value::Int(493));
    assert_eq!(root.get("e").unwrap().value, Value::Str("0755".into()));
    assert_eq!(root.get("f").unwrap().value, Value::Null);
    assert_eq!(root.get("g").unwrap().value, Value::Str("on".into()));
    assert_eq!(root.get("h").unwrap().value, Value::Float(1.5));
    assert_eq!(root.get("i").unwrap().value, Value::Str("on\n".into()));
}

#[test]
fn non_string_keys_become_their_json_text() {
    let root = one("1: a\nyes: b\nnull: c\n");
    let keys: Vec<&str> = root.as_map().unwrap().iter().map(|e| &*e.key).collect();
    assert_eq!(keys, vec!["1", "true", "null"]);
}

#[test]
fn multi_document_streams_skip_empty_documents() {
    let docs = load("# Source: a\n---\n# Source: b\n---\na: 1\n---\n\n---\nb: 2\n...\n");
    assert_eq!(docs.len(), 2);
}

#[test]
fn json_loads_with_spans() {
    let text = "{\"kind\": \"Pod\", \"spec\": {\"replicas\": 3, \"x\": [true, null]}}";
    let root = one(text);
    let r = root.path(&["spec", "replicas"]).unwrap();
    assert_eq!(r.value, Value::Int(3));
    assert_eq!(at(text, r.span), "3");
}

#[test]
fn a_broken_document_does_not_take_its_neighbours_down() {
    let docs = load("a: 1\n---\nb: [1, 2\n---\nc: 3\n");
    assert_eq!(docs.len(), 3);
    assert!(docs[0].is_ok());
    let err = docs[1].as_ref().unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::Syntax);
    assert!(docs[2].is_ok());
}

#[test]
fn duplicate_keys_are_errors_pointing_at_both() {
    let text = "a: 1\nb: 2\na: 3\n";
    let docs = load(text);
    let err = docs[0].as_ref().unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::DuplicateKey);
    assert_eq!(LineIndex::new(text.as_bytes()).line_col(err.span.start).line, 3);
    assert_eq!(err.related[0].0.start, 0);
}

#[test]
fn keys_are_unique_per_mapping_not_per_document() {
    // Open collections share the builder's stack of children: a key is a
    // duplicate only among its own mapping's entries, merges included.
    let text = "a: 1\nb:\n  a: 2\n  c: [{a: 3}, [4, {b: 5}]]\n  <<: {a: 9, d: 6}\nd: 7\n";
    let root = one(text);
    assert_eq!(root.to_json(), r#"{"a":1,"b":{"a":2,"c":[{"a":3},[4,{"b":5}]],"d":6},"d":7}"#);
    let text = "a: 1\nb:\n  a: 2\n  c: [{a: 3}]\na: 4\n";
    let err = load(text).remove(0).unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::DuplicateKey);
    assert_eq!(LineIndex::new(text.as_bytes()).line_col(err.span.start).line, 5);
    assert_eq!(err.related[0].0.start, 0);
}

#[test]
fn duplicate_keys_found_in_large_mappings() {
    let mut text = String::new();
    for i in 0..100 {
        text.push_str(&format!("k{i}: {i}\n"));
    }
    text.push_str("k50: again\n");
    assert_eq!(load(&text)[0].as_ref().unwrap_err().kind, LoadErrorKind::DuplicateKey);
}

#[test]
fn merge_keys_fill_in_without_overriding() {
    let root = one("base: &b {p: 1, q: 2}\nm:\n  <<: *b\n  q: 3\n");
    let m = root.get("m").unwrap();
    assert_eq!(m.get("p").unwrap().value, Value::Int(1));
    assert_eq!(m.get("q").unwrap().value, Value::Int(3));
    // `y` is a YAML 1.1 boolean, so as a key it reads as "true".
    assert!(one("y: 1\n").get("true").is_some());
    let docs = load("m:\n  <<: 5\n");
    assert_eq!(docs[0].as_ref().unwrap_err().kind, LoadErrorKind::Structure);
}

#[test]
fn alias_bombs_stop_at_the_node_limit() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    text.push_str("---\nok: true\n");
    let docs = load(&text);
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].as_ref().unwrap_err().kind, LoadErrorKind::TooManyNodes);
    assert!(docs[1].is_ok());
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep_block = "- ".repeat(100_000) + "x\n";
    let deep_flow = "[".repeat(100_000) + &"]".repeat(100_000);
    let deep_map = (0..300).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect::<String>();
    for text in [deep_block, deep_flow, deep_map] {
        let text = text + "\n---\nok: 1\n";
        let docs = load(&text);
        assert!(docs[0].is_err(), "deep input must be refused");
        assert!(matches!(docs[0].as_ref().unwrap_err().kind, LoadErrorKind::TooDeep | LoadErrorKind::Syntax));
        assert!(docs.last().unwrap().is_ok(), "the next document still loads");
    }
}

#[test]
fn invalid_utf8_is_an_error_for_its_document_only() {
    let mut bytes = b"a: 1\n---\nb: \"".to_vec();
    bytes.extend_from_slice(&[0xFF, 0xFE, b'"', b'\n']);
    bytes.extend_from_slice(b"---\nc: 3\n");
    let docs = load_stream(&bytes, &Limits::default());
    assert_eq!(docs.len(), 3);
    let err = docs[1].as_ref().unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::Encoding);
    assert_eq!(err.span.start, 13);
    assert!(docs[2].is_ok());
}

#[test]
fn oversized_input_is_refused_up_front() {
    let limits = Limits { max_bytes: 10, ..Limits::default() };
    let docs = load_stream(b"a: 1234567890\n", &limits);
    assert_eq!(docs[0].as_ref().unwrap_err().kind, LoadErrorKind::TooLarge);
}

#[test]
fn bom_and_utf16() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(b"a: 1\n");
    let docs = load_stream(&bytes, &Limits::default());
    let root = &docs[0].as_ref().unwrap().root;
    assert_eq!(root.entry("a").unwrap().key_span.start, 3);
    let docs = load_stream(&[0xFF, 0xFE, b'a', 0], &Limits::default());
    assert_eq!(docs[0].as_ref().unwrap_err().kind, LoadErrorKind::Encoding);
}

#[test]
fn binary_garbage_is_an_error() {
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let docs = load_stream(&bytes, &Limits::default());
    assert!(docs.iter().any(|d| d.is_err()));
}

#[test]
fn block_scalars_map_back_to_the_source() {
    let text = "data:\n  config.yaml: |\n    receivers:\n      otlp: {}\n    processors: x\n";
    let root = one(text);
    let node = root.path(&["data", "config.yaml"]).unwrap();
    let value = node.as_str().unwrap();
    let inner = value.find("processors").unwrap();
    let outer = embedded_offset(text, node.span, value, inner) as usize;
    assert!(text[outer..].starts_with("processors"));
    let inner = value.find("otlp").unwrap();
    let outer = embedded_offset(text, node.span, value, inner) as usize;
    assert!(text[outer..].starts_with("otlp"));
    let text = "data:\n  a: \"x: 1\"\n  b: 'y: 2'\n  c: z\n";
    let root = one(text);
    for (key, want) in [("a", "1\""), ("b", "2'"), ("c", "z")] {
        let node = root.path(&["data", key]).unwrap();
        let value = node.as_str().unwrap();
        let inner = value.len() - 1;
        let outer = embedded_offset(text, node.span, value, inner) as usize;
        assert!(text[outer..].starts_with(want), "{key}");
    }
}

#[test]
fn spans_after_non_ascii_text_and_lone_carriage_returns() {
    // The parser counts `\r` as a line break; spans come from its character
    // index, so they stay right whatever the line breaks.
    let text = "a: \"é\"\rb: x\r\nc: [é, y]\n";
    let root = one(text);
    assert_eq!(at(text, root.entry("b").unwrap().value.span), "x");
    let c = root.get("c").unwrap().as_seq().unwrap();
    assert_eq!(at(text, c[1].span), "y");
}

#[test]
fn aliases_count_against_depth_where_they_land() {
    let limits = Limits { max_depth: 4, ..Limits::default() };
    // `a` is two levels high; placed under two more it makes four: allowed.
    let docs = load_str("a: &a [[x]]\nb: [*a]\n", &limits);
    assert!(docs[0].is_ok(), "{docs:?}");
    let docs = load_str("a: &a [[x]]\nb: [[*a]]\n", &limits);
    let err = docs[0].as_ref().unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::TooDeep);
    assert_eq!(&"a: &a [[x]]\nb: [[*a]]\n"[err.span.start as usize..err.span.end as usize], "*a");
    // Merged entries sit one level below the merge value.
    let limits = Limits { max_depth: 3, ..Limits::default() };
    assert!(load_str("a: &a {k: [x]}\nb: {<<: *a}\n", &limits)[0].is_ok());
    assert!(load_str("a: &a {k: [x]}\nb: {<<: *a, c: [*a]}\n", &limits)[0].is_err());
}

#[test]
fn empty_collections_and_long_strings_cost_their_share() {
    let limits = Limits { max_nodes: 20, ..Limits::default() };
    // Each `*a` is one node even though `[]` holds nothing.
    let text = "a: &a []\nb: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n";
    assert_eq!(load_str(text, &limits)[0].as_ref().unwrap_err().kind, LoadErrorKind::TooManyNodes);
    let limits = Limits { max_bytes: 1000, ..Limits::default() };
    let text = format!("s: &s {}\nb: [*s, *s, *s]\n", "x".repeat(300));
    assert_eq!(load_str(&text, &limits)[0].as_ref().unwrap_err().kind, LoadErrorKind::TooLarge);
    let text = format!("s: &s {}\nb: [*s, *s]\n", "x".repeat(300));
    assert!(load_str(&text, &limits)[0].is_ok());
}

#[test]
fn nested_anchors_do_not_each_keep_a_free_copy() {
    let limits = Limits { max_nodes: 100, ..Limits::default() };
    let items = vec!["x"; 30].join(", ");
    let text = format!("n: &a [&b [&c [&d [{items}]]]]\n");
    assert_eq!(load_str(&text, &limits)[0].as_ref().unwrap_err().kind, LoadErrorKind::TooManyNodes);
    let text = format!("n: &a [[[[{items}]]]]\n");
    assert!(load_str(&text, &limits)[0].is_ok());
}

#[test]
fn directives_belong_to_their_document() {
    let docs = load("%YAML 1.1\n---\na: 1\n...\n%YAML 1.1\n---\nb: 2\n");
    assert_eq!(docs.len(), 2, "{docs:?}");
    assert!(docs.iter().all(|d| d.is_ok()), "{docs:?}");
}

#[test]
fn embedded_offset_never_panics() {
    let text = "a: \"xé\"\nb: |\n  é😀\n";
    let root = one(text);
    for key in ["a", "b"] {
        let node = root.get(key).unwrap();
        let value = node.as_str().unwrap();
        for inner in 0..=value.len() + 2 {
            let at = embedded_offset(text, node.span, value, inner) as usize;
            assert!(at <= text.len() && text.is_char_boundary(at), "{key} {inner}");
        }
    }
    // A quoted-looking span that ends inside a character.
    assert_eq!(embedded_offset("\"é", Span::new(0, 3), "x", 0), 0);
    assert_eq!(embedded_offset("ab", Span::new(5, 9), "x", 0), 5);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics_and_spans_stay_inside(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let docs = load_stream(&bytes, &Limits::default());
            for d in docs {
                match d {
                    Ok(doc) => doc.root.walk(&mut |_, n| {
                        assert!(n.span.start <= n.span.end && n.span.end as usize <= bytes.len());
                    }),
                    Err(e) => assert!(e.span.start as usize <= bytes.len()),
                }
            }
        }

        #[test]
        fn yaml_like_text_never_panics(text in "([a-z{}\\[\\]:,\\-&*!|>'\" \n#]){0,300}") {
            let _ = load_str(&text, &Limits::default());
        }
    }
}

/// Trees are most of an analysis's memory: a node that grows by a word grows
/// every analysis by a fifth (node.rs says why the layout is what it is).
#[test]
fn nodes_stay_small() {
    assert_eq!(std::mem::size_of::<Value>(), 24);
    assert_eq!(std::mem::size_of::<Node>(), 32);
    assert_eq!(std::mem::size_of::<Entry>(), 64);
    let docs = crate::load_str("serviceAccountName: telemetry-agent\n", &crate::Limits::default());
    let entry = &docs[0].as_ref().unwrap().root.as_map().unwrap()[0];
    let Value::Str(value) = &entry.value.value else { panic!("not a string: {:?}", entry.value) };
    assert!(!entry.key.is_heap_allocated() && !value.is_heap_allocated(), "short strings are stored inline");
}
