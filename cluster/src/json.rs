//! Objects as the API server sends them, made ready for the engine.

use apiload_yaml::{Entry, Node, Span, Value};
use serde_json::Value as Json;

/// Drops what no analysis reads and what would only make the text long:
/// `status`, `metadata.managedFields`, kubectl's copy of the whole object in
/// `last-applied-configuration`, and ConfigMaps' `binaryData`.
pub fn trim(json: &mut Json) {
    if let Some(map) = json.as_object_mut() {
        map.remove("status");
        map.remove("binaryData");
        if let Some(meta) = map.get_mut("metadata").and_then(Json::as_object_mut) {
            meta.remove("managedFields");
            if let Some(ann) = meta.get_mut("annotations").and_then(Json::as_object_mut) {
                ann.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        }
    }
}

/// The engine's tree of a JSON value, without positions (for decisions
/// made before an object becomes a source: is it owned by a controller).
pub fn node(json: &Json) -> Node {
    let value = match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Str(s.as_str().into()),
        Json::Array(items) => Value::Seq(items.iter().map(node).collect()),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| Entry { key: k.as_str().into(), key_span: Span::default(), value: node(v) })
                .collect(),
        ),
    };
    Node::new(value, Span::default())
}

pub fn str_at<'a>(json: &'a Json, pointer: &str) -> Option<&'a str> {
    json.pointer(pointer).and_then(Json::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trims_what_no_analysis_reads() {
        let mut j = json!({"metadata": {"name": "a", "managedFields": [{}],
                            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "x"}},
                           "status": {"numberReady": 3}, "binaryData": {"b": "AAAA"}, "data": {"k": "v"}});
        trim(&mut j);
        assert_eq!(j, json!({"metadata": {"name": "a", "annotations": {"keep": "x"}}, "data": {"k": "v"}}));
        assert_eq!(node(&j).to_json(), j.to_string());
    }
}
