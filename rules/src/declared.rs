//! Calls a workload's owner declares: an in-house agent no profile knows can
//! say what it calls with one annotation, on the workload or its pod template:
//!
//! ```yaml
//! metadata:
//!   annotations:
//!     apiload.dev/api-calls: "pods@node, services@cluster, leases.coordination.k8s.io:get@object"
//! ```
//!
//! Entries are separated by commas or new lines: `RESOURCE[.GROUP][:VERBS]@SCOPE`,
//! where VERBS is `list`, `watch` or `get` joined by `+` (default
//! `list+watch`) and SCOPE is `cluster` (every namespace, or the whole
//! cluster-scoped collection), `node` (only the copy's own node's objects,
//! with the field or label selector the API server filters that collection
//! by), `namespace` (the workload's own namespace) or `object` (single
//! objects by name). `none` alone declares that the workload makes no
//! list or watch calls at all.

use crate::calls::{ApiCall, Basis, CallOrigin, CallScope};
use crate::kube::resources;
use crate::object::Object;
use crate::source::Location;
use crate::workload::Workload;
use apiload_yaml::Span;

pub const CALLS_ANNOTATION: &str = "apiload.dev/api-calls";

/// A workload's declaration, read.
#[derive(Clone, Debug)]
pub struct Declaration {
    /// The annotation's value.
    pub location: Location,
    pub calls: Vec<ApiCall>,
    /// Entries that could not be read, each where it is.
    pub problems: Vec<(Location, String)>,
}

/// The workload's declaration, when it has one (the workload's own
/// annotation first, then its pod template's).
pub fn read(w: &Workload, obj: &Object) -> Option<Declaration> {
    let (value, span) = obj
        .annotation(CALLS_ANNOTATION)
        .or_else(|| w.template_annotation(CALLS_ANNOTATION).map(|v| (&*v.value, v.span)))?;
    Some(parse(value, span, obj))
}

fn parse(value: &str, span: Span, obj: &Object) -> Declaration {
    let location = obj.loc(span);
    let mut d = Declaration { location, calls: Vec::new(), problems: Vec::new() };
    // Where the value's text starts in the file: at the span for a plain
    // scalar, after the quote for a quoted one without escapes. Otherwise
    // (block scalars, escapes) entries point at the whole value.
    let text_start = match (span.len() as usize).checked_sub(value.len()) {
        Some(0) => Some(span.start),
        Some(2) => Some(span.start + 1),
        _ => None,
    };
    let locate = |entry: &str| -> Location {
        match (text_start, entry_offset(value, entry)) {
            (Some(start), Some(offset)) => {
                let at = start + offset as u32;
                obj.loc(Span::new(at, at + entry.len() as u32))
            }
            _ => location,
        }
    };
    let entries: Vec<&str> = value.split([',', '\n']).map(str::trim).filter(|e| !e.is_empty()).collect();
    if entries == ["none"] {
        return d;
    }
    if entries.is_empty() {
        d.problems.push((location, format!("`{CALLS_ANNOTATION}` is empty: say `none` if the workload calls nothing")));
        return d;
    }
    for entry in entries {
        match parse_entry(entry) {
            Ok(mut call) => {
                call.origin = Some(CallOrigin {
                    agent: String::new(),
                    feature: format!("declared `{entry}`"),
                    evidence: locate(entry),
                    because: None,
                    fix: None,
                    central: false,
                    every: None,
                    consistent_list: false,
                    inherent: None,
                });
                if let CallScope::Namespaces(ns) = &mut call.scope {
                    *ns = vec![obj.ns().into()];
                }
                d.calls.push(call);
            }
            Err(message) => d.problems.push((locate(entry), format!("`{entry}` in `{CALLS_ANNOTATION}`: {message}"))),
        }
    }
    d
}

/// Where `entry`, a slice of `value`, starts in it.
fn entry_offset(value: &str, entry: &str) -> Option<usize> {
    let start = entry.as_ptr() as usize;
    let base = value.as_ptr() as usize;
    (start >= base && start + entry.len() <= base + value.len()).then(|| start - base)
}

fn parse_entry(entry: &str) -> Result<ApiCall, String> {
    let (target, scope) = entry.rsplit_once('@').ok_or("no `@SCOPE` (cluster, node, namespace or object)")?;
    let (name, verbs) = match target.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (target, None),
    };
    let (mut list, mut watch, mut get) = (verbs.is_none(), verbs.is_none(), false);
    for verb in verbs.into_iter().flat_map(|v| v.split('+')) {
        match verb.trim() {
            "list" => list = true,
            "watch" => watch = true,
            "get" => get = true,
            other => return Err(format!("unknown verb `{other}` (list, watch, get)")),
        }
    }
    let (resource, group) = match name.trim().split_once('.') {
        Some((r, g)) => (r, g.to_string()),
        None => (name.trim(), resources::lookup_any_group(name.trim()).map_or(String::new(), |i| i.group.to_string())),
    };
    if resource.is_empty() || !resource.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err("a resource is a lowercase plural name (`pods`, `endpointslices.discovery.k8s.io`)".into());
    }
    if resources::not_served(&group, resource) {
        return Err(format!("API group `{}` serves no `{resource}`", if group.is_empty() { "core" } else { &group }));
    }
    let scope = match scope.trim() {
        "cluster" => CallScope::Cluster,
        "node" => {
            if resources::node_filter(&group, resource).is_none() {
                return Err(format!(
                    "the API server cannot filter {} by node: declare it `@cluster`",
                    resources::display(&group, resource)
                ));
            }
            CallScope::Node
        }
        "namespace" => CallScope::Namespaces(Vec::new()),
        "object" => CallScope::Object,
        other => return Err(format!("unknown scope `{other}` (cluster, node, namespace, object)")),
    };
    if scope == CallScope::Object {
        (list, watch, get) = (false, false, true);
    }
    Ok(ApiCall {
        info: resources::lookup(&group, resource),
        group: group.into(),
        resource: resource.into(),
        list,
        watch,
        get,
        scope,
        basis: Basis::Declared,
        origin: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_read_with_their_defaults() {
        let c = parse_entry("pods@node").unwrap();
        assert_eq!((&*c.group, &*c.resource, c.list, c.watch, c.scope), ("", "pods", true, true, CallScope::Node));
        let c = parse_entry("endpointslices@cluster").unwrap();
        assert_eq!(&*c.group, "discovery.k8s.io");
        let c = parse_entry("widgets.example.com:list@cluster").unwrap();
        assert_eq!((&*c.group, c.list, c.watch), ("example.com", true, false));
        let c = parse_entry("leases.coordination.k8s.io:get@object").unwrap();
        assert_eq!((c.get, c.list), (true, false));
    }

    #[test]
    fn mistakes_are_explained() {
        for (entry, says) in [
            ("pods", "no `@SCOPE`"),
            ("pods:delete@node", "unknown verb"),
            ("services@node", "cannot filter services by node"),
            ("pods.apps@cluster", "serves no `pods`"),
            ("pods@everywhere", "unknown scope"),
            ("Pods@node", "lowercase plural"),
        ] {
            let e = parse_entry(entry).unwrap_err();
            assert!(e.contains(says), "{entry}: {e}");
        }
    }
}
