//! Kubernetes objects: a document's tree plus the identity every object has.

use crate::diagnostic::{Diagnostic, ObjectRef};
use crate::fields::Fields;
use crate::input;
use crate::source::SpanError;
use crate::source::{Location, SourceId};
use apiload_yaml::{CompactString, Node, Span, Value};

/// One object of the input.
#[derive(Clone, Debug)]
pub struct Object {
    pub source: SourceId,
    pub api_version: CompactString,
    pub kind: CompactString,
    pub name: CompactString,
    /// `None` for cluster-scoped kinds; otherwise the object's namespace or the default one.
    pub namespace: Option<CompactString>,
    /// True when the object names no namespace and got the default one
    /// (`helm template` output often names none).
    pub namespace_defaulted: bool,
    /// Span of `metadata.name` (or of the document when it has none).
    pub name_span: Span,
    /// The object itself, shared: front ends that keep objects between analyses
    /// (the language server) hand the same tree to every analysis.
    pub node: std::sync::Arc<Node>,
}

impl Object {
    pub fn loc(&self, span: Span) -> Location {
        Location::new(self.source, span)
    }

    pub fn reference(&self) -> ObjectRef {
        ObjectRef {
            kind: self.kind.to_string(),
            namespace: self.namespace.as_ref().map(|n| n.to_string()),
            name: self.name.to_string(),
        }
    }

    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    /// `Kind ns/name` or `Kind name`, for messages.
    pub fn display(&self) -> String {
        self.reference().to_string()
    }

    pub fn metadata(&self) -> Option<&Node> {
        self.node.get("metadata")
    }

    /// Value of an annotation, with its span.
    pub fn annotation(&self, key: &str) -> Option<(&str, Span)> {
        let n = self.node.path(&["metadata", "annotations", key])?;
        n.as_str().map(|s| (s, n.span))
    }
}

/// Kinds whose objects have no namespace. Unknown kinds are taken as
/// namespaced, as most custom resources are.
pub fn is_cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace"
            | "Node"
            | "PersistentVolume"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "StorageClass"
            | "PriorityClass"
            | "FlowSchema"
            | "PriorityLevelConfiguration"
            | "ValidatingWebhookConfiguration"
            | "MutatingWebhookConfiguration"
            | "ValidatingAdmissionPolicy"
            | "ValidatingAdmissionPolicyBinding"
            | "MutatingAdmissionPolicy"
            | "MutatingAdmissionPolicyBinding"
            | "APIService"
            | "CSIDriver"
            | "CSINode"
            | "RuntimeClass"
            | "IngressClass"
            | "VolumeAttachment"
            | "CertificateSigningRequest"
            | "ComponentStatus"
            | "PodSecurityPolicy"
            | "ClusterIssuer"
            | "DeviceClass"
            | "ResourceSlice"
            | "IPAddress"
            | "ServiceCIDR"
            | "VolumeAttributesClass"
    )
}

/// Whether a front end should hand this document to the engine: false only
/// for well-formed objects of kinds the analysis never reads (Services, CRDs),
/// which can be dropped right after parsing to keep memory low. Lists and
/// anything malformed are kept, so that malformed input is still reported.
pub fn worth_analyzing(root: &Node) -> bool {
    let kind = root.get("kind").and_then(Node::as_str);
    let named = root.path(&["metadata", "name"]).and_then(Node::as_str).is_some_and(|n| !n.is_empty());
    let versioned = root.get("apiVersion").and_then(Node::as_str).is_some();
    match kind {
        Some(kind) if named && versioned => kind.ends_with("List") || crate::kube::kinds::is_analyzed_kind(kind),
        _ => true,
    }
}

/// Turns a document into objects (several for a `List`), reporting what is
/// not a Kubernetes object. Nothing is lost silently: every refused document
/// or item yields a diagnostic.
pub fn objects_from_document(
    source: SourceId,
    root: Node,
    default_namespace: &str,
    objects: &mut Vec<Object>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let is_list = match (&root.value, root.get("kind").and_then(Node::as_str)) {
        (Value::Map(_), Some(kind)) => kind.ends_with("List") && root.get("items").is_some(),
        _ => false,
    };
    if !is_list {
        push_object(source, root, default_namespace, objects, diagnostics);
        return;
    }
    let Value::Map(entries) = root.value else {
        return;
    };
    let Some(items) = entries.into_iter().find(|e| &*e.key == "items") else {
        return;
    };
    match items.value.value {
        Value::Seq(list) => {
            for item in list {
                push_object(source, item, default_namespace, objects, diagnostics);
            }
        }
        Value::Null => {}
        _ => diagnostics.push(input::invalid(
            Location::new(source, items.value.span),
            format!("`items` of a List must be a sequence, not a {}", items.value.type_name()),
        )),
    }
}

