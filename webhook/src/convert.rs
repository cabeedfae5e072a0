//! JSON objects (from a review or a watch) into the engine's objects.
//!
//! JSON carries no positions worth keeping here: spans are empty and the
//! objects point at an empty source. Fields no analysis reads
//! (`managedFields`, `status`) are dropped first, which also keeps the cache small.

use apiload_rules::object::objects_from_document;
use apiload_rules::{Object, SourceId};
use serde_json::Value as Json;

/// The tree of a JSON value (serde_json bounds the depth it parses, 128):
/// the same conversion `apiload audit` makes of what it lists.
pub use apiload_cluster::json::node;

/// Drops what no analysis reads.
pub fn trim(json: &mut Json) {
    if let Some(map) = json.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Json::as_object_mut) {
            meta.remove("managedFields");
            // kubectl's copy of the whole object.
            if let Some(ann) = meta.get_mut("annotations").and_then(Json::as_object_mut) {
                ann.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        }
    }
}

/// An object from JSON. `kind`/`apiVersion` fill in what the object lacks
/// (a review's `request.kind`); `namespace` is its namespace when
/// `metadata.namespace` is absent (a review's `request.namespace`).
pub fn object(
    mut json: Json,
    source: SourceId,
    api_version: &str,
    kind: &str,
    namespace: &str,
) -> Result<Object, String> {
    trim(&mut json);
    if let Some(map) = json.as_object_mut() {
        if !map.contains_key("kind") && !kind.is_empty() {
            map.insert("kind".into(), Json::String(kind.into()));
        }
        if !map.contains_key("apiVersion") && !api_version.is_empty() {
            map.insert("apiVersion".into(), Json::String(api_version.into()));
        }
    }
    let mut objects = Vec::with_capacity(1);
    let mut problems = Vec::new();
    let default_namespace = if namespace.is_empty() { "default" } else { namespace };
    objects_from_document(source, node(&json), default_namespace, &mut objects, &mut problems);
    match (objects.pop(), problems.first()) {
        (Some(o), _) if objects.is_empty() => Ok(o),
        (_, Some(d)) => Err(d.message.clone()),
        _ => Err("not one Kubernetes object".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_becomes_the_same_tree_the_loader_builds() {
        let j = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                       "data": {"a": "1"}, "n": 3, "f": 1.5, "b": true, "z": null, "l": [1, "x"]});
        let from_json = node(&j);
        let from_yaml = apiload_yaml::load_str(&j.to_string(), &Default::default()).remove(0).unwrap().root;
        assert_eq!(from_json.to_json(), from_yaml.to_json());
    }

    #[test]
    fn objects_take_kind_and_namespace_from_the_request_when_they_lack_them() {
        let o = object(
            json!({"metadata": {"name": "agent"}, "spec": {}}),
            SourceId(0),
            "apps/v1",
            "DaemonSet",
            "monitoring",
        )
        .unwrap();
        assert_eq!((&*o.kind, o.ns(), &*o.name), ("DaemonSet", "monitoring", "agent"));
        let err = object(json!({"metadata": {}}), SourceId(0), "v1", "ConfigMap", "x").unwrap_err();
        assert!(err.contains("name"), "{err}");
    }

    #[test]
    fn unread_fields_are_dropped() {
        let mut j = json!({"metadata": {"name": "a", "managedFields": [{}],
                            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "x"}},
                           "status": {"numberReady": 3}});
        trim(&mut j);
        assert_eq!(j, json!({"metadata": {"name": "a", "annotations": {"keep": "x"}}}));
    }
}
