//! Who installed a live object, from the marks the tools leave on it, so
//! that a finding names the chart or the application to fix:
//!
//! - Helm 3 and 4 annotate what they install with `meta.helm.sh/release-name`
//!   and `meta.helm.sh/release-namespace` (helm/helm `pkg/action`, the
//!   annotations `helm upgrade` checks before adopting an object). Charts
//!   that follow the recommended labels also carry
//!   `app.kubernetes.io/managed-by: Helm` with `app.kubernetes.io/instance`
//!   set to the release name (Helm's chart best practices), used when the
//!   annotations are absent (`helm template | kubectl apply`).
//! - Argo CD tracks by the `argocd.argoproj.io/tracking-id` annotation,
//!   `<application>:<group>/<kind>:<namespace>/<name>` (the default tracking
//!   method since Argo CD 3.0; argo-cd.readthedocs.io, "Resource Tracking"),
//!   or by a label that is `app.kubernetes.io/instance` by default — shared
//!   with Helm's, so only the custom `argocd.argoproj.io/instance` label the
//!   same page suggests is read.
//! - Flux labels what its kustomize-controller applies with
//!   `kustomize.toolkit.fluxcd.io/name` and `.../namespace`, and what its
//!   helm-controller installs with `helm.toolkit.fluxcd.io/name` and
//!   `.../namespace` (fluxcd/helm-controller#238).

use apiload_rules::Object;
use apiload_yaml::{Node, Span};

/// The tool that manages an object, and its unit of deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub tool: Tool,
    /// The release, application or Kustomization.
    pub name: String,
    /// Its namespace, when the marks say.
    pub namespace: Option<String>,
    /// The annotation or label it was read from, in the object.
    pub span: Span,
    /// The key it was read from.
    pub key: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Helm,
    ArgoCd,
    FluxKustomization,
    FluxHelmRelease,
}

impl Owner {
    /// `Helm release monitoring/otel-agent`.
    pub fn describe(&self) -> String {
        let what = match self.tool {
            Tool::Helm => "Helm release",
            Tool::ArgoCd => "Argo CD application",
            Tool::FluxKustomization => "Flux Kustomization",
            Tool::FluxHelmRelease => "Flux HelmRelease",
        };
        match &self.namespace {
            Some(ns) if !ns.is_empty() => format!("{what} {ns}/{}", self.name),
            _ => format!("{what} {}", self.name),
        }
    }

    /// What to change, in words.
    pub fn advice(&self) -> &'static str {
        match self.tool {
            Tool::Helm => "fix it in the chart or its values and upgrade the release",
            Tool::ArgoCd => "fix it in the application's source; Argo CD would undo an edit in the cluster",
            Tool::FluxKustomization | Tool::FluxHelmRelease => {
                "fix it in the source Flux applies; it would undo an edit in the cluster"
            }
        }
    }
}

fn entry<'a>(meta: &'a Node, map: &str, key: &str) -> Option<(&'a str, Span)> {
    let n = meta.get(map)?.get(key)?;
    Some((n.as_str()?, n.span))
}

