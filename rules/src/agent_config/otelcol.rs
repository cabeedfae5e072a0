//! OpenTelemetry Collector configuration.
//!
//! Components are keyed `type` or `type/name` under `receivers`, `processors`,
//! `exporters`, `extensions` and `connectors`, and only those referenced from
//! `service.pipelines` (or `service.extensions`) run. The normalised tree
//! keeps the original document under `raw` and adds, per section, a list of
//! `{id, type, active, body}` whose span is the component's key.

use super::{entry, map, seq, string};
use apiload_yaml::{Node, Value};

const SECTIONS: &[&str] = &["receivers", "processors", "exporters", "extensions", "connectors"];

pub fn normalize(root: Node) -> Node {
    let used = used_ids(&root);
    let mut entries = Vec::new();
    for section in SECTIONS {
        let Some(e) = root.entry(section) else { continue };
        let Some(components) = e.value.as_map() else { continue };
        let mut items = Vec::new();
        for c in components {
            let id = &*c.key;
            let kind = id.split('/').next().unwrap_or(id);
            let active = used.iter().any(|(s, u)| s == section && u == id);
            let mut fields = vec![
                entry("id", c.key_span, string(id, c.key_span)),
                entry("type", c.key_span, string(kind, c.key_span)),
                entry("active", c.key_span, Node::new(Value::Bool(active), c.key_span)),
            ];
            let body = if c.value.is_null() { map(Vec::new(), c.value.span) } else { c.value.clone() };
            fields.push(entry("body", c.key_span, body));
            items.push(map(fields, c.key_span));
        }
        entries.push(entry(section, e.key_span, seq(items, e.value.span)));
    }
    let span = root.span;
    entries.push(entry("raw", span, root));
    map(entries, span)
}

/// (section, id) of every component the service uses.
fn used_ids(root: &Node) -> Vec<(&'static str, String)> {
    let mut used = Vec::new();
    if let Some(exts) = root.path(&["service", "extensions"]).and_then(Node::as_seq) {
        used.extend(exts.iter().filter_map(Node::as_str).map(|s| ("extensions", s.to_string())));
    }
    let Some(pipelines) = root.path(&["service", "pipelines"]).and_then(Node::as_map) else { return used };
    for p in pipelines {
        for (key, section) in [("receivers", "receivers"), ("processors", "processors"), ("exporters", "exporters")] {
            for id in p.value.get(key).and_then(Node::as_seq).unwrap_or(&[]).iter().filter_map(Node::as_str) {
                used.push((section, id.to_string()));
                // A connector appears as an exporter of one pipeline and a receiver of another.
                used.push(("connectors", id.to_string()));
            }
        }
    }
    used
}
