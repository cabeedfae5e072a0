//! Manifest streams read with apiload's own loader: as JSON values to send
//! to the API server, and as the engine's objects.

use crate::Result;
use apiload_rules::Object;
use apiload_rules::source::Sources;
use apiload_yaml::{Limits, load_str};
use serde_json::Value;

/// Every document of a YAML stream as JSON (null documents dropped).
pub fn documents(name: &str, text: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, doc) in load_str(text, &Limits::default()).into_iter().enumerate() {
        let doc = doc.map_err(|e| format!("{name}: document {}: {e:?}", i + 1))?;
        let v: Value = serde_json::from_str(&doc.root.to_json()).map_err(|e| format!("{name}: {e}"))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// The engine's objects of `files` (name, text), as `apiload lint` reads them.
pub fn engine_objects(files: &[(String, String)]) -> Result<(Sources, Vec<Object>)> {
    let mut sources = Sources::new();
    let mut objects = Vec::new();
    let mut diagnostics = Vec::new();
    for (name, text) in files {
        let id = sources.add(name, text.as_bytes());
        for doc in load_str(text, &Limits::default()) {
            let doc = doc.map_err(|e| format!("{name}: {e:?}"))?;
            apiload_rules::object::objects_from_document(id, doc.root, "default", &mut objects, &mut diagnostics);
        }
    }
    if let Some(d) = diagnostics.first() {
        return Err(format!("{} diagnostics reading the manifests, first: {}", diagnostics.len(), d.message));
    }
    Ok((sources, objects))
}

/// `apiVersion`'s group ("" for the core group).
pub fn group_of(object: &Value) -> &str {
    let api_version = object["apiVersion"].as_str().unwrap_or("");
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

pub fn kind_of(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or("")
}

pub fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("")
}

pub fn namespace_of(object: &Value) -> Option<&str> {
    object["metadata"]["namespace"].as_str()
}

/// A YAML stream (JSON documents are YAML) of `objects`, for kubectl.
pub fn stream(objects: &[&Value]) -> String {
    objects.iter().map(|o| format!("---\n{o}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_documents_and_reports_the_broken_one() {
        let docs = documents("t.yaml", "a: 1\n---\n---\nkind: X\napiVersion: apps/v1\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(group_of(&docs[1]), "apps");
        assert_eq!(kind_of(&docs[1]), "X");
        let err = documents("t.yaml", "a: [1\n").unwrap_err();
        assert!(err.starts_with("t.yaml: document 1"), "{err}");
    }
}
