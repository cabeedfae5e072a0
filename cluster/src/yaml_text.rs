//! JSON from the API server as block YAML, the way `kubectl get -o yaml`
//! shows objects: what people read in findings, and what apiload's loader
//! reads back with a span for every field — so that a finding about a live
//! object points at the line of its `serviceAccountName`, and a finding in
//! an agent's configuration at the line inside the ConfigMap's literal block.
//!
//! Every text written here loads back to the same JSON (tested): strings
//! are plain only when the loader resolves them to the same string,
//! multi-line strings are literal blocks when they can be, and anything else
//! is double-quoted with the escapes YAML and JSON share.

use serde_json::Value;

/// The YAML text of a JSON value (a document, without `---`).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        // The first entry of a map in a sequence follows its `- `.
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str(&string(k));
        out.push(':');
        value_after_key(out, v, indent);
    }
}

/// A value after `key:` (or `-`) at `indent`.
fn value_after_key(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            map(out, m, indent + 2);
        }
        // Sequences at the key's own indentation, as kubectl writes them.
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            seq(out, a, indent);
        }
        Value::String(s) if let Some(block) = literal_block(s, indent + 2, true) => out.push_str(&block),
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn seq(out: &mut String, a: &[Value], indent: usize) {
    for v in a {
        pad(out, indent);
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => map(out, m, indent + 2),
            Value::Array(inner) if !inner.is_empty() => {
                out.truncate(out.len() - 1);
                out.push('\n');
                seq(out, inner, indent + 2);
            }
            Value::String(s) if let Some(block) = literal_block(s, indent + 2, false) => {
                out.truncate(out.len() - 1);
                out.push_str(&block);
            }
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// A string as a plain scalar when that reads back as the same string,
/// else double-quoted.
pub fn string(s: &str) -> String {
    if plain_is_safe(s) { s.to_string() } else { quoted(s) }
}

fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if !(first.is_ascii_alphanumeric() || matches!(first, '_' | '.' | '/')) || s.ends_with(':') {
        return false;
    }
    s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ':' | '@' | '+' | '='))
        && matches!(apiload_yaml::resolve_plain(s), apiload_yaml::Value::Str(ref t) if **t == *s)
}

/// Characters YAML does not allow unescaped in a stream, or reads as line
/// breaks (NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR, YAML 1.1 §5.4).
fn needs_escape(c: char) -> bool {
    matches!(c, '\0'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

/// A double-quoted scalar: JSON's escapes are YAML's.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// ` |-\n` and the lines at `indent`, for a string of several lines that a
/// literal block holds exactly. A first line that starts with a space
/// needs an indentation indicator, which is only unambiguous after a
/// mapping key (`in_map`).
fn literal_block(s: &str, indent: usize, in_map: bool) -> Option<String> {
    if !s.contains('\n') || s.chars().any(|c| c == '\r' || needs_escape(c)) {
        return None;
    }
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    let first = body.split('\n').next().unwrap_or("");
    if first.trim().is_empty() {
        return None;
    }
    let indicator = if first.starts_with(' ') || first.starts_with('\t') {
        if !in_map {
            return None;
        }
        "2"
    } else {
        ""
    };
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!(" |{indicator}{chomp}\n");
    for line in body.split('\n') {
        if !line.is_empty() {
            pad(&mut out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    // `|+` keeps the trailing empty lines, one of which ends the last line.
    for _ in 1..trailing {
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn back(text: &str) -> Value {
        let doc =
            apiload_yaml::load_str(text, &Default::default()).remove(0).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        serde_json::from_str(&doc.root.to_json()).unwrap()
    }

    #[test]
    fn reads_like_kubectl() {
        let v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "agent", "labels": {"app.kubernetes.io/name": "x"}},
                       "data": {"config.yaml": "receivers:\n  otlp: {}\n", "flag": "yes", "n": "0777"},
                       "list": [{"name": "a", "value": "1"}, "b", [1, 2], {}]});
        let text = to_yaml(&v);
        assert!(text.contains("  config.yaml: |\n    receivers:\n      otlp: {}\n"), "{text}");
        // `n` and `yes` are booleans to the API server's YAML reader.
        assert!(text.contains("  flag: \"yes\"\n") && text.contains("  \"n\": \"0777\"\n"), "{text}");
        assert!(text.contains("list:\n- name: a\n  value: \"1\"\n- b\n-\n  - 1\n  - 2\n- {}\n"), "{text}");
        assert_eq!(back(&text), v);
    }

    #[test]
    fn awkward_strings_load_back() {
        for s in [
            " leading space\nsecond",
            "\n\nblank first",
            "tail\n\n\n",
            "tab\tinside\nline",
            "carriage\r\nreturn",
            "nel\u{85}here\nline",
            "quote \" and \\ back",
            "- dash",
            "a: b",
            "#comment",
            "",
            "~",
            "1e3",
            "0x1F",
            "1:20",
            ".inf",
            "null",
        ] {
            for v in [json!({"k": s}), json!([s]), json!({"l": [{"k": s}]})] {
                let text = to_yaml(&v);
                assert_eq!(back(&text), v, "{s:?} as\n{text}");
            }
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            "[ -~\\n\\t\u{85}\u{e9}]{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-z./ -]{1,8}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn every_json_value_loads_back(v in json_value()) {
            // Documents are objects; a bare null is no document at all.
            let v = json!({"v": v});
            let text = to_yaml(&v);
            prop_assert_eq!(back(&text), v, "{}", text);
        }
    }
}