/// The owner of an object, by the first of the marks above it carries.
pub fn owner(obj: &Object) -> Option<Owner> {
    let meta = obj.metadata()?;
    let pair = |map: &str, name_key: &'static str, ns_key: &str, tool: Tool| {
        let (name, span) = entry(meta, map, name_key)?;
        let namespace = entry(meta, map, ns_key).map(|(n, _)| n.to_string());
        (!name.is_empty()).then(|| Owner { tool, name: name.to_string(), namespace, span, key: name_key })
    };
    if let Some(o) = pair("annotations", "meta.helm.sh/release-name", "meta.helm.sh/release-namespace", Tool::Helm) {
        return Some(o);
    }
    if let Some(o) =
        pair("labels", "helm.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/namespace", Tool::FluxHelmRelease)
    {
        return Some(o);
    }
    if let Some(o) = pair(
        "labels",
        "kustomize.toolkit.fluxcd.io/name",
        "kustomize.toolkit.fluxcd.io/namespace",
        Tool::FluxKustomization,
    ) {
        return Some(o);
    }
    if let Some((id, span)) = entry(meta, "annotations", "argocd.argoproj.io/tracking-id") {
        // `<application>:<group>/<kind>:<namespace>/<name>`; the application
        // may be `<namespace>_<name>` when applications live outside Argo CD's namespace.
        let app = id.split(':').next().unwrap_or("");
        if !app.is_empty() {
            let (namespace, name) = match app.split_once('_') {
                Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
                None => (None, app.to_string()),
            };
            return Some(Owner { tool: Tool::ArgoCd, name, namespace, span, key: "argocd.argoproj.io/tracking-id" });
        }
    }
    if let Some((app, span)) = entry(meta, "labels", "argocd.argoproj.io/instance")
        && !app.is_empty()
    {
        return Some(Owner {
            tool: Tool::ArgoCd,
            name: app.to_string(),
            namespace: None,
            span,
            key: "argocd.argoproj.io/instance",
        });
    }
    let managed_by_helm = entry(meta, "labels", "app.kubernetes.io/managed-by").is_some_and(|(v, _)| v == "Helm");
    if managed_by_helm
        && let Some((release, span)) = entry(meta, "labels", "app.kubernetes.io/instance")
        && !release.is_empty()
    {
        return Some(Owner {
            tool: Tool::Helm,
            name: release.to_string(),
            namespace: Some(obj.ns().to_string()).filter(|n| !n.is_empty()),
            span,
            key: "app.kubernetes.io/instance",
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiload_rules::SourceId;

    fn object(meta: &str) -> Object {
        let text = format!("apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: a\n  namespace: ns\n{meta}");
        let doc = apiload_yaml::load_str(&text, &Default::default()).remove(0).unwrap();
        let mut objects = Vec::new();
        apiload_rules::object::objects_from_document(SourceId(0), doc.root, "default", &mut objects, &mut Vec::new());
        objects.remove(0)
    }

    #[test]
    fn each_tool_by_its_marks() {
        let helm = owner(&object(
            "  annotations:\n    meta.helm.sh/release-name: otel\n    meta.helm.sh/release-namespace: monitoring\n",
        ))
        .unwrap();
        assert_eq!(helm.describe(), "Helm release monitoring/otel");
        let argo =
            owner(&object("  annotations:\n    argocd.argoproj.io/tracking-id: \"apps_agents:apps/DaemonSet:ns/a\"\n"))
                .unwrap();
        assert_eq!(argo.describe(), "Argo CD application apps/agents");
        let flux = owner(&object(
            "  labels:\n    kustomize.toolkit.fluxcd.io/name: infra\n    kustomize.toolkit.fluxcd.io/namespace: flux-system\n",
        ))
        .unwrap();
        assert_eq!(flux.describe(), "Flux Kustomization flux-system/infra");
        let flux_helm = owner(&object(
            "  labels:\n    helm.toolkit.fluxcd.io/name: cilium\n    helm.toolkit.fluxcd.io/namespace: kube-system\n",
        ))
        .unwrap();
        assert_eq!(flux_helm.describe(), "Flux HelmRelease kube-system/cilium");
        let labels = owner(&object(
            "  labels:\n    app.kubernetes.io/managed-by: Helm\n    app.kubernetes.io/instance: falco\n",
        ))
        .unwrap();
        assert_eq!(labels.describe(), "Helm release ns/falco");
        assert_eq!(labels.key, "app.kubernetes.io/instance");
    }

    #[test]
    fn an_instance_label_alone_names_no_one() {
        assert_eq!(owner(&object("  labels:\n    app.kubernetes.io/instance: x\n")), None);
        assert_eq!(owner(&object("")), None);
    }
}