/// One source read into objects, with the findings made reading it (syntax
/// errors, documents that are not objects). Front ends that keep sources
/// between analyses (the language server) keep these and hand them to each
/// [`crate::Input`] again.
#[derive(Clone, Debug, Default)]
pub struct ReadSource {
    pub objects: Vec<Object>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads the documents loaded from one source; load errors become findings
/// (AL001) with their related spans.
pub fn read_documents(
    source: SourceId,
    documents: impl IntoIterator<Item = Result<apiload_yaml::Document, apiload_yaml::LoadError>>,
    default_namespace: &str,
) -> ReadSource {
    let mut read = ReadSource::default();
    for document in documents {
        match document {
            Ok(doc) => {
                objects_from_document(source, doc.root, default_namespace, &mut read.objects, &mut read.diagnostics)
            }
            Err(e) => {
                let mut d = input::invalid(Location::new(source, e.span), e.message);
                for (span, message) in e.related {
                    d = d.related(Location::new(source, span), message);
                }
                read.diagnostics.push(d);
            }
        }
    }
    read
}

fn push_object(
    source: SourceId,
    node: Node,
    default_namespace: &str,
    objects: &mut Vec<Object>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    match identify(&node, default_namespace) {
        Ok(id) => objects.push(Object {
            source,
            api_version: id.api_version.into(),
            kind: id.kind.into(),
            name: id.name.into(),
            namespace: id.namespace.map(Into::into),
            namespace_defaulted: id.namespace_defaulted,
            name_span: id.name_span,
            node: std::sync::Arc::new(node),
        }),
        Err(e) => diagnostics.push(input::invalid(Location::new(source, e.span), e.message)),
    }
}

struct Identity {
    api_version: String,
    kind: String,
    name: String,
    namespace_defaulted: bool,
    namespace: Option<String>,
    name_span: Span,
}

fn identify(node: &Node, default_namespace: &str) -> Result<Identity, SpanError> {
    let not_object = |what: &str| {
        SpanError::new(Span::new(node.span.start, node.span.start), format!("not a Kubernetes object: {what}"))
    };
    let Value::Map(_) = node.value else {
        return Err(not_object(&format!("the document is a {}, not a mapping", node.type_name())));
    };
    let f = Fields::new(node, "")?;
    let kind = f.str("kind")?.ok_or_else(|| not_object("it has no `kind`"))?;
    let api_version = f.str("apiVersion")?.ok_or_else(|| not_object("it has no `apiVersion`"))?;
    if kind.value.is_empty() {
        return Err(SpanError::new(kind.span, "`kind` is empty"));
    }
    let metadata = f.map("metadata")?.ok_or_else(|| not_object("it has no `metadata`"))?;
    let m = metadata.fields();
    let (name, name_span) = match (m.str("name")?, m.str("generateName")?) {
        (Some(n), _) if !n.value.is_empty() => (n.value.to_string(), n.span),
        (_, Some(g)) if !g.value.is_empty() => (format!("{}<generated>", g.value), g.span),
        _ => {
            return Err(SpanError::new(
                m.key_span("name").unwrap_or(metadata.node.span),
                "`metadata.name` is missing or empty",
            ));
        }
    };
    let (namespace, namespace_defaulted) = if is_cluster_scoped(kind.value) {
        (None, false)
    } else {
        match m.str("namespace")? {
            Some(ns) if !ns.value.is_empty() => (Some(ns.value.to_string()), false),
            _ => (Some(default_namespace.to_string()), true),
        }
    };
    Ok(Identity {
        api_version: api_version.value.to_string(),
        kind: kind.value.to_string(),
        name,
        namespace,
        namespace_defaulted,
        name_span,
    })
}
